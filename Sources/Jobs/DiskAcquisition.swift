// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import EvidenceSources
import Foundation
import HumanText
import Imaging
import Logging
import StatusAPI
import Store

/// What the technician asked for.
public struct AcquisitionRequest: Sendable {
    public var sourcePath: String
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    /// Digests besides SHA-256 (which is always computed).
    public var extraDigests: [DigestAlgorithm]
    public var segmentSize: UInt64?
    public var verifyAfterWriting: Bool
    public var writablePolicy: WritableSourcePolicy
    public var commandLine: [String]
    public var pipeline: PipelineConfiguration
    /// The job's identifier, chosen by the caller so it can follow the job before it starts.
    public var jobId: String
    /// Continue this interrupted job (its source must be the same device); without it, an
    /// interrupted job of the same case and exhibit on the same device is continued if there is one.
    public var resumeJobId: String?
    /// How far the journal may lag behind the first pass.
    public var checkpointSeconds: Double = 5
    /// The second pass's limit per skipped area.
    public var secondsPerArea: Double = 300
    /// An interrupted job of this device that could not be continued, and why; set by the job
    /// itself when the device changed while that job was stopped.
    public var supersedes: (jobId: String, reason: String)?

    public init(
        sourcePath: String, caseId: String, exhibitId: String, examiner: String,
        extraDigests: [DigestAlgorithm] = [], segmentSize: UInt64? = nil, verifyAfterWriting: Bool = true,
        writablePolicy: WritableSourcePolicy = .refuse, commandLine: [String] = CommandLine.arguments,
        pipeline: PipelineConfiguration = PipelineConfiguration(), jobId: String = UUID().uuidString.lowercased()
    ) {
        self.jobId = jobId
        self.sourcePath = sourcePath
        self.caseId = caseId
        self.exhibitId = exhibitId
        self.examiner = examiner
        self.extraDigests = extraDigests
        self.segmentSize = segmentSize
        self.verifyAfterWriting = verifyAfterWriting
        self.writablePolicy = writablePolicy
        self.commandLine = commandLine
        self.pipeline = pipeline
    }
}

/// What `exhibit acquire --json` prints.
public struct AcquisitionSummary: Codable, Sendable {
    public var jobId: String
    public var bundleId: String
    public var bundlePath: String
    public var caseId: String
    public var exhibitId: String
    public var source: String
    public var sizeBytes: UInt64
    public var mediaSHA256: String
    public var digests: [String: String]
    public var durationSeconds: Double
    public var averageMBPerSecond: Double
    public var verification: String
    public var unreadableSectors: UInt64
    public var sealSHA256: String
}

/// Where a job is, for progress lines and the daemon's status.
public struct JobProgress: Sendable {
    public enum Phase: String, Sendable { case acquiring, recovering, verifying, sealing }
    public var phase: Phase
    public var bytesDone: UInt64
    public var totalBytes: UInt64
    public var unreadableSectors: UInt64
    /// Bytes the first pass skipped, to be read again by the second.
    public var skippedBytes: UInt64 = 0
    /// Seconds since this phase began in this run.
    public var elapsed: TimeInterval
    /// `bytesDone` when this phase began in this run (a resumed job's earlier bytes), for rates.
    public var startBytes: UInt64 = 0

    public init(
        phase: Phase, bytesDone: UInt64, totalBytes: UInt64, unreadableSectors: UInt64, skippedBytes: UInt64 = 0,
        elapsed: TimeInterval, startBytes: UInt64 = 0
    ) {
        self.phase = phase
        self.bytesDone = bytesDone
        self.totalBytes = totalBytes
        self.unreadableSectors = unreadableSectors
        self.skippedBytes = skippedBytes
        self.elapsed = elapsed
        self.startBytes = startBytes
    }
}

/// An interrupted job that a source continues.
public struct ResumableJob: Sendable {
    public var jobId: String
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    public var copiedBytes: UInt64
}

/// A failure of a job as a whole, with the stage it happened in.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let stage: String
    public let underlying: any Error & Sendable
    public let jobId: String?

    public var description: String { "\(stage): \(underlying)" }

    /// How the job ended when it had started (`interrupted` or `failed`, as its catalog entry
    /// says); nil when it stopped before it was catalogued.
    public var stoppedAs: JobState? { (underlying as? JobStop)?.state }

    /// Runs one stage of a job; a failure is reported with the stage's name.
    /// The store's own failures are named as the store's, whatever stage met them.
    static func during<T>(_ name: String, _ jobId: String? = nil, _ body: () throws -> T) throws(JobError) -> T {
        do { return try body() } catch let error as JobError { throw error } catch {
            throw JobError(stage: JobStop.cause(of: error) is StoreError ? "store" : name, underlying: error as any Error & Sendable, jobId: jobId)
        }
    }

    /// What every job needs from the store before it starts: settings, signing identity, and the
    /// catalog reconciled with what dead processes left.
    static func prerequisites(of store: EvidenceStore) throws(JobError) -> (EvidenceStore.Settings, SigningIdentity, Catalog) {
        let settings = try JobError.during("store") { try store.settings() }
        store.ensureSpaceReserve()
        let identity = try JobError.during("keys") { try store.signingIdentity() }
        let catalog = try JobError.during("catalog") { try store.catalog() }
        try JobError.during("catalog") { try store.reconcile(catalog: catalog) }
        return (settings, identity, catalog)
    }
}

/// Acquires one disk or image file into a sealed bundle in the store.
public struct DiskAcquisition: Sendable {
    public let store: EvidenceStore
    public let logger: Logger

    public init(store: EvidenceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func run(
        _ request: AcquisitionRequest, cancellation: CancellationFlag = CancellationFlag(),
        progress: @escaping (JobProgress) -> Void = { _ in }
    ) throws(JobError) -> AcquisitionSummary {
        let (settings, identity, catalog) = try JobError.prerequisites(of: store)

        return try JobError.during("source") {
            try withEvidenceSource(at: request.sourcePath, writablePolicy: request.writablePolicy) { source in
                let candidates =
                    try request.resumeJobId.map { [$0] }
                    ?? catalog.interruptedJobs(caseId: request.caseId, exhibitId: request.exhibitId)
                try ImageSegmentation.check(segmentSize: request.segmentSize, totalSize: source.identity.sizeBytes, source: source.identity.path)
                let journal = try interruptedJournal(of: source, among: candidates, required: request.resumeJobId != nil)
                let remaining = journal.map { $0.phase == .copying ? source.identity.sizeBytes - $0.copiedBytes : 0 }
                try store.ensureRoom(forImageOf: remaining ?? source.identity.sizeBytes)
                do {
                    return try acquire(
                        source: source, request: request, journal: journal, settings: settings, identity: identity,
                        catalog: catalog, cancellation: cancellation, progress: progress)
                } catch let stop as JobStop where (stop.underlying as? AcquisitionError)?.code == .changedSinceInterruption {
                    // The interrupted job was failed with the reason; the device as it is now is a
                    // new acquisition, whose record says why the old one was not continued.
                    let error = stop.underlying
                    guard let journal else { throw stop }
                    logger.warning("\(source.identity.path): interrupted job \(journal.jobId) not continued: \(error)")
                    try store.ensureRoom(forImageOf: source.identity.sizeBytes)
                    var fresh = request
                    fresh.resumeJobId = nil
                    fresh.supersedes = (journal.jobId, "\(error)")
                    return try acquire(
                        source: source, request: fresh, journal: nil, settings: settings, identity: identity,
                        catalog: catalog, cancellation: cancellation, progress: progress)
                }
            }
        }
    }

    /// The interrupted job, if any, that `source` (opened read-only) continues: any case, for a
    /// daemon that sees a disk come back.
    public func interruptedJob(of source: borrowing EvidenceSource) throws -> ResumableJob? {
        let catalog = try store.catalog()
        try store.reconcile(catalog: catalog)
        return try interruptedJournal(of: source, among: catalog.interruptedJobs(), required: false).map {
            ResumableJob(
                jobId: $0.jobId, caseId: $0.caseId, exhibitId: $0.exhibitId, examiner: $0.examiner,
                copiedBytes: $0.copiedBytes)
        }
    }

    /// The journal among `candidates` whose source is `source`: same size, sector size, serial and
    /// model, then the same first and last MiB. Another device never continues a job.
    private func interruptedJournal(
        of source: borrowing EvidenceSource, among candidates: [String], required: Bool
    ) throws -> AcquisitionJournal? {
        var fingerprint: String? = nil
        for jobId in candidates where !store.isJobRunning(jobId) {
            guard let journal = AcquisitionJournal.load(from: "\(store.workDirectory)/\(jobId)") else {
                if required { throw AcquisitionError(.journalUnusable, path: source.identity.path, detail: "job \(jobId) has no journal to resume from") }
                continue
            }
            let reason = journal.mismatch(with: source.identity) {
                if let fingerprint { return fingerprint }
                fingerprint = try source.fingerprint()
                return fingerprint!
            }
            if let reason {
                logger.notice(
                    "\(source.identity.path) does not continue interrupted job \(jobId) (\(journal.caseId)/\(journal.exhibitId)): \(reason)")
                if required {
                    throw AcquisitionError(
                        .notTheJobsDevice, path: source.identity.path,
                        detail: "not the device of interrupted job \(jobId): \(reason); a different device starts a new job")
                }
                continue
            }
            guard journal.digestStateFormat == Digest.stateFormat else {
                logger.warning("interrupted job \(jobId) saved digest states of another build (\(journal.digestStateFormat)); not resumed")
                continue
            }
            return journal
        }
        return nil
    }

    /// The journal of the running job, updated from pipeline threads at checkpoints.
    private final class JournalKeeper: @unchecked Sendable {
        private let lock = NSLock()
        private var journal: AcquisitionJournal
        let directory: String

        init(_ journal: AcquisitionJournal, directory: String) {
            self.journal = journal
            self.directory = directory
        }

        var current: AcquisitionJournal { lock.withLock { journal } }

        func update(_ change: (inout AcquisitionJournal) -> Void) throws(AcquisitionError) {
            lock.lock()
            defer { lock.unlock() }
            change(&journal)
            try journal.save(in: directory)
        }
    }

    private func acquire(
        source: borrowing EvidenceSource, request: AcquisitionRequest, journal existing: AcquisitionJournal?,
        settings: EvidenceStore.Settings, identity: SigningIdentity, catalog: Catalog, cancellation: CancellationFlag,
        progress: @escaping (JobProgress) -> Void
    ) throws -> AcquisitionSummary {
        let sourceIdentity = source.identity
        let size = sourceIdentity.sizeBytes
        let resumed = existing != nil
        let jobId = existing?.jobId ?? request.jobId
        let started = existing?.startedAt ?? Date()
        let caseId = existing?.caseId ?? request.caseId
        let exhibitId = existing?.exhibitId ?? request.exhibitId
        let examiner = existing?.examiner ?? request.examiner
        let extraDigests = existing?.extraDigests ?? request.extraDigests
        let segmentSize = existing.map { $0.segmentSize } ?? request.segmentSize
        let bundleId = existing?.bundleId ?? BundleName.make(caseId: caseId, exhibitId: exhibitId, at: started, jobId: jobId)
        var jobLogger = logger
        jobLogger[metadataKey: "job.id"] = "\(jobId)"
        jobLogger[metadataKey: "device.path"] = "\(sourceIdentity.path)"
        let lifecycle = JobLifecycle(
            store: store, catalog: catalog, identity: identity, jobId: jobId, caseId: caseId, exhibitId: exhibitId, examiner: examiner)
        let object = lifecycle.object
        let lease = try lifecycle.lease(resuming: resumed)
        try lifecycle.recordStart(
            resuming: resumed, sourcePath: sourceIdentity.path, model: sourceIdentity.model, serial: sourceIdentity.serial,
            sizeBytes: size, details: ["offset": String(existing?.copiedBytes ?? 0)])
        let keeper = JournalKeeper(
            try existing
                ?? AcquisitionJournal(
                    jobId: jobId, bundleId: bundleId, startedAt: started, caseId: caseId, exhibitId: exhibitId,
                    examiner: examiner, extraDigests: extraDigests, segmentSize: segmentSize,
                    verifyAfterWriting: request.verifyAfterWriting, commandLine: request.commandLine,
                    writableOverride: sourceIdentity.writeProtection.writableOverride,
                    source: .init(
                        path: sourceIdentity.path, serial: sourceIdentity.serial, model: sourceIdentity.model,
                        sizeBytes: size, logicalSectorSize: sourceIdentity.logicalSectorSize,
                        fingerprint: source.fingerprint())),
            directory: lease.directory)
        var custody = CustodyLog(restoring: keeper.current.custody)

        do {
            let log = try ActivityLog(logger: jobLogger, path: "\(lease.directory)/acquisition.log")
            let bag = "\(lease.directory)/\(bundleId)"
            let imageDirectory = "\(bag)/data/image"
            try FileManager.default.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)

            if let existing {
                let stop =
                    existing.stop
                    ?? .init(
                        at: UTCTimestamp.string(Date()), offset: existing.copiedBytes,
                        reason: "the acquiring process ended without stopping the job (killed, crashed or power lost)")
                try keeper.update {
                    $0.interruptions.append(stop)
                    $0.stop = nil
                }
                log.note(
                    "\(ToolVersion.name) \(ToolVersion.version) on appliance \(identity.applianceId); job \(jobId) resumed "
                        + "at byte \(existing.copiedBytes) (\(existing.phase.rawValue)) after: \(stop.reason)")
                log.note("command: \(request.commandLine.joined(separator: " "))")
                log.note(
                    "source \(sourceIdentity.path) is the job's device: serial \(sourceIdentity.serial ?? "-"), model \(sourceIdentity.model ?? "-"), "
                        + "\(size) bytes, same first and last MiB")
                custody.append(
                    actor: examiner, action: .acquisitionResumed, object: object,
                    details: [
                        "appliance": identity.applianceId, "source": sourceIdentity.path, "job": jobId,
                        "offset": String(existing.copiedBytes), "stopped_by": stop.reason,
                    ])
            } else {
                log.note("\(ToolVersion.name) \(ToolVersion.version) on appliance \(identity.applianceId); job \(jobId)")
                log.note("command: \(request.commandLine.joined(separator: " "))")
                log.note("case \(caseId), exhibit \(exhibitId), examiner \(examiner)")
                log.note(
                    "source \(sourceIdentity.path): \(sourceIdentity.kind.rawValue), \(size) bytes, "
                        + "logical sector \(sourceIdentity.logicalSectorSize), physical sector \(sourceIdentity.physicalSectorSize), "
                        + "model \(sourceIdentity.model ?? "-"), serial \(sourceIdentity.serial ?? "-"), transport \(sourceIdentity.transport ?? "-")")
                custody.append(
                    actor: examiner, action: .acquisitionStarted, object: object,
                    details: ["appliance": identity.applianceId, "source": sourceIdentity.path, "job": jobId],
                    time: started)
            }
            if let superseded = request.supersedes {
                log.note("interrupted job \(superseded.jobId) of this device was not continued: \(superseded.reason)", level: .warning)
                custody.append(
                    actor: identity.applianceId, action: .acquisitionRestarted, object: object,
                    details: ["job": jobId, "superseded_job": superseded.jobId, "reason": superseded.reason])
            }
            log.note("write protection: \(sourceIdentity.writeProtection.summary)")
            custody.append(
                actor: identity.applianceId, action: .writeProtectionVerified, object: sourceIdentity.path,
                details: ["evidence": sourceIdentity.writeProtection.summary])
            let custodyLines = custody.lines
            try keeper.update { $0.custody = custodyLines }
            // After the custody of this start is durable: a run stopped during the comparison is
            // one more interruption of its own, recorded as such.
            if let existing, existing.phase != .imaged, existing.copiedBytes > 0 {
                let proof = try proveContinuity(
                    source: source, journal: existing, imageDirectory: imageDirectory, cancellation: cancellation, progress: progress)
                log.note(proof)
                custody.append(actor: identity.applianceId, action: .continuityVerified, object: object, details: ["job": jobId, "method": proof])
                let lines = custody.lines
                try keeper.update {
                    $0.interruptions[$0.interruptions.count - 1].continuityCheck = proof
                    $0.custody = lines
                }
            }

            var warnings: [String] = []
            if let blocker = sourceIdentity.writeProtection.hardwareWriteBlocker {
                warnings.append("The kernel read-only flag was off; writes were stopped by the hardware write blocker \(blocker).")
            }
            if sourceIdentity.writeProtection.writableOverride || keeper.current.writableOverride {
                warnings.append("The source was writable; its refusal was overridden with --allow-writable-source.")
            }
            if let mounts = sourceIdentity.mountedAt {
                warnings.append("The source or its partitions were mounted at \(mounts.joined(separator: ", ")).")
            }
            if let superseded = request.supersedes {
                warnings.append(
                    "An interrupted acquisition of this device (job \(superseded.jobId)) was not continued because the device "
                        + "changed while it was stopped (\(superseded.reason)); this image was read anew from byte 0.")
            }
            for warning in warnings { log.note("WARNING: \(warning)", level: .warning) }

            let algorithms = [DigestAlgorithm.sha256] + extraDigests.filter { $0 != .sha256 }.sorted()
            let baseName = BundleName.fileSafe(exhibitId)
            let windowSize = VerificationWindows.size(for: size)
            // The one place the job names its image format; everything else asks the format.
            let format = RawImage(segmentSize: segmentSize)
            let segmented = format.isSegmented(totalSize: size)
            let segmentLabel = "segment SHA-256"
            var recovery = source.makeRecovery()
            recovery.secondsPerArea = request.secondsPerArea

            // First pass: read → digests, image; unreadable areas skipped.
            if keeper.current.phase == .copying {
                let journal = keeper.current
                let frontier = SkipFrontier(journal.skipped.first?.start ?? .max)
                let reader = source.makeReader()
                reader.frontier = frontier
                let writer = try format.writer(
                    directory: imageDirectory, baseName: baseName, totalSize: size, keepFree: EvidenceStore.recordReserve,
                    resumingAt: journal.copiedBytes)
                let digesters = try algorithms.map { algorithm throws(AcquisitionError) in
                    try Self.digester(algorithm, journal: journal, frontier: frontier)
                }
                let segmentDigester =
                    segmented
                    ? RangeDigester(rangeSize: segmentSize!, totalSize: size, label: segmentLabel, stoppingAt: frontier) : nil
                let frontierWindows = FrontierWindowDigester(frontier: frontier, windowSize: windowSize, size: size)
                if journal.copiedBytes > 0 {
                    if let segmentDigester, !(journal.states[segmentLabel].map(segmentDigester.restore) ?? false) {
                        throw Self.journalLacks(segmentLabel, journal: journal, directory: lease.directory)
                    }
                    if let saved = journal.states[frontierWindows.name], !frontierWindows.restore(saved) {
                        throw Self.journalLacks(frontierWindows.name, journal: journal, directory: lease.directory)
                    }
                }
                var consumers: [any StreamConsumer] = digesters
                if let segmentDigester { consumers.append(segmentDigester) }
                consumers += [frontierWindows, writer] as [any StreamConsumer]
                log.note(
                    (journal.copiedBytes > 0 ? "continuing the first pass at byte \(journal.copiedBytes); " : "first pass: ")
                        + "\(request.pipeline.bufferCount) × \(request.pipeline.bufferSize)-byte buffers; unreadable areas skipped "
                        + "(\(reader.skipPolicy.initialSkip) bytes, doubling to \(reader.skipPolicy.maximumSkip)) and read again later; digests "
                        + algorithms.map(\.displayName).joined(separator: ", ")
                        + (segmented ? "; \(writer.fileNames.count) segments of \(segmentSize!) bytes" : ""))
                let outcome = try Pipeline.run(
                    reader, into: consumers, startingAt: journal.copiedBytes, previouslySkipped: journal.skipped,
                    configuration: request.pipeline, cancellation: cancellation,
                    progress: {
                        progress(
                            JobProgress(
                                phase: .acquiring, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes, unreadableSectors: 0,
                                skippedBytes: $0.skippedBytes, elapsed: $0.elapsed, startBytes: journal.copiedBytes))
                    },
                    checkpointInterval: request.checkpointSeconds,
                    onCheckpoint: { checkpoint in
                        try keeper.update {
                            $0.copiedBytes = checkpoint.offset
                            $0.states = checkpoint.states
                            $0.skipped = checkpoint.skipped
                        }
                    })
                if let change = source.changeSinceOpening() {
                    throw AcquisitionError(
                        .sourceChanged, path: sourceIdentity.path,
                        detail: "the image file changed while it was read: \(change); an image of it would match neither state. "
                            + "Acquire it again once nothing writes to it")
                }
                let rate = Double(outcome.bytesRead - journal.copiedBytes) / max(outcome.elapsed, 0.001) / 1e6
                let skippedBytes = outcome.skipped.reduce(0) { $0 + $1.length }
                log.note(
                    "first pass read \(outcome.bytesRead - journal.copiedBytes) bytes in \(String(format: "%.2f", outcome.elapsed)) s "
                        + "(\(String(format: "%.1f", rate)) MB/s); "
                        + (outcome.skipped.isEmpty
                            ? "no unreadable areas"
                            : "\(outcome.skipped.count) unreadable areas (\(skippedBytes) bytes) skipped and zero-filled for now"))
                var states: [String: Data] = [:]
                for digester in digesters { states[digester.name] = digester.savedState }
                if let segmentDigester { states[segmentLabel] = try segmentDigester.checkpoint() }
                states[frontierWindows.name] = try frontierWindows.checkpoint()
                var finalDigests: [String: String] = [:]
                for digester in digesters { if let value = digester.result { finalDigests[digester.algorithm.rawValue] = value.hex } }
                let segmentDigests = segmentDigester?.results.map(\.hex)
                try keeper.update {
                    $0.copiedBytes = size
                    $0.skipped = outcome.skipped
                    $0.states = states
                    if outcome.skipped.isEmpty {
                        $0.digests = finalDigests
                        $0.segmentDigests = segmentDigests
                        $0.phase = .imaged
                    } else {
                        $0.phase = .recovering
                    }
                }
            }

            // Second pass: the skipped areas again, sector by sector; then the digests finished from the store.
            if keeper.current.phase == .recovering {
                let journal = keeper.current
                guard format.patchableInPlace else {
                    throw AcquisitionError(
                        .invalidRequest, path: imageDirectory, detail: "the \(format.name) image cannot take recovered bytes in place")
                }
                let writer = try format.writer(directory: imageDirectory, baseName: baseName, totalSize: size)
                let skippedTotal = journal.skipped.reduce(0) { $0 + $1.length }
                var recoveredBytes = journal.recovered.reduce(0) { $0 + $1.span.length }
                var unreadableSoFar = journal.recovered.reduce(0) { $0 + $1.unreadable.reduce(0) { $0 + $1.sectorCount } }
                log.note(
                    "second pass: \(journal.skipped.count) skipped areas (\(skippedTotal) bytes) read again in halves down to one "
                        + "\(sourceIdentity.logicalSectorSize)-byte sector with direct I/O, \(recovery.attemptsPerSector) attempts per sector, "
                        + "at most \(Int(recovery.secondsPerArea)) s per area")
                var buffer: UnsafeMutableRawPointer? = nil
                guard posix_memalign(&buffer, 4096, SectorRecovery.pieceSize) == 0, let buffer else {
                    throw AcquisitionError(.readFailed, path: sourceIdentity.path, detail: "no memory for the second pass")
                }
                defer { free(buffer) }
                let done = Set(journal.recovered.map(\.span))
                let recoveryStarted = Date()
                let recoveredAtStart = recoveredBytes
                for area in journal.skipped where !done.contains(area) {
                    if cancellation.isCancelled { throw AcquisitionError(.cancelled, path: sourceIdentity.path, offset: area.start) }
                    let result = try recovery.recover(area, buffer: buffer) { piece, offset, readSpans in
                        for span in readSpans {
                            let from = Int(span.start - offset)
                            try writer.patch(UnsafeRawBufferPointer(rebasing: piece[from..<from + Int(span.length)]), at: span.start)
                        }
                        progress(
                            JobProgress(
                                phase: .recovering, bytesDone: recoveredBytes + (offset + UInt64(piece.count) - area.start),
                                totalBytes: skippedTotal, unreadableSectors: unreadableSoFar, skippedBytes: skippedTotal,
                                elapsed: Date().timeIntervalSince(recoveryStarted), startBytes: recoveredAtStart))
                        if cancellation.isCancelled { throw AcquisitionError(.cancelled, path: sourceIdentity.path, offset: offset) }
                    }
                    recoveredBytes += area.length
                    unreadableSoFar += result.unreadable.reduce(0) { $0 + $1.sectorCount }
                    try keeper.update { $0.recovered.append(result) }
                    let lost = result.unreadable.reduce(0) { $0 + $1.byteLength }
                    log.note(
                        "area bytes \(area.start)-\(area.end - 1): \(area.length - lost) bytes recovered, "
                            + "\(lost / UInt64(sourceIdentity.logicalSectorSize)) sectors unreadable (\(String(format: "%.2f", result.seconds)) s)",
                        level: .debug)
                }

                // The digests stopped at the first skipped byte; they go on over the store's image,
                // which is checked window by window against what the source gave.
                let current = keeper.current
                let frontier = current.skipped[0].start
                let digesters = try algorithms.map { algorithm throws(AcquisitionError) in
                    try Self.digester(algorithm, journal: current, frontier: nil)
                }
                var consumers: [any StreamConsumer] = digesters.map { ConsumerFromOffset($0, from: frontier) }
                let segmentDigester = segmented ? RangeDigester(rangeSize: segmentSize!, totalSize: size, label: segmentLabel) : nil
                if let segmentDigester {
                    guard current.states[segmentLabel].map(segmentDigester.restore) ?? false else {
                        throw Self.journalLacks(segmentLabel, journal: current, directory: lease.directory)
                    }
                    consumers.append(ConsumerFromOffset(segmentDigester, from: frontier))
                }
                let frontierWindows = FrontierWindowDigester(frontier: SkipFrontier(frontier), windowSize: windowSize, size: size)
                guard current.states[frontierWindows.name].map(frontierWindows.restore) ?? false else {
                    throw Self.journalLacks(frontierWindows.name, journal: current, directory: lease.directory)
                }
                let windows = RangeDigester(rangeSize: windowSize, totalSize: size, label: "window SHA-256")
                let check = StoredImageCheck(
                    path: imageDirectory, frontier: frontier, windowSize: windowSize, size: size,
                    windowDigests: frontierWindows.digests, skipped: current.skipped, areas: current.recovered)
                consumers += [windows, check] as [any StreamConsumer]
                let readback = try Pipeline.run(
                    try format.reader(paths: writer.paths), into: consumers, configuration: request.pipeline, cancellation: cancellation
                ) {
                    progress(
                        JobProgress(
                            phase: .verifying, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes,
                            unreadableSectors: unreadableSoFar, skippedBytes: skippedTotal, elapsed: $0.elapsed))
                }
                var finalDigests: [String: String] = [:]
                for digester in digesters { finalDigests[digester.algorithm.rawValue] = digester.result!.hex }
                let method =
                    "image files fsynced, dropped from the page cache and read back; from byte \(frontier) (the first skipped byte) "
                    + "each \(windowSize)-byte window matched what the first pass read and each recovered area what the second pass read, "
                    + "and the media digests were finished over the stored bytes"
                log.note(
                    "stored image checked and digests finished in \(String(format: "%.2f", readback.elapsed)) s: "
                        + algorithms.map { "\($0.displayName) \(finalDigests[$0.rawValue]!)" }.joined(separator: ", "))
                custody.append(
                    actor: identity.applianceId, action: .imageVerified, object: object,
                    details: ["sha256": finalDigests["sha256"]!, "result": "matched", "method": "window check"])
                let lines = custody.lines
                try keeper.update {
                    $0.digests = finalDigests
                    $0.segmentDigests = segmentDigester?.results.map(\.hex)
                    $0.storeCheck = method
                    $0.windowSHA256 = windows.results.map(\.hex)
                    $0.phase = .imaged
                    $0.custody = lines
                }
            }

            // Every byte is in the store and the digests are final.
            let journal = keeper.current
            guard let digests = journal.digests, let mediaSHA256 = digests["sha256"] else {
                throw Self.journalLacks("final digests", journal: journal, directory: lease.directory)
            }
            let writer = try format.writer(directory: imageDirectory, baseName: baseName, totalSize: size)
            let unreadable = UnreadableRange.merged(journal.recovered.flatMap(\.unreadable))
            let unreadableCount = unreadable.reduce(0) { $0 + $1.sectorCount }
            if unreadable.isEmpty {
                log.note("no unreadable sectors")
            } else {
                log.note("\(unreadableCount) unreadable sectors, zero-filled at their own offsets:", level: .warning)
                // Every range goes into acquisition.log; the logger (journal, terminal) gets the first few.
                for (index, range) in unreadable.enumerated() {
                    log.note(
                        "  LBA \(range.firstSector)-\(range.lastSector) (\(range.sectorCount) sectors, "
                            + "bytes \(range.byteOffset)-\(range.byteOffset + range.byteLength - 1)): \(range.errorName) (errno \(range.errno)) "
                            + (range.timeLimited == true
                                ? "when the area's time limit ran out" : "after \(range.attemptsPerSector) attempts"),
                        level: index < 10 ? .warning : .debug)
                }
            }
            if !custody.contains(.imageWritten) {
                custody.append(
                    actor: identity.applianceId, action: .imageWritten, object: object,
                    details: [
                        "bytes": String(size), "sha256": mediaSHA256, "unreadable_sectors": String(unreadableCount),
                        "files": writer.fileNames.joined(separator: " "),
                    ])
            }
            let segmentDigests = journal.segmentDigests ?? [mediaSHA256]
            let imageFiles = zip(writer.fileNames, segmentDigests).map { name, digest in
                AcquisitionRecord.ImageFile(
                    path: "data/image/\(name)", sizeBytes: DurableFile.size(of: "\(imageDirectory)/\(name)") ?? 0, sha256: digest)
            }

            // Read back what the store holds. A resumed job always does: the bytes written before
            // the interruption were not re-read when it went on.
            var verification = AcquisitionRecord.Verification(
                result: "skipped", method: "not performed (--no-verify)", sha256: nil, durationSeconds: nil,
                windowSize: nil, windowSHA256: nil)
            if let method = journal.storeCheck {
                verification = AcquisitionRecord.Verification(
                    result: "matched", method: method, sha256: mediaSHA256, windowSize: windowSize,
                    windowSHA256: journal.windowSHA256)
            } else if journal.verifyAfterWriting || !journal.interruptions.isEmpty {
                try catalog.setJobState(jobId, state: .verifying)
                let stream = StreamDigester(.sha256)
                let windows = RangeDigester(rangeSize: windowSize, totalSize: size, label: "window SHA-256")
                let readback = try Pipeline.run(
                    try format.reader(paths: writer.paths), into: [stream, windows], configuration: request.pipeline,
                    cancellation: cancellation
                ) {
                    progress(
                        JobProgress(
                            phase: .verifying, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes,
                            unreadableSectors: unreadableCount, elapsed: $0.elapsed))
                }
                let readbackSHA256 = stream.result!.hex
                verification = AcquisitionRecord.Verification(
                    result: readbackSHA256 == mediaSHA256 ? "matched" : "mismatched",
                    method: "image files fsynced, dropped from the page cache, read back and re-hashed with SHA-256"
                        + (journal.interruptions.isEmpty ? "" : " (always, because the job was interrupted and resumed)"),
                    sha256: readbackSHA256, durationSeconds: readback.elapsed, windowSize: windowSize,
                    windowSHA256: windows.results.map(\.hex))
                log.note("read-back SHA-256 \(readbackSHA256): \(verification.result) (\(String(format: "%.2f", readback.elapsed)) s)")
                custody.append(
                    actor: identity.applianceId, action: .imageVerified, object: object,
                    details: ["sha256": readbackSHA256, "result": verification.result])
                guard readbackSHA256 == mediaSHA256 else {
                    throw AcquisitionError(
                        .verifyMismatch, path: imageDirectory,
                        detail: "the stored image hashes to \(readbackSHA256), the source stream to \(mediaSHA256)")
                }
            } else {
                log.note("read-back verification skipped (--no-verify)", level: .warning)
                warnings.append("The written image was not read back and re-hashed (--no-verify).")
            }
            if !journal.interruptions.isEmpty {
                warnings.append(
                    "The acquisition was interrupted \(journal.interruptions.count) time(s) and resumed on the same device; "
                        + "see interruptions.")
            }

            // Records.
            progress(JobProgress(phase: .sealing, bytesDone: size, totalBytes: size, unreadableSectors: unreadableCount, elapsed: 0, startBytes: size))
            try catalog.setJobState(jobId, state: .sealing)
            try writer.makeReadOnly()
            try Self.removeUnsealedRecords(bag: bag)
            let finished = Date()
            let sectors = sourceIdentity.sectorCount
            let elapsed = finished.timeIntervalSince(started)
            let rate = Double(size) / max(elapsed, 0.001) / 1e6
            var record = AcquisitionRecord(
                bundleId: bundleId, caseId: caseId, exhibitId: exhibitId, examiner: examiner,
                organization: settings.organization,
                appliance: .init(
                    id: identity.applianceId, certificateSHA256: identity.certificate.sha256Fingerprint.hex,
                    certificateSubject: identity.certificate.subject, certificateIssuer: identity.certificate.issuer,
                    hostname: ProcessInfo.processInfo.hostName),
                tool: .init(name: ToolVersion.name, version: ToolVersion.version, commandLine: journal.commandLine),
                source: sourceIdentity, startedAt: started, finishedAt: finished,
                durationSeconds: elapsed, averageMBPerSecond: rate,
                media: .init(
                    sizeBytes: size, logicalSectors: sectors.sectors, trailingBytes: sectors.remainderBytes,
                    digests: digests),
                image: .init(format: format.name, segmentSize: segmented ? segmentSize : nil, files: imageFiles),
                readPolicy: .init(
                    bufferBytes: request.pipeline.bufferSize, attemptsPerSector: recovery.attemptsPerSector,
                    errorGranularity: "one logical sector (\(sourceIdentity.logicalSectorSize) bytes)",
                    fill: "zeros at the unreadable sector's own offset",
                    passes: [
                        "first pass: \(request.pipeline.bufferSize)-byte reads; an unreadable area is zero-filled and skipped (64 KiB, doubling with each error that follows)",
                        "second pass: every skipped area read again with direct I/O, in halves down to single sectors; a sector is retried up to \(recovery.attemptsPerSector) times",
                    ],
                    secondsPerArea: recovery.secondsPerArea),
                unreadableRanges: unreadable, unreadableSectors: unreadableCount, verification: verification,
                warnings: warnings)
            if !journal.interruptions.isEmpty {
                record.interruptions = journal.interruptions.map {
                    .init(at: $0.at, resumedAtOffset: $0.offset, reason: $0.reason, continuityCheck: $0.continuityCheck)
                }
            }
            var knownDigests: [String: String] = [:]
            for file in imageFiles { knownDigests[file.path] = file.sha256 }
            let summary = try lifecycle.publish(
                record: record, bag: bag, lease: lease, custody: &custody, log: log, knownDigests: knownDigests)
            jobLogger.info("sealed \(summary.bundlePath)")
            return summary
        } catch {
            // Once the image is complete, whatever stops the job (the store full while sealing, a
            // rename or catalog error) leaves it to finish from the store: the source is not read
            // again, and a complete image is never thrown away.
            let interrupted = ((error as? AcquisitionError)?.interruptsJob ?? false) || keeper.current.phase == .imaged
            throw lifecycle.stop(error, interrupted: interrupted, cancellation: cancellation, lease: lease) { reason in
                custody.append(
                    actor: identity.applianceId, action: .acquisitionInterrupted, object: object,
                    details: ["job": jobId, "offset": String(keeper.current.copiedBytes), "reason": reason])
                let lines = custody.lines
                try? keeper.update {
                    $0.stop = .init(at: UTCTimestamp.string(Date()), offset: $0.copiedBytes, reason: reason)
                    $0.custody = lines
                }
            }
        }
    }

    /// Compares the source with what the interrupted job stored, up to where it stopped.
    private func proveContinuity(
        source: borrowing EvidenceSource, journal: AcquisitionJournal, imageDirectory: String, cancellation: CancellationFlag,
        progress: @escaping (JobProgress) -> Void
    ) throws -> String {
        let size = source.identity.sizeBytes
        let length = journal.phase == .copying ? journal.copiedBytes : size
        let format = RawImage(segmentSize: journal.segmentSize)
        let names = format.fileNames(baseName: BundleName.fileSafe(journal.exhibitId), totalSize: size)
        let lastFile = journal.segmentSize.map { names.count > 1 ? Int((length - 1) / $0) : 0 } ?? 0
        let image = try format.reader(paths: names[0...lastFile].map { "\(imageDirectory)/\($0)" })
        let started = Date()
        return try ResumeContinuity(skipped: journal.skipped).prove(
            source: source.makeCheckReader(), image: image, length: length, cancellation: cancellation
        ) { done in
            progress(JobProgress(phase: .verifying, bytesDone: done, totalBytes: length, unreadableSectors: 0, elapsed: Date().timeIntervalSince(started)))
        }
    }

    /// A digest for the first pass or for finishing from the store: new, or continued from the journal.
    private static func digester(
        _ algorithm: DigestAlgorithm, journal: AcquisitionJournal, frontier: SkipFrontier?
    ) throws(AcquisitionError) -> StreamDigester {
        let name = algorithm.displayName
        guard journal.copiedBytes > 0 else { return StreamDigester(algorithm, stoppingAt: frontier) }
        guard let saved = journal.states[name], let digester = StreamDigester(algorithm, restoring: saved, stoppingAt: frontier)
        else { throw journalLacks(name, journal: journal, directory: nil) }
        return digester
    }

    private static func journalLacks(_ what: String, journal: AcquisitionJournal, directory: String?) -> AcquisitionError {
        AcquisitionError(
            .journalUnusable, path: directory.map(AcquisitionJournal.path(in:)) ?? "journal of job \(journal.jobId)",
            offset: journal.copiedBytes, detail: "the journal has no usable \(what); the job cannot resume and must start again")
    }

    /// Records and tag files an interrupted sealing may have left in the bag; they are written anew.
    private static func removeUnsealedRecords(bag: String) throws {
        try BundlePublication.removeTagFiles(bag: bag)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(bag)/data")) ?? [] where name != "image" {
            try FileManager.default.removeItem(atPath: "\(bag)/data/\(name)")
        }
    }
}
