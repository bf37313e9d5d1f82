// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import EvidenceSources
import Foundation
import Imaging
import Logging
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
    public var imageFormat: ImageFormatChoice = .raw
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

/// An interrupted job that a source continues.
public struct ResumableJob: Sendable {
    public var jobId: String
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    public var copiedBytes: UInt64
    /// The format the job began with, which it keeps whatever the settings say now.
    public var imageFormat: ImageFormatChoice
}

/// Disks and image files.
extension Acquisitions {
    /// Acquires one disk or image file into a sealed bundle in the store, or continues its
    /// interrupted job.
    /// `newJob` is told the id of the job that replaces the interrupted one the request meant to
    /// continue, when the device changed while that job was stopped (the daemon's slot follows it).
    public func acquireDisk(
        _ request: AcquisitionRequest, cancellation: CancellationFlag = CancellationFlag(),
        progress: @escaping (JobProgress) -> Void = { _ in }, newJob: (String) -> Void = { _ in }
    ) throws(JobError) -> AcquisitionSummary {
        let prerequisites = try JobPrerequisites(of: store)

        return try JobError.during("source") {
            try withEvidenceSource(at: request.sourcePath, writablePolicy: request.writablePolicy) { evidenceSource in
                let source = evidenceSource.opened
                let candidates =
                    try request.resumeJobId.map { [$0] }
                    ?? prerequisites.catalog.interruptedJobs(caseId: request.caseId, exhibitId: request.exhibitId)
                let journal = try interruptedJournal(of: source, among: candidates, required: request.resumeJobId != nil)
                let remaining = journal.map { $0.phase == .copying ? source.identity.sizeBytes - $0.copiedBytes : 0 }
                try store.ensureRoom(forImageOf: remaining ?? source.identity.sizeBytes)
                do {
                    return try acquire(
                        source: source, request: request, journal: journal, prerequisites: prerequisites, cancellation: cancellation,
                        progress: progress)
                } catch let stop as JobStop
                    where (stop.underlying as? AcquisitionError)?.code == .changedSinceInterruption && stop.state == .failed
                {
                    guard let journal else { throw stop }
                    return try acquireAnew(
                        replacing: journal, changed: stop.underlying, source: source, request: request, prerequisites: prerequisites,
                        cancellation: cancellation, progress: progress, newJob: newJob)
                }
            }
        }
    }

    /// The interrupted job was failed with the reason (`changed`); the device as it is now is a
    /// new acquisition, whose record says why the old one was not continued.
    private func acquireAnew(
        replacing journal: AcquisitionJournal, changed: any Error & Sendable, source: OpenedSource, request: AcquisitionRequest,
        prerequisites: JobPrerequisites, cancellation: CancellationFlag, progress: @escaping (JobProgress) -> Void,
        newJob: (String) -> Void
    ) throws -> AcquisitionSummary {
        logger.warning("\(source.identity.path): interrupted job \(journal.jobId) not continued: \(changed)")
        var fresh = request
        fresh.resumeJobId = nil
        // A new job, whatever id the request gave the one it meant to continue.
        if fresh.jobId == journal.jobId { fresh.jobId = UUID().uuidString.lowercased() }
        if fresh.jobId != request.jobId { newJob(fresh.jobId) }
        fresh.supersedes = (journal.jobId, "\(changed)")
        do {
            try store.ensureRoom(forImageOf: source.identity.sizeBytes)
            return try acquire(
                source: source, request: fresh, journal: nil, prerequisites: prerequisites, cancellation: cancellation,
                progress: progress)
        } catch let stopped as JobStop {
            throw stopped
        } catch {
            // The old job has failed; the new one did not begin: nothing is left to resume.
            throw JobStop(
                underlying: error as any Error & Sendable, state: .failed,
                note: "a new job for the device as it is now could not begin; the interrupted job \(journal.jobId) "
                    + "was not continued: \(changed)")
        }
    }

    /// The interrupted job, if any, that `source` (opened read-only) continues: any case, for a
    /// daemon that sees a disk come back.
    public func interruptedDiskJob(of source: OpenedSource) throws -> ResumableJob? {
        let catalog = try store.catalog()
        try store.reconcile(catalog: catalog)
        return try interruptedJournal(of: source, among: catalog.interruptedJobs(), required: false).map {
            ResumableJob(
                jobId: $0.jobId, caseId: $0.caseId, exhibitId: $0.exhibitId, examiner: $0.examiner,
                copiedBytes: $0.copiedBytes, imageFormat: $0.imageFormatChoice)
        }
    }

    /// The journal among `candidates` whose source is `source`: same size, sector size, serial and
    /// model, then the same first and last MiB. Another device never continues a job.
    private func interruptedJournal(
        of source: OpenedSource, among candidates: [String], required: Bool
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

    /// Starts `request`'s job on `source`, or continues the interrupted job of `existing`,
    /// through the one job lifecycle.
    private func acquire(
        source: OpenedSource, request: AcquisitionRequest, journal existing: AcquisitionJournal?, prerequisites: JobPrerequisites,
        cancellation: CancellationFlag, progress: @escaping (JobProgress) -> Void
    ) throws -> AcquisitionSummary {
        let journal = try existing ?? AcquisitionJournal(newJobOf: request, source: source)
        let format = DiskDriver.makeFormat(journal: journal, source: source.identity)
        // Before the job is in the catalog: a refusal leaves nothing to list or resume.
        try format.check(totalSize: source.identity.sizeBytes, source: source.identity.path)
        var jobLogger = logger
        jobLogger[metadataKey: "job.id"] = "\(journal.jobId)"
        jobLogger[metadataKey: "device.path"] = "\(source.identity.path)"
        let lifecycle = JobLifecycle(
            store: store, catalog: prerequisites.catalog, identity: prerequisites.identity, jobId: journal.jobId, caseId: journal.caseId,
            exhibitId: journal.exhibitId, examiner: journal.examiner)
        let lease = try lifecycle.lease(resuming: existing != nil)
        let driver = DiskDriver(
            source: source, request: request, keeper: JournalKeeper(journal, directory: lease.directory), resumed: existing,
            organization: prerequisites.settings.organization, format: format)
        return try lifecycle.run(
            driver, lease: lease, bundleId: journal.bundleId, custody: CustodyLog(restoring: journal.custody), logger: jobLogger,
            cancellation: cancellation, progress: progress)
    }
}
