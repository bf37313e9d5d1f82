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

    /// Refuses the characters `isForbidden` names (controls, format characters, separators), an
    /// empty value, and more than `maximumBytes`.
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

    /// `value` as one printable line: every forbidden character written `\xNN` per UTF-8 byte,
    /// a backslash `\\`; everything else (Thai, Khmer, accents) as it is. Distinct values stay
    /// distinct, and the original can be read back from the escaped one.
    public static func escaped(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { isForbidden($0) || $0 == "\\" }) else { return value }
        return escaped(bytes: Array(value.utf8))
    }

    /// Raw bytes (a name a phone listed, a directory entry) as one printable line: as above, and a
    /// byte that is not UTF-8 written `\xNN`. `escapingSlash`: a `/` inside one listed name is
    /// written `\x2F`, so that a path ending in it is not read as another path.
    public static func escaped(bytes: some Collection<UInt8>, escapingSlash: Bool = false) -> String {
        var text = ""
        for unit in scalarUnits(Array(bytes)) {
            switch unit {
            case .scalar(let scalar, _) where scalar == "\\": text += "\\\\"
            case .scalar(let scalar, let raw) where escapingSlash && scalar == "/": text += hex(raw)
            case .scalar(let scalar, _) where !isForbidden(scalar): text.unicodeScalars.append(scalar)
            case .scalar(_, let raw), .invalid(let raw): text += hex(raw)
            }
        }
        return text
    }

    /// `text` kept on one line for a log whose parts are already escaped: only forbidden
    /// characters are written `\xNN` (a backslash stays, so escaped names are not escaped twice).
    public static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isForbidden) else { return text }
        var line = ""
        for scalar in text.unicodeScalars {
            if isForbidden(scalar) { line += hex(Array(String(scalar).utf8)) } else { line.unicodeScalars.append(scalar) }
        }
        return line
    }

    private static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "\\x%02X", $0) }.joined() }

    /// What may not appear as itself in one line of a tag file, a log or a terminal: controls
    /// (C0, DEL, C1), format characters (U+202E and the other bidirectional controls reorder what
    /// a reader sees), and the line and paragraph separators (Python's `splitlines`, which
    /// bagit.py's readers may use, breaks at U+0085, U+2028 and U+2029).
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate: true
        default: false
        }
    }

    public enum ScalarUnit {
        case scalar(Unicode.Scalar, [UInt8])
        case invalid([UInt8])
    }

    /// Splits bytes into UTF-8 scalars, and single bytes where they are not UTF-8.
    public static func scalarUnits(_ bytes: [UInt8]) -> [ScalarUnit] {
        var units: [ScalarUnit] = []
        var index = 0
        while index < bytes.count {
            var taken = false
            for length in (1...min(4, bytes.count - index)).reversed() {
                let slice = Array(bytes[index..<(index + length)])
                if let text = String(validating: slice, as: UTF8.self), text.unicodeScalars.count == 1, let scalar = text.unicodeScalars.first {
                    units.append(.scalar(scalar, slice))
                    index += length
                    taken = true
                    break
                }
            }
            if !taken {
                units.append(.invalid([bytes[index]]))
                index += 1
            }
        }
        return units
    }

    public static func codePoint(_ scalar: Unicode.Scalar) -> String {
        "U+" + String(format: "%04X", scalar.value)
    }

    private static func position(of scalar: Unicode.Scalar, in value: String) -> Int {
        (value.unicodeScalars.firstIndex(of: scalar).map { value.unicodeScalars.distance(from: value.unicodeScalars.startIndex, to: $0) } ?? 0) + 1
    }
}
