// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import HumanText
import Store

/// The last step every acquisition shares, disk or phone: the records are written into the
/// bag, bag-info is made from the record, the bag is sealed, moved into `bundles/` by one
/// rename and entered in the catalog, all under the store's seal lock so that the chain of
/// seals per appliance has no forks.
struct BundlePublication {
    let store: EvidenceStore
    let catalog: Catalog
    let identity: SigningIdentity

    /// Removes the tag files (manifests, bag-info, seal) that a sealing stopped part way left at
    /// the top of a bag; sealing again writes them anew.
    static func removeTagFiles(bag: String) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: bag)) ?? [] where name != "data" {
            try FileManager.default.removeItem(atPath: "\(bag)/\(name)")
        }
    }

    /// - Parameter knownDigests: SHA-256 of payload files already hashed while streaming.
    func publish(
        record: AcquisitionRecord, bag: String, jobId: String, custody: inout CustodyLog, log: ActivityLog,
        knownDigests: [String: String]
    ) throws -> AcquisitionSummary {
        let mediaSHA256 = record.mediaSHA256
        let digests = record.media.digests
        custody.append(
            actor: identity.applianceId, action: .bundleSealing, object: record.bundleId,
            details: ["media_sha256": mediaSHA256, "verification": record.verification.result])
        log.note("sealing bundle \(record.bundleId)")
        let data = "\(bag)/data"
        try DurableFile.create("\(data)/acquisition.json", contents: ExhibitJSON.encoder(pretty: true).encode(record))
        try DurableFile.create("\(data)/case.jsonld", contents: CaseGraph.build(record))
        try DurableFile.create("\(data)/custody.jsonl", contents: custody.data)
        try DurableFile.create("\(data)/acquisition.log", contents: log.data)

        guard !FileManager.default.fileExists(atPath: "\(store.bundlesDirectory)/\(record.bundleId)") else {
            throw StoreError(
                .publish, path: "\(store.bundlesDirectory)/\(record.bundleId)",
                detail: "this job's bundle was already published before the interruption; check it with `exhibit verify`")
        }
        let head = custody.head
        return try store.withSealLock {
            let previous = try catalog.lastSealSHA256(applianceId: identity.applianceId)
            var bagInfo = BagInfo()
            bagInfo.append(.sourceOrganization, record.organization)
            bagInfo.append(.externalIdentifier, "\(record.caseId)/\(record.exhibitId)")
            bagInfo.append(.internalSenderIdentifier, identity.applianceId)
            bagInfo.append(.internalSenderDescription, "\(ToolVersion.name) \(ToolVersion.version) acquisition of \(record.source.path)")
            bagInfo.append(.baggingDate, UTCTimestamp.day(record.finishedAt))
            bagInfo.append(.bagGroupIdentifier, record.caseId)
            bagInfo.append(.bundleFormat, "exhibit-bundle/1")
            bagInfo.append(.bundleId, record.bundleId)
            bagInfo.append(.examiner, record.examiner)
            bagInfo.append(.mediaSize, String(record.media.sizeBytes))
            bagInfo.append(.mediaSHA256, mediaSHA256)
            if let md5 = digests["md5"] { bagInfo.append(.mediaMD5, md5) }
            if let sha1 = digests["sha1"] { bagInfo.append(.mediaSHA1, sha1) }
            if let phone = record.phone {
                bagInfo.append(.phoneMethod, phone.methodAchieved)
                bagInfo.append(.phoneInventorySHA256, phone.inventorySHA256)
            }
            bagInfo.append(.verification, record.verification.result)
            bagInfo.append(.unreadableSectors, String(record.unreadableSectors))
            bagInfo.append(.custodyLogHead, head)
            bagInfo.append(.previousBundleSeal, previous)
            let sealed = try BundleSealer.seal(bag: bag, knownDigests: knownDigests, bagInfo: bagInfo, identity: identity)
            // Recorded before it is moved: a process stopped in between leaves the catalog's chain
            // of seals whole (the next bundle links to this one) and a sealed bag in the work
            // directory, which the store's reconcile publishes. In the other order it would leave a
            // bundle the catalog does not know, and the next seal would fork the chain.
            let destination = store.bundlePath(record.bundleId)
            try catalog.recordSealed(
                .init(
                    id: record.bundleId, jobId: jobId, path: destination, mediaSHA256: mediaSHA256, md5: digests["md5"],
                    sha1: digests["sha1"], sizeBytes: record.media.sizeBytes, unreadableSectors: record.unreadableSectors,
                    verification: record.verification.result, sealSHA256: sealed.sealSHA256, previousSealSHA256: previous,
                    applianceId: identity.applianceId))
            let published: String
            do {
                published = try store.publish(bag: bag, bundleId: record.bundleId)
            } catch {
                // The move did not happen: the record is taken back (nothing was sealed after it,
                // the lock is held) and the job ends as if it had never been recorded.
                if FileManager.default.fileExists(atPath: bag), !FileManager.default.fileExists(atPath: destination) {
                    try? catalog.forgetSealed(bundleId: record.bundleId, jobId: jobId)
                }
                throw error
            }
            return AcquisitionSummary(
                jobId: jobId, bundleId: record.bundleId, bundlePath: published, caseId: record.caseId,
                exhibitId: record.exhibitId, source: record.source.path, sizeBytes: record.media.sizeBytes,
                mediaSHA256: mediaSHA256, digests: digests, durationSeconds: Date().timeIntervalSince(record.startedAt),
                averageMBPerSecond: record.averageMBPerSecond, verification: record.verification.result,
                unreadableSectors: record.unreadableSectors, sealSHA256: sealed.sealSHA256)
        }
    }
}
