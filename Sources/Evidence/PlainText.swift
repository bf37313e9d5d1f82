// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What a name or identifier may hold, and how any other text is written so that one value is
/// always one line of a tag file, a log or a terminal.
///
/// A control character in a case number, exhibit number or examiner's name could end a
/// `bag-info.txt` line and start a forged one (`A\rExhibit-Media-SHA256: 0000` is two fields to
/// bagit.py, which reads universal newlines), or forge lines of `acquisition.log`. Names are
/// therefore refused when they hold one; every other text is escaped where it is written.
public enum PlainText {
    /// A name or identifier that cannot be recorded as given.
    public struct Refusal: Error, CustomStringConvertible, Sendable, Equatable {
        public let field: String
        public let reason: String
        public var description: String { "\(field): \(reason)" }
    }

    /// Longest accepted identifier, in UTF-8 bytes: room for any real case number, and a bound
    /// on what a client can make the appliance write into every record.
    public static let maximumBytes = 256

    /// Refuses control characters (C0, DEL, C1), the line and paragraph separators, and the
    /// format characters that reorder how a line reads (bidirectional overrides and isolates);
    /// an empty value; and more than `maximumBytes`.
    public static func validate(_ value: String, field: String, maximumBytes: Int = maximumBytes) throws(Refusal) {
        if value.trimmingCharacters(in: .whitespaces).isEmpty {
            throw Refusal(field: field, reason: "is empty")
        }
        if value.utf8.count > maximumBytes {
            throw Refusal(field: field, reason: "is \(value.utf8.count) bytes long; at most \(maximumBytes) are accepted")
        }
        if let bad = value.unicodeScalars.first(where: isForbidden) {
            throw Refusal(
                field: field,
                reason: "holds the control character \(codePoint(bad)) at character \(position(of: bad, in: value)); "
                    + "names may not hold line breaks, escapes or other control characters")
        }
    }

    /// `value` with every forbidden character written as `\u{XXXX}` and the backslash doubled,
    /// so that it is one printable line and the original can be read back from it.
    public static func escaped(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { isForbidden($0) || $0 == "\\" }) else { return value }
        var text = ""
        for scalar in value.unicodeScalars {
            if scalar == "\\" {
                text += "\\\\"
            } else if isForbidden(scalar) {
                text += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        return text
    }

    /// Raw bytes (a file name from a phone or a directory entry) as one printable line: valid
    /// UTF-8 is kept and escaped as above, every other byte written as `\xNN`.
    public static func escaped(bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: Array(bytes), as: UTF8.self) { return escaped(text) }
        var text = ""
        for byte in bytes {
            if byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text += String(format: "\\x%02X", byte)
            }
        }
        return text
    }

    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1
        case 0x2028, 0x2029: return true  // line and paragraph separators
        case 0x202A...0x202E, 0x2066...0x2069: return true  // bidirectional embeddings, overrides, isolates
        default: return false
        }
    }

    public static func codePoint(_ scalar: Unicode.Scalar) -> String {
        "U+" + String(format: "%04X", scalar.value)
    }

    private static func position(of scalar: Unicode.Scalar, in value: String) -> Int {
        (value.unicodeScalars.firstIndex(of: scalar).map { value.unicodeScalars.distance(from: value.unicodeScalars.startIndex, to: $0) } ?? 0) + 1
    }
}
