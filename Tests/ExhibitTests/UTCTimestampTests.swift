// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import Testing

/// Exhibit's own RFC 3339 writer and reader (no ICU), judged by Foundation's ISO8601DateFormatter.
struct UTCTimestampTests {
    static func foundation(_ date: Date, fraction: Bool = true) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = fraction ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    @Test func writesWhatFoundationWritesAndReadsItBack() throws {
        var generator = SystemRandomNumberGenerator()
        // Whole seconds from 1970 to 2100 plus a whole number of milliseconds, and the leap days.
        let seconds = (0..<2000).map { _ in Int64.random(in: 0..<4_102_444_800, using: &generator) } + [0, 951_782_400, 1_709_208_000]
        for second in seconds {
            let milliseconds = Int64.random(in: 0..<1000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(second) + Double(milliseconds) / 1000)
            let text = UTCTimestamp.string(date)
            #expect(text == Self.foundation(Date(timeIntervalSince1970: Double(second))).replacingOccurrences(of: ".000Z", with: String(format: ".%03dZ", milliseconds)))
            #expect(UTCTimestamp.seconds(date) == Self.foundation(date, fraction: false))
            let read = try #require(UTCTimestamp.date(text), "\(text)")
            #expect(UTCTimestamp.string(read) == text)
            #expect(abs(read.timeIntervalSince(date)) < 0.000_5)
        }
    }

    @Test func readsBackEveryWritableYear() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: -62_167_219_200_000...253_402_300_799_999, using: &generator)
            let text = UTCTimestamp.string(Date(timeIntervalSince1970: Double(milliseconds) / 1000))
            #expect(UTCTimestamp.string(try #require(UTCTimestamp.date(text), "\(text)")) == text)
        }
        #expect(UTCTimestamp.string(Date(timeIntervalSince1970: -62_167_219_200)) == "0000-01-01T00:00:00.000Z")
        #expect(UTCTimestamp.date("0000-01-01T00:00:00Z")?.timeIntervalSince1970 == -62_167_219_200)
    }

    @Test func aTimeNoRecordCanWriteIsToldAndWrittenAsTheNearestOne() {
        for seconds in [Double.infinity, 1e300, 253_402_300_800] {
            #expect(!UTCTimestamp.canWrite(Date(timeIntervalSince1970: seconds)))
            #expect(UTCTimestamp.string(Date(timeIntervalSince1970: seconds)) == "9999-12-31T23:59:59.999Z")
        }
        for seconds in [-Double.infinity, -1e300, -62_167_219_201] {
            #expect(!UTCTimestamp.canWrite(Date(timeIntervalSince1970: seconds)))
            #expect(UTCTimestamp.string(Date(timeIntervalSince1970: seconds)) == "0000-01-01T00:00:00.000Z")
        }
        #expect(!UTCTimestamp.canWrite(Date(timeIntervalSince1970: .nan)))
        #expect(UTCTimestamp.seconds(Date(timeIntervalSince1970: .nan)) == "1970-01-01T00:00:00Z")
        #expect(UTCTimestamp.canWrite(Date(timeIntervalSince1970: 253_402_300_799.999)))
    }

    @Test func roundsToTheNearestMillisecondAndCarries() {
        #expect(UTCTimestamp.string(Date(timeIntervalSince1970: 946_684_799.9996)) == "2000-01-01T00:00:00.000Z")
        #expect(UTCTimestamp.string(Date(timeIntervalSince1970: 946_684_799.9994)) == "1999-12-31T23:59:59.999Z")
        // The same second as `string` names, in the E01's notes and the bundle's records alike.
        #expect(UTCTimestamp.seconds(Date(timeIntervalSince1970: 946_684_799.9996)) == "2000-01-01T00:00:00Z")
        #expect(UTCTimestamp.seconds(Date(timeIntervalSince1970: 946_684_799.9994)) == "1999-12-31T23:59:59Z")
        #expect(UTCTimestamp.day(Date(timeIntervalSince1970: 951_868_799)) == "2000-02-29")
    }

    @Test(arguments: [
        ("2000-03-01T00:00:00Z", 951_868_800.0),
        ("2000-03-01T07:00:00+07:00", 951_868_800.0),
        ("2000-02-29T17:00:00-07:00", 951_868_800.0),
        ("2000-03-01t00:00:00.5z", 951_868_800.5),
        ("2024-02-29T12:00:00.123456789Z", 1_709_208_000.123_456_789),
    ])
    func readsRFC3339(text: String, secondsSince1970: Double) throws {
        let date = try #require(UTCTimestamp.date(text))
        #expect(abs(date.timeIntervalSince1970 - secondsSince1970) < 0.000_001, "\(text): \(date.timeIntervalSince1970)")
    }

    @Test(arguments: [
        "", "2026-12-01", "2026-12-01T22:42:51", "2026-12-01 22:42:51Z", "2026-02-30T00:00:00Z", "2027-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-12-00T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T22:60:00Z",
        "2026-12-01T22:42:60Z", "2026-12-01T22:42:51.Z", "2026-12-01T22:42:51.1234567891Z", "2026-12-01T22:42:51Zjunk",
        "2026-12-01T22:42:51+0700", "2026-12-01T22:42:51+24:00", "226-12-01T22:42:51Z", "２０２６-12-01T22:42:51Z",
    ])
    func refusesWhatIsNotAnRFC3339Time(text: String) {
        #expect(UTCTimestamp.date(text) == nil, "\(text)")
    }
}
