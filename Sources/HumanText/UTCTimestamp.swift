// SPDX-License-Identifier: Apache-2.0
import Foundation

/// UTC timestamps as every Exhibit record writes them: RFC 3339 with milliseconds and `Z`.
public enum UTCTimestamp {
    public static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    public static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }

    /// `YYYY-MM-DD` in UTC, the BagIt `Bagging-Date` form.
    public static func day(_ date: Date) -> String {
        String(string(date).prefix(10))
    }
}
