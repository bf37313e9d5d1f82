// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText

/// JSON as Exhibit writes it: sorted keys, no escaped slashes, UTC dates with milliseconds.
public enum ExhibitJSON {
    public static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(UTCTimestamp.string(date))
        }
        return encoder
    }

    /// JSON lines: one compact object per line, each ending in a newline.
    public static func lines(_ values: [some Encodable]) throws -> Data {
        let encoder = encoder(pretty: false)
        var data = Data()
        for value in values {
            data += try encoder.encode(value)
            data.append(UInt8(ascii: "\n"))
        }
        return data
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = UTCTimestamp.date(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 time: \(text)")
            }
            return date
        }
        return decoder
    }
}
