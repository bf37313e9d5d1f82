// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Imaging
import Store

extension DiskDriver {
    /// The first pass: the source read once into the digests and the image, unreadable areas
    /// zero-filled and skipped for the second pass; journaled at every checkpoint.
    func firstPass(_ job: RunningJob) throws {
        let journal = keeper.current
        let frontier = SkipFrontier(journal.skipped.first?.start ?? .max)
        let reader = source.makeReader()
        reader.frontier = frontier
        let writer = try format.writer(
            directory: imageDirectory(job), baseName: baseName, totalSize: size, keepFree: EvidenceStore.recordReserve,
            resumingAt: journal.copiedBytes, frontier: frontier)
        self.writer = writer
        // A format that continues only from an earlier point (E01: libewf's last complete section)
        // is given the stream from there; the digests, restored at the journal's offset, from it.
        let restart = min(writer.restartOffset, journal.copiedBytes)
        let digesters = try algorithms.map { algorithm throws(AcquisitionError) in try digester(algorithm, journal: journal, frontier: frontier) }
        let segmentDigester =
            segmented ? RangeDigester(rangeSize: journal.segmentSize!, totalSize: size, label: Self.segmentLabel, stoppingAt: frontier) : nil
        let frontierWindows = FrontierWindowDigester(frontier: frontier, windowSize: windowSize, size: size)
        if journal.copiedBytes > 0 {
            if let segmentDigester, !(journal.states[Self.segmentLabel].map(segmentDigester.restore) ?? false) {
                throw journalLacks(Self.segmentLabel)
            }
            if let saved = journal.states[frontierWindows.name], !frontierWindows.restore(saved) { throw journalLacks(frontierWindows.name) }
        }
        // A new image is read back while it is written, window by window once durable; a resumed
        // one is read back whole at the end (its first bytes were written by another run).
        var check = journal.copiedBytes == 0 && journal.verifyAfterWriting ? WindowCheck(windowSize: windowSize, totalSize: size) : nil
        if let readBack = check, writer.readBackWhileWriting(check: readBack) { digesters[0].chainEvery = windowSize } else { check = nil }
        var consumers: [any StreamConsumer] = digesters
        if let segmentDigester { consumers.append(segmentDigester) }
        if let check { consumers.append(WindowTagger(check)) }
        consumers.append(frontierWindows)
        if restart < journal.copiedBytes { consumers = consumers.map { ConsumerFromOffset($0, from: journal.copiedBytes) } }
        consumers.append(writer)
        job.log.note(
            (journal.copiedBytes > 0 ? "continuing the first pass at byte \(journal.copiedBytes); " : "first pass: ")
                + "\(request.pipeline.bufferCount) × \(request.pipeline.bufferSize)-byte buffers; unreadable areas skipped "
                + "(\(reader.skipPolicy.initialSkip) bytes, doubling to \(reader.skipPolicy.maximumSkip)) and read again later; digests "
                + algorithms.map(\.displayName).joined(separator: ", ")
                + (segmented ? "; \(writer.fileNames.count) segments of \(journal.segmentSize!) bytes" : ""))
        let outcome = try Pipeline.run(
            reader, into: consumers, startingAt: restart, previouslySkipped: journal.skipped,
            configuration: request.pipeline, cancellation: job.cancellation,
            progress: {
                job.progress(
                    JobProgress(
                        phase: .acquiring, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes, unreadableSectors: 0,
                        skippedBytes: $0.skippedBytes, elapsed: $0.elapsed, startBytes: journal.copiedBytes))
            },
            checkpointInterval: request.checkpointSeconds,
            onCheckpoint: { [keeper] checkpoint in
                // Before the journal's offset the digests hold their restored states: nothing new.
                guard checkpoint.offset > journal.copiedBytes else { return }
                try keeper.update {
                    $0.copiedBytes = checkpoint.offset
                    $0.states = checkpoint.states
                    $0.skipped = checkpoint.skipped
                }
            })
        try refuseAChangedFile()
        noteFirstPass(job, outcome: outcome, from: journal.copiedBytes)
        var states: [String: Data] = [:]
        for digester in digesters { states[digester.name] = digester.savedState }
        if let segmentDigester { states[Self.segmentLabel] = try segmentDigester.checkpoint() }
        states[frontierWindows.name] = try frontierWindows.checkpoint()
        var finalDigests: [String: String] = [:]
        for digester in digesters { if let value = digester.result { finalDigests[digester.algorithm.rawValue] = value.hex } }
        let segmentDigests = segmentDigester?.results.map(\.hex)
        let storeCheck = outcome.skipped.isEmpty ? try checkReadBack(job, check: check, media: finalDigests["sha256"] ?? "") : nil
        let chain = digesters[0].chainingValues.map(\.hex)
        try saveCustody(job) { [size] in
            $0.copiedBytes = size
            $0.skipped = outcome.skipped
            $0.states = states
            if outcome.skipped.isEmpty {
                $0.digests = finalDigests
                $0.segmentDigests = segmentDigests
                $0.phase = .imaged
                $0.storeCheck = storeCheck
                $0.windowChain = storeCheck.map { _ in chain }
            } else {
                $0.phase = .recovering
            }
        }
    }

    /// The read-back that ran beside the pass: every window the store gave back as it was read.
    /// Nil when there was none (a resumed job reads back after the pass).
    private func checkReadBack(_ job: RunningJob, check: WindowCheck?, media: String) throws -> String? {
        guard let check else { return nil }
        if let window = check.firstMismatch {
            let first = UInt64(window) * check.windowSize
            throw AcquisitionError(
                .verifyMismatch, path: imageDirectory(job), offset: first,
                detail: "the store gave back stream bytes \(first)-\(min(first + check.windowSize, size) - 1) not as they were written")
        }
        guard check.compared == check.windowCount else {
            throw AcquisitionError(
                .verifyMismatch, path: imageDirectory(job),
                detail: "\(check.compared) of \(check.windowCount) windows were read back; the image is not verified")
        }
        job.log.note("read back during the first pass: all \(check.windowCount) windows of \(check.windowSize) bytes as written")
        job.custody.append(
            actor: job.applianceId, action: .imageVerified, object: job.object,
            details: ["sha256": media, "result": "matched", "method": "read back during the first pass"])
        return "each \(check.windowSize)-byte window of the image fsynced, dropped from the page cache and read back from the store "
            + "while the first pass went on; the GMAC (AES-128-GCM, a key drawn for this job) of each of the \(check.windowCount) "
            + "windows as stored equalled that of the bytes read, so the stored image is the stream whose SHA-256 is the media SHA-256"
    }

    /// An image file written to while it was read would give an image of neither state: refused
    /// before the image counts as complete.
    private func refuseAChangedFile() throws(AcquisitionError) {
        guard let change = source.changeSinceOpening() else { return }
        throw AcquisitionError(
            .sourceChanged, path: source.identity.path,
            detail: "the image file changed while it was read: \(change); an image of it would match neither state. "
                + "Acquire it again once nothing writes to it")
    }

    private func noteFirstPass(_ job: RunningJob, outcome: PipelineOutcome, from start: UInt64) {
        let rate = Double(outcome.bytesRead - start) / max(outcome.elapsed, 0.001) / 1e6
        let skippedBytes = outcome.skipped.reduce(0) { $0 + $1.length }
        job.log.note(
            "first pass read \(outcome.bytesRead - start) bytes in \(String(format: "%.2f", outcome.elapsed)) s "
                + "(\(String(format: "%.1f", rate)) MB/s); "
                + (outcome.skipped.isEmpty
                    ? "no unreadable areas"
                    : "\(outcome.skipped.count) unreadable areas (\(skippedBytes) bytes) skipped and zero-filled for now"))
    }
}
