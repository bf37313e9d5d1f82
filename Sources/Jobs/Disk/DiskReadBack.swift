// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Imaging

extension DiskDriver {
    /// What checking the stored image found: the record's verification, and each image file's
    /// SHA-256 when the read-back took them from its own reads (a format whose files are not the stream).
    struct ImageVerification {
        var verification: AcquisitionRecord.Verification
        var fileSHA256: [String]?
    }

    /// How the stored image was checked: by a window check that already ran (while the first pass
    /// wrote it, or in the second pass), by reading the completed image (or what the writer did
    /// not read back while writing it) against the first pass's window tags (E01, in the run that
    /// read the source), by reading it back whole and
    /// hashing it, or not at all (`--no-verify`). A job resumed in its first pass always reads back
    /// whole: the bytes written before the interruption were not re-read when it went on (one
    /// resumed in its second pass keeps the first pass's check, `finishDigestsFromStore`).
    func verifyStoredImage(_ job: RunningJob, paths: [String], unreadableSectors: UInt64) throws -> ImageVerification {
        let journal = keeper.current
        guard let mediaSHA256 = journal.digests?["sha256"] else { throw journalLacks("final digests") }
        if let method = journal.storeCheck {
            return ImageVerification(
                verification: AcquisitionRecord.Verification(
                    result: "matched", method: method, sha256: mediaSHA256, windowSize: windowSize,
                    windowSHA256: journal.windowSHA256, windowChainSHA256: journal.windowChain))
        }
        if let check = windowCheckAfterCompletion {
            return try readBackWindows(job, check: check, paths: paths, media: mediaSHA256, unreadableSectors: unreadableSectors)
        }
        guard journal.verifyAfterWriting || !journal.interruptions.isEmpty else {
            job.log.note("read-back verification skipped (--no-verify)", level: .warning)
            warnings.append("The written image was not read back and re-hashed (--no-verify).")
            return ImageVerification(
                verification: AcquisitionRecord.Verification(
                    result: "skipped", method: "not performed (--no-verify)", sha256: nil, durationSeconds: nil, windowSize: nil,
                    windowSHA256: nil))
        }
        let stream = StreamDigester(.sha256)
        let windows = RangeDigester(rangeSize: windowSize, totalSize: size, label: "window SHA-256")
        let readback = try readStoredImage(
            job, paths: paths, into: [stream, windows], configuration: request.pipeline, unreadableSectors: unreadableSectors)
        let readbackSHA256 = stream.result!.hex
        let verification = AcquisitionRecord.Verification(
            result: readbackSHA256 == mediaSHA256 ? "matched" : "mismatched",
            method: "image files fsynced, dropped from the page cache, read back and re-hashed with SHA-256"
                + (journal.interruptions.isEmpty ? "" : " (always, because the job was interrupted and resumed)"),
            sha256: readbackSHA256, durationSeconds: readback.outcome.elapsed, windowSize: windowSize,
            windowSHA256: windows.results.map(\.hex))
        job.log.note("read-back SHA-256 \(readbackSHA256): \(verification.result) (\(String(format: "%.2f", readback.outcome.elapsed)) s)")
        job.custody.append(
            actor: job.applianceId, action: .imageVerified, object: job.object, details: ["sha256": readbackSHA256, "result": verification.result])
        guard readbackSHA256 == mediaSHA256 else {
            throw AcquisitionError(
                .verifyMismatch, path: imageDirectory(job), detail: "the stored image hashes to \(readbackSHA256), the source stream to \(mediaSHA256)")
        }
        return ImageVerification(verification: verification, fileSHA256: readback.fileSHA256)
    }

    /// The read-back of an image complete only now (E01), from where the read-back during the
    /// pass stopped: its decoded stream against the window tags the first pass took, each
    /// window's GMAC on a thread beside the decoding.
    private func readBackWindows(
        _ job: RunningJob, check: WindowCheck, paths: [String], media: String, unreadableSectors: UInt64
    ) throws -> ImageVerification {
        // One consumer: three buffers keep the decoding and the GMAC busy, in less memory than the first pass's.
        let buffers = PipelineConfiguration(bufferSize: request.pipeline.bufferSize, bufferCount: 3)
        // What the writer read back while it wrote (E01: the chunk sections libewf closed) is not read again.
        let rest = try writer?.readBackRest()
        let readback = try readStoredImage(
            job, paths: paths, into: [rest?.consumer ?? WindowTagger(check, side: .stored)], configuration: buffers,
            unreadableSectors: unreadableSectors, rest: rest)
        let during = rest?.start ?? 0
        let method = try confirmReadBack(job, check: check, media: media, when: during > 0 ? .partlyWhileWriting(during) : .afterCompletion)
        return ImageVerification(
            verification: AcquisitionRecord.Verification(
                result: "matched", method: method, sha256: media, durationSeconds: readback.outcome.elapsed, windowSize: windowSize,
                windowSHA256: nil, windowChainSHA256: keeper.current.windowChain),
            fileSHA256: readback.fileSHA256)
    }

    /// The image's stream as its format reads it back from the store, into `consumers`: the job
    /// shown as verifying, the files first dropped from the page cache (completing them wrote
    /// them through it). A format whose files are not the stream hashes them from the same reads.
    /// With `rest`, only what the writer did not read back while writing.
    private func readStoredImage(
        _ job: RunningJob, paths: [String], into consumers: [any StreamConsumer], configuration: PipelineConfiguration,
        unreadableSectors: UInt64, rest: ReadBackRest? = nil
    ) throws -> (outcome: PipelineOutcome, fileSHA256: [String]?) {
        try job.lifecycle.catalog.setJobState(job.jobId, state: .verifying)
        for path in paths { try DurableFile.dropFromCache(path) }
        let reader = try rest?.source ?? format.reader(paths: paths, hashingFiles: !format.filesAreTheStream)
        let outcome = try Pipeline.run(
            reader, into: consumers, startingAt: rest?.start ?? 0, configuration: configuration, cancellation: job.cancellation
        ) {
            job.progress(
                JobProgress(
                    phase: .verifying, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes, unreadableSectors: unreadableSectors,
                    elapsed: $0.elapsed))
        }
        let fileSHA256 = try (reader as? any FileHashingStreamSource)?.fileSHA256()?.map(\.hex)
        return (outcome, fileSHA256)
    }

    /// When the stored image was read back against the window tags of the first pass.
    enum WindowReadBackTime {
        case whileWriting, afterCompletion
        /// The first bytes of the stream (E01: its closed chunk sections) during the first pass, the rest once complete.
        case partlyWhileWriting(UInt64)

        var method: String {
            switch self {
            case .whileWriting: "read back during the first pass"
            case .afterCompletion: "read back once the image was complete"
            case .partlyWhileWriting(let bytes):
                "read back as the first pass closed its chunk sections (stream bytes 0 to \(bytes - 1)) and the rest once the image was complete"
            }
        }
    }

    /// The window check of a read-back: every window the store gave back as it was read, or the
    /// first that it did not, named by its stream bytes. Returns the record's method.
    func confirmReadBack(_ job: RunningJob, check: WindowCheck, media: String, when: WindowReadBackTime) throws -> String {
        try check.confirm(path: imageDirectory(job))
        job.log.note("\(when.method): all \(check.windowCount) windows of \(check.windowSize) bytes as written")
        job.custody.append(
            actor: job.applianceId, action: .imageVerified, object: job.object,
            details: ["sha256": media, "result": "matched", "method": when.method])
        switch when {
        case .whileWriting:
            return "each \(check.windowSize)-byte window of the image fsynced, dropped from the page cache and read back from the "
                + "store while the first pass went on; the GMAC (AES-128-GCM, a key drawn for this job) of each of the "
                + "\(check.windowCount) windows as stored equalled that of the bytes read, so the stored image is the stream whose "
                + "SHA-256 is the media SHA-256"
        case .partlyWhileWriting(let bytes):
            // The read-back thread may still be decoding the last sections when the pass ends: what
            // the record can say is when each was closed and handed to it, not when it was read.
            return "each chunk section of the image closed during the first pass (stream bytes 0 to \(bytes - 1)) fsynced, "
                + "dropped from the page cache and handed to a read-back from the store as it closed, the rest read back once "
                + "the image was complete, "
                + "decoded by Exhibit's own bounds-checked \(format.name.uppercased()) parser (not the library that wrote them); "
                + "the GMAC (AES-128-GCM, a key drawn for this job) of each of the \(check.windowCount) \(check.windowSize)-byte "
                + "windows of the decoded stream equalled that of the bytes read, so the stored image is the stream whose SHA-256 "
                + "is the media SHA-256"
        case .afterCompletion:
            return "the image files fsynced, dropped from the page cache and read back once complete, decoded by Exhibit's own "
                + "bounds-checked \(format.name.uppercased()) parser (not the library that wrote them); the GMAC (AES-128-GCM, a "
                + "key drawn for this job) of each of the \(check.windowCount) \(check.windowSize)-byte windows of the decoded "
                + "stream equalled that of the bytes read, so the stored image is the stream whose SHA-256 is the media SHA-256"
        }
    }
}
