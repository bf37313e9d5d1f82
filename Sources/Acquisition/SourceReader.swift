// SPDX-License-Identifier: Apache-2.0
import CBlockDevice
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A run of unreadable logical sectors, zero-filled in the image at their own offset.
public struct UnreadableRange: Codable, Sendable, Equatable {
    public var firstSector: UInt64
    public var sectorCount: UInt64
    /// The errno of the last failed attempt (5 = EIO).
    public var errno: Int32
    /// Read attempts per sector before giving up.
    public var attemptsPerSector: Int
    public var sectorSize: UInt32

    public var lastSector: UInt64 { firstSector + sectorCount - 1 }
    public var byteOffset: UInt64 { firstSector * UInt64(sectorSize) }
    public var byteLength: UInt64 { sectorCount * UInt64(sectorSize) }
    public var errorName: String { String(cString: strerror(errno)) }
}

/// Where a pipeline reads its stream from.
public protocol StreamSource: Sendable {
    /// The device or file, for errors.
    var path: String { get }
    var size: UInt64 { get }
    /// Fills `count` bytes at stream `offset`; returns the unreadable ranges it zero-filled.
    func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError)
        -> [UnreadableRange]
}

/// Positional reads from one descriptor, with the policy for unreadable sectors.
///
/// Evidence sources tolerate unreadable sectors (zero-filled, recorded); a read-back of the
/// store's own image does not.
public struct SourceReader: StreamSource {
    let descriptor: Int32
    public let path: String
    public let size: UInt64
    public let sectorSize: Int
    let toleratesUnreadableSectors: Bool
    /// The source was opened because its kernel read-only flag was set; the flag is checked again
    /// after every I/O error, because the kernel can reset it when it revalidates a disk.
    let requiresReadOnlyFlag: Bool
    /// Attempts per sector before it is declared unreadable.
    public var attemptsPerSector = 3

    public func fill(
        _ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64
    ) throws(AcquisitionError) -> [UnreadableRange] {
        var done = 0
        while done < count {
            let result = pread(descriptor, destination + done, count - done, off_t(offset + UInt64(done)))
            if result > 0 {
                done += result
                continue
            }
            if result == 0 {
                throw AcquisitionError(
                    .sourceChanged, path: path, offset: offset + UInt64(done),
                    detail: "end of data before the \(size) bytes the source reported")
            }
            let error = errno
            if error == EINTR { continue }
            if Self.meansVanished(error) {
                throw AcquisitionError(.sourceVanished, path: path, offset: offset + UInt64(done), errno: error)
            }
            guard toleratesUnreadableSectors else {
                throw AcquisitionError(.readFailed, path: path, offset: offset + UInt64(done), errno: error)
            }
            try checkStillReadOnly(at: offset + UInt64(done))
            let ranges = try scrape(destination, count: count, at: offset, from: done)
            try checkStillReadOnly(at: offset + UInt64(done))
            return ranges
        }
        return []
    }

    /// Reads the rest of a failed block one logical sector at a time, zero-filling what stays unreadable.
    private func scrape(
        _ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64, from done: Int
    ) throws(AcquisitionError) -> [UnreadableRange] {
        let sector = UInt64(sectorSize)
        var ranges: [UnreadableRange] = []
        // Restart at the sector holding the first failed byte so the map has sector granularity.
        var position = offset + UInt64(done)
        position -= position % sector
        let end = offset + UInt64(count)
        while position < end {
            let length = Int(min(sector, end - position))
            let target = destination + Int(position - offset)
            var lastError: Int32 = 0
            var attempts = 0
            var succeeded = false
            while attempts < attemptsPerSector, !succeeded {
                attempts += 1
                var got = 0
                lastError = 0
                while got < length {
                    let result = pread(descriptor, target + got, length - got, off_t(position + UInt64(got)))
                    if result > 0 {
                        got += result
                    } else if result == 0 {
                        throw AcquisitionError(.sourceChanged, path: path, offset: position + UInt64(got))
                    } else if errno == EINTR {
                        continue
                    } else {
                        lastError = errno
                        break
                    }
                }
                if Self.meansVanished(lastError) {
                    throw AcquisitionError(.sourceVanished, path: path, offset: position, errno: lastError)
                }
                succeeded = lastError == 0
            }
            if !succeeded {
                memset(target, 0, length)
                let lba = position / sector
                if var last = ranges.last, last.lastSector + 1 == lba, last.errno == lastError {
                    last.sectorCount += 1
                    ranges[ranges.count - 1] = last
                } else {
                    ranges.append(
                        UnreadableRange(
                            firstSector: lba, sectorCount: 1, errno: lastError, attemptsPerSector: attempts,
                            sectorSize: UInt32(sectorSize)))
                }
            }
            position += UInt64(length)
        }
        return ranges
    }

    private func checkStillReadOnly(at offset: UInt64) throws(AcquisitionError) {
        guard requiresReadOnlyFlag else { return }
        var readOnly: Int32 = 0
        if exhibit_blk_read_only(descriptor, &readOnly) != 0 {
            let error = errno
            if Self.meansVanished(error) { throw AcquisitionError(.sourceVanished, path: path, offset: offset, errno: error) }
            throw AcquisitionError(.inspectFailed, path: path, offset: offset, errno: error, detail: "BLKROGET after an I/O error")
        }
        if readOnly == 0 {
            throw AcquisitionError(
                .sourceWritable, path: path, offset: offset,
                detail: "the kernel cleared the read-only flag after an I/O error; reading stopped. "
                    + "Run `blockdev --setro \(path)` and acquire again")
        }
    }

    static func meansVanished(_ error: Int32) -> Bool {
        error == ENODEV || error == ENXIO || error == ENOMEDIUM
    }
}
