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
        // A new image is checked window by window against tags taken as the stream is read: read
        // back while it is written once each window is durable (raw), or each chunk section once
        // libewf closes it and the last once the image is complete (E01, whose last chunk libewf
        // writes only with the digests). A resumed one is read back whole at the end (its first
        // bytes were written by another run).
        let check = journal.copiedBytes == 0 && journal.verifyAfterWriting ? WindowCheck(windowSize: windowSize, totalSize: size) : nil
        let readsBackWhileWriting = check.map { writer.readBackWhileWriting(check: $0) } ?? false
        if check != nil { digesters[0].chainEvery = windowSize }
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
                        // From where this run reads (an E01 goes back to libewf's last closed
                        // section), so rates count the bytes read again.
                        skippedBytes: $0.skippedBytes, elapsed: $0.elapsed, startBytes: restart))
            },
            checkpointInterval: request.checkpointSeconds,
            onCheckpoint: { [keeper, path = source.identity.path] checkpoint in
                // Before the journal's offset the digests hold their restored states: nothing new.
                guard checkpoint.offset > journal.copiedBytes else { return }
                try Self.refuseSkipsBeforeTheJournal(checkpoint.skipped, journal: journal, restart: restart, path: path)
                try keeper.update {
                    $0.copiedBytes = checkpoint.offset
                    $0.states = checkpoint.states
                    $0.skipped = checkpoint.skipped
                }
            })
        try Self.refuseSkipsBeforeTheJournal(outcome.skipped, journal: journal, restart: restart, path: source.identity.path)
        try refuseAChangedFile()
        noteFirstPass(job, outcome: outcome, from: journal.copiedBytes)
        var states: [String: Data] = [:]
        for digester in digesters { states[digester.name] = digester.savedState }
        if let segmentDigester { states[Self.segmentLabel] = try segmentDigester.checkpoint() }
        states[frontierWindows.name] = try frontierWindows.checkpoint()
        var finalDigests: [String: String] = [:]
        for digester in digesters { if let value = digester.result { finalDigests[digester.algorithm.rawValue] = value.hex } }
        let segmentDigests = segmentDigester?.results.map(\.hex)
        // The second pass changes the windows it recovers: their first-pass tags no longer hold.
        var storeCheck: String?
        var checkedBeforeFrontier = false
        if let check, outcome.skipped.isEmpty {
            if readsBackWhileWriting {
                storeCheck = try confirmReadBack(job, check: check, media: finalDigests["sha256"] ?? "", when: .whileWriting)
            } else {
                windowCheckAfterCompletion = check
            }
        } else if let check, readsBackWhileWriting {
            // A writer that reads back while writing (raw) has read every window of this pass's
            // image by now; an E01 (which says it does not) is read back whole once complete.
            try confirmFirstPassImage(job, check: check, frontier: outcome.skipped[0].start)
            checkedBeforeFrontier = true
        }
        let chain = check != nil && outcome.skipped.isEmpty ? digesters[0].chainingValues.map(\.hex) : nil
        try saveCustody(job) { [size] in
            $0.copiedBytes = size
            $0.skipped = outcome.skipped
            $0.states = states
            if outcome.skipped.isEmpty {
                $0.digests = finalDigests
                $0.segmentDigests = segmentDigests
                $0.phase = .imaged
                $0.storeCheck = storeCheck
                $0.windowChain = chain
            } else {
                $0.phase = .recovering
                $0.checkedBeforeFrontier = checkedBeforeFrontier
            }
        }
    }

    /// The whole image this pass wrote (zeros where it skipped), read back as written, proves the
    /// bytes before the first skipped byte, which the second pass leaves alone; from there on the
    /// second pass checks the store again. Throws at the first window that came back otherwise.
    private func confirmFirstPassImage(_ job: RunningJob, check: WindowCheck, frontier: UInt64) throws {
        try check.confirm(path: imageDirectory(job))
        job.log.note(
            "read back during the first pass: all \(check.windowCount) windows of \(check.windowSize) bytes as written (zeros "
                + "where it skipped); from byte \(frontier), the first skipped byte, the store is checked again after the second pass")
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
        let skippedBytes = ByteSpan.total(outcome.skipped)
        job.log.note(
            "first pass read \(outcome.bytesRead - start) bytes in \(String(format: "%.2f", outcome.elapsed)) s "
                + "(\(String(format: "%.1f", rate)) MB/s); "
                + (outcome.skipped.isEmpty
                    ? "no unreadable areas"
                    : "\(outcome.skipped.count) unreadable areas (\(skippedBytes) bytes) skipped and zero-filled for now"))
    }

    /// An E01 goes on from libewf's last closed section, before the journal's offset, its digests
    /// restored at that offset: the bytes read again there must come as they did. One that fails
    /// now (after the continuity proof read it) means the device degraded: the job is acquired
    /// anew, as when the proof finds it, instead of sealing digests of no real stream.
    static func refuseSkipsBeforeTheJournal(
        _ skipped: [ByteSpan], journal: AcquisitionJournal, restart: UInt64, path: String
    ) throws(AcquisitionError) {
        guard restart < journal.copiedBytes, (journal.skipped.first?.start ?? .max) >= journal.copiedBytes,
            let lost = skipped.first(where: { $0.start < journal.copiedBytes })
        else { return }
        throw AcquisitionError(
            .changedSinceInterruption, path: path, offset: lost.start,
            detail: "source bytes \(lost.start)-\(lost.end - 1), read before the job was interrupted and read again from byte "
                + "\(restart) as it resumed, are unreadable now: the device degraded, so its image cannot be continued")
    }
}
