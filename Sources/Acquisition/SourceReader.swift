// SPDX-License-Identifier: Apache-2.0
import CBlockDevice
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A run of bytes of the stream: `[start, start + length)`.
public struct ByteSpan: Codable, Sendable, Equatable, Hashable {
    public var start: UInt64
    public var length: UInt64
    public var end: UInt64 { start + length }

    public init(start: UInt64, length: UInt64) {
        self.start = start
        self.length = length
    }

    /// Sorts spans and joins those that touch or overlap.
    public static func merged(_ spans: [ByteSpan]) -> [ByteSpan] {
        var result: [ByteSpan] = []
        for span in spans.sorted(by: { $0.start < $1.start }) where span.length > 0 {
            if let last = result.last, span.start <= last.end {
                result[result.count - 1].length = max(last.end, span.end) - last.start
            } else {
                result.append(span)
            }
        }
        return result
    }
}

/// A run of unreadable logical sectors, zero-filled in the image at their own offset.
public struct UnreadableRange: Codable, Sendable, Equatable {
    public var firstSector: UInt64
    public var sectorCount: UInt64
    /// The errno of the last failed attempt (5 = EIO).
    public var errno: Int32
    /// Read attempts of each sector of the run, the failed larger reads that covered it included.
    public var attemptsPerSector: Int
    public var sectorSize: UInt32
    /// Set when the sectors were not read one by one because the area's time limit ran out.
    public var timeLimited: Bool?

    public init(
        firstSector: UInt64, sectorCount: UInt64, errno: Int32, attemptsPerSector: Int, sectorSize: UInt32,
        timeLimited: Bool? = nil
    ) {
        self.firstSector = firstSector
        self.sectorCount = sectorCount
        self.errno = errno
        self.attemptsPerSector = attemptsPerSector
        self.sectorSize = sectorSize
        self.timeLimited = timeLimited
    }

    public var lastSector: UInt64 { firstSector + sectorCount - 1 }
    public var byteOffset: UInt64 { firstSector * UInt64(sectorSize) }
    public var byteLength: UInt64 { sectorCount * UInt64(sectorSize) }
    public var errorName: String { String(cString: strerror(errno)) }

    /// Joins ranges that touch and failed the same way.
    public static func merged(_ ranges: [UnreadableRange]) -> [UnreadableRange] {
        var result: [UnreadableRange] = []
        for range in ranges.sorted(by: { $0.firstSector < $1.firstSector }) {
            if var last = result.last, last.lastSector + 1 == range.firstSector, last.errno == range.errno,
                last.timeLimited == range.timeLimited
            {
                last.sectorCount += range.sectorCount
                last.attemptsPerSector = max(last.attemptsPerSector, range.attemptsPerSector)
                result[result.count - 1] = last
            } else {
                result.append(range)
            }
        }
        return result
    }
}

/// Where a pipeline reads its stream from.
public protocol StreamSource: Sendable {
    /// The device or file, for errors.
    var path: String { get }
    var size: UInt64 { get }
    /// Fills `count` bytes at stream `offset`; returns the spans it could not read and zero-filled
    /// instead (to be recovered sector by sector after the first pass).
    func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError)
        -> [ByteSpan]
}

/// The offset of the first skipped byte of a first pass, shared by the reader that finds it and
/// the digests that must stop there (the stream's digests are then finished from the store once
/// the skipped areas are recovered).
public final class SkipFrontier: Sendable {
    private let value: Atomic<UInt64>
    public init(_ offset: UInt64 = .max) { value = Atomic(offset) }
    public var offset: UInt64 { value.load(ordering: .acquiring) }
    /// Moves the frontier down to `offset` if it is lower; set before the buffer holding it is handed on.
    public func lower(to offset: UInt64) {
        var current = value.load(ordering: .relaxed)
        while offset < current {
            let (exchanged, original) = value.compareExchange(
                expected: current, desired: offset, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}

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
            nextSkip = nextSkip == 0 ? skipPolicy.initialSkip : min(nextSkip * 2, skipPolicy.maximumSkip)
            var end = start + nextSkip
            end = min(size, (end + sector - 1) / sector * sector)
            frontier.lower(to: start)
            skipUntil = max(end, position + 1)
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
    /// after every I/O error, because the kernel can reset it when it revalidates a disk.
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
            throw AcquisitionError(.inspectFailed, path: path, offset: offset, errno: error, detail: "BLKROGET after an I/O error")
        }
        if readOnly == 0 {
            throw AcquisitionError(
                .sourceBecameWritable, path: path, offset: offset,
                detail: "the kernel cleared the read-only flag after an I/O error; reading paused. "
                    + "Run `blockdev --setro \(path)` and the job resumes where it stopped")
        }
    }

    static func meansVanished(_ error: Int32) -> Bool {
        error == ENODEV || error == ENXIO || error == ENOMEDIUM
    }
}
