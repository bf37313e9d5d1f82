// SPDX-License-Identifier: Apache-2.0
import CEWF
import Cryptography
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// The staged stream from its start, read before `complete` (to finish the media digests after
/// the second pass); offsets before the staging start are not in it.
final class StagedStream: StreamSource, @unchecked Sendable {
    let path: String
    let size: UInt64
    private let start: UInt64
    private let descriptor: Int32

    init(path: String, start: UInt64, size: UInt64) throws(AcquisitionError) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, errno: errno) }
        self.path = path
        self.start = start
        self.size = size
    }

    deinit { close(descriptor) }

    func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
        guard offset >= start else {
            throw AcquisitionError(
                .invalidRequest, path: path, offset: offset, detail: "the staged stream starts at byte \(start)")
        }
        var done = 0
        while done < count {
            let result = pread(descriptor, destination + done, count - done, off_t(StagingFile.headerSize + offset - start) + off_t(done))
            if result > 0 {
                done += result
            } else if result < 0, errno == EINTR {
                continue
            } else if result == 0 {
                // Trailing holes past the file's end read as zeros.
                memset(destination + done, 0, count - done)
                done = count
            } else {
                throw AcquisitionError(.readFailed, path: path, offset: offset + UInt64(done), errno: errno)
            }
        }
        return []
    }
}
