// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// UTC timestamps as every Exhibit record writes them: RFC 3339 with milliseconds and `Z`.
///
/// Written and read with the C library's calendar arithmetic (`gmtime_r`, `timegm`), not with
/// Foundation's ISO8601DateFormatter: on Linux that one runs on ICU, whose first use makes about
/// 4.8 MB more of lib_FoundationICU.so resident in the process (0.96 MB before, 5.8 MB after, one
/// formatted date, measured here), which every acquisition then carried for nothing else.
public enum UTCTimestamp {
    /// `2026-12-01T22:42:51.862Z`: whole milliseconds, to the nearest, so that a time read back
    /// from its own text is written the same again. A time outside the years 0000 to 9999 (see
    /// `canWrite`) is written as the nearest one inside, a time that is not a number as 1970's start.
    public static func string(_ date: Date) -> String {
        let (seconds, fraction) = floorDivision(wholeMilliseconds(date), 1000)
        return dateTime(seconds) + "." + padded(fraction, 3) + "Z"
    }

    /// `2026-12-01T22:42:51Z`: the second of `string`'s time, so both name the same second.
    public static func seconds(_ date: Date) -> String {
        dateTime(floorDivision(wholeMilliseconds(date), 1000).quotient) + "Z"
    }

    /// Whether `date` lies in the years RFC 3339 writes, 0000 to 9999: a time from elsewhere (a
    /// phone's clock, a file's modification time) is checked before a record names it.
    public static func canWrite(_ date: Date) -> Bool {
        writableMilliseconds.contains(roundedMilliseconds(date))
    }

    /// `YYYY-MM-DD` in UTC, the BagIt `Bagging-Date` form.
    public static func day(_ date: Date) -> String {
        String(string(date).prefix(10))
    }

    /// An RFC 3339 date-time (§ 5.6): seconds with or without a fraction, then `Z` or an offset
    /// `±HH:MM`; nil for anything else, a date that does not exist (February 30) included, and a
    /// leap second (`:60`, which Exhibit never writes).
    public static func date(_ text: String) -> Date? {
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.number(4), scanner.take("-"), let month = scanner.number(2), scanner.take("-"),
            let day = scanner.number(2), scanner.take("T") || scanner.take("t"),
            let hour = scanner.number(2), scanner.take(":"), let minute = scanner.number(2), scanner.take(":"),
            let second = scanner.number(2)
        else { return nil }
        let fraction = scanner.take(".") ? scanner.fraction() : 0
        guard let fraction, let offset = scanner.offset(), scanner.atEnd,
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var fields = tm()
        (fields.tm_year, fields.tm_mon, fields.tm_mday) = (Int32(year - 1900), Int32(month - 1), Int32(day))
        (fields.tm_hour, fields.tm_min, fields.tm_sec) = (Int32(hour), Int32(minute), Int32(second))
        let seconds = timegm(&fields)
        // timegm carries a day past the month's end into the next month: such a date does not exist.
        guard fields.tm_mday == Int32(day), fields.tm_mon == Int32(month - 1) else { return nil }
        return Date(timeIntervalSince1970: Double(Int64(seconds) - Int64(offset)) + fraction)
    }

    /// 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z, in milliseconds since 1970.
    private static let writableMilliseconds: ClosedRange<Double> = -62_167_219_200_000...253_402_300_799_999

    /// Milliseconds since 1970, to the nearest (infinite or not a number as the time is).
    private static func roundedMilliseconds(_ date: Date) -> Double { (date.timeIntervalSince1970 * 1000).rounded() }

    /// Milliseconds since 1970, to the nearest, inside the writable years.
    private static func wholeMilliseconds(_ date: Date) -> Int64 {
        let milliseconds = roundedMilliseconds(date)
        guard !milliseconds.isNaN else { return 0 }
        return Int64(min(max(milliseconds, writableMilliseconds.lowerBound), writableMilliseconds.upperBound))
    }

    /// `YYYY-MM-DDTHH:MM:SS` of a time in whole seconds since 1970.
    private static func dateTime(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var fields = tm()
        gmtime_r(&time, &fields)
        return padded(Int64(fields.tm_year) + 1900, 4) + "-" + padded(Int64(fields.tm_mon) + 1, 2) + "-" + padded(Int64(fields.tm_mday), 2)
            + "T" + padded(Int64(fields.tm_hour), 2) + ":" + padded(Int64(fields.tm_min), 2) + ":" + padded(Int64(fields.tm_sec), 2)
    }

    private static func padded(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let remainder = ((value % divisor) + divisor) % divisor
        return ((value - remainder) / divisor, remainder)
    }

    /// Reads an RFC 3339 text from the front; each step takes what it names or nothing.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func take(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }

        /// Exactly `count` ASCII digits.
        mutating func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }

        /// The digits after a decimal point (one to nine) as a fraction of a second.
        mutating func fraction() -> Double? {
            var digits = 0
            var value = 0.0
            var scale = 1.0
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]), digits < 9 {
                scale /= 10
                value += Double(bytes[index] - UInt8(ascii: "0")) * scale
                index += 1
                digits += 1
            }
            return digits == 0 ? nil : value
        }

        /// Seconds east of UTC: `Z` (or `z`) is 0, `+HH:MM` and `-HH:MM` their own.
        mutating func offset() -> Int? {
            if take("Z") || take("z") { return 0 }
            let sign = take("+") ? 1 : take("-") ? -1 : 0
            guard sign != 0, let hours = number(2), take(":"), let minutes = number(2), hours < 24, minutes < 60 else { return nil }
            return sign * (hours * 3600 + minutes * 60)
        }
    }
}
