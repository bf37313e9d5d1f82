// SPDX-License-Identifier: Apache-2.0
import Android
import Evidence
import Foundation
import Imaging

extension AndroidDriver {
    /// The record of what was extracted, how, and what the examiner must know of it.
    func record(
        _ job: RunningJob, session: Session, commands: CommandAudit, files: FileExtraction, image: PhysicalImage?, physical: PhysicalPlan,
        inventory: Inventory, verification: AcquisitionRecord.Verification
    ) -> FinishedAcquisition {
        let device = session.device
        let physicalSize = image?.record.sizeBytes ?? 0
        let mediaSize = image != nil ? physicalSize : inventory.bytes
        let sectorSize: UInt32 = image != nil ? 512 : 1
        let pulledBytes = Self.pulledBytes(files)
        let counts = Self.counts(files)
        let phone = PhoneExtraction(
            connection: .init(
                transport: connection.transport.kind, address: connection.device, protocolVersion: "0x" + String(connection.version, radix: 16),
                maximumPayload: connection.maximumPayload, banner: connection.banner.properties, features: connection.banner.features.sorted(),
                authenticated: connection.authenticated, applianceKeySHA256: session.keySHA256,
                bytesSetAsideBeforeHandshake: connection.transport.bytesSetAside),
            device: device, methodAchieved: image != nil ? "physical" : "logical", methodsNotAchieved: physical.methodsNotAchieved,
            commands: commands.records.count, commandsFailed: commands.failed,
            files: .init(
                roots: request.roots, entries: files.records.count, complete: counts[.complete] ?? 0, partial: counts[.partial] ?? 0,
                denied: counts[.denied] ?? 0, notPulled: counts[.notPulled] ?? 0, refused: counts[.refused] ?? 0, bytes: pulledBytes),
            inventorySHA256: inventory.sha256, physical: image?.record, anomalies: files.anomalies)
        let finished = Date()
        let elapsed = finished.timeIntervalSince(state.startedAt)
        var record = AcquisitionRecord(
            bundleId: state.bundleId, caseId: state.caseId, exhibitId: state.exhibitId, examiner: state.examiner, organization: organization,
            appliance: job.appliance,
            tool: .init(name: ToolVersion.name, version: ToolVersion.version, commandLine: state.commandLine),
            source: .phone(
                path: sourceName, address: connection.device, sizeBytes: mediaSize, sectorSize: sectorSize, model: device.model,
                vendor: device.manufacturer, serial: device.serial, transport: connection.transport.kind),
            startedAt: state.startedAt, finishedAt: finished, durationSeconds: elapsed,
            averageMBPerSecond: Double(pulledBytes + physicalSize) / max(elapsed, 0.001) / 1e6,
            media: .init(
                sizeBytes: mediaSize, logicalSectors: mediaSize / UInt64(sectorSize), trailingBytes: mediaSize % UInt64(sectorSize),
                digests: image?.digests ?? ["sha256": inventory.sha256]),
            image: .init(format: RawImage().name, files: image.map { [$0.file] } ?? []),
            readPolicy: .init(
                bufferBytes: request.pipeline.bufferSize, attemptsPerSector: 1,
                errorGranularity: image != nil ? "the stream (a phone read error ends it)" : "one file",
                fill: "none: a file the phone fails to send is kept as received and marked partial"),
            unreadableRanges: [], unreadableSectors: 0, verification: verification,
            warnings: warnings(device: device, files: files, imaged: image != nil))
        record.phone = phone
        if !state.interruptions.isEmpty {
            record.interruptions = state.interruptions.map { .init(at: $0.at, resumedAtOffset: $0.offset, reason: $0.reason) }
        }
        var knownDigests: [String: String] = [:]
        for entry in inventory.entries { knownDigests[entry.path] = entry.sha256 }
        if let image { knownDigests[image.file.path] = image.file.sha256 }
        knownDigests[PhoneExtraction.inventoryPath] = inventory.sha256
        return FinishedAcquisition(record: record, knownDigests: knownDigests)
    }

    private func warnings(device: PhoneExtraction.Device, files: FileExtraction, imaged: Bool) -> [String] {
        var warnings: [String] = []
        let counts = Self.counts(files)
        if !request.verifyAfterWriting { warnings.append("The extracted files were not read back and re-hashed (--no-verify).") }
        if let requested = request.physicalPartition, !imaged {
            warnings.append("A physical image of \(requested) was requested but not made: \(device.rootDetail).")
        }
        if device.lockState == "locked" {
            warnings.append("The phone's lock screen was showing: files protected until first unlock may be missing.")
        }
        if !files.anomalies.isEmpty {
            warnings.append(
                "The phone's listings held \(files.anomalies.count) entries that were not followed as they stood (names that are no "
                    + "file name, a directory listing itself, a walk past its bounds); see phone.anomalies and \(PhoneExtraction.fileLogPath).")
        }
        if counts[.partial] ?? 0 > 0 || counts[.denied] ?? 0 > 0 {
            warnings.append("\(counts[.partial] ?? 0) files are partial and \(counts[.denied] ?? 0) entries were denied; see \(PhoneExtraction.fileLogPath).")
        }
        if !state.interruptions.isEmpty {
            warnings.append("The acquisition was interrupted \(state.interruptions.count) time(s) and resumed; see interruptions.")
        }
        return warnings
    }
}
