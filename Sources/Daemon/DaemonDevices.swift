// SPDX-License-Identifier: Apache-2.0
import Devices
import EvidenceSources
import Foundation
import HumanText
import Jobs
import Logging
import StatusAPI
import Synchronization

/// Devices: udev events and the periodic re-check become slots, write-protection states, and a
/// disk or phone that an open case (or an interrupted job) wants acquired.
extension ApplianceDaemon {
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

    func refreshSystemDisks() {
        let disks = SystemDisks.find(storePath: store.root, configured: configuration.systemDisks ?? [])
        state.withLock { $0.systemDisks = disks }
    }

    /// `present`: the disk was already attached when the daemon started (its first enumeration),
    /// so it is not an arrival that an `--auto` case acquires; after a restart, disks sealed by
    /// the previous daemon stay sealed instead of being acquired again.
    func refreshDisk(syspath: String, devnode: String, removed: Bool, present: Bool = false) {
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
    func consider(slotKey: String) {
        let thread = Thread { [self] in
            let slot = state.withLock { $0.slots[slotKey] }
            guard let slot else { return }
            let policy = Self.policy(readOnly: slot.status.readOnly, blocker: slot.status.writeBlocker)
            let lookup = Acquisitions(store: store, logger: logger)
            var resumable: ResumableJob? = nil
            do {
                resumable = try withEvidenceSource(at: slot.status.device, writablePolicy: policy) { source in
                    guard let job = try lookup.interruptedDiskJob(of: source.opened) else { return nil }
                    try store.ensureRoom(forImageOf: source.identity.sizeBytes - job.copiedBytes)
                    return job
                }
            } catch {
                logger.info("slot \(slot.status.slot): no interrupted job resumed: \(error)")
            }
            var start: (exhibitId: String, caseId: String, examiner: String, auto: Bool, resume: ResumableJob?)? = nil
            state.withLock { state in
                guard var current = state.slots[slotKey] else { return }
                current.considering = false
                state.slots[slotKey] = current
                if let resumable {
                    start = (resumable.exhibitId, resumable.caseId, resumable.examiner, false, resumable)
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
                    auto: start.auto, resumeJobId: start.resume?.jobId, imageFormat: start.resume?.imageFormat)
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

    func refreshUSB(syspath: String, devnode: String?, removed: Bool, added: Bool) {
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
    func resumeInterruptedPhoneJob(slotKey: String, serial: String?) {
        guard let serial, !serial.isEmpty,
            let entry = try? catalog.entries().last(where: {
                $0.state == .interrupted && $0.sourceSerial == serial && $0.sourcePath.hasPrefix("adb:")
            })
        else { return }
        startJob(
            slotKey: slotKey, exhibitId: entry.exhibitId, caseId: entry.caseId, examiner: entry.examiner, auto: false,
            resumeJobId: entry.jobId)
    }

    func removeSlot(_ syspath: String, reason: String) {
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
}
