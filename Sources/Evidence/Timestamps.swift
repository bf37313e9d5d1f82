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

/// A JSON document built from dictionaries and arrays of strings, written by JSONEncoder with
/// sorted keys. JSONSerialization's `.sortedKeys` compares keys through a locale (ICU's
/// collation), whose first use made 2.4 MB more of lib_FoundationICU.so resident in the process
/// (measured); JSONEncoder's compares them as Swift strings.
public enum JSONTree: Encodable, Equatable {
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    public struct UnsupportedValue: Error, CustomStringConvertible {
        public let description: String
    }

    /// `value` made of `String`, `[Any]` and `[String: Any]` only.
    public init(_ value: Any) throws(UnsupportedValue) {
        switch value {
        case let text as String: self = .string(text)
        case let items as [Any]: self = .array(try items.map { item throws(UnsupportedValue) in try JSONTree(item) })
        case let members as [String: Any]:
            var object: [String: JSONTree] = [:]
            for (key, member) in members { object[key] = try JSONTree(member) }
            self = .object(object)
        default: throw UnsupportedValue(description: "a \(type(of: value)) in a JSON tree of strings")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }

    /// Pretty-printed with sorted keys and unescaped slashes, as Exhibit writes its records.
    public func data() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
