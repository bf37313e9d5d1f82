// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import Foundation
import Imaging

extension DiskDriver {
    /// Every byte is in the store and the digests are final: the unreadable sectors said, the
    /// image read back, made read-only, and the record written for sealing.
    func finish(_ job: RunningJob) throws -> FinishedAcquisition {
        let journal = keeper.current
        guard let digests = journal.digests, let mediaSHA256 = digests["sha256"] else { throw journalLacks("final digests") }
        let directory = imageDirectory(job)
        let unreadable = UnreadableRange.merged(journal.recovered.flatMap(\.unreadable))
        let unreadableCount = unreadable.reduce(0) { $0 + $1.sectorCount }
        noteUnreadable(job, unreadable, count: unreadableCount)
        let fileNames = try completeImage(job, digests: digests, unreadable: unreadable)
        if !job.custody.contains(.imageWritten) {
            job.custody.append(
                actor: job.applianceId, action: .imageWritten, object: job.object,
                details: [
                    "bytes": String(size), "sha256": mediaSHA256, "unreadable_sectors": String(unreadableCount),
                    "files": fileNames.joined(separator: " "),
                ])
        }
        let paths = fileNames.map { "\(directory)/\($0)" }
        let check = try verifyStoredImage(job, paths: paths, unreadableSectors: unreadableCount)
        // Raw files are the stream: their digests were taken as it passed. Other formats' files
        // were hashed by the read-back's own reads, or (not read back) are hashed now.
        let fileDigests = try format.filesAreTheStream
            ? journal.segmentDigests ?? [mediaSHA256] : check.fileSHA256 ?? paths.map { try DurableFile.sha256(of: $0).hex }
        let imageFiles = zip(fileNames, fileDigests).map { name, digest in
            AcquisitionRecord.ImageFile(path: "data/image/\(name)", sizeBytes: DurableFile.size(of: "\(directory)/\(name)") ?? 0, sha256: digest)
        }
        let verification = check.verification
        warnings += format.warnings(unreadable: unreadable)
        if !journal.interruptions.isEmpty {
            warnings.append(
                "The acquisition was interrupted \(journal.interruptions.count) time(s) and resumed on the same device; see interruptions.")
        }
        try format.makeReadOnly(paths: fileNames.map { "\(directory)/\($0)" })
        try Self.removeUnsealedRecords(bag: job.bag)
        var record = self.record(job, digests: digests, imageFiles: imageFiles, unreadable: unreadable, verification: verification)
        if !journal.interruptions.isEmpty {
            record.interruptions = journal.interruptions.map {
                .init(at: $0.at, resumedAtOffset: $0.offset, reason: $0.reason, continuityCheck: $0.continuityCheck)
            }
        }
        var knownDigests: [String: String] = [:]
        for file in imageFiles { knownDigests[file.path] = file.sha256 }
        return FinishedAcquisition(record: record, knownDigests: knownDigests)
    }

    /// Ends the image with what only the end knows (E01: MD5, SHA-1, the unreadable sectors),
    /// once; its files are journaled, so a run resumed while sealing finds them.
    private func completeImage(_ job: RunningJob, digests: [String: String], unreadable: [UnreadableRange]) throws -> [String] {
        if let names = keeper.current.imageFiles { return names }
        var values: [DigestAlgorithm: DigestValue] = [:]
        for algorithm in algorithms { if let value = digests[algorithm.rawValue].flatMap(DigestValue.init(hex:)) { values[algorithm] = value } }
        let writer = try writerForTheRest(job)
        try writer.complete(ImageCompletion(digests: values, unreadable: unreadable))
        let names = writer.fileNames
        try keeper.update { $0.imageFiles = names }
        return names
    }

    private func record(
        _ job: RunningJob, digests: [String: String], imageFiles: [AcquisitionRecord.ImageFile], unreadable: [UnreadableRange],
        verification: AcquisitionRecord.Verification
    ) -> AcquisitionRecord {
        let journal = keeper.current
        let finished = Date()
        let elapsed = finished.timeIntervalSince(journal.startedAt)
        let sectors = source.identity.sectorCount
        let recovery = source.makeRecovery()
        let pipeline = request.pipeline
        return AcquisitionRecord(
            bundleId: journal.bundleId, caseId: journal.caseId, exhibitId: journal.exhibitId, examiner: journal.examiner,
            organization: organization, appliance: job.appliance,
            tool: .init(name: ToolVersion.name, version: ToolVersion.version, commandLine: journal.commandLine),
            source: source.identity, startedAt: journal.startedAt, finishedAt: finished, durationSeconds: elapsed,
            averageMBPerSecond: Double(size) / max(elapsed, 0.001) / 1e6,
            media: .init(sizeBytes: size, logicalSectors: sectors.sectors, trailingBytes: sectors.remainderBytes, digests: digests),
            image: .init(
                format: format.name, detail: format.recordDetail, segmentSize: imageFiles.count > 1 ? journal.segmentSize : nil,
                files: imageFiles),
            readPolicy: .init(
                bufferBytes: pipeline.bufferSize, attemptsPerSector: recovery.attemptsPerSector,
                errorGranularity: "one logical sector (\(source.identity.logicalSectorSize) bytes)",
                fill: "zeros at the unreadable sector's own offset",
                passes: [
                    "first pass: \(pipeline.bufferSize)-byte reads; an unreadable area is zero-filled and skipped (64 KiB, doubling with each error that follows)",
                    "second pass: every skipped area read again with direct I/O, in halves down to single sectors; a sector is retried up to \(recovery.attemptsPerSector) times",
                ],
                secondsPerArea: request.secondsPerArea),
            unreadableRanges: unreadable, unreadableSectors: unreadable.reduce(0) { $0 + $1.sectorCount }, verification: verification,
            warnings: warnings)
    }

    /// Every unreadable range goes into acquisition.log; the logger (journal, terminal) gets the first few.
    private func noteUnreadable(_ job: RunningJob, _ unreadable: [UnreadableRange], count: UInt64) {
        guard !unreadable.isEmpty else { return job.log.note("no unreadable sectors") }
        job.log.note("\(count) unreadable sectors, zero-filled at their own offsets:", level: .warning)
        for (index, range) in unreadable.enumerated() {
            job.log.note(
                "  LBA \(range.firstSector)-\(range.lastSector) (\(range.sectorCount) sectors, "
                    + "bytes \(range.byteOffset)-\(range.byteOffset + range.byteLength - 1)): \(range.errorName) (errno \(range.errno)) "
                    + (range.timeLimited == true ? "when the area's time limit ran out" : "after \(range.attemptsPerSector) attempts"),
                level: index < 10 ? .warning : .debug)
        }
    }

    /// Records and tag files an interrupted sealing may have left in the bag; they are written anew.
    private static func removeUnsealedRecords(bag: String) throws {
        try BundlePublication.removeTagFiles(bag: bag)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(bag)/data")) ?? [] where name != "image" {
            try FileManager.default.removeItem(atPath: "\(bag)/data/\(name)")
        }
    }
}
