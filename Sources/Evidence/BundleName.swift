// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText

/// A bundle's directory name, `CASE-EXHIBIT-YYYYMMDDTHHMMSSZ-xxxxxxxx`: sortable, unique, safe
/// as a file name, and written into `bag-info.txt` (`Exhibit-Bundle-Id`) so that a bundle
/// copied under another bundle's name is noticed.
public enum BundleName {
    public static func make(caseId: String, exhibitId: String, at date: Date, jobId: String) -> String {
        let stamp = UTCTimestamp.string(date).prefix(19).replacingOccurrences(of: "-", with: "")
            .replacingOccurrences(of: ":", with: "")
        return "\(fileSafe(caseId))-\(fileSafe(exhibitId))-\(stamp)Z-\(jobId.prefix(8))"
    }

    /// Longest part of a file name taken from one identifier, in UTF-8 bytes (a Thai, Khmer or
    /// Lao letter takes three): two of them, a time and a job id stay far below NAME_MAX (255).
    static let maximumPartBytes = 72

    /// A case or exhibit number as part of a file name. Letters, marks and digits of every script
    /// are kept (a Thai, Khmer or Lao case number stays readable and distinct), as are `.`, `_`
    /// and `-`; anything else (`/`, spaces, punctuation) becomes `_`. The records keep the original.
    public static func fileSafe(_ text: String) -> String {
        var kept = ""
        for character in text {
            let part = character.unicodeScalars.allSatisfy(isKept) ? String(character) : "_"
            guard kept.utf8.count + part.utf8.count <= maximumPartBytes else { break }
            kept += part
        }
        if kept.hasPrefix(".") { kept = "_" + kept.dropFirst() }
        return kept.isEmpty ? "_" : kept
    }

    private static func isKept(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            return scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || ".-_".unicodeScalars.contains(scalar)
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber:
            return true
        default:
            return false
        }
    }
}
