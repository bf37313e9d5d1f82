// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import HumanText
import StatusAPI
import Store

/// The daemon's alerts, derived from its slots, the store and the discovery mode each time one
/// of them changes, with the time each alert was first raised and who acknowledged it. An alert
/// ends when its condition does; an acknowledgement only stops it standing out.
struct AlertBoard {
    /// A job that ended interrupted and has no slot any more: an earlier daemon's, or one whose
    /// disk was unplugged. It stays an alert until the job is resumed and ends otherwise.
    struct DetachedInterruption {
        var jobId: String
        var caseId: String
        var exhibitId: String
        var device: String
        var detail: String?
    }

    private(set) var current: [AlertStatus] = []
    private var raisedAt: [String: String] = [:]
    private var acknowledgements: [String: (by: String, at: String)] = [:]
    var detachedInterruptions: [String: DetachedInterruption] = [:]

    /// Restores acknowledgements from the audit trail, so a restart does not raise seen alerts again.
    init(acknowledged events: [Catalog.Event] = [], interrupted entries: [CatalogEntry] = []) {
        for event in events where event.action == Self.auditAction.rawValue {
            acknowledgements[event.object] = (event.actor, event.time)
        }
        for entry in entries where entry.state == .interrupted {
            detachedInterruptions[entry.jobId] = DetachedInterruption(
                jobId: entry.jobId, caseId: entry.caseId, exhibitId: entry.exhibitId, device: entry.sourcePath, detail: entry.error)
        }
    }

    static let auditAction = CustodyAction.alertAcknowledged

    /// Recomputes the list; true when it changed.
    mutating func update(slots: [SlotStatus], store: StoreStatus?, degradedReason: String?, now: Date) -> Bool {
        var alerts: [AlertStatus] = []
        func raise(_ id: String, _ kind: AlertStatus.Kind, _ fill: (inout AlertStatus) -> Void = { _ in }) {
            var alert = AlertStatus(id: id, kind: kind, raisedAt: raisedAt[id] ?? UTCTimestamp.string(now))
            fill(&alert)
            if let acknowledgement = acknowledgements[id] {
                alert.acknowledgedBy = acknowledgement.by
                alert.acknowledgedAt = acknowledgement.at
            }
            alerts.append(alert)
        }
        if let degradedReason {
            raise("daemon-degraded", .daemonDegraded) { $0.detail = degradedReason }
        }
        if let store, store.almostFull {
            raise("store-almost-full", .storeAlmostFull) { $0.detail = "\(store.freeBytes) bytes free of \(store.totalBytes)" }
        }
        let slotJobs = Set(slots.compactMap(\.jobId))
        for slot in slots.sorted(by: { $0.slot < $1.slot }) {
            let fill: (inout AlertStatus) -> Void = { alert in
                alert.slot = slot.slot
                alert.device = slot.device
                alert.caseId = slot.caseId
                alert.exhibitId = slot.exhibitId
                alert.detail = slot.detail
                alert.resumeBy = slot.resumeBy
            }
            switch slot.phoneState {
            case .awaitingAuthorization, .unauthorized:
                raise("phone-unauthorized:\(slot.syspath)", .phoneUnauthorized) {
                    fill(&$0)
                    if slot.phoneState == .awaitingAuthorization {
                        $0.detail = "the phone shows \"Allow USB debugging?\": unlock it, tick \"Always allow from this computer\" and tap Allow"
                    }
                }
            case .locked:
                raise("phone-locked:\(slot.syspath)", .phoneLocked) {
                    fill(&$0)
                    $0.detail = "the phone's screen is locked: unlock it and keep it unlocked while it is acquired"
                }
            case .noPermission:
                raise("phone-no-permission:\(slot.syspath)", .phoneNoPermission, fill)
            case .offline:
                raise("phone-offline:\(slot.syspath)", .phoneOffline, fill)
            default:
                break
            }
            switch slot.state {
            case .refused:
                raise("source-refused:\(slot.syspath)", .sourceRefused) {
                    fill(&$0)
                    $0.fix = "blockdev --setro \(slot.device)"
                }
            case .failed:
                raise("job-failed:\(slot.jobId ?? slot.syspath)", .jobFailed, fill)
            case .interrupted:
                raise("job-interrupted:\(slot.jobId ?? slot.syspath)", .jobInterrupted) {
                    fill(&$0)
                    if slot.resumeBy == .makeReadOnly { $0.fix = "blockdev --setro \(slot.device)" }
                }
            default:
                break
            }
        }
        for job in detachedInterruptions.values.sorted(by: { $0.jobId < $1.jobId }) where !slotJobs.contains(job.jobId) {
            raise("job-interrupted:\(job.jobId)", .jobInterrupted) {
                $0.device = job.device
                $0.caseId = job.caseId
                $0.exhibitId = job.exhibitId
                $0.detail = job.detail
            }
        }
        let ids = Set(alerts.map(\.id))
        raisedAt = Dictionary(uniqueKeysWithValues: alerts.map { ($0.id, $0.raisedAt) })
        acknowledgements = acknowledgements.filter { ids.contains($0.key) }
        guard alerts != current else { return false }
        current = alerts
        return true
    }

    /// Marks a current alert acknowledged; nil when there is no such alert.
    mutating func acknowledge(_ id: String, by actor: String, at time: String) -> AlertStatus? {
        guard let index = current.firstIndex(where: { $0.id == id }) else { return nil }
        acknowledgements[id] = (actor, time)
        current[index].acknowledgedBy = actor
        current[index].acknowledgedAt = time
        return current[index]
    }
}
