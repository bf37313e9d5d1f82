// SPDX-License-Identifier: Apache-2.0
import Devices
import Evidence
import Foundation
import HumanText
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
    let configuration: DaemonConfiguration
    let logger: Logger
    let catalog: Catalog
    let applianceId: String
    let startedAt = UTCTimestamp.string(Date())
    let blockers: WriteBlockerCatalog
    let state = Mutex(State())
    let runningJobs = DispatchGroup()

    struct State {
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

    func publishSlot(_ status: SlotStatus) {
        var message = StatusMessage(.slot)
        message.slot = status
        hub.publish(message)
        refreshAlerts()
    }

}
