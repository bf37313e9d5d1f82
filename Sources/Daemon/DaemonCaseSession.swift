// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import Logging
import StatusAPI
import Store
import Synchronization

/// The case session: opened and closed by the examiner, and the next exhibit number of `--auto`.
extension ApplianceDaemon {
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


    // MARK: Exhibit numbers

    func sessionStatus(_ record: Catalog.CaseSessionRecord) throws -> CaseSessionStatus {
        let prefix = configuration.exhibitPrefix ?? "E"
        let used = try catalog.exhibitIds(caseId: record.caseId).compactMap { id -> Int? in
            guard id.hasPrefix(prefix) else { return nil }
            return Int(id.dropFirst(prefix.count))
        }
        return CaseSessionStatus(
            caseId: record.caseId, examiner: record.examiner, auto: record.autoAcquire, openedAt: record.openedAt,
            nextExhibitId: "\(prefix)\((used.max() ?? 0) + 1)")
    }

    func nextExhibitId(after current: String) -> String {
        let prefix = configuration.exhibitPrefix ?? "E"
        let number = Int(current.dropFirst(prefix.count)) ?? 0
        return "\(prefix)\(number + 1)"
    }
}
