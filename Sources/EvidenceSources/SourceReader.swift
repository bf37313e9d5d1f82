// SPDX-License-Identifier: Apache-2.0
import CBlockDevice
import Foundation
import Imaging
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// How the first pass treats an unreadable area.
public struct SkipPolicy: Codable, Sendable, Equatable {
    /// Bytes skipped after the first error of a run; doubles with each error that follows a skip.
    public var initialSkip: UInt64
    /// The largest skip.
    public var maximumSkip: UInt64

    public init(initialSkip: UInt64 = 64 << 10, maximumSkip: UInt64) {
        self.initialSkip = initialSkip
        self.maximumSkip = max(initialSkip, maximumSkip)
    }

    /// 64 KiB growing to 1 % of the source, at most 1 GiB (the scale GNU ddrescue documents).
    public static func standard(forSize size: UInt64) -> SkipPolicy {
        SkipPolicy(maximumSkip: min(1 << 30, max(64 << 10, size / 100)))
    }

    /// The skip after an error, given the one before it (0 after a good read): the initial skip,
    /// or double the last, at most `maximumSkip`.
    public func skip(after previous: UInt64) -> UInt64 { previous == 0 ? initialSkip : min(previous * 2, maximumSkip) }

    /// Where a skip of `length` bytes from the failing sector at `start` ends: on a sector
    /// boundary, never past the source, and at least one byte past `position` (the read that failed).
    public static func end(ofSkip length: UInt64, from start: UInt64, position: UInt64, size: UInt64, sectorSize: UInt64) -> UInt64 {
        max(min(size, (start + length + sectorSize - 1) / sectorSize * sectorSize), position + 1)
    }
}

/// The first pass over an evidence source: large positional reads; an area that fails is
/// zero-filled and skipped with a growing skip, so the healthy rest of a failing disk is read
/// first. The skipped areas are recovered sector by sector afterwards (`SectorRecovery`).
/// Used by the one reader thread of a pipeline.
public final class SourceReader: StreamSource, @unchecked Sendable {
    let access: SourceAccess
    public var path: String { access.path }
    public var size: UInt64 { access.size }
    public var sectorSize: Int { access.sectorSize }
    public var skipPolicy: SkipPolicy
    /// Lowered to the first skipped byte.
    public var frontier = SkipFrontier()
    private var skipUntil: UInt64 = 0
    private var nextSkip: UInt64 = 0
    /// After the first error a block device is read with direct I/O: the page cache's readahead
    /// fails whole windows around one bad sector and then crawls, which cost 5× here.
    private var direct = false
    /// Up to here, reads are `chunkSize` long: the rest of a large read that failed, so the skip
    /// starts at the failing chunk and the healthy chunks before it are kept.
    private var chunkedUntil: UInt64 = 0
    static let chunkSize = 64 << 10

    init(_ access: SourceAccess) {
        self.access = access
        self.skipPolicy = .standard(forSize: access.size)
    }

    public func fill(
        _ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64
    ) throws(AcquisitionError) -> [ByteSpan] {
        // Before every buffer, not only after an I/O error: a flag cleared by hand (`blockdev
        // --setrw`) or by the kernel revalidating the disk makes no error, and the record says the
        // whole stream was read write-protected. One ioctl per buffer.
        try access.checkStillReadOnly(at: offset)
        var done = 0
        var skipped: [ByteSpan] = []
        while done < count {
            let position = offset + UInt64(done)
            if position < skipUntil {
                let length = Int(min(UInt64(count - done), skipUntil - position))
                memset(destination + done, 0, length)
                skipped.append(ByteSpan(start: position, length: UInt64(length)))
                done += length
                continue
            }
            var length = count - done
            if position < chunkedUntil { length = min(length, Self.chunkSize, Int(chunkedUntil - position)) }
            let result = pread(access.descriptor, destination + done, length, off_t(position))
            if result > 0 {
                done += result
                nextSkip = 0
                continue
            }
            if result == 0 {
                try access.checkPresent(at: position, errno: nil)
                throw AcquisitionError(
                    .sourceChanged, path: path, offset: position,
                    detail: "end of data before the \(size) bytes the source reported")
            }
            let error = errno
            if error == EINTR { continue }
            if SourceAccess.meansVanished(error) {
                throw AcquisitionError(.sourceVanished, path: path, offset: position, errno: error)
            }
            try access.checkPresent(at: position, errno: error)
            try access.checkStillReadOnly(at: position)
            if access.isBlockDevice, !direct, exhibit_set_direct_io(access.descriptor, 1) == 0 { direct = true }
            if direct, length > Self.chunkSize {
                chunkedUntil = position + UInt64(length)
                continue
            }
            // Skip from the sector holding the failed byte (a failed chunk of direct I/O, or a
            // buffered read that stopped at the failing page).
            let sector = UInt64(sectorSize)
            let start = position - position % sector
            nextSkip = skipPolicy.skip(after: nextSkip)
            frontier.lower(to: start)
            skipUntil = SkipPolicy.end(ofSkip: nextSkip, from: start, position: position, size: size, sectorSize: sector)
        }
        return skipped
    }
}

/// An evidence source's open descriptor as both passes use it, with the checks a read error calls for.
struct SourceAccess: Sendable {
    let descriptor: Int32
    let path: String
    let size: UInt64
    let sectorSize: Int
    let isBlockDevice: Bool
    /// The source was opened because its kernel read-only flag was set; the flag is checked again
    /// before each buffer and after every I/O error (the kernel can reset it when it revalidates a disk).
    let requiresReadOnlyFlag: Bool

    /// A read failed or ended early: tells a vanished device (unplugged: the kernel drops its
    /// capacity to 0 or it leaves sysfs) from an unreadable area.
    func checkPresent(at offset: UInt64, errno error: Int32?) throws(AcquisitionError) {
        guard isBlockDevice else { return }
        var current: UInt64 = 0
        if exhibit_blk_size_bytes(descriptor, &current) != 0 {
            throw AcquisitionError(.sourceVanished, path: path, offset: offset, errno: Glibc.errno, detail: "BLKGETSIZE64 failed")
        }
        if current != size {
            throw AcquisitionError(
                .sourceVanished, path: path, offset: offset, errno: error,
                detail: "the device now reports \(current) bytes instead of \(size): it was removed or replaced")
        }
    }

    func checkStillReadOnly(at offset: UInt64) throws(AcquisitionError) {
        guard requiresReadOnlyFlag else { return }
        var readOnly: Int32 = 0
        if exhibit_blk_read_only(descriptor, &readOnly) != 0 {
            let error = errno
            if Self.meansVanished(error) { throw AcquisitionError(.sourceVanished, path: path, offset: offset, errno: error) }
            throw AcquisitionError(.inspectFailed, path: path, offset: offset, errno: error, detail: "BLKROGET")
        }
        if readOnly == 0 {
            throw AcquisitionError(
                .sourceBecameWritable, path: path, offset: offset,
                detail: "the kernel read-only flag was cleared while the job read; reading paused. "
                    + "Run `blockdev --setro \(path)` and the job resumes where it stopped")
        }
    }

    static func meansVanished(_ error: Int32) -> Bool {
        error == ENODEV || error == ENXIO || error == ENOMEDIUM
    }
}
