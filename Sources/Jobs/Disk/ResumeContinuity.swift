// SPDX-License-Identifier: Apache-2.0
import Cryptography
import EvidenceSources
import Foundation
import Imaging

/// Before a resumed job reads on, it proves that the bytes it already holds are still what the
/// source gives: the stored image is compared with the source, byte for byte, over everything
/// the job wrote before it stopped. Without this, a source changed while the job was stopped
/// (same serial, model, size, first and last MiB) would be sealed as a mix of two states that
/// matches neither, and the read-back would still say "matched".
struct ResumeContinuity {
    /// Areas the first pass skipped are not compared: the image holds zeros there until the
    /// second pass reads them.
    let skipped: [ByteSpan]
    let chunkSize = 4 << 20

    /// How continuity was proved, for the record, and the areas read before the interruption
    /// that the source no longer gave (the image keeps them as first read).
    struct Proof {
        var method: String
        var unreadableNow: [ByteSpan]
    }

    /// Compares `[0, length)`; returns how it was proved, or throws `changedSinceInterruption`
    /// naming the first byte that differs.
    func prove(
        source: SourceReader, image: any StreamSource, length: UInt64, cancellation: CancellationFlag,
        progress: (UInt64) -> Void
    ) throws(AcquisitionError) -> Proof {
        let started = Date()
        let sourceBuffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 4096)
        let imageBuffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 4096)
        defer {
            sourceBuffer.deallocate()
            imageBuffer.deallocate()
        }
        var offset: UInt64 = 0
        var unreadableNow: [ByteSpan] = []
        while offset < length {
            if cancellation.isCancelled { throw AcquisitionError(.cancelled, path: source.path, offset: offset) }
            let count = Int(min(UInt64(chunkSize), length - offset))
            let missing = try source.fill(sourceBuffer, count: count, at: offset)
            _ = try image.fill(imageBuffer, count: count, at: offset)
            // Areas the first pass had skipped fail again, as expected; others were read before.
            unreadableNow += missing.flatMap { $0.subtracting(skipped) }
            let excluded = (skipped + missing).compactMap { $0.clipped(to: ByteSpan(start: offset, length: UInt64(count))) }
            if let differing = Self.firstDifference(sourceBuffer, imageBuffer, count: count, at: offset, excluding: excluded) {
                throw AcquisitionError(
                    .changedSinceInterruption, path: source.path, offset: differing,
                    detail: "byte \(differing) of the source is not what the job stored before it was interrupted: "
                        + "the device was changed while the job was stopped, so its image cannot be continued")
            }
            offset += UInt64(count)
            progress(offset)
        }
        let skippedBytes = ByteSpan.total(skipped)
        let lost = ByteSpan.total(unreadableNow)
        let method =
            "on resuming, source bytes 0-\(length - 1) were read again and compared byte for byte with the stored image: "
            + "identical"
            + (skippedBytes > 0 ? " (the \(skippedBytes) bytes of areas the first pass had skipped excluded)" : "")
            + (lost > 0 ? " (\(lost) bytes the source no longer gave excluded)" : "")
            + String(format: "; %.2f s", Date().timeIntervalSince(started))
        return Proof(method: method, unreadableNow: unreadableNow)
    }

    /// For an image that cannot be read before it is complete (E01): the source's first `length`
    /// bytes are hashed again and SHA-256's intermediate hash value compared with the one the
    /// interrupted job journaled at that offset (`journaled`, a state over exactly those bytes).
    /// Equal values mean the source still gives what the job read; the image itself is read back
    /// whole once complete.
    /// `feeding` receives the bytes as they are read (a reopened E01 that lost chunks takes them
    /// again); they are only proved once all are read, and the image is read back whole later.
    /// Bytes the source no longer gives are taken from `stored` (the image's closed sections,
    /// `ImageFormat.closedPrefix`) where it holds them: the digest then proves both the source
    /// unchanged where it reads and the stored bytes as first read, and a disk that degraded
    /// while stopped is continued, as a raw image is.
    func proveByDigest(
        source: SourceReader, journaled: Data, length: UInt64, stored: (any StreamSource)? = nil, feeding: (any StreamConsumer)? = nil,
        cancellation: CancellationFlag, progress: (UInt64) -> Void
    ) throws(AcquisitionError) -> Proof {
        let started = Date()
        guard let expected = Digest(.sha256, savedState: journaled)?.chainingValue else {
            throw AcquisitionError(
                .journalUnusable, path: source.path, offset: length, detail: "the journal holds no whole-block SHA-256 state at byte \(length)")
        }
        let digest = Digest(.sha256)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        var unreadable: [ByteSpan] = []
        var fromImage: [ByteSpan] = []
        while offset < length {
            if cancellation.isCancelled { throw AcquisitionError(.cancelled, path: source.path, offset: offset) }
            let count = Int(min(UInt64(chunkSize), length - offset))
            for span in try source.fill(buffer, count: count, at: offset) {
                // The part the stored image holds comes from it; the rest stays unreadable.
                let split = max(span.start, min(stored?.size ?? 0, span.end))
                if let stored, split > span.start {
                    _ = try stored.fill(buffer + Int(span.start - offset), count: Int(split - span.start), at: span.start)
                    fromImage.append(ByteSpan(start: span.start, length: split - span.start))
                }
                if span.end > split { unreadable.append(ByteSpan(start: split, length: span.end - split)) }
            }
            digest.update(UnsafeRawBufferPointer(start: buffer, count: count))
            try feeding?.consume(UnsafeRawBufferPointer(start: buffer, count: count), at: offset)
            offset += UInt64(count)
            progress(offset)
        }
        // These bytes were all read before (the journaled digest stops at the first skip): one
        // unreadable now means the device degraded, which is not the same as another device.
        if let lost = unreadable.first {
            throw AcquisitionError(
                .changedSinceInterruption, path: source.path, offset: lost.start,
                detail: "source bytes \(lost.start)-\(lost.end - 1)\(unreadable.count > 1 ? " and \(unreadable.count - 1) more area(s)" : ""), "
                    + "read before the job was interrupted, are unreadable now: the device degraded while the job was stopped, so "
                    + "its image cannot be continued")
        }
        guard digest.chainingValue == expected else {
            throw AcquisitionError(
                .changedSinceInterruption, path: source.path,
                detail: "source bytes 0-\(length - 1) no longer hash to what the job read before it was interrupted: "
                    + "the device was changed while the job was stopped, so its image cannot be continued")
        }
        let method =
            "on resuming, source bytes 0-\(length - 1) were read again and hashed"
            + (fromImage.isEmpty
                ? ""
                : " (\(ByteSpan.total(fromImage)) bytes the source no longer gave, from byte \(fromImage[0].start) on, taken from the image as "
                    + "stored before the interruption, decoded by Exhibit's own parser)")
            + ": SHA-256's intermediate hash value equals the one journaled when the job stopped (\(expected.hex))"
            + String(format: "; %.2f s", Date().timeIntervalSince(started))
        return Proof(method: method, unreadableNow: fromImage)
    }

    private static func firstDifference(
        _ a: UnsafeMutableRawPointer, _ b: UnsafeMutableRawPointer, count: Int, at offset: UInt64, excluding: [ByteSpan]
    ) -> UInt64? {
        if memcmp(a, b, count) == 0 { return nil }
        let bytesA = a.assumingMemoryBound(to: UInt8.self)
        let bytesB = b.assumingMemoryBound(to: UInt8.self)
        for index in 0..<count where bytesA[index] != bytesB[index] {
            let position = offset + UInt64(index)
            if !excluding.contains(where: { $0.start <= position && position < $0.end }) { return position }
        }
        return nil
    }
}

extension ByteSpan {
    /// The part of this span inside `window`, if any.
    func clipped(to window: ByteSpan) -> ByteSpan? {
        let start = max(self.start, window.start)
        let end = min(self.end, window.end)
        return start < end ? ByteSpan(start: start, length: end - start) : nil
    }
}
