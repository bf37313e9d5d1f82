// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import Imaging
import Logging
import StatusAPI
import Store
import Synchronization

/// Alerts and the store: what needs the technician, the store's free space, and the event feed.
extension ApplianceDaemon {
    // MARK: Alerts and the store

    /// Re-derives the alerts and publishes them when they changed.
    func refreshAlerts() {
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
    func refreshStore() {
        guard let capacity = try? store.capacity() else { return }
        let changed: StoreStatus? = state.withLock { state in
            let status = StoreStatus(
                path: store.root, freeBytes: capacity.free, totalBytes: capacity.total, averageImageBytes: state.averageImageBytes,
                keptFree: SpaceReserve.stopsBelow(keepFree: EvidenceStore.recordReserve))
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

    func publishEvent(_ level: EventLevel, slot: Int?, device: String?, _ text: String) {
        var message = StatusMessage(.event)
        message.event = DaemonEvent(level: level, slot: slot, device: device, message: text)
        hub.publish(message)
        switch level {
        case .error: logger.error("\(text)")
        case .warning: logger.warning("\(text)")
        case .info: logger.info("\(text)")
        }
    }
}
