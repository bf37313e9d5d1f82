// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A JSON decoding failure in words a technician or a client's author can act on, instead of
/// Swift's `DecodingError` dump (which names internal types and coding paths).
enum JSONProblem {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            return "the member \"\(path(context.codingPath + [key]))\" is missing"
        case .typeMismatch(let type, let context):
            return "the member \"\(path(context.codingPath))\" is not \(kind(type))"
        case .valueNotFound(let type, let context):
            return "the member \"\(path(context.codingPath))\" is null; it must be \(kind(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON" : "the member \"\(path(context.codingPath))\" has a value that is not allowed"
        @unknown default:
            return "not valid JSON"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func kind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is UInt64.Type, is Double.Type, is Int64.Type: "a number"
        default: "of the expected kind"
        }
    }
}

extension JSONProblem {
    /// What one walk of JSON text finds of its members' names.
    struct MemberNames {
        /// The first member named twice in one object, as `writeBlockers.1234:5678`; nil when
        /// there is none. JSONDecoder keeps one of the two values and JSONSerialization the
        /// other, so a file that names a setting twice means two things; it is refused instead.
        var firstDuplicate: String?
        /// The names of the outermost object, in order (up to the first duplicate).
        var topLevel: [String] = []
    }

    /// The member names of `data` (valid JSON, UTF-8: `DaemonConfiguration.load` refuses other
    /// encodings first).
    static func memberNames(in data: Data) -> MemberNames {
        var scanner = MemberScanner(bytes: [UInt8](data))
        return scanner.scan()
    }

    /// Walks JSON text once, keeping the names seen in each open object.
    private struct MemberScanner {
        let bytes: [UInt8]
        var index = 0
        /// One entry per open object or array: the object's names so far (nil for an array), and
        /// the name under which it was opened.
        var open: [(names: Set<String>?, name: String)] = []

        mutating func scan() -> MemberNames {
            var found = MemberNames()
            var lastString: String?  // the token just before, when it was a string
            var member = ""  // the member whose value comes next
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if Self.isSpace(byte) { continue }
                if byte == UInt8(ascii: "\"") {
                    lastString = string()
                    continue
                }
                switch byte {
                case UInt8(ascii: ":"):
                    member = lastString ?? ""
                    if open.count == 1 { found.topLevel.append(member) }
                    if !open.isEmpty, open[open.count - 1].names?.insert(member).inserted == false {
                        found.firstDuplicate = (open.dropFirst().map(\.name) + [member]).joined(separator: ".")
                        return found
                    }
                case UInt8(ascii: "{"): open.append((names: [], name: member))
                case UInt8(ascii: "["):
                    open.append((names: nil, name: member))
                    member = "[]"
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    _ = open.popLast()
                    if let enclosing = open.last, enclosing.names == nil { member = "[]" }
                default: break
                }
                lastString = nil
            }
            return found
        }

        /// The string that starts after the opening quote, unescaped (JSONSerialization decodes it).
        private mutating func string() -> String {
            let start = index - 1
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
            }
            index += 1
            let literal = Data(bytes[start..<min(index, bytes.count)])
            return (try? JSONSerialization.jsonObject(with: literal, options: .fragmentsAllowed) as? String) ?? ""
        }

        private static func isSpace(_ byte: UInt8) -> Bool { [0x20, 0x09, 0x0A, 0x0D].contains(byte) }
    }
}
