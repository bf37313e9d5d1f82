// SPDX-License-Identifier: Apache-2.0
import Foundation
import StatusAPI

/// What the panel knows of the daemon, built from the status API's messages.
public struct PanelModel: Sendable {
    public enum Connection: Sendable, Equatable {
        case connecting
        case connected
        /// The daemon's socket cannot be reached; the reason is for the log, not the screen.
        case unreachable(String)
    }

    public var connection: Connection = .connecting
    public var daemon: DaemonInfo?
    public var session: CaseSessionStatus?
    /// By slot number.
    public var slots: [SlotStatus] = []
    public var alerts: [AlertStatus] = []
    public var store: StoreStatus?

    public init() {}

    public mutating func apply(_ message: StatusMessage) {
        switch message.type {
        case .snapshot:
            daemon = message.daemon
            session = message.session
            slots = (message.slots ?? []).sorted { $0.slot < $1.slot }
            alerts = message.alerts ?? []
            store = message.store
            connection = .connected
        case .slot:
            guard let slot = message.slot else { return }
            slots.removeAll { $0.slot == slot.slot }
            slots.append(slot)
            slots.sort { $0.slot < $1.slot }
        case .slotRemoved:
            guard let slot = message.slot else { return }
            slots.removeAll { $0.slot == slot.slot && $0.syspath == slot.syspath }
        case .session:
            session = message.session
        case .alerts:
            alerts = message.alerts ?? []
        case .store:
            store = message.store
        case .event, .ok, .error:
            break
        }
    }

    public func slot(_ number: Int?) -> SlotStatus? {
        slots.first { $0.slot == number }
    }

    /// Alerts needing a person first, then those already seen.
    public var orderedAlerts: [AlertStatus] {
        alerts.filter { $0.acknowledgedBy == nil } + alerts.filter { $0.acknowledgedBy != nil }
    }
}
