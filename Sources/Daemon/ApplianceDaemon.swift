// SPDX-License-Identifier: Apache-2.0
import Android
import Devices
import Evidence
import EvidenceSources
import Foundation
import HumanText
import Imaging
import Jobs
import Logging
import StatusAPI
import Store
import Synchronization

/// The appliance's state: one slot per attached source, the open case, and one job per slot.
///
/// Device events (from the monitor thread), the periodic sysfs re-check, status requests (one
/// thread per client) and job progress (one thread per job) all go through one lock; no I/O on
/// a source happens under it. Each job runs on threads of its own, so a slow or failing source
/// never holds up another.
public final class ApplianceDaemon: Sendable {
    public let store: EvidenceStore
    public let hub = StatusHub()
    public let mode: DiscoveryMode
    private let configuration: DaemonConfiguration
    private let logger: Logger
    private let catalog: Catalog
    private let applianceId: String
    private let startedAt = UTCTimestamp.string(Date())
    private let blockers: WriteBlockerCatalog
    private let state = Mutex(State())
    private let runningJobs = DispatchGroup()

    private struct State {
        var slots: [String: DaemonSlot] = [:]
        var session: CaseSessionStatus?
        var sessionOpenedAt: Date?
        var systemDisks: [String: String] = [:]
        var stopping = false
        var alerts = AlertBoard()
        var store: StoreStatus?
        /// The average size of the images sealed in this store.
        var averageImageBytes: UInt64?
    }

    /// Disks that are never evidence: RAM disks, compressed swap, and assemblies of other disks
    /// (device-mapper, MD), whose members are acquired instead.
    static let ignoredPrefixes = ["ram", "zram", "dm-", "md"]

    public init(store: EvidenceStore, configuration: DaemonConfiguration, mode: DiscoveryMode, logger: Logger) throws {
        self.store = store
        self.configuration = configuration
        self.mode = mode
        self.logger = logger
        self.blockers = configuration.writeBlockerCatalog
        catalog = try store.catalog()
        applianceId = try store.settings().applianceId
        // Jobs of an earlier daemon that died are interrupted, not forgotten: their work stays
        // under work/ and the catalog says so.
        try store.reconcile(catalog: catalog)
        let entries = try catalog.entries()
        let board = AlertBoard(acknowledged: try catalog.events(), interrupted: entries)
        state.withLock {
            $0.alerts = board
            $0.averageImageBytes = Self.averageImageBytes(entries)
        }
        if let open = try catalog.openCaseSession() {
            let session = try sessionStatus(open)
            state.withLock {
                $0.session = session
                $0.sessionOpenedAt = UTCTimestamp.date(open.openedAt)
            }
        }
        refreshSystemDisks()
        refreshStore()
        refreshAlerts()
    }

    // MARK: Devices

    /// A uevent or an enumerated device.
    public func handle(_ event: DeviceEvent) {
        switch (event.subsystem, event.devtype) {
        case ("block", "disk"):
            refreshDisk(
                syspath: event.syspath, devnode: event.devnode ?? "/dev/\(event.sysname)", removed: event.action == .remove,
                present: event.action == .present)
        case ("usb", "usb_device"):
            refreshUSB(syspath: event.syspath, devnode: event.devnode, removed: event.action == .remove, added: event.action == .add)
        default:
            break
        }
    }

    /// Re-reads sysfs for every block device: catches `blockdev --setro` (which emits no
    /// uevent), a write blocker's switch, and any event the kernel dropped.
    public func recheck() {
        refreshSystemDisks()
        refreshStore()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/block")) ?? []
        var seen: Set<String> = []
        for name in names where !FileManager.default.fileExists(atPath: "/sys/class/block/\(name)/partition") {
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/class/block/\(name)") else { continue }
            let syspath = URL(fileURLWithPath: link, relativeTo: URL(fileURLWithPath: "/sys/class/block/")).standardizedFileURL.path
            seen.insert(syspath)
            // A disk udev is still setting up (its node's group, the read-only rule) comes with its
            // udev event; opened before that it is EACCES (seen under QEMU emulation).
            if Self.udevStillSettingUp(syspath) { continue }
            refreshDisk(syspath: syspath, devnode: "/dev/\(name)", removed: false)
        }
        let gone = state.withLock { state in
            state.slots.filter { $0.value.status.kind == .disk && !seen.contains($0.key) }.map(\.key)
        }
        for syspath in gone { refreshDisk(syspath: syspath, devnode: "", removed: true) }
    }

    /// True while udevd runs and has not yet recorded the disk (`/run/udev/data/bMAJ:MIN`).
    static func udevStillSettingUp(_ syspath: String) -> Bool {
        guard FileManager.default.fileExists(atPath: "/run/udev/control"),
            let number = SysfsBlockDevice.readTrimmed("\(syspath)/dev")
        else { return false }
        return !FileManager.default.fileExists(atPath: "/run/udev/data/b\(number)")
    }

    private func refreshSystemDisks() {
        let disks = SystemDisks.find(storePath: store.root, configured: configuration.systemDisks ?? [])
        state.withLock { $0.systemDisks = disks }
    }

    /// `present`: the disk was already attached when the daemon started (its first enumeration),
    /// so it is not an arrival that an `--auto` case acquires; after a restart, disks sealed by
    /// the previous daemon stay sealed instead of being acquired again.
    private func refreshDisk(syspath: String, devnode: String, removed: Bool, present: Bool = false) {
        let name = (syspath as NSString).lastPathComponent
        if Self.ignoredPrefixes.contains(where: name.hasPrefix) { return }
        let sectors = SysfsBlockDevice.readTrimmed("\(syspath)/size").flatMap(UInt64.init) ?? 0
        if removed || sectors == 0 {
            removeSlot(syspath, reason: removed ? "removed" : "no medium")
            return
        }
        let isSystem = state.withLock { $0.systemDisks[name] != nil }
        if isSystem {
            removeSlot(syspath, reason: "system disk")
            return
        }
        guard let number = SysfsBlockDevice.readTrimmed("\(syspath)/dev"), case let parts = number.split(separator: ":"), parts.count == 2,
            let major = UInt32(parts[0]), let minor = UInt32(parts[1])
        else { return }
        let sysfs = SysfsBlockDevice(major: major, minor: minor)
        // Names and partitions are read once, for a new slot; the every-second re-check of a
        // known slot only needs the flag, the size and the bridge.
        let isNew = state.withLock { $0.slots[syspath] == nil }
        let names = isNew ? sysfs.identification() : nil
        let partitions = isNew ? sysfs.partitions().map(\.name) : []
        let usb = USBDeviceDescription.ancestor(ofBlockDevice: syspath)
        let blocker = blockers.name(of: usb?.product)
        let readOnly = sysfs.readOnly
        let now = UTCTimestamp.string(Date())

        var announce: (SlotStatus, String)? = nil
        var shouldConsider = false
        state.withLock { state in
            if var slot = state.slots[syspath], slot.status.state == .interrupted {
                slot.status.readOnly = readOnly
                state.slots[syspath] = slot
            } else if var slot = state.slots[syspath] {
                guard [.ready, .refused, .detected].contains(slot.status.state) else { return }
                let before = slot.status
                slot.status.readOnly = readOnly
                slot.status.sizeBytes = sectors * 512
                slot.status.writeBlocker = blocker
                (slot.status.state, slot.status.detail) = Self.protectionState(devnode: devnode, readOnly: readOnly, blocker: blocker)
                if slot.status != before {
                    slot.status.updatedAt = now
                    announce = (slot.status, slot.status.state == .ready ? "\(devnode) is read-only and ready" : slot.status.detail ?? "")
                }
                state.slots[syspath] = slot
            } else if let names {
                let used = Set(state.slots.values.map(\.status.slot))
                let number = (1...).first { !used.contains($0) }!
                let (slotState, detail) = Self.protectionState(devnode: devnode, readOnly: readOnly, blocker: blocker)
                let status = SlotStatus(
                    slot: number, kind: .disk, device: devnode, syspath: syspath, model: names.model, vendor: names.vendor,
                    serial: names.serial, transport: names.transport, sizeBytes: sectors * 512,
                    logicalSectorSize: SysfsBlockDevice.readTrimmed("\(syspath)/queue/logical_block_size").flatMap(UInt32.init), readOnly: readOnly,
                    writeBlocker: blocker, usbId: usb?.product.description, phoneKind: nil,
                    partitions: partitions, state: slotState, detail: detail, caseId: nil, exhibitId: nil,
                    jobId: nil, bytesDone: 0, currentMBPerSecond: nil, averageMBPerSecond: nil, etaSeconds: nil,
                    unreadableSectors: 0, digests: [:], bundleId: nil, bundlePath: nil, updatedAt: now)
                state.slots[syspath] = DaemonSlot(status: status, arrivedAt: present ? .distantPast : Date())
                announce = (status, "slot \(number): \(devnode) attached, \(sectors * 512) bytes; " + (detail ?? "read-only, ready"))
            }
            // A disk that became ready, or whose job was interrupted (every 10 s, e.g. until the
            // store has room again), may continue an interrupted job.
            if var slot = state.slots[syspath], !slot.considering, !state.stopping,
                (slot.status.state == .ready && slot.status.jobId == nil && announce != nil)
                    || (slot.status.state == .interrupted && readOnly == true
                        && Date().timeIntervalSince(slot.lastConsidered ?? .distantPast) >= 10)
            {
                slot.considering = true
                slot.lastConsidered = Date()
                state.slots[syspath] = slot
                shouldConsider = true
            }
        }
        if let (status, message) = announce {
            publishSlot(status)
            publishEvent(status.state == .refused ? .warning : .info, slot: status.slot, device: devnode, message)
        }
        if shouldConsider { consider(slotKey: syspath) }
    }

    /// Off the caller's thread (it reads the disk): continues the interrupted job this disk
    /// belongs to (same serial, model, size, first and last MiB), or, in a case opened with
    /// `--auto`, acquires a disk that arrived after the case was opened as the next exhibit.
    private func consider(slotKey: String) {
        let thread = Thread { [self] in
            let slot = state.withLock { $0.slots[slotKey] }
            guard let slot else { return }
            let policy = Self.policy(readOnly: slot.status.readOnly, blocker: slot.status.writeBlocker)
            let lookup = DiskAcquisition(store: store, logger: logger)
            var resumable: ResumableJob? = nil
            do {
                resumable = try withEvidenceSource(at: slot.status.device, writablePolicy: policy) { source in
                    guard let job = try lookup.interruptedJob(of: source.opened) else { return nil }
                    try store.ensureRoom(forImageOf: source.identity.sizeBytes - job.copiedBytes)
                    return job
                }
            } catch {
                logger.info("slot \(slot.status.slot): no interrupted job resumed: \(error)")
            }
            var start: (exhibitId: String, caseId: String, examiner: String, auto: Bool, resume: String?)? = nil
            state.withLock { state in
                guard var current = state.slots[slotKey] else { return }
                current.considering = false
                state.slots[slotKey] = current
                if let resumable {
                    start = (resumable.exhibitId, resumable.caseId, resumable.examiner, false, resumable.jobId)
                } else if current.status.state == .ready, current.status.jobId == nil, !state.stopping,
                    let session = state.session, session.auto, let opened = state.sessionOpenedAt, current.arrivedAt >= opened
                {
                    start = (session.nextExhibitId, session.caseId, session.examiner, true, nil)
                    state.session?.nextExhibitId = nextExhibitId(after: session.nextExhibitId)
                }
            }
            if let start {
                startJob(
                    slotKey: slotKey, exhibitId: start.exhibitId, caseId: start.caseId, examiner: start.examiner,
                    auto: start.auto, resumeJobId: start.resume)
            }
        }
        thread.name = "exhibit.consider"
        thread.start()
    }

    static func policy(readOnly: Bool?, blocker: String?) -> WritableSourcePolicy {
        readOnly != true && blocker != nil ? .hardwareWriteBlocker(blocker!) : .refuse
    }

    static func protectionState(devnode: String, readOnly: Bool?, blocker: String?) -> (SlotState, String?) {
        if readOnly == true { return (.ready, nil) }
        if let blocker { return (.ready, "behind hardware write blocker \(blocker); the kernel read-only flag is off") }
        return (.refused, "refused: writable. \(devnode): \(EvidenceSource.writableRefusal(devnode).detail ?? "")")
    }

    private func refreshUSB(syspath: String, devnode: String?, removed: Bool, added: Bool) {
        // A phone plugged in again where a finished or interrupted job left its slot (a slot
        // is not removed while its job runs) gets a fresh slot.
        if removed || added { removeSlot(syspath, reason: removed ? "removed" : "plugged in again") }
        if removed { return }
        guard let usb = USBDeviceDescription(syspath: syspath),
            let phone = USBClassifier.phoneKind(product: usb.product, interfaces: usb.interfaces)
        else { return }
        // Android phones with USB debugging are acquired over ADB; MTP-only and Apple phones are
        // shown so the technician knows they were seen, and why nothing happens.
        let (slotState, detail): (SlotState, String) =
            phone == .androidADB
            ? (.ready, "Android phone with USB debugging on: give it an exhibit number; it may ask to \"Allow USB debugging\" for this appliance")
            : (.detected, "phone detected (\(phone.rawValue)); this appliance acquires Android phones over ADB only: turn on USB debugging")
        let status: SlotStatus? = state.withLock { state in
            guard state.slots[syspath] == nil else { return nil }
            let used = Set(state.slots.values.map(\.status.slot))
            let number = (1...).first { !used.contains($0) }!
            let status = SlotStatus(
                slot: number, kind: .phone, device: devnode ?? syspath, syspath: syspath, model: usb.productName,
                vendor: usb.manufacturer, serial: usb.serial, transport: "usb", sizeBytes: 0, logicalSectorSize: nil,
                readOnly: nil, writeBlocker: nil, usbId: usb.product.description, phoneKind: phone.rawValue, partitions: [],
                state: slotState, detail: detail,
                caseId: nil, exhibitId: nil, jobId: nil, bytesDone: 0, currentMBPerSecond: nil, averageMBPerSecond: nil,
                etaSeconds: nil, unreadableSectors: 0, digests: [:], bundleId: nil, bundlePath: nil,
                updatedAt: UTCTimestamp.string(Date()))
            state.slots[syspath] = DaemonSlot(status: status, arrivedAt: Date())
            return status
        }
        if let status {
            publishSlot(status)
            publishEvent(.info, slot: status.slot, device: status.device, "slot \(status.slot): \(status.device): \(status.detail ?? "")")
            if status.state == .ready { resumeInterruptedPhoneJob(slotKey: syspath, serial: usb.serial) }
        }
    }

    /// A phone plugged back in continues its interrupted job: the same USB serial as the phone
    /// the job recorded. (The job itself checks the phone's own serial before it takes anything.)
    private func resumeInterruptedPhoneJob(slotKey: String, serial: String?) {
        guard let serial, !serial.isEmpty,
            let entry = try? catalog.entries().last(where: {
                $0.state == .interrupted && $0.sourceSerial == serial && $0.sourcePath.hasPrefix("adb:")
            })
        else { return }
        startJob(
            slotKey: slotKey, exhibitId: entry.exhibitId, caseId: entry.caseId, examiner: entry.examiner, auto: false,
            resumeJobId: entry.jobId)
    }

    private func removeSlot(_ syspath: String, reason: String) {
        let removed: SlotStatus? = state.withLock { state in
            guard let slot = state.slots[syspath] else { return nil }
            // A running job keeps its slot until it ends (a vanished source ends it as interrupted).
            if [.acquiring, .recovering, .verifying, .sealing].contains(slot.status.state) { return nil }
            state.slots[syspath] = nil
            if slot.status.state == .interrupted, let jobId = slot.status.jobId {
                state.alerts.detachedInterruptions[jobId] = AlertBoard.DetachedInterruption(
                    jobId: jobId, caseId: slot.status.caseId ?? "", exhibitId: slot.status.exhibitId ?? "",
                    device: slot.status.device, detail: slot.status.detail)
            }
            return slot.status
        }
        guard let removed else { return }
        var message = StatusMessage(.slotRemoved)
        message.slot = removed
        hub.publish(message)
        refreshAlerts()
        publishEvent(.info, slot: removed.slot, device: removed.device, "slot \(removed.slot): \(removed.device) \(reason)")
    }

    // MARK: Cases and jobs

    public func openCase(caseId: String, examiner: String, auto: Bool, client: String? = nil, peer: String? = nil) throws -> CaseSessionStatus {
        let record = try catalog.openCaseSession(caseId: caseId, examiner: examiner, autoAcquire: auto)
        let session = try sessionStatus(record)
        state.withLock {
            $0.session = session
            $0.sessionOpenedAt = UTCTimestamp.date(record.openedAt) ?? Date()
        }
        try? catalog.audit(actor: examiner, action: .caseOpened, object: caseId, details: ["auto": auto ? "yes" : "no", "client": client ?? "-", "peer": peer ?? "-"])
        var message = StatusMessage(.session)
        message.session = session
        hub.publish(message)
        publishEvent(.info, slot: nil, device: nil, "case \(caseId) opened by \(examiner)" + (auto ? "; new read-only disks are acquired automatically" : ""))
        return session
    }

    public func closeCase(actor: String? = nil, client: String? = nil, peer: String? = nil) throws -> String? {
        let closed = try catalog.closeCaseSession()
        state.withLock {
            $0.session = nil
            $0.sessionOpenedAt = nil
        }
        if let closed {
            try? catalog.audit(actor: actor ?? applianceId, action: .caseClosed, object: closed, details: ["client": client ?? "-", "peer": peer ?? "-"])
            hub.publish(StatusMessage(.session))
            publishEvent(.info, slot: nil, device: nil, "case \(closed) closed")
        }
        return closed
    }

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

    private func startJob(
        slotKey: String, exhibitId: String, caseId: String, examiner: String, auto: Bool, resumeJobId: String?
    ) {
        let jobId = resumeJobId ?? UUID().uuidString.lowercased()
        let cancellation = CancellationFlag()
        // Claimed under the lock that shutdown takes: a job is either counted and its flag among
        // those shutdown cancels and waits for, or not started at all.
        let claimed: SlotStatus? = state.withLock { state in
            guard !state.stopping, var slot = state.slots[slotKey],
                slot.claim(
                    jobId: jobId, caseId: caseId, exhibitId: exhibitId, resuming: resumeJobId != nil, cancellation: cancellation,
                    now: Date())
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
                + " \(claimed.device) as exhibit \(exhibitId) of case \(caseId)")
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
        request.checkpointSeconds = configuration.checkpointSeconds ?? request.checkpointSeconds
        let jobRequest = request
        let job = DiskAcquisition(store: store, logger: jobLogger(slot: claimed.slot))
        runJob(slot: claimed.slot) { [self] in
            do throws(JobError) {
                let summary = try job.run(jobRequest, cancellation: cancellation) { progress in
                    self.record(progress, slotKey: slotKey, jobId: jobId)
                }
                finish(slotKey: slotKey, jobId: jobId, state: .sealed, detail: nil, summary: summary)
            } catch {
                // The job's own decision; before it was catalogued, the kind of error decides.
                let interrupted = error.stoppedAs.map { $0 == .interrupted } ?? ((error.underlying as? AcquisitionError)?.interruptsJob ?? false)
                finish(
                    slotKey: slotKey, jobId: jobId, state: interrupted ? .interrupted : .failed,
                    detail: "\(error)", summary: nil)
            }
        }
    }

    private func jobLogger(slot: Int) -> Logger {
        var jobLogger = logger
        jobLogger[metadataKey: "slot"] = "\(slot)"
        return jobLogger
    }

    /// Runs a job on a thread of its own, counted (from its claim) until it ends; shutdown waits for them.
    private func runJob(slot: Int, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            defer { runningJobs.leave() }
            body()
        }
        thread.name = "exhibit.job.\(slot)"
        thread.start()
    }

    /// A phone job: the phone is opened by its USB port (what udev named), so two phones that
    /// report the same serial are still told apart.
    private func startPhoneJob(
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
        let job = PhoneAcquisition(store: store, logger: jobLogger(slot: claimed.slot))
        runJob(slot: claimed.slot) { [self] in
            do throws(JobError) {
                let summary = try job.run(
                    jobRequest, cancellation: cancellation,
                    progress: { self.record($0, slotKey: slotKey, jobId: jobId) },
                    phoneState: { self.setPhoneState($0, slotKey: slotKey, jobId: jobId) })
                finish(slotKey: slotKey, jobId: jobId, state: .sealed, detail: nil, summary: summary)
            } catch {
                let outcome = PhoneAcquisition.outcome(of: error)
                setPhoneState(outcome.phoneState, slotKey: slotKey, jobId: jobId)
                if [.unauthorized, .offline, .noPermission].contains(outcome.phoneState) {
                    // Nothing was taken: the slot waits for the technician to fix it and ask again.
                    finish(slotKey: slotKey, jobId: jobId, state: .ready, detail: "\(error)", summary: nil)
                } else {
                    finish(
                        slotKey: slotKey, jobId: jobId,
                        state: (error.stoppedAs.map { $0 == .interrupted } ?? outcome.interrupted) ? .interrupted : .failed, detail: "\(error)",
                        summary: nil)
                }
            }
        }
    }

    private func setPhoneState(_ phoneState: PhoneState?, slotKey: String, jobId: String) {
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

    private func record(_ progress: JobProgress, slotKey: String, jobId: String) {
        let status: SlotStatus? = state.withLock { state in
            guard var slot = state.slots[slotKey], slot.record(progress, jobId: jobId, now: Date()) else { return nil }
            state.slots[slotKey] = slot
            return slot.status
        }
        if let status { publishSlot(status) }
    }

    private func finish(slotKey: String, jobId: String, state final: SlotState, detail: String?, summary: AcquisitionSummary?) {
        let status: SlotStatus? = state.withLock { state in
            guard var slot = state.slots[slotKey], slot.finish(jobId: jobId, state: final, detail: detail, summary: summary, now: Date())
            else { return nil }
            state.slots[slotKey] = slot
            if final != .interrupted { state.alerts.detachedInterruptions[jobId] = nil }
            return slot.status
        }
        guard let status else { return }
        if final == .sealed, let entries = try? catalog.entries() {
            state.withLock { $0.averageImageBytes = Self.averageImageBytes(entries) }
            refreshStore()
        }
        publishSlot(status)
        let message =
            switch final {
            case .sealed: "slot \(status.slot): sealed \(status.bundleId ?? "") (SHA-256 \(status.digests["sha256"] ?? "-"))"
            default: "slot \(status.slot): \(final.rawValue): \(detail ?? "")"
            }
        publishEvent(final == .sealed ? .info : .error, slot: status.slot, device: status.device, message)
    }

    /// Stops taking work, cancels every running job (each ends `interrupted`, its work kept and
    /// its catalog entry updated) and waits up to `timeout` for them.
    public func shutdown(timeout: TimeInterval) -> Bool {
        let flags = state.withLock { state in
            state.stopping = true
            return state.slots.values.compactMap(\.cancellation)
        }
        for flag in flags { flag.cancel() }
        let finished = runningJobs.wait(timeout: .now() + timeout) == .success
        hub.closeAll()
        return finished
    }

    public var runningJobCount: Int {
        state.withLock { $0.slots.values.filter { $0.cancellation != nil }.count }
    }

    // MARK: Status

    public func snapshot() -> StatusMessage {
        var message = StatusMessage(.snapshot)
        let (slots, session, systemDisks) = state.withLock { state in
            (state.slots.values.map(\.status).sorted { $0.slot < $1.slot }, state.session, state.systemDisks)
        }
        message.daemon = DaemonInfo(
            version: ToolVersion.version, pid: getpid(), store: store.root, applianceId: applianceId,
            discovery: mode == .udev ? "udev" : "kernel", degraded: mode.isDegraded,
            degradedReason: { if case .kernel(let reason) = mode { reason } else { nil } }(),
            startedAt: startedAt, storeFreeBytes: try? store.freeBytes(), systemDisks: systemDisks)
        message.session = session
        message.slots = slots
        (message.alerts, message.store) = state.withLock { ($0.alerts.current, $0.store) }
        message.jobs = ((try? catalog.entries()) ?? []).reversed().prefix(50).map { $0 }
        return message
    }

    /// A one-line summary for systemd's STATUS=.
    public var statusLine: String {
        state.withLock { state in
            let counts = Dictionary(grouping: state.slots.values, by: \.status.state).mapValues(\.count)
            let parts = SlotState.allCases.compactMap { slotState in counts[slotState].map { "\($0) \(slotState.rawValue)" } }
            let slots = parts.isEmpty ? "no sources" : parts.joined(separator: ", ")
            return (state.session.map { "case \($0.caseId)\($0.auto ? " (auto)" : ""); " } ?? "no case open; ") + slots
                + (mode.isDegraded ? "; degraded: no udevd" : "")
        }
    }

    private func publishSlot(_ status: SlotStatus) {
        var message = StatusMessage(.slot)
        message.slot = status
        hub.publish(message)
        refreshAlerts()
    }

    // MARK: Alerts and the store

    /// Re-derives the alerts and publishes them when they changed.
    private func refreshAlerts() {
        let degradedReason: String? = if case .kernel(let reason) = mode { reason } else { nil }
        let changed: [AlertStatus]? = state.withLock { state in
            let slots = state.slots.values.map(\.status)
            return state.alerts.update(slots: slots, store: state.store, degradedReason: degradedReason, now: Date())
                ? state.alerts.current : nil
        }
        guard let changed else { return }
        var message = StatusMessage(.alerts)
        message.alerts = changed
        hub.publish(message)
    }

    /// Marks an alert seen: first in the audit trail, then for every client.
    public func acknowledge(alertId: String, actor: String?, client: String?, peer: String? = nil) throws(DaemonRequestError) -> AlertStatus {
        let now = UTCTimestamp.string(Date())
        let (found, examiner) = state.withLock { state in (state.alerts.current.first { $0.id == alertId }, state.session?.examiner) }
        guard let found else { throw DaemonRequestError(.noSuchAlert, "there is no alert \(alertId)") }
        let who = actor ?? examiner ?? "technician"
        do {
            try catalog.audit(
                actor: who, action: AlertBoard.auditAction, object: alertId,
                details: ["kind": found.kind.rawValue, "client": client ?? "-", "peer": peer ?? "-", "detail": found.detail ?? "-"])
        } catch {
            throw DaemonRequestError(.failed, "recording the acknowledgement of \(alertId): \(error)")
        }
        let (alert, all) = state.withLock { state in (state.alerts.acknowledge(alertId, by: who, at: now), state.alerts.current) }
        var message = StatusMessage(.alerts)
        message.alerts = all
        hub.publish(message)
        return alert ?? found
    }

    /// Re-reads the store's free space; publishes it when it moved by a megabyte or more, or
    /// crossed the almost-full line.
    private func refreshStore() {
        guard let capacity = try? store.capacity() else { return }
        let changed: StoreStatus? = state.withLock { state in
            let status = StoreStatus(
                path: store.root, freeBytes: capacity.free, totalBytes: capacity.total, averageImageBytes: state.averageImageBytes)
            if let last = state.store, last.almostFull == status.almostFull, last.averageImageBytes == status.averageImageBytes,
                (last.freeBytes > status.freeBytes ? last.freeBytes - status.freeBytes : status.freeBytes - last.freeBytes) < 1_000_000
            {
                return nil
            }
            state.store = status
            return status
        }
        guard let changed else { return }
        var message = StatusMessage(.store)
        message.store = changed
        hub.publish(message)
        refreshAlerts()
    }

    static func averageImageBytes(_ entries: [CatalogEntry]) -> UInt64? {
        let sealed = entries.filter { $0.state == .sealed && $0.sizeBytes > 0 }
        guard !sealed.isEmpty else { return nil }
        return sealed.reduce(0) { $0 + $1.sizeBytes } / UInt64(sealed.count)
    }

    private func publishEvent(_ level: EventLevel, slot: Int?, device: String?, _ text: String) {
        var message = StatusMessage(.event)
        message.event = DaemonEvent(level: level, slot: slot, device: device, message: text)
        hub.publish(message)
        switch level {
        case .error: logger.error("\(text)")
        case .warning: logger.warning("\(text)")
        case .info: logger.info("\(text)")
        }
    }

    // MARK: Exhibit numbers

    private func sessionStatus(_ record: Catalog.CaseSessionRecord) throws -> CaseSessionStatus {
        let prefix = configuration.exhibitPrefix ?? "E"
        let used = try catalog.exhibitIds(caseId: record.caseId).compactMap { id -> Int? in
            guard id.hasPrefix(prefix) else { return nil }
            return Int(id.dropFirst(prefix.count))
        }
        return CaseSessionStatus(
            caseId: record.caseId, examiner: record.examiner, auto: record.autoAcquire, openedAt: record.openedAt,
            nextExhibitId: "\(prefix)\((used.max() ?? 0) + 1)")
    }

    private func nextExhibitId(after current: String) -> String {
        let prefix = configuration.exhibitPrefix ?? "E"
        let number = Int(current.dropFirst(prefix.count)) ?? 0
        return "\(prefix)\(number + 1)"
    }
}
