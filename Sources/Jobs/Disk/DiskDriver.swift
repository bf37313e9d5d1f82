// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import EvidenceSources
import ExpertWitness
import Foundation
import HumanText
import Imaging
import Store

/// A disk or an image file behind the job lifecycle. Its passes, each in its own file: the first
/// pass (read → digests and image, unreadable areas skipped), the second pass (the skipped areas
/// sector by sector, then the digests finished over the store's image), the read-back, the record.
/// Every step is journaled, so a run stopped anywhere is continued by the next one.
final class DiskDriver: AcquisitionDriver {
    let source: OpenedSource
    let request: AcquisitionRequest
    let keeper: JournalKeeper
    /// The interrupted job this run continues, as its journal stood.
    let resumed: AcquisitionJournal?
    let organization: String
    // The one place the job names its image format; everything else asks the format.
    let format: any ImageFormat
    let algorithms: [DigestAlgorithm]
    let windowSize: UInt64
    private(set) var catalogued: Bool
    /// The image's writer, from the first pass to the image's completion in this run; a run that
    /// starts later (resumed while recovering or sealing) makes its own (`writerForTheRest`).
    var writer: (any ImageWriter)?
    /// What the record warns of, collected as the job goes.
    var warnings: [String] = []
    /// Window tags the first pass took for an image read back in part or whole once complete
    /// (E01); gone with the process, after which the image is read back and hashed whole.
    var windowCheckAfterCompletion: WindowCheck?

    static let segmentLabel = "segment SHA-256"

    /// `format`: the journal's, from `makeFormat`, already checked against the source.
    init(
        source: OpenedSource, request: AcquisitionRequest, keeper: JournalKeeper, resumed: AcquisitionJournal?, organization: String,
        format: any ImageFormat
    ) {
        let journal = keeper.current
        self.source = source
        self.request = request
        self.keeper = keeper
        self.resumed = resumed
        self.organization = organization
        self.format = format
        self.algorithms = [DigestAlgorithm.sha256] + Set(journal.extraDigests + format.storedDigests).filter { $0 != .sha256 }.sorted()
        self.windowSize = VerificationWindows.size(for: source.identity.sizeBytes)
        self.catalogued = resumed != nil
    }

    var size: UInt64 { source.identity.sizeBytes }
    var baseName: String { BundleName.fileSafe(keeper.current.exhibitId) }
    /// Whether the image's files are ranges of the stream whose digests are taken as it passes (raw segments).
    var segmented: Bool { format.filesAreTheStream && format.isSegmented(totalSize: size) }
    func imageDirectory(_ job: RunningJob) -> String { "\(job.bag)/data/image" }

    func acquire(_ job: RunningJob) throws -> FinishedAcquisition {
        try start(job)
        try FileManager.default.createDirectory(atPath: imageDirectory(job), withIntermediateDirectories: true)
        if let resumed, resumed.copiedBytes > 0, try resumed.phase != .imaged || reopenedWriterGap(job) != nil {
            try proveContinuity(job, journal: resumed)
        }
        noteWarnings(job)
        if keeper.current.phase == .copying { try firstPass(job) }
        if keeper.current.phase == .recovering {
            try recoverSkippedAreas(job)
            try finishDigestsFromStore(job)
        }
        return try finish(job)
    }

    // MARK: stopping

    var stopDetails: [String: String] { ["offset": String(keeper.current.copiedBytes)] }

    /// Once the image is complete, whatever stops the job leaves it to finish from the store: the
    /// source is not read again, and a complete image is never thrown away. A source changed
    /// while the job was stopped fails it in any phase: the only image past the first pass that
    /// reads the source again is an E01 whose writer lost its last chunks, which a changed
    /// source cannot complete (kept interrupted, every reattachment would fail it again).
    func stopLeavesJobToResume(_ error: any Error) -> Bool {
        let acquisitionError = error as? AcquisitionError
        if acquisitionError?.code == .changedSinceInterruption { return false }
        return (acquisitionError?.interruptsJob ?? false) || keeper.current.phase == .imaged
    }

    func keepStop(reason: String, custody: CustodyLog) {
        let lines = custody.lines
        try? keeper.update {
            $0.stop = .init(at: UTCTimestamp.string(Date()), offset: $0.copiedBytes, reason: reason)
            $0.custody = lines
        }
    }

    /// Saves custody's lines with the journal, so a resumed run continues the same chain.
    func saveCustody(_ job: RunningJob, _ change: (inout AcquisitionJournal) -> Void = { _ in }) throws(AcquisitionError) {
        let lines = job.custody.lines
        try keeper.update {
            change(&$0)
            $0.custody = lines
        }
    }

    // MARK: start

    /// Enters the job in the catalog and custody, and says in the log which device this is.
    private func start(_ job: RunningJob) throws {
        let identity = source.identity
        try job.lifecycle.recordStart(
            resuming: resumed != nil, sourcePath: identity.path, model: identity.model, serial: identity.serial,
            sizeBytes: size, details: ["offset": String(resumed?.copiedBytes ?? 0)])
        catalogued = true
        let journal = keeper.current
        if let resumed {
            let stop =
                resumed.stop
                ?? .init(
                    at: UTCTimestamp.string(Date()), offset: resumed.copiedBytes,
                    reason: "the acquiring process ended without stopping the job (killed, crashed or power lost)")
            try keeper.update {
                $0.interruptions.append(stop)
                $0.stop = nil
            }
            job.noteStart(
                source: identity.path, commandLine: request.commandLine, startedAt: journal.startedAt,
                resumed: (reason: stop.reason, offset: resumed.copiedBytes))
            job.log.note(
                "source \(identity.path) is the job's device: serial \(identity.serial ?? "-"), model \(identity.model ?? "-"), "
                    + "\(size) bytes, same first and last MiB; phase \(resumed.phase.rawValue)")
        } else {
            job.noteStart(source: identity.path, commandLine: request.commandLine, startedAt: journal.startedAt, resumed: nil)
            job.log.note(
                "source \(identity.path): \(identity.kind.rawValue), \(size) bytes, "
                    + "logical sector \(identity.logicalSectorSize), physical sector \(identity.physicalSectorSize), "
                    + "model \(identity.model ?? "-"), serial \(identity.serial ?? "-"), transport \(identity.transport ?? "-")")
        }
        if let superseded = request.supersedes {
            job.log.note("interrupted job \(superseded.jobId) of this device was not continued: \(superseded.reason)", level: .warning)
            job.custody.append(
                actor: job.applianceId, action: .acquisitionRestarted, object: job.object,
                details: ["job": job.jobId, "superseded_job": superseded.jobId, "reason": superseded.reason])
        }
        job.log.note("write protection: \(identity.writeProtection.summary)")
        job.custody.append(
            actor: job.applianceId, action: .writeProtectionVerified, object: identity.path,
            details: ["evidence": identity.writeProtection.summary])
        try saveCustody(job)
    }

    /// Compares the source with what the interrupted job stored, up to where it stopped. Runs once
    /// the custody of this start is durable: a run stopped during the comparison is one more
    /// interruption of its own, recorded as such.
    private func proveContinuity(_ job: RunningJob, journal: AcquisitionJournal) throws {
        let length = journal.phase == .copying ? journal.copiedBytes : size
        let started = Date()
        let progress = { (done: UInt64) in
            job.progress(
                JobProgress(phase: .verifying, bytesDone: done, totalBytes: length, unreadableSectors: 0, elapsed: Date().timeIntervalSince(started)))
        }
        let reader = source.makeReader()
        let continuity = ResumeContinuity(skipped: journal.skipped)
        let proved =
            format.filesAreTheStream
            ? try proveByComparison(job, continuity, reader: reader, length: length, progress: progress)
            : try proveByDigest(job, continuity, reader: reader, journal: journal, length: length, progress: progress)
        if let first = proved.unreadableNow.first {
            warnings.append(
                "The source degraded while the job was stopped: read again as the job resumed, it failed in "
                    + "\(ByteSpan.total(proved.unreadableNow)) bytes from byte \(first.start) on (the areas the reader skipped "
                    + "around failing sectors, 64 KiB and more), all read before the interruption; the image holds them as first read.")
        }
        let proof = proved.method
        job.log.note(proof)
        job.custody.append(actor: job.applianceId, action: .continuityVerified, object: job.object, details: ["job": job.jobId, "method": proof])
        try saveCustody(job) { $0.interruptions[$0.interruptions.count - 1].continuityCheck = proof }
    }

    /// A format whose files are the stream: the source against the stored image, byte for byte.
    private func proveByComparison(
        _ job: RunningJob, _ continuity: ResumeContinuity, reader: SourceReader, length: UInt64, progress: (UInt64) -> Void
    ) throws -> ResumeContinuity.Proof {
        let names = format.fileNames(baseName: baseName, totalSize: size)
        let lastFile = keeper.current.segmentSize.map { names.count > 1 ? Int((length - 1) / $0) : 0 } ?? 0
        let image = try format.reader(paths: names[0...lastFile].map { "\(imageDirectory(job))/\($0)" })
        return try continuity.prove(source: reader, image: image, length: length, cancellation: job.cancellation, progress: progress)
    }

    /// A format not readable before it is complete: the source against the journaled digest state,
    /// which covers the stream up to the first skipped byte. Past the first pass, a writer that
    /// lost bytes before its staged stream (libewf keeps chunks up to its last complete section)
    /// takes them again from this read. In the first pass, what the source no longer gives comes
    /// from the image's closed sections (later, the writer reopened first may have cut its files).
    private func proveByDigest(
        _ job: RunningJob, _ continuity: ResumeContinuity, reader: SourceReader, journal: AcquisitionJournal, length: UInt64,
        progress: (UInt64) -> Void
    ) throws -> ResumeContinuity.Proof {
        guard let state = journal.states[DigestAlgorithm.sha256.displayName] else { throw journalLacks("SHA-256 state") }
        let hashed = min(length, journal.skipped.first?.start ?? length)
        let stored = journal.phase == .copying ? closedPrefix(job) : nil
        let gap = try reopenedWriterGap(job)
        var proved = try continuity.proveByDigest(
            source: reader, journaled: state, length: hashed, stored: stored,
            feeding: gap.map { ConsumerFromOffset($0.writer, from: $0.from) }, cancellation: job.cancellation, progress: progress)
        if let gap { proved.method += "; the image had lost bytes \(gap.from)-\(hashed - 1) and took them from this read" }
        return proved
    }

    /// The image's closed sections for the proof, or nil: only needed when the source fails, so
    /// one that cannot be read does not stop a resume (it is said in the log).
    private func closedPrefix(_ job: RunningJob) -> (any StreamSource)? {
        do {
            return try format.closedPrefix(directory: imageDirectory(job), baseName: baseName)
        } catch {
            job.log.note("the image's closed sections cannot be read for the continuity proof: \(error)", level: .warning)
            return nil
        }
    }

    /// What the record warns of about the source itself, said in the log from the start.
    private func noteWarnings(_ job: RunningJob) {
        let protection = source.identity.writeProtection
        if let blocker = protection.hardwareWriteBlocker {
            warnings.append("The kernel read-only flag was off; writes were stopped by the hardware write blocker \(blocker).")
        }
        if protection.writableOverride || keeper.current.writableOverride {
            warnings.append("The source was writable; its refusal was overridden with --allow-writable-source.")
        }
        if let mounts = source.identity.mountedAt {
            warnings.append("The source or its partitions were mounted at \(mounts.joined(separator: ", ")).")
        }
        if let superseded = request.supersedes {
            warnings.append(
                "An interrupted acquisition of this device (job \(superseded.jobId)) was not continued: \(superseded.reason); "
                    + "this image was read anew from byte 0.")
        }
        for warning in warnings { job.log.note("WARNING: \(warning)", level: .warning) }
    }

    // MARK: shared by the passes

    /// The one place the job turns the format asked for into the type that writes it.
    static func makeFormat(journal: AcquisitionJournal, source: SourceIdentity) -> any ImageFormat {
        switch journal.imageFormatChoice {
        case .raw:
            return RawImage(segmentSize: journal.segmentSize)
        case .e01(let compression):
            let described = [source.vendor, source.model].compactMap { $0 }.joined(separator: " ")
            let metadata = E01Metadata(
                caseNumber: journal.caseId, evidenceNumber: journal.exhibitId, examiner: journal.examiner,
                description: described.isEmpty ? source.resolvedPath : "\(described) (\(source.resolvedPath))",
                notes: "job \(journal.jobId), bundle \(journal.bundleId)", acquisitionDate: journal.startedAt,
                software: "\(ToolVersion.name) \(ToolVersion.version)", model: source.model, serialNumber: source.serial,
                mediaType: source.removable == true ? .removable : .fixed,
                isPhysical: source.kind == .blockDevice && source.isPartition != true)
            return E01Image(
                metadata: metadata, compression: compression,
                segmentSize: journal.segmentSize, bytesPerSector: source.logicalSectorSize)
        }
    }

    /// Past the first pass, the writer reopened for the rest and where it needs the stream from,
    /// when that is before the first skipped byte (or the end): bytes only the source has now (an
    /// E01 killed while it was being completed: libewf lost the chunks after its last complete
    /// section). Nil when it lost nothing, its files are journaled, or its files are the stream.
    private func reopenedWriterGap(_ job: RunningJob) throws -> (writer: any ImageWriter, from: UInt64)? {
        let journal = keeper.current
        guard !format.filesAreTheStream, journal.phase != .copying, journal.imageFiles == nil else { return nil }
        let writer = try writerForTheRest(job)
        return writer.restartOffset < (journal.skipped.first?.start ?? size) ? (writer, writer.restartOffset) : nil
    }

    /// The writer for the second pass and the image's completion: this run's, or (a run resumed
    /// after the first pass) one that continues the image as it stands, keeping the same room for
    /// the records as the first pass's (completing an E01 writes its whole staged stream).
    func writerForTheRest(_ job: RunningJob) throws(AcquisitionError) -> any ImageWriter {
        if let writer { return writer }
        let journal = keeper.current
        let made = try format.writer(
            directory: imageDirectory(job), baseName: baseName, totalSize: size, keepFree: EvidenceStore.recordReserve,
            resumingAt: format.patchableInPlace ? nil : size, frontier: journal.skipped.first.map { SkipFrontier($0.start) })
        writer = made
        return made
    }

    /// A digest for the first pass or for finishing from the store: new, or continued from the journal.
    func digester(_ algorithm: DigestAlgorithm, journal: AcquisitionJournal, frontier: SkipFrontier?) throws(AcquisitionError) -> StreamDigester {
        let name = algorithm.displayName
        guard journal.copiedBytes > 0 else { return StreamDigester(algorithm, stoppingAt: frontier) }
        guard let saved = journal.states[name], let digester = StreamDigester(algorithm, restoring: saved, stoppingAt: frontier)
        else { throw journalLacks(name) }
        return digester
    }

    func journalLacks(_ what: String) -> AcquisitionError {
        let journal = keeper.current
        return AcquisitionError(
            .journalUnusable, path: AcquisitionJournal.path(in: keeper.directory), offset: journal.copiedBytes,
            detail: "the journal has no usable \(what); the job cannot resume and must start again")
    }
}
