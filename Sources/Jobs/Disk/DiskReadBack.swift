// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Imaging

extension DiskDriver {
    /// How the stored image was checked: by the second pass's window check, by reading it back
    /// now, or not at all (`--no-verify`). A resumed job always reads back: the bytes written
    /// before the interruption were not re-read when it went on.
    func verifyStoredImage(_ job: RunningJob, paths: [String], unreadableSectors: UInt64) throws -> AcquisitionRecord.Verification {
        let journal = keeper.current
        guard let mediaSHA256 = journal.digests?["sha256"] else { throw journalLacks("final digests") }
        if let method = journal.storeCheck {
            return AcquisitionRecord.Verification(
                result: "matched", method: method, sha256: mediaSHA256, windowSize: windowSize, windowSHA256: journal.windowSHA256,
                windowChainSHA256: journal.windowChain)
        }
        guard journal.verifyAfterWriting || !journal.interruptions.isEmpty else {
            job.log.note("read-back verification skipped (--no-verify)", level: .warning)
            warnings.append("The written image was not read back and re-hashed (--no-verify).")
            return AcquisitionRecord.Verification(
                result: "skipped", method: "not performed (--no-verify)", sha256: nil, durationSeconds: nil, windowSize: nil,
                windowSHA256: nil)
        }
        try job.lifecycle.catalog.setJobState(job.jobId, state: .verifying)
        let stream = StreamDigester(.sha256)
        let windows = RangeDigester(rangeSize: windowSize, totalSize: size, label: "window SHA-256")
        let readback = try Pipeline.run(
            try format.reader(paths: paths), into: [stream, windows], configuration: request.pipeline, cancellation: job.cancellation
        ) {
            job.progress(
                JobProgress(
                    phase: .verifying, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes, unreadableSectors: unreadableSectors,
                    elapsed: $0.elapsed))
        }
        let readbackSHA256 = stream.result!.hex
        let verification = AcquisitionRecord.Verification(
            result: readbackSHA256 == mediaSHA256 ? "matched" : "mismatched",
            method: "image files fsynced, dropped from the page cache, read back and re-hashed with SHA-256"
                + (journal.interruptions.isEmpty ? "" : " (always, because the job was interrupted and resumed)"),
            sha256: readbackSHA256, durationSeconds: readback.elapsed, windowSize: windowSize, windowSHA256: windows.results.map(\.hex))
        job.log.note("read-back SHA-256 \(readbackSHA256): \(verification.result) (\(String(format: "%.2f", readback.elapsed)) s)")
        job.custody.append(
            actor: job.applianceId, action: .imageVerified, object: job.object, details: ["sha256": readbackSHA256, "result": verification.result])
        guard readbackSHA256 == mediaSHA256 else {
            throw AcquisitionError(
                .verifyMismatch, path: imageDirectory(job), detail: "the stored image hashes to \(readbackSHA256), the source stream to \(mediaSHA256)")
        }
        return verification
    }
}
