// SPDX-License-Identifier: Apache-2.0
import Acquisition
import Cryptography
import Evidence
import Foundation
import Logging
import Store

/// What the technician asked for.
public struct AcquisitionRequest: Sendable {
    public var sourcePath: String
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    /// Digests besides SHA-256 (which is always computed).
    public var extraDigests: [DigestAlgorithm]
    public var segmentSize: UInt64?
    public var verifyAfterWriting: Bool
    public var writablePolicy: WritableSourcePolicy
    public var commandLine: [String]
    public var pipeline: PipelineConfiguration
    /// The job's identifier, chosen by the caller so it can follow the job before it starts.
    public var jobId: String

    public init(
        sourcePath: String, caseId: String, exhibitId: String, examiner: String,
        extraDigests: [DigestAlgorithm] = [], segmentSize: UInt64? = nil, verifyAfterWriting: Bool = true,
        writablePolicy: WritableSourcePolicy = .refuse, commandLine: [String] = CommandLine.arguments,
        pipeline: PipelineConfiguration = PipelineConfiguration(), jobId: String = UUID().uuidString.lowercased()
    ) {
        self.jobId = jobId
        self.sourcePath = sourcePath
        self.caseId = caseId
        self.exhibitId = exhibitId
        self.examiner = examiner
        self.extraDigests = extraDigests
        self.segmentSize = segmentSize
        self.verifyAfterWriting = verifyAfterWriting
        self.writablePolicy = writablePolicy
        self.commandLine = commandLine
        self.pipeline = pipeline
    }
}

/// What `exhibit acquire --json` prints.
public struct AcquisitionSummary: Codable, Sendable {
    public var jobId: String
    public var bundleId: String
    public var bundlePath: String
    public var caseId: String
    public var exhibitId: String
    public var source: String
    public var sizeBytes: UInt64
    public var mediaSHA256: String
    public var digests: [String: String]
    public var durationSeconds: Double
    public var averageMBPerSecond: Double
    public var verification: String
    public var unreadableSectors: UInt64
    public var sealSHA256: String
}

/// Where a job is, for progress lines and the daemon's status.
public struct JobProgress: Sendable {
    public enum Phase: String, Sendable { case acquiring, verifying, sealing }
    public var phase: Phase
    public var bytesDone: UInt64
    public var totalBytes: UInt64
    public var unreadableSectors: UInt64
    public var elapsed: TimeInterval
}

/// A failure of a job as a whole, with the stage it happened in.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let stage: String
    public let underlying: any Error & Sendable
    public let jobId: String?

    public var description: String { "\(stage): \(underlying)" }
}

/// Acquires one disk or image file into a sealed bundle in the store.
public struct DiskAcquisition: Sendable {
    public let store: EvidenceStore
    public let logger: Logger

    public init(store: EvidenceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func run(
        _ request: AcquisitionRequest, cancellation: CancellationFlag = CancellationFlag(),
        progress: @escaping (JobProgress) -> Void = { _ in }
    ) throws(JobError) -> AcquisitionSummary {
        func stage<T>(_ name: String, _ jobId: String? = nil, _ body: () throws -> T) throws(JobError) -> T {
            do { return try body() } catch { throw JobError(stage: name, underlying: error as any Error & Sendable, jobId: jobId) }
        }
        let settings = try stage("store") { try store.settings() }
        let identity = try stage("keys") { try store.signingIdentity() }
        let catalog = try stage("catalog") { try store.catalog() }
        try stage("catalog") { try catalog.markAbandonedJobs(isRunning: store.isJobRunning) }

        return try stage("source") {
            try withEvidenceSource(at: request.sourcePath, writablePolicy: request.writablePolicy) { source in
                try store.ensureRoom(forImageOf: source.identity.sizeBytes)
                return try acquire(
                    source: source, request: request, settings: settings, identity: identity, catalog: catalog,
                    cancellation: cancellation, progress: progress)
            }
        }
    }

    private func acquire(
        source: borrowing EvidenceSource, request: AcquisitionRequest, settings: EvidenceStore.Settings,
        identity: SigningIdentity, catalog: Catalog, cancellation: CancellationFlag,
        progress: @escaping (JobProgress) -> Void
    ) throws -> AcquisitionSummary {
        let started = Date()
        let jobId = request.jobId
        let bundleId = Self.bundleId(caseId: request.caseId, exhibitId: request.exhibitId, at: started, jobId: jobId)
        let sourceIdentity = source.identity
        var jobLogger = logger
        jobLogger[metadataKey: "job.id"] = "\(jobId)"
        jobLogger[metadataKey: "device.path"] = "\(sourceIdentity.path)"
        let log = ActivityLog(logger: jobLogger)
        var custody = CustodyLog()
        let object = "exhibit \(request.exhibitId) of case \(request.caseId)"

        let lease = try store.beginJob(id: jobId)
        try catalog.beginJob(
            id: jobId, caseId: request.caseId, exhibitId: request.exhibitId, examiner: request.examiner,
            sourcePath: sourceIdentity.path, sourceModel: sourceIdentity.model, sourceSerial: sourceIdentity.serial,
            sizeBytes: sourceIdentity.sizeBytes)
        try catalog.audit(
            actor: request.examiner, action: "acquisition-started", object: object,
            details: ["job": jobId, "source": sourceIdentity.path])

        do {
            let bag = "\(lease.directory)/\(bundleId)"
            let imageDirectory = "\(bag)/data/image"
            try FileManager.default.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)

            log.note("\(ToolVersion.name) \(ToolVersion.version) on appliance \(identity.applianceId); job \(jobId)")
            log.note("command: \(request.commandLine.joined(separator: " "))")
            log.note("case \(request.caseId), exhibit \(request.exhibitId), examiner \(request.examiner)")
            log.note(
                "source \(sourceIdentity.path): \(sourceIdentity.kind.rawValue), \(sourceIdentity.sizeBytes) bytes, "
                    + "logical sector \(sourceIdentity.logicalSectorSize), physical sector \(sourceIdentity.physicalSectorSize), "
                    + "model \(sourceIdentity.model ?? "-"), serial \(sourceIdentity.serial ?? "-"), transport \(sourceIdentity.transport ?? "-")")
            log.note("write protection: \(sourceIdentity.writeProtection.summary)")
            var warnings: [String] = []
            if let blocker = sourceIdentity.writeProtection.hardwareWriteBlocker {
                warnings.append("The kernel read-only flag was off; writes were stopped by the hardware write blocker \(blocker).")
            }
            if sourceIdentity.writeProtection.writableOverride {
                warnings.append("The source was writable; its refusal was overridden with --allow-writable-source.")
            }
            if let mounts = sourceIdentity.mountedAt {
                warnings.append("The source or its partitions were mounted at \(mounts.joined(separator: ", ")).")
            }
            for warning in warnings { log.note("WARNING: \(warning)", level: .warning) }
            custody.append(
                actor: request.examiner, action: "acquisition-started", object: object,
                details: ["appliance": identity.applianceId, "source": sourceIdentity.path, "job": jobId],
                time: started)
            custody.append(
                actor: identity.applianceId, action: "write-protection-verified", object: sourceIdentity.path,
                details: ["evidence": sourceIdentity.writeProtection.summary])

            // Read → hash → write.
            let writer = RawImageWriter(
                directory: imageDirectory, baseName: Self.fileSafe(request.exhibitId), totalSize: sourceIdentity.sizeBytes,
                segmentSize: request.segmentSize)
            let algorithms = [DigestAlgorithm.sha256] + request.extraDigests.filter { $0 != .sha256 }.sorted()
            let digesters = algorithms.map { StreamDigester($0) }
            let segmented = writer.fileNames.count > 1
            let segmentDigester = segmented
                ? RangeDigester(rangeSize: request.segmentSize!, totalSize: sourceIdentity.sizeBytes, label: "segment SHA-256")
                : nil
            var consumers: [any StreamConsumer] = digesters
            if let segmentDigester { consumers.append(segmentDigester) }
            consumers.append(writer)
            log.note(
                "reading with \(request.pipeline.bufferCount) × \(request.pipeline.bufferSize)-byte buffers; digests "
                    + algorithms.map(\.displayName).joined(separator: ", ")
                    + (segmented ? "; \(writer.fileNames.count) segments of \(request.segmentSize!) bytes" : ""))
            let outcome = try Pipeline.run(
                source.reader, into: consumers, configuration: request.pipeline, cancellation: cancellation
            ) {
                progress(
                    JobProgress(
                        phase: .acquiring, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes,
                        unreadableSectors: $0.unreadableSectors, elapsed: $0.elapsed))
            }
            var digests: [String: String] = [:]
            for digester in digesters { digests[digester.algorithm.rawValue] = digester.result!.hex }
            let mediaSHA256 = digests["sha256"]!
            let unreadableCount = outcome.unreadable.reduce(0) { $0 + $1.sectorCount }
            let rate = Double(outcome.bytesRead) / max(outcome.elapsed, 0.001) / 1e6
            log.note(
                "read \(outcome.bytesRead) bytes in \(String(format: "%.2f", outcome.elapsed)) s "
                    + "(\(String(format: "%.1f", rate)) MB/s); " + algorithms.map { "\($0.displayName) \(digests[$0.rawValue]!)" }.joined(separator: ", "))
            if outcome.unreadable.isEmpty {
                log.note("no unreadable sectors")
            } else {
                log.note("\(unreadableCount) unreadable sectors, zero-filled at their own offsets:", level: .warning)
                for range in outcome.unreadable {
                    log.note(
                        "  LBA \(range.firstSector)-\(range.lastSector) (\(range.sectorCount) sectors, "
                            + "bytes \(range.byteOffset)-\(range.byteOffset + range.byteLength - 1)): \(range.errorName) after \(range.attemptsPerSector) attempts",
                        level: .warning)
                }
            }
            custody.append(
                actor: identity.applianceId, action: "image-written", object: object,
                details: [
                    "bytes": String(outcome.bytesRead), "sha256": mediaSHA256,
                    "unreadable_sectors": String(unreadableCount), "files": writer.fileNames.joined(separator: " "),
                ])

            let segmentDigests = segmentDigester?.results.map(\.hex) ?? [mediaSHA256]
            let imageFiles = zip(writer.fileNames, segmentDigests).map { name, digest in
                AcquisitionRecord.ImageFile(
                    path: "data/image/\(name)", sizeBytes: DurableFile.size(of: "\(imageDirectory)/\(name)") ?? 0, sha256: digest)
            }

            // Read back what the store holds.
            var verification = AcquisitionRecord.Verification(
                result: "skipped", method: "not performed (--no-verify)", sha256: nil, durationSeconds: nil,
                windowSize: nil, windowSHA256: nil)
            if request.verifyAfterWriting {
                try catalog.setJobState(jobId, state: "verifying")
                let windowSize = VerificationWindows.size(for: sourceIdentity.sizeBytes)
                let stream = StreamDigester(.sha256)
                let windows = RangeDigester(rangeSize: windowSize, totalSize: sourceIdentity.sizeBytes, label: "window SHA-256")
                let readback = try Pipeline.run(
                    try ImageFiles(paths: writer.paths), into: [stream, windows], configuration: request.pipeline,
                    cancellation: cancellation
                ) {
                    progress(
                        JobProgress(
                            phase: .verifying, bytesDone: $0.bytesDone, totalBytes: $0.totalBytes,
                            unreadableSectors: unreadableCount, elapsed: $0.elapsed))
                }
                let readbackSHA256 = stream.result!.hex
                verification = AcquisitionRecord.Verification(
                    result: readbackSHA256 == mediaSHA256 ? "matched" : "mismatched",
                    method: "image files fsynced, dropped from the page cache, read back and re-hashed with SHA-256",
                    sha256: readbackSHA256, durationSeconds: readback.elapsed, windowSize: windowSize,
                    windowSHA256: windows.results.map(\.hex))
                log.note("read-back SHA-256 \(readbackSHA256): \(verification.result) (\(String(format: "%.2f", readback.elapsed)) s)")
                custody.append(
                    actor: identity.applianceId, action: "image-verified", object: object,
                    details: ["sha256": readbackSHA256, "result": verification.result])
                guard readbackSHA256 == mediaSHA256 else {
                    throw AcquisitionError(
                        .verifyMismatch, path: imageDirectory,
                        detail: "the stored image hashes to \(readbackSHA256), the source stream to \(mediaSHA256)")
                }
            } else {
                log.note("read-back verification skipped (--no-verify)", level: .warning)
                warnings.append("The written image was not read back and re-hashed (--no-verify).")
            }

            // Records.
            progress(JobProgress(phase: .sealing, bytesDone: outcome.bytesRead, totalBytes: sourceIdentity.sizeBytes, unreadableSectors: unreadableCount, elapsed: Date().timeIntervalSince(started)))
            try catalog.setJobState(jobId, state: "sealing")
            let finished = Date()
            let sectors = sourceIdentity.sectorCount
            let record = AcquisitionRecord(
                bundleId: bundleId, caseId: request.caseId, exhibitId: request.exhibitId, examiner: request.examiner,
                organization: settings.organization,
                appliance: .init(
                    id: identity.applianceId, certificateSHA256: identity.certificate.sha256Fingerprint.hex,
                    certificateSubject: identity.certificate.subject, certificateIssuer: identity.certificate.issuer,
                    hostname: ProcessInfo.processInfo.hostName),
                tool: .init(name: ToolVersion.name, version: ToolVersion.version, commandLine: request.commandLine),
                source: sourceIdentity, startedAt: started, finishedAt: finished,
                durationSeconds: finished.timeIntervalSince(started), averageMBPerSecond: rate,
                media: .init(
                    sizeBytes: outcome.bytesRead, logicalSectors: sectors.sectors, trailingBytes: sectors.remainderBytes,
                    digests: digests),
                image: .init(format: "raw", segmentSize: segmented ? request.segmentSize : nil, files: imageFiles),
                readPolicy: .init(
                    bufferBytes: request.pipeline.bufferSize, attemptsPerSector: source.reader.attemptsPerSector,
                    errorGranularity: "one logical sector (\(sourceIdentity.logicalSectorSize) bytes)",
                    fill: "zeros at the unreadable sector's own offset"),
                unreadableRanges: outcome.unreadable, unreadableSectors: unreadableCount, verification: verification,
                warnings: warnings)
            custody.append(
                actor: identity.applianceId, action: "bundle-sealing", object: bundleId,
                details: ["media_sha256": mediaSHA256, "verification": verification.result])
            log.note("sealing bundle \(bundleId)")
            let data = "\(bag)/data"
            try DurableFile.create("\(data)/acquisition.json", contents: ExhibitJSON.encoder(pretty: true).encode(record))
            try DurableFile.create("\(data)/case.jsonld", contents: CaseGraph.build(record))
            try DurableFile.create("\(data)/custody.jsonl", contents: custody.data)
            try DurableFile.create("\(data)/acquisition.log", contents: log.data)

            var knownDigests: [String: String] = [:]
            for file in imageFiles { knownDigests[file.path] = file.sha256 }
            let summary = try store.withSealLock {
                let previous = try catalog.lastSealSHA256(applianceId: identity.applianceId)
                var bagInfo: [(label: String, value: String)] = [
                    ("Source-Organization", settings.organization),
                    ("External-Identifier", "\(request.caseId)/\(request.exhibitId)"),
                    ("Internal-Sender-Identifier", identity.applianceId),
                    ("Internal-Sender-Description", "\(ToolVersion.name) \(ToolVersion.version) acquisition of \(sourceIdentity.path)"),
                    ("Bagging-Date", UTCTimestamp.day(finished)),
                    ("Bag-Group-Identifier", request.caseId),
                    ("Exhibit-Bundle-Format", "exhibit-bundle/1"),
                    ("Exhibit-Examiner", request.examiner),
                    ("Exhibit-Media-Size", String(outcome.bytesRead)),
                    ("Exhibit-Media-SHA256", mediaSHA256),
                ]
                if let md5 = digests["md5"] { bagInfo.append(("Exhibit-Media-MD5", md5)) }
                if let sha1 = digests["sha1"] { bagInfo.append(("Exhibit-Media-SHA1", sha1)) }
                bagInfo += [
                    ("Exhibit-Verification", verification.result),
                    ("Exhibit-Unreadable-Sectors", String(unreadableCount)),
                    ("Custody-Log-Head-SHA256", custody.head),
                    ("Previous-Bundle-Seal-SHA256", previous),
                ]
                let sealed = try BundleSealer.seal(bag: bag, knownDigests: knownDigests, bagInfo: bagInfo, identity: identity)
                let published = try store.publish(bag: bag, bundleId: bundleId)
                try catalog.recordSealed(
                    .init(
                        id: bundleId, jobId: jobId, path: published, mediaSHA256: mediaSHA256, md5: digests["md5"],
                        sha1: digests["sha1"], sizeBytes: outcome.bytesRead, unreadableSectors: unreadableCount,
                        verification: verification.result, sealSHA256: sealed.sealSHA256, previousSealSHA256: previous,
                        applianceId: identity.applianceId))
                return AcquisitionSummary(
                    jobId: jobId, bundleId: bundleId, bundlePath: published, caseId: request.caseId,
                    exhibitId: request.exhibitId, source: sourceIdentity.path, sizeBytes: outcome.bytesRead,
                    mediaSHA256: mediaSHA256, digests: digests, durationSeconds: Date().timeIntervalSince(started),
                    averageMBPerSecond: rate, verification: verification.result, unreadableSectors: unreadableCount,
                    sealSHA256: sealed.sealSHA256)
            }
            store.removeWork(lease)
            try catalog.audit(
                actor: identity.applianceId, action: "bundle-sealed", object: bundleId,
                details: ["media_sha256": mediaSHA256, "seal_sha256": summary.sealSHA256])
            jobLogger.info("sealed \(summary.bundlePath)")
            return summary
        } catch {
            let interrupted = (error as? AcquisitionError)?.interruptsJob ?? false
            try? catalog.setJobState(jobId, state: interrupted ? "interrupted" : "failed", error: "\(error)")
            try? catalog.audit(
                actor: identity.applianceId, action: interrupted ? "acquisition-interrupted" : "acquisition-failed",
                object: object, details: ["job": jobId, "error": "\(error)"])
            if interrupted {
                // The partial work stays for resumption; its lock is released with the lease.
                lease.release()
            } else {
                store.removeWork(lease)
            }
            throw error
        }
    }

    /// `CASE-EXHIBIT-YYYYMMDDTHHMMSSZ-xxxxxxxx`: sortable, unique, and safe as a file name.
    static func bundleId(caseId: String, exhibitId: String, at date: Date, jobId: String) -> String {
        let stamp = UTCTimestamp.string(date).prefix(19).replacingOccurrences(of: "-", with: "")
            .replacingOccurrences(of: ":", with: "")
        return "\(fileSafe(caseId))-\(fileSafe(exhibitId))-\(stamp)Z-\(jobId.prefix(8))"
    }

    /// Case and exhibit numbers as parts of file names: anything but letters, digits, `.`, `_`
    /// and `-` becomes `_` (the records keep the original).
    public static func fileSafe(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let mapped = String(text.map { allowed.contains($0) ? $0 : "_" })
        let trimmed = mapped.hasPrefix(".") ? "_" + mapped.dropFirst() : mapped
        return trimmed.isEmpty ? "_" : String(trimmed.prefix(64))
    }
}
