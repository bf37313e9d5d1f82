// SPDX-License-Identifier: Apache-2.0
import EvidenceSources
import Foundation
import Imaging

extension DiskDriver {
    /// The second pass: every area the first pass skipped, read again in halves down to single
    /// sectors with direct I/O; what is read is written over the zeros where it belongs. Each
    /// area is journaled when done, so a resumed job goes on with the next.
    func recoverSkippedAreas(_ job: RunningJob) throws {
        let journal = keeper.current
        let writer = try writerForTheRest(job)
        var recovery = source.makeRecovery()
        recovery.secondsPerArea = request.secondsPerArea
        let skippedTotal = journal.skippedBytes
        var recoveredBytes = journal.recovered.reduce(0) { $0 + $1.span.length }
        var unreadableSoFar = journal.unreadableSectorsSoFar
        job.log.note(
            "second pass: \(journal.skipped.count) skipped areas (\(skippedTotal) bytes) read again in halves down to one "
                + "\(source.identity.logicalSectorSize)-byte sector with direct I/O, \(recovery.attemptsPerSector) attempts per sector, "
                + "at most \(Int(recovery.secondsPerArea)) s per area")
        var buffer: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&buffer, 4096, SectorRecovery.pieceSize) == 0, let buffer else {
            throw AcquisitionError(.readFailed, path: source.identity.path, detail: "no memory for the second pass")
        }
        defer { free(buffer) }
        let done = Set(journal.recovered.map(\.span))
        let started = Date()
        let recoveredAtStart = recoveredBytes
        for area in journal.skipped where !done.contains(area) {
            try job.checkCancelled(source.identity.path, at: area.start)
            let result = try recovery.recover(area, buffer: buffer) { piece, offset, readSpans in
                for span in readSpans {
                    let from = Int(span.start - offset)
                    try writer.patch(UnsafeRawBufferPointer(rebasing: piece[from..<from + Int(span.length)]), at: span.start)
                }
                job.progress(
                    JobProgress(
                        phase: .recovering, bytesDone: recoveredBytes + (offset + UInt64(piece.count) - area.start),
                        totalBytes: skippedTotal, unreadableSectors: unreadableSoFar, skippedBytes: skippedTotal,
                        elapsed: Date().timeIntervalSince(started), startBytes: recoveredAtStart))
                try job.checkCancelled(source.identity.path, at: offset)
            }
            recoveredBytes += area.length
            unreadableSoFar += result.unreadable.reduce(0) { $0 + $1.sectorCount }
            try keeper.update { $0.recovered.append(result) }
            let lost = result.unreadable.reduce(0) { $0 + $1.byteLength }
            job.log.note(
                "area bytes \(area.start)-\(area.end - 1): \(area.length - lost) bytes recovered, "
                    + "\(lost / UInt64(source.identity.logicalSectorSize)) sectors unreadable (\(String(format: "%.2f", result.seconds)) s)",
                level: .debug)
        }
    }

    /// The digests stopped at the first skipped byte; they go on over the store's image, which is
    /// checked window by window against what the first pass read and area by area against what
    /// the second pass read.
    func finishDigestsFromStore(_ job: RunningJob) throws {
        let current = keeper.current
        let frontier = current.skipped[0].start
        let digesters = try algorithms.map { algorithm throws(AcquisitionError) in try digester(algorithm, journal: current, frontier: nil) }
        var consumers: [any StreamConsumer] = digesters.map { ConsumerFromOffset($0, from: frontier) }
        let segmentDigester = segmented ? RangeDigester(rangeSize: current.segmentSize!, totalSize: size, label: Self.segmentLabel) : nil
        if let segmentDigester {
            guard current.states[Self.segmentLabel].map(segmentDigester.restore) ?? false else { throw journalLacks(Self.segmentLabel) }
            consumers.append(ConsumerFromOffset(segmentDigester, from: frontier))
        }
        let frontierWindows = FrontierWindowDigester(frontier: SkipFrontier(frontier), windowSize: windowSize, size: size)
        guard current.states[frontierWindows.name].map(frontierWindows.restore) ?? false else { throw journalLacks(frontierWindows.name) }
        let check = StoredImageCheck(
            path: imageDirectory(job), frontier: frontier, windowSize: windowSize, size: size,
            windowDigests: frontierWindows.digests, skipped: current.skipped, areas: current.recovered)
        consumers.append(check)
        // A format that holds the stream from the frontier on apart until it is complete (E01) is
        // read from there; its windows are digested when it is read back complete.
        let pending = try writerForTheRest(job).pendingStream()
        let windows = pending == nil ? RangeDigester(rangeSize: windowSize, totalSize: size, label: "window SHA-256") : nil
        if let windows { consumers.append(windows) }
        let paths = format.fileNames(baseName: baseName, totalSize: size).map { "\(imageDirectory(job))/\($0)" }
        let stored: any StreamSource = try pending ?? format.reader(paths: paths)
        let readback = try Pipeline.run(
            stored, into: consumers, startingAt: pending == nil ? 0 : frontier,
            configuration: request.pipeline, cancellation: job.cancellation
        ) {
            job.progress(
                JobProgress(
                    phase: .verifying, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes,
                    unreadableSectors: current.unreadableSectorsSoFar, skippedBytes: current.skippedBytes, elapsed: $0.elapsed))
        }
        var finalDigests: [String: String] = [:]
        for digester in digesters { finalDigests[digester.algorithm.rawValue] = digester.result!.hex }
        // The bytes before the frontier count as checked only if the first pass read back its whole
        // image (a job that stopped later proved them against the source again when it resumed,
        // `ResumeContinuity`); a first pass that was itself resumed wrote some unread, so the
        // finished image is read back whole and hashed (`verifyStoredImage`). Without verification
        // asked for, this check is all, unless the job was interrupted.
        let front = current.checkedBeforeFrontier == true
        let method =
            (front
                ? "each \(windowSize)-byte window of the image as the first pass wrote it (zeros where it skipped) fsynced, "
                    + "dropped from the page cache and read back during that pass, as written; then the " : "")
            + "image files fsynced, dropped from the page cache and read back; from byte \(frontier) (the first skipped byte) "
            + "each \(windowSize)-byte window matched what the first pass read and each recovered area what the second pass read, "
            + "and the media digests were finished over the stored bytes"
        let storeCheck = windows != nil && (front || (!current.verifyAfterWriting && current.interruptions.isEmpty)) ? method : nil
        job.log.note(
            "stored image checked and digests finished in \(String(format: "%.2f", readback.elapsed)) s: "
                + algorithms.map { "\($0.displayName) \(finalDigests[$0.rawValue]!)" }.joined(separator: ", "))
        // The image counts as verified here only if this check covers it; else its read-back says so later.
        if storeCheck != nil {
            job.custody.append(
                actor: job.applianceId, action: .imageVerified, object: job.object,
                details: ["sha256": finalDigests["sha256"]!, "result": "matched", "method": "window check"])
        }
        try saveCustody(job) {
            $0.digests = finalDigests
            $0.segmentDigests = segmentDigester?.results.map(\.hex)
            $0.storeCheck = storeCheck
            $0.windowSHA256 = windows?.results.map(\.hex)
            $0.phase = .imaged
        }
    }
}
