// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Imaging
import Logging
import Store

/// One kind of source behind the one job lifecycle: a disk or image file, an Android phone (MTP
/// and iOS phones next). A driver reads its source into the job's bag and says what to seal; the
/// lifecycle (`JobLifecycle.run`) owns the lease, the log, sealing, publication and how a stop ends.
protocol AcquisitionDriver: AnyObject {
    /// Whether the job is in the catalog yet (a phone job enters it once the phone has said who it is).
    var catalogued: Bool { get }
    /// Reads the source into `job.bag`; returns the record to seal.
    func acquire(_ job: RunningJob) throws -> FinishedAcquisition
    /// Whether a stop with `error` at this point leaves the job to resume rather than failing it.
    func stopLeavesJobToResume(_ error: any Error) -> Bool
    /// Custody's details of a stop besides the job and the reason (a disk job: the offset reached).
    var stopDetails: [String: String] { get }
    /// Keeps the stop and custody so far in the driver's own journal, for the run that resumes it.
    func keepStop(reason: String, custody: CustodyLog)
}

/// What a driver hands over for sealing: the record and the SHA-256 of bag files it already knows
/// (hashed while they streamed), which publication then does not read again.
struct FinishedAcquisition {
    var record: AcquisitionRecord
    var knownDigests: [String: String]
}

/// A job while it runs: what every driver reads and writes through the lifecycle.
final class RunningJob {
    let lifecycle: JobLifecycle
    let lease: EvidenceStore.JobLease
    let bag: String
    let log: ActivityLog
    let logger: Logger
    let cancellation: CancellationFlag
    let progress: (JobProgress) -> Void
    var custody: CustodyLog

    init(
        lifecycle: JobLifecycle, lease: EvidenceStore.JobLease, bundleId: String, custody: CustodyLog, logger: Logger,
        cancellation: CancellationFlag, progress: @escaping (JobProgress) -> Void
    ) throws {
        self.lifecycle = lifecycle
        self.lease = lease
        self.bag = "\(lease.directory)/\(bundleId)"
        self.custody = custody
        self.logger = logger
        self.cancellation = cancellation
        self.progress = progress
        self.log = try ActivityLog(logger: logger, path: "\(lease.directory)/acquisition.log")
    }

    var identity: SigningIdentity { lifecycle.identity }
    var applianceId: String { lifecycle.identity.applianceId }
    var jobId: String { lifecycle.jobId }
    /// "exhibit E1 of case C-1", as custody and the audit name the job's object.
    var object: String { lifecycle.object }

    /// The record's appliance block: who acquired, with which certificate, on which host.
    var appliance: AcquisitionRecord.Appliance {
        let certificate = identity.certificate
        return .init(
            id: applianceId, certificateSHA256: certificate.sha256Fingerprint.hex, certificateSubject: certificate.subject,
            certificateIssuer: certificate.issuer, hostname: ProcessInfo.processInfo.hostName)
    }

    /// The first lines of the log and the first custody entry of a run: a new job, or one resumed
    /// after `resumed`'s reason.
    func noteStart(source: String, commandLine: [String], startedAt: Date, resumed: (reason: String, offset: UInt64?)?) {
        let lifecycle = lifecycle
        let head = "\(ToolVersion.name) \(ToolVersion.version) on appliance \(applianceId); job \(jobId)"
        var details = ["appliance": applianceId, "source": source, "job": jobId]
        if let resumed {
            log.note("\(head) resumed" + (resumed.offset.map { " at byte \($0)" } ?? "") + " after: \(resumed.reason)")
            details["stopped_by"] = resumed.reason
            if let offset = resumed.offset { details["offset"] = String(offset) }
            custody.append(actor: lifecycle.examiner, action: .acquisitionResumed, object: object, details: details)
        } else {
            log.note(head)
            custody.append(actor: lifecycle.examiner, action: .acquisitionStarted, object: object, details: details, time: startedAt)
        }
        log.note("command: \(commandLine.joined(separator: " "))")
        log.note("case \(lifecycle.caseId), exhibit \(lifecycle.exhibitId), examiner \(lifecycle.examiner)")
    }

    /// Stops at the next step if the job was cancelled, naming the source and where it was.
    func checkCancelled(_ path: String, at offset: UInt64? = nil) throws(AcquisitionError) {
        if cancellation.isCancelled { throw AcquisitionError(.cancelled, path: path, offset: offset) }
    }
}
