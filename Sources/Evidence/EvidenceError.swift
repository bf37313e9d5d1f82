// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A failure while writing or sealing a bundle, naming the file and errno.
public struct EvidenceError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case writeFailed = "write failed"
            case readFailed = "read failed"
            case syncFailed = "sync failed"
            case sealFailed = "sealing failed"
            case recordInvalid = "record invalid"
            case missing = "missing"
            case notRegularFile = "not a regular file"
            case tooLarge = "too large"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public var description: String { value.rawValue }
        public static let writeFailed = Code(.writeFailed)
        public static let readFailed = Code(.readFailed)
        public static let syncFailed = Code(.syncFailed)
        public static let sealFailed = Code(.sealFailed)
        public static let recordInvalid = Code(.recordInvalid)
        public static let missing = Code(.missing)
        public static let notRegularFile = Code(.notRegularFile)
        public static let tooLarge = Code(.tooLarge)
    }

    public let code: Code
    public let path: String
    public let errno: Int32?
    public let detail: String?

    public init(_ code: Code, path: String, errno: Int32? = nil, detail: String? = nil) {
        self.code = code
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(code): \(path)"
        if let errno { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
        if let detail { text += "; \(detail)" }
        return text
    }
}
