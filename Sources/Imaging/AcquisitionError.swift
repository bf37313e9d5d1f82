// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Why an acquisition could not go on. Names the operation, the device or file, the byte offset
/// where there is one, and the errno.
public struct AcquisitionError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case sourceNotFound = "source not found"
            case sourceUnsupported = "unsupported source"
            case sourceWritable = "source is writable"
            case sourceBecameWritable = "refused: source became writable"
            case sourceEmpty = "source is empty"
            case openFailed = "open failed"
            case inspectFailed = "inspect failed"
            case readFailed = "read failed"
            case sourceVanished = "source vanished"
            case sourceChanged = "source changed"
            case notTheJobsDevice = "not the job's device"
            case changedSinceInterruption = "source changed since the interruption"
            case journalUnusable = "journal unusable"
            case invalidRequest = "invalid request"
            case destinationExists = "destination exists"
            case writeFailed = "write failed"
            case storeFull = "store full"
            case syncFailed = "sync failed"
            case verifyMismatch = "read-back verification failed"
            case cancelled = "cancelled"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public var description: String { value.rawValue }
        /// A stable identifier for JSON output and the catalog.
        public var identifier: String { String(describing: value) }

        public static let sourceNotFound = Code(.sourceNotFound)
        public static let sourceUnsupported = Code(.sourceUnsupported)
        public static let sourceWritable = Code(.sourceWritable)
        public static let sourceBecameWritable = Code(.sourceBecameWritable)
        public static let sourceEmpty = Code(.sourceEmpty)
        public static let openFailed = Code(.openFailed)
        public static let inspectFailed = Code(.inspectFailed)
        public static let readFailed = Code(.readFailed)
        public static let sourceVanished = Code(.sourceVanished)
        public static let sourceChanged = Code(.sourceChanged)
        public static let notTheJobsDevice = Code(.notTheJobsDevice)
        public static let changedSinceInterruption = Code(.changedSinceInterruption)
        public static let journalUnusable = Code(.journalUnusable)
        public static let invalidRequest = Code(.invalidRequest)
        public static let destinationExists = Code(.destinationExists)
        public static let writeFailed = Code(.writeFailed)
        public static let storeFull = Code(.storeFull)
        public static let syncFailed = Code(.syncFailed)
        public static let verifyMismatch = Code(.verifyMismatch)
        public static let cancelled = Code(.cancelled)
    }

    public let code: Code
    /// The device or file the failure concerns.
    public let path: String
    /// The byte offset in the stream (source or image) where it happened, when known.
    public let offset: UInt64?
    public let errno: Int32?
    /// Extra explanation, including what the technician can do about it.
    public let detail: String?

    public init(_ code: Code, path: String, offset: UInt64? = nil, errno: Int32? = nil, detail: String? = nil) {
        self.code = code
        self.path = path
        self.offset = offset
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(code): \(path)"
        if let offset { text += " at byte \(offset)" }
        if let errno { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
        if let detail { text += "; \(detail)" }
        return text
    }
}

extension AcquisitionError {
    /// The job stopped for a reason outside the evidence (store full, source unplugged, its
    /// read-only flag lost, cancelled): its partial work and journal are kept, the job is
    /// `interrupted`, not `failed`, and it resumes where it stopped.
    public var interruptsJob: Bool { [.storeFull, .sourceVanished, .sourceBecameWritable, .cancelled].contains(code) }
}
