// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Imaging
import Logging
import Store

/// What every acquisition shares, whatever its source (a disk, an Android phone, later MTP and
/// iOS phones): the job's entry in the catalog and its audit, the sealing and publication of its
/// bag, and the one decision of how a stopped job ends. A source kind's job brings only what it
/// reads and how.
struct JobLifecycle {
    let store: EvidenceStore
    let catalog: Catalog
    let identity: SigningIdentity
    let jobId: String
    let caseId: String
    let exhibitId: String
    let examiner: String

    /// Runs `driver` inside the lifecycle: the job's log, its bag sealed and published once the
    /// driver has read the source, and, when anything stops it, the one decision of how it ends.
    /// A device that is not an interrupted job's own leaves that job exactly as it was.
    func run(
        _ driver: some AcquisitionDriver, lease: EvidenceStore.JobLease, bundleId: String, custody: CustodyLog, logger: Logger,
        cancellation: CancellationFlag, progress: @escaping (JobProgress) -> Void
    ) throws -> AcquisitionSummary {
        var job: RunningJob?
        // Once the driver is done everything is read: whatever stops the job while sealing (the
        // store full, a rename or catalog error) leaves it to finish, and nothing is read again.
        var sealing = false
        do {
            let running = try RunningJob(
                lifecycle: self, lease: lease, bundleId: bundleId, custody: custody, logger: logger, cancellation: cancellation,
                progress: progress)
            job = running
            let finished = try driver.acquire(running)
            sealing = true
            let size = finished.record.media.sizeBytes
            progress(
                JobProgress(
                    phase: .sealing, bytesDone: size, totalBytes: size, unreadableSectors: finished.record.unreadableSectors,
                    elapsed: 0, startBytes: size))
            try catalog.setJobState(jobId, state: .sealing)
            let summary = try publish(
                record: finished.record, bag: running.bag, lease: lease, custody: &running.custody, log: running.log,
                knownDigests: finished.knownDigests)
            logger.info("sealed \(summary.bundlePath)")
            return summary
        } catch let error as AcquisitionError where error.code == .notTheJobsDevice {
            lease.release()
            throw error
        } catch {
            let interrupted = sealing || driver.stopLeavesJobToResume(error)
            throw stop(error, interrupted: interrupted, catalogued: driver.catalogued, cancellation: cancellation, lease: lease) { reason in
                var custody = job?.custody ?? custody
                custody.append(
                    actor: identity.applianceId, action: .acquisitionInterrupted, object: object,
                    details: driver.stopDetails.merging(["job": jobId, "reason": reason]) { _, shared in shared })
                driver.keepStop(reason: reason, custody: custody)
            }
        }
    }

    /// "exhibit E1 of case C-1", as custody and the audit name the job's object.
    var object: String { "exhibit \(exhibitId) of case \(caseId)" }

    /// The work directory: a new job's, or an interrupted job's taken over.
    func lease(resuming: Bool) throws -> EvidenceStore.JobLease {
        resuming ? try store.resumeJob(id: jobId) : try store.beginJob(id: jobId)
    }

    /// Enters the job in the catalog (or marks it running again) and audits its start.
    func recordStart(
        resuming: Bool, sourcePath: String, model: String?, serial: String?, sizeBytes: UInt64, details: [String: String]
    ) throws {
        if resuming {
            try catalog.resumeJob(jobId)
        } else {
            try catalog.beginJob(
                id: jobId, caseId: caseId, exhibitId: exhibitId, examiner: examiner, sourcePath: sourcePath,
                sourceModel: model, sourceSerial: serial, sizeBytes: sizeBytes)
        }
        try catalog.audit(
            actor: examiner, action: resuming ? .acquisitionResumed : .acquisitionStarted, object: object,
            details: details.merging(["job": jobId, "source": sourcePath]) { first, _ in first })
    }

    /// The last step of every job: the bag sealed and published, the work removed, the audit.
    private func publish(
        record: AcquisitionRecord, bag: String, lease: EvidenceStore.JobLease, custody: inout CustodyLog, log: ActivityLog,
        knownDigests: [String: String]
    ) throws -> AcquisitionSummary {
        let summary = try BundlePublication(store: store, catalog: catalog, identity: identity).publish(
            record: record, bag: bag, jobId: jobId, custody: &custody, log: log, knownDigests: knownDigests)
        store.removeWork(lease)
        try catalog.audit(
            actor: identity.applianceId, action: .bundleSealed, object: record.bundleId,
            details: ["media_sha256": summary.mediaSHA256, "seal_sha256": summary.sealSHA256])
        return summary
    }

    /// How a job that stopped ends, decided here once for every source kind: interrupted (its work
    /// and journal kept, `keepStop` records the stop in them, the lease released for the next run)
    /// or failed (its work removed). Returns the error to throw, which carries the decision, so
    /// the command line and the daemon need not read the catalog to know it.
    private func stop(
        _ error: any Error, interrupted: Bool, catalogued: Bool = true, cancellation: CancellationFlag,
        lease: EvidenceStore.JobLease, keepStop: (String) -> Void
    ) -> JobStop {
        let stopsForSpace = JobStop.isStoreFull(error)
        // A store filled by another process has no room left for the records of the stop: the
        // reserve the job set aside is given back first.
        if stopsForSpace { store.releaseSpaceReserve() }
        let interrupted = interrupted || stopsForSpace
        let reason = Self.stopReason(error, cancellation: cancellation)
        if catalogued {
            try? catalog.setJobState(jobId, state: interrupted ? .interrupted : .failed, error: reason)
            try? catalog.audit(
                actor: identity.applianceId, action: interrupted ? .acquisitionInterrupted : .acquisitionFailed,
                object: object, details: ["job": jobId, "error": reason])
        }
        if interrupted && catalogued {
            keepStop(reason)
            lease.release()
        } else {
            store.removeWork(lease)
        }
        return JobStop(underlying: error as any Error & Sendable, state: interrupted && catalogued ? .interrupted : .failed)
    }

    /// Why a job stopped, in the words its record keeps: a cancellation says who stopped it.
    static func stopReason(_ error: any Error, cancellation: CancellationFlag) -> String {
        if let error = error as? AcquisitionError, error.code == .cancelled, let reason = cancellation.reason {
            return error.offset.map { "\(reason) at byte \($0)" } ?? reason
        }
        return "\(error)"
    }
}
