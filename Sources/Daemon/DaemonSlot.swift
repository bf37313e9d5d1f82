// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import Imaging
import Jobs
import StatusAPI

/// One attached source and its job, as the daemon keeps it. The transitions of a slot's job are
/// pure (they are given the time and say whether they applied), so the rules — one job per slot,
/// none after shutdown began, a stale job's reports ignored — are tested without devices.
struct DaemonSlot {
    var status: SlotStatus
    var arrivedAt: Date
    var cancellation: CancellationFlag?
    var lastSample: (time: Date, bytes: UInt64)?
    /// A look for an interrupted job this disk continues is under way.
    var considering = false
    /// When an interrupted slot was last looked at for resuming.
    var lastConsidered: Date?

    /// A ready slot takes a new job, an interrupted one the job it resumes; nothing else does.
    mutating func claim(
        jobId: String, caseId: String, exhibitId: String, resuming: Bool, cancellation: CancellationFlag, now: Date,
        imageFormat: String? = nil
    ) -> Bool {
        guard self.cancellation == nil,
            (status.state == .ready && status.jobId == nil) || (resuming && status.state == .interrupted)
        else { return false }
        status.state = .acquiring
        status.detail = resuming ? "resuming interrupted job \(jobId)" : nil
        lastSample = nil
        status.caseId = caseId
        status.exhibitId = exhibitId
        status.jobId = jobId
        status.imageFormat = status.kind == .disk ? imageFormat : nil
        status.resumeBy = nil
        status.updatedAt = UTCTimestamp.string(now)
        self.cancellation = cancellation
        return true
    }

    /// A progress report of the slot's own job: phase, bytes, rates and time left.
    mutating func record(_ progress: JobProgress, jobId: String, now: Date) -> Bool {
        guard status.jobId == jobId else { return false }
        let phase: SlotState =
            switch progress.phase {
            case .acquiring: .acquiring
            case .recovering: .recovering
            case .verifying: .verifying
            case .sealing: .sealing
            }
        if phase != status.state { lastSample = nil }
        status.state = phase
        if let last = lastSample, now.timeIntervalSince(last.time) > 0.05, progress.bytesDone >= last.bytes {
            status.currentMBPerSecond = Double(progress.bytesDone - last.bytes) / now.timeIntervalSince(last.time) / 1e6
        }
        lastSample = (now, progress.bytesDone)
        status.bytesDone = progress.bytesDone
        status.unreadableSectors = progress.unreadableSectors
        if progress.elapsed > 0 {
            let average = Double(progress.bytesDone - min(progress.startBytes, progress.bytesDone)) / progress.elapsed
            status.averageMBPerSecond = average / 1e6
            status.etaSeconds = average > 0 ? Double(progress.totalBytes - min(progress.bytesDone, progress.totalBytes)) / average : nil
        }
        status.updatedAt = UTCTimestamp.string(now)
        return true
    }

    /// The end of the slot's own job: its final state, and with a bundle, the bundle's facts.
    mutating func finish(
        jobId: String, state final: SlotState, detail: String?, summary: AcquisitionSummary?, now: Date, resumeBy: ResumeAction? = nil
    ) -> Bool {
        guard status.jobId == jobId else { return false }
        status.state = final
        status.detail = detail
        status.resumeBy = final == .interrupted ? resumeBy ?? .reconnectDevice : nil
        if final == .ready { status.jobId = nil }
        // A sealed phone's last state (a lock screen, say) no longer needs anyone.
        if final == .sealed { status.phoneState = nil }
        status.etaSeconds = nil
        status.currentMBPerSecond = nil
        cancellation = nil
        if let summary {
            status.digests = summary.digests
            status.bundleId = summary.bundleId
            status.bundlePath = summary.bundlePath
            status.bytesDone = summary.sizeBytes
            status.averageMBPerSecond = summary.averageMBPerSecond
            status.unreadableSectors = summary.unreadableSectors
        }
        status.updatedAt = UTCTimestamp.string(now)
        return true
    }

    /// The phone's state during its own job (awaiting authorization, locked …), when it changes.
    mutating func setPhoneState(_ phoneState: PhoneState?, jobId: String, now: Date) -> Bool {
        guard status.jobId == jobId, status.phoneState != phoneState else { return false }
        status.phoneState = phoneState
        status.updatedAt = UTCTimestamp.string(now)
        return true
    }
}
