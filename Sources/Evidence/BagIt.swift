// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The BagIt 1.0 (RFC 8493) text formats Exhibit writes and reads.
public enum BagIt {
    public static let declaration = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    public static let payloadManifest = "manifest-sha256.txt"
    public static let tagManifest = "tagmanifest-sha256.txt"
    public static let bagInfo = "bag-info.txt"
    public static let declarationFile = "bagit.txt"
    public static let seal = "seal.p7s"

    /// Manifest lines as `sha256sum` prints them (`HEX  PATH`), so `sha256sum -c` reads them too.
    public static func manifest(_ entries: [(path: String, sha256: String)]) -> String {
        entries.map { "\($0.sha256)  \(encodePath($0.path))\n" }.joined()
    }

    /// Parses manifest lines; returns entries and the 1-based numbers of lines that do not parse.
    public static func parseManifest(_ text: String) -> (entries: [(path: String, sha256: String)], badLines: [Int]) {
        var entries: [(String, String)] = []
        var bad: [Int] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            if trimmed.isEmpty { continue }
            let parts = trimmed.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].count == 64, parts[0].allSatisfy(\.isHexDigit) else {
                bad.append(index + 1)
                continue
            }
            let path = parts[1].drop { $0 == " " || $0 == "*" }
            entries.append((decodePath(String(path)), parts[0].lowercased()))
        }
        return (entries, bad)
    }

    /// RFC 8493 §2.1.3: CR, LF and `%` in a manifest path are percent-encoded.
    static func encodePath(_ path: String) -> String {
        path.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\n", with: "%0A")
            .replacingOccurrences(of: "\r", with: "%0D")
    }

    static func decodePath(_ path: String) -> String {
        path.replacingOccurrences(of: "%0A", with: "\n").replacingOccurrences(of: "%0D", with: "\r")
            .replacingOccurrences(of: "%0a", with: "\n").replacingOccurrences(of: "%0d", with: "\r")
            .replacingOccurrences(of: "%25", with: "%")
    }
}
