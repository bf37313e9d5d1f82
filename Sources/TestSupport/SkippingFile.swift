// SPDX-License-Identifier: Apache-2.0
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// An image file read like a disk with bad areas: the skipped spans come back as zeros and lower
/// the frontier before the buffer holding them is handed on (as the first-pass reader does); the
/// second pass reads them with `read(_:)`. For the E01 writer's tests and its probe.
public final class SkippingFile: StreamSource, @unchecked Sendable {
    public let path: String
    public let size: UInt64
    private let skips: [ByteSpan]
    private let frontier: SkipFrontier
    private let handle: FileHandle

    public init(path: String, skips: [ByteSpan], frontier: SkipFrontier) throws {
        self.path = path
        self.skips = skips
        self.frontier = frontier
        handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        size = try handle.seekToEnd()
    }

    /// The bytes of `span` as the file holds them (what a second pass recovers).
    public func read(_ span: ByteSpan) throws -> Data {
        try handle.seek(toOffset: span.start)
        return try handle.read(upToCount: Int(span.length)) ?? Data()
    }

    public func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
        try StoreWrites.readAll(into: destination, count: count, from: handle.fileDescriptor, at: offset, path: path, reported: offset)
        var skipped: [ByteSpan] = []
        for span in skips where span.start < offset + UInt64(count) && span.end > offset {
            let from = max(span.start, offset)
            let to = min(span.end, offset + UInt64(count))
            memset(destination + Int(from - offset), 0, Int(to - from))
            skipped.append(ByteSpan(start: from, length: to - from))
            frontier.lower(to: from)
        }
        return skipped
    }
}
