// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText

/// The labels of `bag-info.txt`, written by the sealer and read by the verifier from this one list.
public enum BagInfoLabel: String, CaseIterable, Sendable {
    case sourceOrganization = "Source-Organization"
    case externalIdentifier = "External-Identifier"
    case internalSenderIdentifier = "Internal-Sender-Identifier"
    case internalSenderDescription = "Internal-Sender-Description"
    case baggingDate = "Bagging-Date"
    case bagGroupIdentifier = "Bag-Group-Identifier"
    case bundleFormat = "Exhibit-Bundle-Format"
    case bundleId = "Exhibit-Bundle-Id"
    case examiner = "Exhibit-Examiner"
    case mediaSize = "Exhibit-Media-Size"
    case mediaSHA256 = "Exhibit-Media-SHA256"
    case mediaMD5 = "Exhibit-Media-MD5"
    case mediaSHA1 = "Exhibit-Media-SHA1"
    case phoneMethod = "Exhibit-Phone-Method"
    case phoneInventorySHA256 = "Exhibit-Phone-Inventory-SHA256"
    case verification = "Exhibit-Verification"
    case unreadableSectors = "Exhibit-Unreadable-Sectors"
    case applianceBuild = "Exhibit-Appliance-Build"
    case custodyLogHead = "Custody-Log-Head-SHA256"
    case previousBundleSeal = "Previous-Bundle-Seal-SHA256"
    case payloadOxum = "Payload-Oxum"

    /// What every sealed bundle carries.
    public static let required: [BagInfoLabel] = [
        .sourceOrganization, .externalIdentifier, .internalSenderIdentifier, .baggingDate, .payloadOxum,
        .mediaSHA256, .custodyLogHead, .previousBundleSeal,
    ]
}

/// `bag-info.txt` as Exhibit writes it: one `Label: value` line per field, each label once, no
/// continuation lines, no control characters (values are escaped by `PlainText`).
public struct BagInfo: Sendable {
    public private(set) var fields: [(label: String, value: String)] = []

    public init() {}

    public mutating func append(_ label: BagInfoLabel, _ value: String) {
        fields.append((label.rawValue, PlainText.escaped(value)))
    }

    public subscript(_ label: BagInfoLabel) -> String? { fields.first { $0.label == label.rawValue }?.value }

    public var text: String { fields.map { "\($0.label): \($0.value)\n" }.joined() }

    /// Reads a bag-info, strictly: anything Exhibit never writes (a control character such as a
    /// CR that bagit.py reads as a line break, a continuation line, a label given twice, bytes
    /// that are not UTF-8) is a problem, with its line.
    public static func parse(_ data: Data) -> (info: BagInfo, problems: [String]) {
        var info = BagInfo()
        var problems: [String] = []
        guard let text = String(validating: Array(data), as: UTF8.self) else {
            return (info, ["is not UTF-8"])
        }
        var seen: [String: Int] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            if line.isEmpty {
                if index != text.split(separator: "\n", omittingEmptySubsequences: false).count - 1 {
                    problems.append("line \(number) is empty")
                }
                continue
            }
            if let bad = line.unicodeScalars.first(where: PlainText.isForbidden) {
                problems.append("line \(number) holds the control character \(PlainText.codePoint(bad)), which forges a line break or hides text")
                continue
            }
            guard let colon = line.firstIndex(of: ":"), line.first != " ", line.first != "\t" else {
                problems.append("line \(number) is not `Label: value`: \(PlainText.escaped(String(line.prefix(80))))")
                continue
            }
            let label = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if let first = seen[label] {
                problems.append("label \(label) is given again on line \(number) (first on line \(first)); a second value could stand in for the sealed one")
                continue
            }
            seen[label] = number
            info.fields.append((label, value))
        }
        return (info, problems)
    }
}
