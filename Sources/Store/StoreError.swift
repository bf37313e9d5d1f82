// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A failure of the local evidence store: its layout, keys, space or catalog.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case notProvisioned = "store not provisioned"
            case layout = "store layout"
            case keys = "keys"
            case insufficientSpace = "not enough space in the store"
            case catalog = "catalog"
            case publish = "publishing the bundle"
            case storeFull = "the store is full"
            case inUse = "the store is in use"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public var description: String { value.rawValue }
        public var identifier: String { String(describing: value) }
        public static let notProvisioned = Code(.notProvisioned)
        public static let layout = Code(.layout)
        public static let keys = Code(.keys)
        public static let insufficientSpace = Code(.insufficientSpace)
        public static let catalog = Code(.catalog)
        public static let publish = Code(.publish)
        public static let storeFull = Code(.storeFull)
        public static let inUse = Code(.inUse)
    }

    public let code: Code
    public let path: String
    public let errno: Int32?
    public let detail: String

    public init(_ code: Code, path: String, errno: Int32? = nil, detail: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(code): \(path): \(detail)"
        if let errno { text += " (\(String(cString: strerror(errno))), errno \(errno))" }
        return text
    }
}
