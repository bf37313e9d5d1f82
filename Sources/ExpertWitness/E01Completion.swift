// SPDX-License-Identifier: Apache-2.0
import CEWF
import Cryptography
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// The second pass and the end of an E01: recovered bytes into the staging file, the staged rest
/// encoded once the digests are final, the digests and acquisition errors stored, libewf finalizing.
extension E01Writer {
    /// Writes recovered bytes into the staging file: only there can the E01 still take them.
    public func patch(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        guard completion == nil, finalizedDigests == nil, let staging, offset >= staging.start,
            offset + UInt64(bytes.count) <= totalSize
        else {
            throw AcquisitionError(
                .invalidRequest, path: paths[0], offset: offset,
                detail: "an E01 takes recovered bytes only in its staging area"
                    + (staging.map { " (bytes \($0.start) to \(totalSize - 1))" } ?? " (this writer has none: give it the skip frontier)"))
        }
        try staging.write(bytes, at: offset, skipZeros: false)
        try staging.sync()
    }

    public func pendingStream() throws(AcquisitionError) -> (any StreamSource)? {
        guard let staging else { return nil }
        return try StagedStream(path: staging.path, start: staging.start, size: totalSize)
    }

    public func complete(_ completion: ImageCompletion) throws(AcquisitionError) {
        guard let md5 = completion.digests[.md5]?.hex, let sha1 = completion.digests[.sha1]?.hex else {
            throw AcquisitionError(.invalidRequest, path: paths[0], detail: "an E01 needs the media's MD5 and SHA-1 to be complete")
        }
        if let done = self.completion {
            guard done == completion else {
                throw AcquisitionError(.invalidRequest, path: paths[0], detail: "the E01 was completed with other digests or errors")
            }
            return
        }
        if let stored = finalizedDigests {
            guard stored.md5 == md5, stored.sha1 == sha1 else {
                throw AcquisitionError(
                    .verifyMismatch, path: paths[0],
                    detail: "the finalized E01 holds MD5 \(stored.md5) and SHA-1 \(stored.sha1), the job computed \(md5) and \(sha1)")
            }
            self.completion = completion
            return
        }
        guard let handle, let staging else {
            throw AcquisitionError(.invalidRequest, path: paths[0], detail: "the E01 is not open for writing")
        }
        // Before the last chunk: libewf writes these with it.
        try handle.setHash("MD5", md5)
        try handle.setHash("SHA1", sha1)
        for range in completion.unreadable { try appendAcquisitionError(range, to: handle) }
        try encodeStaged(staging)
        guard written == totalSize else {
            throw AcquisitionError(
                .invalidRequest, path: paths[0], offset: written,
                detail: "the E01 holds \(written) of \(totalSize) bytes; it is completed after the whole stream")
        }
        do {
            try handle.call("libewf_handle_write_finalize", offset: totalSize) { libewf_handle_write_finalize($0, $1) }
            try handle.close()
        } catch {
            throw storeFullOr(error)
        }
        self.handle = nil
        // libewf kept about 10 bytes a chunk until now (peak RSS, --no-verify: +1.2 MiB from 2 to
        // 6 GiB of random data, +4.3 MiB from 2 to 16 GiB of zeros; about 320 MiB for a TiB),
        // freed in the middle of the heap where glibc keeps it: given back here, before the
        // read-back maps its buffers, so the job's peak stays the first pass's.
        malloc_trim(0)
        fileNames = existingSegments()
        for path in paths { try Self.syncFile(path, dropCache: true) }
        try staging.remove()
        self.staging = nil
        try Self.syncDirectory(directory)
        self.completion = completion
    }

    /// Encodes the staged rest of the stream (with what the second pass recovered) into the E01,
    /// giving back the staging file's space as the E01 safely holds it.
    func encodeStaged(_ staging: StagingFile) throws(AcquisitionError) {
        guard written >= staging.start else {
            throw AcquisitionError(
                .invalidRequest, path: paths[0], offset: written,
                detail: "bytes \(written) to \(staging.start - 1) must come from the source again (restartOffset) before the "
                    + "staged rest is encoded")
        }
        let pieceSize = 2 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: pieceSize, alignment: 4096)
        defer { buffer.deallocate() }
        var position = written
        var sinceSync: UInt64 = 0
        while position < totalSize {
            let count = Int(min(UInt64(pieceSize), totalSize - position))
            try staging.read(into: buffer, count: count, at: position)
            try encode(UnsafeRawBufferPointer(start: buffer, count: count), at: position)
            position += UInt64(count)
            sinceSync += UInt64(count)
            if sinceSync >= 256 << 20 {
                sinceSync = 0
                try sync()
                staging.release(before: safelyWritten)
            }
        }
    }

    /// Stream bytes a resumed libewf is sure to find again once the segment files are synced: it
    /// continues from its last complete chunks section, and EnCase 6 sections hold at most 65534
    /// chunks (libewf's EWF_MAXIMUM_OFFSETS_IN_TABLE_ENCASE6).
    private var safelyWritten: UInt64 {
        let lag = 65535 * chunkSize
        return written > lag ? written - lag : 0
    }

    func appendAcquisitionError(_ range: UnreadableRange, to handle: EWFHandle) throws(AcquisitionError) {
        let sector = UInt64(image.bytesPerSector)
        guard range.byteOffset % sector == 0, range.byteLength % sector == 0, range.byteLength > 0 else {
            throw AcquisitionError(
                .invalidRequest, path: paths[0], offset: range.byteOffset,
                detail: "unreadable bytes \(range.byteOffset)+\(range.byteLength) are not whole \(sector)-byte sectors of the E01")
        }
        guard let entry = image.acquisitionErrorEntry(range) else { return }
        try handle.call("libewf_handle_append_acquiry_error", offset: range.byteOffset) {
            libewf_handle_append_acquiry_error($0, entry.firstSector, entry.sectorCount, $1)
        }
    }

    public func makeReadOnly() throws(AcquisitionError) {
        guard completion != nil || finalizedDigests != nil else {
            throw AcquisitionError(.invalidRequest, path: paths[0], detail: "the E01 is made read-only after complete()")
        }
        for path in paths where chmod(path, 0o444) != 0 {
            throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "chmod 0444")
        }
    }
}
