// SPDX-License-Identifier: Apache-2.0
import Android
import Cryptography
import Evidence
import Foundation
import Imaging

extension AndroidDriver {
    /// The shared-storage tree pulled with sync v2; a file finished is journaled, so a resumed
    /// job does not pull it again.
    func extractFiles(_ job: RunningJob, files: FileExtraction, listed: [FileExtraction.Listed], total: UInt64) throws {
        var previous: [String: FileRecord] = [:]
        if resumed, let data = FileManager.default.contents(atPath: PhoneJobState.filesPath(in: directory)) {
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let record = try? ExhibitJSON.decoder().decode(FileRecord.self, from: Data(line)) { previous[record.path] = record }
            }
        }
        let journal = try JournalAppender(PhoneJobState.filesPath(in: directory))
        let started = Date()
        try files.extract(
            listed, previous: previous,
            onFile: { [sourceName] record in
                if record.status == .complete { try journal.append(record) }
                try job.checkCancelled(sourceName)
            },
            progress: { pulled in
                job.progress(
                    JobProgress(phase: .acquiring, bytesDone: pulled, totalBytes: total, unreadableSectors: 0, elapsed: Date().timeIntervalSince(started)))
            })
        let counts = Self.counts(files)
        job.log.note(
            "files under \(request.roots.joined(separator: ", ")): \(files.records.count) entries, \(counts[.complete] ?? 0) complete, "
                + "\(counts[.partial] ?? 0) partial, \(counts[.denied] ?? 0) denied, \(counts[.notPulled] ?? 0) not pulled, "
                + "\(counts[.refused] ?? 0) refused; \(Self.pulledBytes(files)) bytes")
        for record in files.records where record.status == .partial || record.status == .denied || record.status == .error {
            // The phone chose the path: one printable line, whatever it holds.
            let shown = DeviceTreePolicy.printable(record.pathHex.map(PhoneAcquisition.bytes(fromHex:)) ?? Array(record.path.utf8))
            job.log.note("  \(record.status.rawValue): \(shown): \(record.error ?? "")", level: .warning)
        }
        for anomaly in files.anomalies { job.log.note("  \(anomaly.logLine)", level: .warning) }
    }

    static func counts(_ files: FileExtraction) -> [FileRecord.Status: Int] {
        Dictionary(grouping: files.records, by: \.status).mapValues(\.count)
    }

    static func pulledBytes(_ files: FileExtraction) -> UInt64 { files.records.reduce(UInt64(0)) { $0 + ($1.bytesReceived ?? 0) } }

    /// Every extracted file read back from the store and compared with the digest taken as it streamed.
    func verifyExtractedFiles(_ job: RunningJob, files: FileExtraction, imaged: Bool) throws -> AcquisitionRecord.Verification {
        guard request.verifyAfterWriting else {
            return AcquisitionRecord.Verification(result: "skipped", method: "not performed (--no-verify)")
        }
        let started = Date()
        var checked = 0
        for record in files.records {
            guard let stored = record.storedAs, let expected = record.sha256 else { continue }
            try job.checkCancelled("\(job.bag)/\(stored)")
            let actual = try DurableFile.sha256(of: "\(job.bag)/\(stored)").hex
            guard actual == expected else {
                throw AcquisitionError(
                    .verifyMismatch, path: "\(job.bag)/\(stored)", detail: "the stored copy hashes to \(actual), the phone's stream to \(expected)")
            }
            checked += 1
        }
        job.log.note("read-back: \(checked) files\(imaged ? " and the image" : "") match their digests")
        return AcquisitionRecord.Verification(
            result: "matched",
            method: "every extracted file re-read from the store and re-hashed with SHA-256 against the digest taken as it streamed"
                + (imaged
                    ? "; each window of the image fsynced, dropped from the page cache and read back from the store while the "
                        + "partition streamed, its GMAC (AES-128-GCM, a key drawn for this job) equal to that of the bytes the phone sent"
                    : ""),
            durationSeconds: Date().timeIntervalSince(started))
    }

    /// What the commands and the file walk did, and the inventory of every file they wrote with
    /// its SHA-256: written into the bag and entered in custody.
    struct Inventory {
        var entries: [(path: String, sha256: String)]
        var sha256: String
        var bytes: UInt64
    }

    func writeAuditLogs(_ job: RunningJob, commands: CommandAudit, files: FileExtraction) throws -> Inventory {
        let bag = job.bag
        try DurableFile.create("\(bag)/\(PhoneExtraction.commandLogPath)", contents: try commands.log(), mode: 0o444)
        try DurableFile.create("\(bag)/\(PhoneExtraction.fileLogPath)", contents: try files.log(), mode: 0o444)
        var entries: [(path: String, sha256: String)] = []
        for record in commands.records {
            entries.append((record.stdoutFile, record.stdoutSHA256))
            if let file = record.stderrFile, let digest = record.stderrSHA256 { entries.append((file, digest)) }
        }
        for record in files.records {
            if let stored = record.storedAs, let digest = record.sha256 { entries.append((stored, digest)) }
        }
        let data = Data(entries.map { "\($0.sha256)  \($0.path)\n" }.joined().utf8)
        try DurableFile.create("\(bag)/\(PhoneExtraction.inventoryPath)", contents: data, mode: 0o444)
        let inventory = Inventory(
            entries: entries, sha256: Digest.sha256(data).hex,
            bytes: entries.reduce(UInt64(0)) { sum, entry in sum + (DurableFile.size(of: "\(bag)/\(entry.path)") ?? 0) })
        let counts = Self.counts(files)
        job.custody.append(
            actor: job.applianceId, action: .logicalExtractionWritten, object: job.object,
            details: [
                "files": String(counts[.complete] ?? 0), "partial": String(counts[.partial] ?? 0), "denied": String(counts[.denied] ?? 0),
                "refused": String(counts[.refused] ?? 0), "anomalies": String(files.anomalies.count),
                "commands": String(commands.records.count), "inventory_sha256": inventory.sha256,
            ])
        return inventory
    }
}
