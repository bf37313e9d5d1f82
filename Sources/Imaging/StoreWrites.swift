// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// What every image writer and reader does with the store, said once: write or read all of a
/// buffer where it belongs, tell an all-zero buffer (left as a hole) from data.
public enum StoreWrites {
    /// Writes all of `bytes` at `position` of the file; a full store is `store full`, naming the
    /// stream offset and what was being written (`the image`, `the E01's staging file`).
    public static func writeAll(
        _ bytes: UnsafeRawBufferPointer, to descriptor: Int32, at position: UInt64, path: String, streamOffset: UInt64, what: String
    ) throws(AcquisitionError) {
        var done = 0
        while done < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if result < 0 {
                if errno == EINTR { continue }
                let error = errno
                let full = error == ENOSPC || error == EDQUOT
                throw AcquisitionError(
                    full ? .storeFull : .writeFailed, path: path, offset: streamOffset + UInt64(done), errno: error,
                    detail: full ? "the store has no room left for \(what)" : nil)
            }
            done += result
        }
    }

    /// Reads exactly `count` bytes at `position` of the file; an error or an early end names the
    /// file and the offset (`reported`, the offset the caller's reader speaks of).
    public static func readAll(
        into destination: UnsafeMutableRawPointer, count: Int, from descriptor: Int32, at position: UInt64, path: String,
        reported: UInt64, what: String? = nil
    ) throws(AcquisitionError) {
        var done = 0
        while done < count {
            let result = pread(descriptor, destination + done, count - done, off_t(position) + off_t(done))
            if result > 0 {
                done += result
            } else if result < 0, errno == EINTR {
                continue
            } else {
                throw AcquisitionError(
                    .readFailed, path: path, offset: reported + UInt64(done), errno: result < 0 ? errno : nil,
                    detail: result == 0 ? "the file ends early" + (what.map { " (\($0))" } ?? "") : what)
            }
        }
    }

    /// Bytes an unprivileged writer can still put on the file system of `path` (`f_bavail`);
    /// nil when it cannot tell.
    public static func freeBytes(path: String) -> UInt64? {
        var info = statvfs()
        return statvfs(path, &info) == 0 ? UInt64(info.f_bavail) * UInt64(info.f_frsize) : nil
    }

    /// The same, of the file system an open file is on.
    public static func freeBytes(descriptor: Int32) -> UInt64? {
        var info = statvfs()
        return fstatvfs(descriptor, &info) == 0 ? UInt64(info.f_bavail) * UInt64(info.f_frsize) : nil
    }

    /// Drops an open file's pages from the page cache, so that the next read of it comes from the
    /// store. Only clean pages go: the caller makes the file durable first.
    public static func dropFromCache(descriptor: Int32) {
        _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED))
    }

    public static func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let words = bytes.count / 8
        let wordPointer = base.assumingMemoryBound(to: UInt64.self)
        var index = 0
        // Eight words at a time: the first non-zero block ends the scan, so real data costs little.
        while index + 8 <= words {
            if (wordPointer[index] | wordPointer[index + 1] | wordPointer[index + 2] | wordPointer[index + 3]
                | wordPointer[index + 4] | wordPointer[index + 5] | wordPointer[index + 6] | wordPointer[index + 7]) != 0
            {
                return false
            }
            index += 8
        }
        for byte in UnsafeRawBufferPointer(rebasing: bytes[(index * 8)...]) where byte != 0 { return false }
        return true
    }
}

/// The room a writer keeps free in the store for the job's records, journal and catalog: before
/// writing it checks (every 16 MiB) that this interval's writes still leave `keepFree` bytes, and
/// otherwise stops the job as `store full` while there is still room to say so.
public struct SpaceReserve: Sendable {
    public let keepFree: UInt64
    private var writtenSinceCheck: UInt64 = .max
    public static let checkInterval: UInt64 = 16 << 20

    /// The free space under which a writer keeping `keepFree` stops: the reserve and one
    /// interval of writes (what the daemon calls a full store).
    public static func stopsBelow(keepFree: UInt64) -> UInt64 { keepFree + checkInterval }

    public init(keepFree: UInt64) { self.keepFree = keepFree }

    /// Before `count` more bytes at stream `offset`; `freeSpace` is asked only when a check is due.
    public mutating func check(
        _ count: UInt64, at offset: UInt64, path: String, remaining: UInt64, freeSpace: () -> UInt64?
    ) throws(AcquisitionError) {
        guard keepFree > 0 else { return }
        if writtenSinceCheck < Self.checkInterval {
            writtenSinceCheck += count
            return
        }
        writtenSinceCheck = count
        guard let free = freeSpace(), free < Self.stopsBelow(keepFree: keepFree) else { return }
        throw AcquisitionError(
            .storeFull, path: path, offset: offset,
            detail: "\(free) bytes free, \(keepFree) kept for records and \(remaining) still to write; "
                + "free space in the store and the job resumes here")
    }
}
