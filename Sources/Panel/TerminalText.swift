// SPDX-License-Identifier: Apache-2.0
import CTerminal
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// Text measured and cut in terminal columns. Widths come from the C library's `wcwidth`, as
/// in tmux and foot, so the panel's idea of a line's width is the terminal's: Thai, Lao and
/// Khmer vowel and tone marks take no column.
public enum TerminalText {
    private static let localeReady: Bool = setlocale(LC_CTYPE, "C.UTF-8") != nil

    public static func width(_ scalar: Unicode.Scalar) -> Int {
        _ = localeReady
        return max(0, Int(exhibit_wcwidth(scalar.value)))
    }

    public static func width(_ character: Character) -> Int {
        character.unicodeScalars.reduce(0) { $0 + width($1) }
    }

    public static func width(_ text: some StringProtocol) -> Int {
        text.reduce(0) { $0 + width($1) }
    }

    /// At most `columns` wide, whole characters only, ending in `…` when cut.
    public static func cut(_ text: String, to columns: Int) -> String {
        guard columns > 0 else { return "" }
        guard width(text) > columns else { return text }
        var out = ""
        var used = 0
        for character in text {
            let next = width(character)
            if used + next > columns - 1 { break }
            out.append(character)
            used += next
        }
        return out + "…"
    }

    /// `text` cut to `columns` and padded with spaces to exactly that width.
    public static func fit(_ text: String, to columns: Int) -> String {
        let cut = cut(text, to: columns)
        return cut + String(repeating: " ", count: max(0, columns - width(cut)))
    }

    /// Breaks `text` into lines of at most `columns`, at spaces where it can (Thai, Lao and
    /// Khmer write words without spaces: their long runs break between characters).
    public static func wrap(_ text: String, to columns: Int) -> [String] {
        guard columns > 0 else { return [] }
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            var word = String(word)
            let candidate = line.isEmpty ? word : line + " " + word
            if width(candidate) <= columns {
                line = candidate
                continue
            }
            if !line.isEmpty { lines.append(line) }
            line = ""
            while width(word) > columns {
                var head = ""
                var rest = Substring(word)
                while let character = rest.first, width(head) + width(character) <= columns {
                    head.append(character)
                    rest = rest.dropFirst()
                }
                if head.isEmpty { break }
                lines.append(head)
                word = String(rest)
            }
            line = word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    /// Text from a device or the daemon made safe to print: control characters (a device could
    /// name itself with escape sequences) and bidirectional overrides become `?`.
    public static func sanitize(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { scalar in
                    switch scalar.properties.generalCategory {
                    case .control: "?"
                    case .format where (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value): "?"
                    default: scalar
                    }
                }))
    }

    /// The form sent to the terminal: Thai SARA AM and Lao AM as their two parts (NIKHAHIT
    /// then SARA AA), which terminals that shape per cell draw correctly; the single code point
    /// loses its circle or overlaps the next cell in foot and kitty. Same width either way.
    public static func forTerminal(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value == 0x0E33 || $0.value == 0x0EB3 }) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0E33: scalars.append(contentsOf: ["\u{0E4D}", "\u{0E32}"])
            case 0x0EB3: scalars.append(contentsOf: ["\u{0ECD}", "\u{0EB2}"])
            default: scalars.append(scalar)
            }
        }
        return String(scalars)
    }
}
