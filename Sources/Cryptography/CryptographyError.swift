// SPDX-License-Identifier: Apache-2.0
import COpenSSL

/// A failure inside OpenSSL, with the operation that failed and OpenSSL's own error queue.
public struct CryptographyError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case keyGeneration = "key generation"
            case keyEncoding = "key encoding"
            case keyDecoding = "key decoding"
            case certificateCreation = "certificate creation"
            case certificateDecoding = "certificate decoding"
            case requestCreation = "certificate request creation"
            case requestDecoding = "certificate request decoding"
            case signing = "signing"
            case signatureInvalid = "signature verification"
            case signatureDecoding = "signature decoding"
            case digest = "digest"
            case io = "file access"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public var description: String { value.rawValue }

        public static let keyGeneration = Code(.keyGeneration)
        public static let keyEncoding = Code(.keyEncoding)
        public static let keyDecoding = Code(.keyDecoding)
        public static let certificateCreation = Code(.certificateCreation)
        public static let certificateDecoding = Code(.certificateDecoding)
        public static let requestCreation = Code(.requestCreation)
        public static let requestDecoding = Code(.requestDecoding)
        public static let signing = Code(.signing)
        public static let signatureInvalid = Code(.signatureInvalid)
        public static let signatureDecoding = Code(.signatureDecoding)
        public static let digest = Code(.digest)
        public static let io = Code(.io)
    }

    public let code: Code
    /// What was being done, with the file it concerned where there is one.
    public let context: String
    /// OpenSSL's error queue at the time of failure, oldest first.
    public let openSSLErrors: [String]

    init(_ code: Code, _ context: String) {
        self.code = code
        self.context = context
        self.openSSLErrors = Self.drainErrorQueue()
    }

    public var description: String {
        let detail = openSSLErrors.isEmpty ? "" : " (OpenSSL: \(openSSLErrors.joined(separator: "; ")))"
        return "\(code) failed: \(context)\(detail)"
    }

    /// Empties OpenSSL's thread-local error queue so an old error is never reported against a new call.
    static func drainErrorQueue() -> [String] {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages
    }
}
