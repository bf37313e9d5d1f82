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
