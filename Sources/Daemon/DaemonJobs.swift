// SPDX-License-Identifier: Apache-2.0
import Android
import Devices
import Foundation
import HumanText
import Imaging
import Jobs
import Logging
import StatusAPI
import Store
import Synchronization

/// Job scheduling: a slot's job started on threads of its own, its progress and end
/// published, and every running job stopped at shutdown.
extension ApplianceDaemon {
    /// Starts the acquisition of a ready slot as the given exhibit of the open case.
    public func acquire(slot number: Int, exhibitId: String, actor: String? = nil, client: String? = nil, peer: String? = nil) throws(DaemonRequestError) -> SlotStatus {
        let exhibit = exhibitId.trimmingCharacters(in: .whitespaces)
        guard !exhibit.isEmpty else { throw DaemonRequestError(.invalidRequest, "an exhibit number is required") }
        let chosen: (key: String, session: CaseSessionStatus) = try state.withLock { state throws(DaemonRequestError) in
            guard let session = state.session else {
                throw DaemonRequestError(.noCase, "no case is open: run `exhibit case open --case ID --examiner NAME` first")
            }
            guard let (key, slot) = state.slots.first(where: { $0.value.status.slot == number }) else {
                throw DaemonRequestError(.noSuchSlot, "there is no slot \(number)")
            }
            guard slot.status.state == .ready, slot.status.jobId == nil else {
                throw DaemonRequestError(
                    .slotNotReady, "slot \(number) (\(slot.status.device)) is \(slot.status.state.rawValue)"
                        + (slot.status.detail.map { ": \($0)" } ?? ""))
            }
            guard !state.stopping else { throw DaemonRequestError(.stopping, "the daemon is shutting down") }
            return (key, session)
        }
        try? catalog.audit(
            actor: actor ?? chosen.session.examiner, action: .acquisitionRequested, object: "\(chosen.session.caseId)/\(exhibit)",
            details: ["slot": String(number), "client": client ?? "-", "peer": peer ?? "-"])
        startJob(
            slotKey: chosen.key, exhibitId: exhibit, caseId: chosen.session.caseId, examiner: chosen.session.examiner,
            auto: false, resumeJobId: nil)
        return state.withLock { $0.slots[chosen.key]!.status }
    }

    /// `imageFormat`: a resumed disk job's own (its journal's), which the slot shows; nil for the settings'.
    func startJob(
        slotKey: String, exhibitId: String, caseId: String, examiner: String, auto: Bool, resumeJobId: String?,
        imageFormat: ImageFormatChoice? = nil
    ) {
        let jobId = resumeJobId ?? UUID().uuidString.lowercased()
        let format = imageFormat ?? configuration.imageFormatChoice
        let cancellation = CancellationFlag()
        // Claimed under the lock that shutdown takes: a job is either counted and its flag among
        // those shutdown cancels and waits for, or not started at all.
        let claimed: SlotStatus? = state.withLock { state in
            guard !state.stopping, var slot = state.slots[slotKey],
                slot.claim(
                    jobId: jobId, caseId: caseId, exhibitId: exhibitId, resuming: resumeJobId != nil, cancellation: cancellation,
                    now: Date(), imageFormat: format.description)
            else { return nil }
            runningJobs.enter()
            state.slots[slotKey] = slot
            return slot.status
        }
        guard let claimed else { return }
        publishSlot(claimed)
        publishEvent(
            .info, slot: claimed.slot, device: claimed.device,
            "slot \(claimed.slot): " + (resumeJobId == nil ? "acquiring" : "resuming the interrupted acquisition of")
                + " \(claimed.device) as exhibit \(exhibitId) of case \(caseId)"
                + (format == configuration.imageFormatChoice
                    ? "" : " in \(format), the format it began with (the settings say \(configuration.imageFormatChoice))"))
        if claimed.kind == .phone {
            // Only Android phones with USB debugging are ever ready to claim; MTP and Apple phones
            // stay `detected` until their platforms have jobs of their own.
            guard claimed.phoneKind == PhoneKind.androidADB.rawValue else {
                finish(slotKey: slotKey, jobId: jobId, state: .detected, detail: "no job acquires a \(claimed.phoneKind ?? "?") phone yet", summary: nil)
                runningJobs.leave()
                return
            }
            startPhoneJob(claimed, slotKey: slotKey, jobId: jobId, cancellation: cancellation, examiner: examiner, auto: auto, resumed: resumeJobId != nil)
            return
        }
        var request = AcquisitionRequest(
            sourcePath: claimed.device, caseId: caseId, exhibitId: exhibitId, examiner: examiner,
            extraDigests: configuration.extraDigests, segmentSize: configuration.segmentSize,
            verifyAfterWriting: configuration.verify ?? true,
            writablePolicy: Self.policy(readOnly: claimed.readOnly, blocker: claimed.writeBlocker),
            commandLine: [
                "exhibitd", "--store", store.root, "slot \(claimed.slot)",
                resumeJobId != nil ? "resumed" : auto ? "auto" : "requested",
            ],
            jobId: jobId)
        request.resumeJobId = resumeJobId
        request.imageFormat = configuration.imageFormatChoice
        request.checkpointSeconds = configuration.checkpointSeconds ?? request.checkpointSeconds
        let jobRequest = request
        let job = Acquisitions(store: store, logger: jobLogger(slot: claimed.slot))
        let followed = FollowedJob(jobId)
        runJob(slot: claimed.slot) { [self] in
            do throws(JobError) {
                let summary = try job.acquireDisk(
                    jobRequest, cancellation: cancellation,
                    progress: { self.record($0, slotKey: slotKey, jobId: followed.current) },
                    newJob: { self.replaceJob(slotKey: slotKey, followed: followed, with: $0) })
                finish(slotKey: slotKey, jobId: followed.current, state: .sealed, detail: nil, summary: summary)
            } catch {
                let interruptsByKind = (JobStop.cause(of: error) as? AcquisitionError)?.interruptsJob ?? false
                finish(
                    slotKey: slotKey, jobId: followed.current,
                    state: Self.endState(after: error, resumed: resumeJobId != nil, interruptsByKind: interruptsByKind),
                    detail: "\(error)", summary: nil, resumeBy: Self.resumeAction(after: error))
            }
        }
    }

    /// The slot follows the new job that replaced the interrupted one it was taken for (the
    /// device changed while that job was stopped): its progress, its end and its alerts are the
    /// new job's, and the old one, failed, raises no alert of an interruption.
    func replaceJob(slotKey: String, followed: FollowedJob, with newJobId: String) {
        let old = followed.current
        let status: SlotStatus? = state.withLock { state in
            state.alerts.detachedInterruptions[old] = nil
            guard var slot = state.slots[slotKey], slot.status.jobId == old else { return nil }
            slot.status.jobId = newJobId
            slot.status.updatedAt = UTCTimestamp.string(Date())
            state.slots[slotKey] = slot
            return slot.status
        }
        followed.replace(with: newJobId)
        if let status { publishSlot(status) }
    }

    /// How a job's slot ends after `error`: as the job decided, when its lifecycle took it up;
    /// before that (the phone's handshake, the disk's open), an interrupted job taken up again is
    /// still interrupted, as its catalog entry says (nothing of it was touched), and a new job
    /// is interrupted only by an error of the kind that interrupts (`interruptsByKind`).
    static func endState(after error: JobError, resumed: Bool, interruptsByKind: Bool) -> SlotState {
        if let decided = error.stoppedAs { return decided == .interrupted ? .interrupted : .failed }
        return resumed || interruptsByKind ? .interrupted : .failed
    }

    /// A phone's slot after `error`: ready again when a new job met a phone that needs the
    /// technician first (unauthorized, offline, no permission: nothing was taken, the slot waits
    /// for them to fix it and ask again); a job taken up again stays interrupted, its alert
    /// beside the phone's; else as `endState`.
    static func phoneEndState(
        after error: JobError, resumed: Bool, outcome: (interrupted: Bool, phoneState: PhoneState?)
    ) -> SlotState {
        if !resumed, [.unauthorized, .offline, .noPermission].contains(outcome.phoneState) { return .ready }
        return endState(after: error, resumed: resumed, interruptsByKind: outcome.interrupted)
    }

    /// What resumes a job that stopped with `error` (a disk's or a phone's): what the technician is asked to do.
    static func resumeAction(after error: JobError) -> ResumeAction {
        let cause = JobStop.cause(of: error)
        // Full while it ran, or short of room for the rest before it began again.
        if JobStop.isStoreFull(cause) || (cause as? StoreError)?.code == .insufficientSpace { return .freeStoreSpace }
        return (cause as? AcquisitionError)?.code == .sourceBecameWritable ? .makeReadOnly : .reconnectDevice
    }

    func jobLogger(slot: Int) -> Logger {
        var jobLogger = logger
        jobLogger[metadataKey: "slot"] = "\(slot)"
        return jobLogger
    }

    /// Runs a job on a thread of its own, counted (from its claim) until it ends; shutdown waits for them.
    func runJob(slot: Int, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            defer { runningJobs.leave() }
            body()
        }
        thread.name = "exhibit.job.\(slot)"
        thread.start()
    }

    /// A phone job: the phone is opened by its USB port (what udev named), so two phones that
    /// report the same serial are still told apart.
    func startPhoneJob(
        _ claimed: SlotStatus, slotKey: String, jobId: String, cancellation: CancellationFlag, examiner: String, auto: Bool,
        resumed: Bool
    ) {
        let port = (claimed.syspath as NSString).lastPathComponent
        var request = PhoneAcquisitionRequest(
            source: PhoneSource(transport: .usbPort(port)), caseId: claimed.caseId ?? "", exhibitId: claimed.exhibitId ?? "",
            examiner: examiner, physicalPartition: configuration.phonePhysicalPartition,
            extraDigests: configuration.extraDigests, verifyAfterWriting: configuration.verify ?? true)
        request.jobId = jobId
        request.commandLine = [
            "exhibitd", "--store", store.root, "slot \(claimed.slot)", "adb:usb-port:\(port)",
            resumed ? "resumed" : auto ? "auto" : "requested",
        ]
        let jobRequest = request
        let job = Acquisitions(store: store, logger: jobLogger(slot: claimed.slot))
        runJob(slot: claimed.slot) { [self] in
            do throws(JobError) {
                let summary = try job.acquirePhone(
                    jobRequest, cancellation: cancellation,
                    progress: { self.record($0, slotKey: slotKey, jobId: jobId) },
                    phoneState: { self.setPhoneState($0, slotKey: slotKey, jobId: jobId) })
                finish(slotKey: slotKey, jobId: jobId, state: .sealed, detail: nil, summary: summary)
            } catch {
                let outcome = PhoneAcquisition.outcome(of: error)
                setPhoneState(outcome.phoneState, slotKey: slotKey, jobId: jobId)
                finish(
                    slotKey: slotKey, jobId: jobId, state: Self.phoneEndState(after: error, resumed: resumed, outcome: outcome),
                    detail: "\(error)", summary: nil, resumeBy: Self.resumeAction(after: error))
            }
        }
    }

    func setPhoneState(_ phoneState: PhoneState?, slotKey: String, jobId: String) {
        let status: SlotStatus? = state.withLock { state in
            guard var slot = state.slots[slotKey], slot.setPhoneState(phoneState, jobId: jobId, now: Date()) else { return nil }
            state.slots[slotKey] = slot
            return slot.status
        }
        guard let status else { return }
        publishSlot(status)
        if phoneState == .awaitingAuthorization {
            publishEvent(.warning, slot: status.slot, device: status.device, "slot \(status.slot): the phone asks \"Allow USB debugging?\": unlock it and tap Allow")
        }
    }

    func record(_ progress: JobProgress, slotKey: String, jobId: String) {
        let status: SlotStatus? = state.withLock { state in
            guard var slot = state.slots[slotKey], slot.record(progress, jobId: jobId, now: Date()) else { return nil }
            state.slots[slotKey] = slot
            return slot.status
        }
        if let status { publishSlot(status) }
    }

    func finish(
        slotKey: String, jobId: String, state final: SlotState, detail: String?, summary: AcquisitionSummary?, resumeBy: ResumeAction? = nil
    ) {
        let status: SlotStatus? = state.withLock { state in
            guard var slot = state.slots[slotKey],
                slot.finish(jobId: jobId, state: final, detail: detail, summary: summary, now: Date(), resumeBy: resumeBy)
            else { return nil }
            state.slots[slotKey] = slot
            if final != .interrupted { state.alerts.detachedInterruptions[jobId] = nil }
            return slot.status
        }
        guard let status else { return }
        if final == .sealed, let entries = try? catalog.entries() {
            state.withLock { $0.averageImageBytes = Self.averageImageBytes(entries) }
        }
        // Before the slot is published: a job stopped by a full store shows with the store's alert.
        refreshStore()
        publishSlot(status)
        let message =
            switch final {
            case .sealed: "slot \(status.slot): sealed \(status.bundleId ?? "") (SHA-256 \(status.digests["sha256"] ?? "-"))"
            default: "slot \(status.slot): \(final.rawValue): \(detail ?? "")"
            }
        publishEvent(final == .sealed ? .info : .error, slot: status.slot, device: status.device, message)
    }

    /// Stops taking work, cancels every running job (each ends `interrupted`, its work kept and
    /// its catalog entry updated, `reason` in its record) and waits up to `timeout` for them.
    public func shutdown(timeout: TimeInterval, reason: String) -> Bool {
        let flags = state.withLock { state in
            state.stopping = true
            return state.slots.values.compactMap(\.cancellation)
        }
        for flag in flags { flag.cancel(reason: reason) }
        let finished = runningJobs.wait(timeout: .now() + timeout) == .success
        hub.closeAll()
        return finished
    }

    public var runningJobCount: Int {
        state.withLock { $0.slots.values.filter { $0.cancellation != nil }.count }
    }
}

/// The job a slot's run follows: the one it was claimed for, or the new job that replaced it.
final class FollowedJob: Sendable {
    private let id: Mutex<String>

    init(_ id: String) { self.id = Mutex(id) }

    var current: String { id.withLock { $0 } }

    func replace(with newId: String) { id.withLock { $0 = newId } }
}
