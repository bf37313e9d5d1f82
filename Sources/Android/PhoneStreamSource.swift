// SPDX-License-Identifier: Apache-2.0
import ADB
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// A partition streamed from the phone through `exec:` as the pipeline's source: the same
/// readers, digests and image writer as a disk.
public final class PhoneStreamSource: StreamSource, @unchecked Sendable {
    public let path: String
    public let size: UInt64
    private let stream: ADBStream
    private var position: UInt64 = 0

    public init(stream: ADBStream, path: String, size: UInt64) {
        self.stream = stream
        self.path = path
        self.size = size
    }

    public func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
        precondition(offset == position, "the phone's stream is read in order")
        let filled: Int
        do {
            filled = try stream.read(into: destination, count: count)
        } catch {
            throw AcquisitionError(
                error.code == .disconnected ? .sourceVanished : .readFailed, path: path, offset: stream.bytesRead,
                detail: error.description)
        }
        position += UInt64(filled)
        guard filled == count else {
            throw AcquisitionError(
                .sourceChanged, path: path, offset: position,
                detail: "the phone ended the stream after \(position) bytes; blockdev reported \(size)")
        }
        return []
    }

    /// After the last byte the stream must end: more bytes mean the size was wrong.
    public func checkEnd() throws(AcquisitionError) {
        var probe: UInt8 = 0
        let extra: Int
        do { extra = try stream.read(into: &probe, count: 1) } catch {
            throw AcquisitionError(.readFailed, path: path, offset: position, detail: error.description)
        }
        guard extra == 0 else {
            throw AcquisitionError(.sourceChanged, path: path, offset: position, detail: "the phone sent more than the \(size) bytes blockdev reported")
        }
    }
}
