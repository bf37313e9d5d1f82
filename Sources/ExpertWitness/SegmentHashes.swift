// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Imaging

/// The SHA-256 of each segment file, taken from the reads that decode it: the bundle manifest's
/// digests of an E01 without reading its files a second time (on the appliance's disk that was a
/// second read of the whole image; on a 4 GiB half-zero source, 1.2 s of one core after the
/// read-back). Every byte of a file is hashed once and in file order: what the chunk reads skip
/// (section descriptors, tables) is read here as the decoder passes it, and what follows the last
/// chunk when the digests are taken.
final class SegmentHashes: @unchecked Sendable {
    private var files: [SegmentFile]
    private var digests: [Digest]
    /// How many leading bytes of each file are hashed.
    private var hashed: [UInt64]

    init(files: [SegmentFile]) {
        self.files = files
        digests = files.map { _ in Digest(.sha256) }
        hashed = files.map { _ in 0 }
    }

    /// Goes on with the same files opened again, and more (an image read back in parts while it
    /// was written, then once complete). What was hashed must still be in each file: libewf
    /// writes a closed chunk section, and a closed segment file, once and never again.
    func adopt(_ newer: [SegmentFile]) throws(AcquisitionError) {
        for (index, file) in newer.enumerated() {
            if index < files.count {
                guard file.size >= hashed[index] else {
                    throw file.malformed(at: file.size, "it is shorter (\(file.size) bytes) than when it was read back (\(hashed[index]))")
                }
                files[index] = file
            } else {
                files.append(file)
                digests.append(Digest(.sha256))
                hashed.append(0)
            }
        }
    }

    /// Reads and hashes what lies between the bytes hashed so far and `offset` of segment
    /// `segment`, through `buffer` (`capacity` bytes at a time).
    func catchUp(segment: Int, to offset: UInt64, through buffer: UnsafeMutableRawPointer, capacity: Int) throws(AcquisitionError) {
        while hashed[segment] < offset {
            let count = Int(min(UInt64(capacity), offset - hashed[segment]))
            try files[segment].read(into: buffer, count: count, at: hashed[segment], what: "the bytes between its chunks")
            digests[segment].update(UnsafeRawBufferPointer(start: buffer, count: count))
            hashed[segment] += UInt64(count)
        }
    }

    /// The part of a read of `count` bytes at `offset` (held at `bytes`) that is not hashed yet,
    /// now counted as hashed: the caller hashes it with `hash` before the next read. Empty when a
    /// read goes over bytes already hashed (a chunk two pipeline buffers share).
    func claim(segment: Int, bytes: UnsafeRawPointer, count: Int, at offset: UInt64) -> PendingBytes {
        precondition(offset <= hashed[segment], "catchUp(segment:to:) first")
        let end = offset + UInt64(count)
        guard end > hashed[segment] else { return PendingBytes(segment: segment, bytes: nil) }
        let skip = Int(hashed[segment] - offset)
        hashed[segment] = end
        return PendingBytes(segment: segment, bytes: UnsafeRawBufferPointer(start: bytes + skip, count: count - skip))
    }

    /// Bytes of a read to hash, on any one thread, while the decoder's workers inflate the same read.
    struct PendingBytes: @unchecked Sendable {
        let segment: Int
        let bytes: UnsafeRawBufferPointer?
    }

    func hash(_ pending: PendingBytes) {
        if let bytes = pending.bytes { digests[pending.segment].update(bytes) }
    }

    /// Each file's SHA-256, after hashing what follows the last byte read (the trailing table,
    /// digest and done sections). Call once, after the whole stream was read.
    func finish(through buffer: UnsafeMutableRawPointer, capacity: Int) throws(AcquisitionError) -> [DigestValue] {
        for (segment, file) in files.enumerated() {
            try catchUp(segment: segment, to: file.size, through: buffer, capacity: capacity)
            file.release()
        }
        return digests.map { $0.finalize() }
    }
}
