// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A JSON document built from dictionaries and arrays of strings, written by JSONEncoder with
/// sorted keys. JSONSerialization's `.sortedKeys` compares keys through a locale (ICU's
/// collation), whose first use made 2.4 MB more of lib_FoundationICU.so resident in the process
/// (measured); JSONEncoder's compares them as Swift strings.
public enum JSONTree: Encodable, Equatable {
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    /// `value` made of `String`, `[Any]` and `[String: Any]` only; anything else is an invalid
    /// record at `path`, the file the tree is for.
    public init(_ value: Any, path: String) throws(EvidenceError) {
        switch value {
        case let text as String: self = .string(text)
        case let items as [Any]: self = .array(try items.map { item throws(EvidenceError) in try JSONTree(item, path: path) })
        case let members as [String: Any]:
            var object: [String: JSONTree] = [:]
            for (key, member) in members { object[key] = try JSONTree(member, path: path) }
            self = .object(object)
        default:
            throw EvidenceError(.recordInvalid, path: path, detail: "a \(type(of: value)) where only strings, arrays and objects are written")
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

    /// Pretty-printed as Exhibit writes its records (`ExhibitJSON`).
    public func data() throws -> Data {
        try ExhibitJSON.encoder(pretty: true).encode(self)
    }
}
