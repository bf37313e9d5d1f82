// SPDX-License-Identifier: Apache-2.0
import ADB
import Android
import Cryptography
import Evidence
import Foundation
import HumanText
import Imaging
import Logging
import StatusAPI
import Store

#if canImport(Glibc)
    import Glibc

#endif

/// What the technician asked of a phone.
public struct PhoneAcquisitionRequest: Sendable {
    public var source: PhoneSource
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    /// A partition to image through `exec:` when root is available (`--physical[=PARTITION]`).
    public var physicalPartition: String?
    /// Directories walked and pulled with sync.
    public var roots: [String]
    public var extraDigests: [DigestAlgorithm]
    public var verifyAfterWriting: Bool
    public var commandLine: [String]
    public var jobId: String
    public var timeouts: ADBTimeouts
    public var pipeline: PipelineConfiguration

    public static let defaultPartition = "/dev/block/by-name/userdata"

    public init(
        source: PhoneSource, caseId: String, exhibitId: String, examiner: String, physicalPartition: String? = nil,
        roots: [String] = ["/sdcard"], extraDigests: [DigestAlgorithm] = [], verifyAfterWriting: Bool = true,
        commandLine: [String] = CommandLine.arguments, jobId: String = UUID().uuidString.lowercased(),
        timeouts: ADBTimeouts = ADBTimeouts(), pipeline: PipelineConfiguration = PipelineConfiguration()
    ) {
        self.source = source
        self.caseId = caseId
        self.exhibitId = exhibitId
        self.examiner = examiner
        self.physicalPartition = physicalPartition
        self.roots = roots
        self.extraDigests = extraDigests
        self.verifyAfterWriting = verifyAfterWriting
        self.commandLine = commandLine
        self.jobId = jobId
        self.timeouts = timeouts
        self.pipeline = pipeline
    }
}

/// What an interrupted phone job keeps in its work directory to be resumed.
struct PhoneJobState: Codable, Sendable {
    var jobId: String
    var bundleId: String
    var startedAt: Date
    var caseId: String
    var exhibitId: String
    var examiner: String
    var source: String
    var serial: String?
    var commandLine: [String]
    var interruptions: [AcquisitionJournal.Interruption]
    var custody: [String]
    /// The commands of the connections before the interruptions, whose outputs stay in the bag.
    var commands: [CommandRecord]? = nil

    static func path(in directory: String) -> String { "\(directory)/phone-job.json" }
    /// Finished file records, one JSON object a line, appended as each file is done.
    static func filesPath(in directory: String) -> String { "\(directory)/phone-files.jsonl" }
}

/// Acquires an Android phone over ADB into a sealed bundle: identity and state through shell
/// v2 commands, the shared-storage tree through sync v2, and, with root, a partition through
/// `exec:` into the same pipeline as disks.
public struct PhoneAcquisition: Sendable {
    public let store: EvidenceStore
    public let logger: Logger

    public init(store: EvidenceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func run(
        _ request: PhoneAcquisitionRequest, cancellation: CancellationFlag = CancellationFlag(),
        progress: @escaping (JobProgress) -> Void = { _ in }, phoneState: (PhoneState) -> Void = { _ in }
    ) throws(JobError) -> AcquisitionSummary {
        let (settings, identity, catalog) = try JobError.prerequisites(of: store)
        let key = try JobError.during("keys") { try store.androidDebugKey() }
        let credentials = try JobError.during("keys") {
            ADBHostCredentials(
                publicKeyLine: try key.publicKeyLine(name: "exhibit@\(identity.applianceId)"), sign: { try key.signToken($0) })
        }
        let connection = try JobError.during("connect") {
            try ADBConnection.connect(
                over: try request.source.openTransport(timeouts: request.timeouts), credentials: credentials,
                timeouts: request.timeouts,
                stateChanged: { phoneState($0 == .awaitingAuthorization ? .awaitingAuthorization : $0 == .online ? .online : .connecting) })
        }
        defer { connection.close() }
        return try JobError.during("phone") {
            try acquire(
                connection: connection, key: key, request: request, settings: settings, identity: identity, catalog: catalog,
                cancellation: cancellation, progress: progress, phoneState: phoneState)
        }
    }

    /// The phone's serial as `getprop` gives it, asked before the job starts (like a disk's
    /// fingerprint, it identifies the source; the job's audited getprop follows).
    static func serial(of connection: ADBConnection) throws -> String? {
        let answer = try connection.shellOutput("getprop ro.serialno")
        let serial = String(decoding: answer.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return serial.isEmpty ? nil : serial
    }

    private func acquire(
        connection: ADBConnection, key: AndroidDebugKey, request: PhoneAcquisitionRequest, settings: EvidenceStore.Settings,
        identity: SigningIdentity, catalog: Catalog, cancellation: CancellationFlag, progress: @escaping (JobProgress) -> Void,
        phoneState: (PhoneState) -> Void
    ) throws -> AcquisitionSummary {
        let sourceName = request.source.description
        // An interrupted job of this case and exhibit on this phone (same serial) is continued.
        // Which phone this is is proved before any lease is taken or any file touched: another
        // phone offered for the job must leave its work exactly as it was.
        let bannerSerial = connection.banner.serial.isEmpty ? nil : connection.banner.serial
        var existing: PhoneJobState?
        for candidate in try catalog.interruptedJobs(caseId: request.caseId, exhibitId: request.exhibitId) {
            let directory = "\(store.workDirectory)/\(candidate)"
            guard let data = FileManager.default.contents(atPath: PhoneJobState.path(in: directory)),
                let state = try? ExhibitJSON.decoder().decode(PhoneJobState.self, from: data)
            else { continue }
            if let jobSerial = state.serial {
                let phoneSerial = try Self.serial(of: connection) ?? bannerSerial
                guard phoneSerial == jobSerial else {
                    throw AcquisitionError(
                        .notTheJobsDevice, path: sourceName,
                        detail: "job \(state.jobId) was of the phone with serial \(jobSerial), this is \(phoneSerial ?? "unknown"); "
                            + "its work is kept for its own phone")
                }
            }
            existing = state
            break
        }
        let started = existing?.startedAt ?? Date()
        let jobId = existing?.jobId ?? request.jobId
        let caseId = request.caseId
        let exhibitId = request.exhibitId
        let examiner = existing?.examiner ?? request.examiner
        let bundleId = existing?.bundleId ?? BundleName.make(caseId: caseId, exhibitId: exhibitId, at: started, jobId: jobId)
        let lifecycle = JobLifecycle(
            store: store, catalog: catalog, identity: identity, jobId: jobId, caseId: caseId, exhibitId: exhibitId, examiner: examiner)
        let object = lifecycle.object
        var jobLogger = logger
        jobLogger[metadataKey: "job.id"] = "\(jobId)"
        jobLogger[metadataKey: "device.path"] = "\(sourceName)"

        let lease = try lifecycle.lease(resuming: existing != nil)
        let bag = "\(lease.directory)/\(bundleId)"
        var custody = CustodyLog(restoring: existing?.custody ?? [])
        var state =
            existing
            ?? PhoneJobState(
                jobId: jobId, bundleId: bundleId, startedAt: started, caseId: caseId, exhibitId: exhibitId, examiner: examiner,
                source: sourceName, serial: bannerSerial, commandLine: request.commandLine, interruptions: [], custody: [])
        var catalogued = existing != nil
        // Set when another phone was offered for an interrupted job: the job stays as it was.
        var notThisJobsPhone = false
        var audit: CommandAudit?
        // From here on everything is extracted: whatever stops the job keeps the work.
        var sealing = false
        do {
            // Commands are run again on a resumed job, numbered after the earlier connections'
            // ones, whose outputs and records are kept; files already pulled and hashed are kept.
            // Only what no record names goes: the logs written at the end and the output of a
            // command the interruption cut short.
            let earlierCommands = state.commands ?? []
            Self.removeUnrecorded(in: bag, keeping: earlierCommands)
            try BundlePublication.removeTagFiles(bag: bag)
            try? FileManager.default.removeItem(atPath: "\(bag)/data/image")
            for name in ["acquisition.json", "case.jsonld", "custody.jsonl", "acquisition.log"] {
                try? FileManager.default.removeItem(atPath: "\(bag)/data/\(name)")
            }
            try FileManager.default.createDirectory(atPath: "\(bag)/data/files", withIntermediateDirectories: true)
            let log = try ActivityLog(logger: jobLogger, path: "\(lease.directory)/acquisition.log")
            let commands = try CommandAudit(
                connection: connection, bag: bag, earlier: earlierCommands, session: state.interruptions.count + 1)
            audit = commands

            // Identity and state.
            let properties = Self.properties(try commands.run("getprop", name: "getprop").stdout)
            let serial = properties["ro.serialno"] ?? bannerSerial
            if let existing, existing.serial != nil, serial != existing.serial {
                notThisJobsPhone = true
                throw AcquisitionError(
                    .notTheJobsDevice, path: sourceName,
                    detail: "job \(jobId) was of the phone with serial \(existing.serial ?? "?"), this is \(serial ?? "unknown")")
            }
            state.serial = serial
            let model = properties["ro.product.model"] ?? connection.banner.properties["ro.product.model"]
            let manufacturer = properties["ro.product.manufacturer"]
            let clockText = String(decoding: try commands.run("date +%s", name: "date").stdout, as: UTF8.self)
            let clockRead = Date()
            let shellIdentity = String(decoding: try commands.run("id", name: "id").stdout, as: UTF8.self)
            let adbdIsRoot = shellIdentity.hasPrefix("uid=0(")
            var rootDetail = adbdIsRoot ? "adbd runs as root" : ""
            var root = adbdIsRoot
            if !adbdIsRoot {
                let su = try commands.run("su -c id", name: "su-id")
                root = su.record.exitStatus == 0 && String(decoding: su.stdout, as: UTF8.self).hasPrefix("uid=0(")
                rootDetail =
                    root
                    ? "su gives uid 0" : "no root: `su -c id` exited \(su.record.exitStatus.map(String.init) ?? "without a status")"
            }
            let window = String(decoding: try commands.run("dumpsys window", name: "dumpsys-window").stdout, as: UTF8.self)
            let lockState = Self.lockState(window)
            phoneState(lockState == "locked" ? .locked : .online)

            var device = PhoneExtraction.Device(lockState: lockState, root: root, rootDetail: rootDetail)
            device.manufacturer = manufacturer
            device.model = model
            device.serial = serial
            device.androidVersion = properties["ro.build.version.release"]
            device.sdk = properties["ro.build.version.sdk"]
            device.securityPatch = properties["ro.build.version.security_patch"]
            device.buildFingerprint = properties["ro.build.fingerprint"]
            device.buildType = properties["ro.build.type"]
            device.encryption = [properties["ro.crypto.type"], properties["ro.crypto.state"]].compactMap { $0 }.joined(separator: ", ")
            if let seconds = Double(clockText.trimmingCharacters(in: .whitespacesAndNewlines)) {
                let phoneClock = Date(timeIntervalSince1970: seconds)
                device.clockUTC = UTCTimestamp.string(phoneClock)
                device.clockOffsetSeconds = (phoneClock.timeIntervalSince(clockRead) * 10).rounded() / 10
            }

            try lifecycle.recordStart(
                resuming: catalogued, sourcePath: sourceName, model: model, serial: serial, sizeBytes: 0,
                details: ["serial": serial ?? ""])
            catalogued = true
            if let existing {
                let stop = existing.interruptions.last
                log.note("\(ToolVersion.name) \(ToolVersion.version) on appliance \(identity.applianceId); job \(jobId) resumed after: \(stop?.reason ?? "an interruption")")
                custody.append(
                    actor: examiner, action: .acquisitionResumed, object: object,
                    details: ["appliance": identity.applianceId, "source": sourceName, "job": jobId, "stopped_by": stop?.reason ?? ""])
            } else {
                log.note("\(ToolVersion.name) \(ToolVersion.version) on appliance \(identity.applianceId); job \(jobId)")
                custody.append(
                    actor: examiner, action: .acquisitionStarted, object: object,
                    details: ["appliance": identity.applianceId, "source": sourceName, "job": jobId], time: started)
            }
            log.note("command: \(request.commandLine.joined(separator: " "))")
            log.note("case \(caseId), exhibit \(exhibitId), examiner \(examiner)")
            log.note(
                "phone \(sourceName) over \(connection.transport.kind): \(manufacturer ?? "-") \(model ?? "-"), serial \(serial ?? "-"), "
                    + "Android \(device.androidVersion ?? "-") (SDK \(device.sdk ?? "-"), patch \(device.securityPatch ?? "-")), "
                    + "lock state \(lockState), \(rootDetail)")
            log.note(
                "ADB: protocol 0x\(String(connection.version, radix: 16)), maxdata \(connection.maximumPayload), "
                    + "features \(connection.features.sorted().joined(separator: ",")), "
                    + (connection.authenticated ? "authenticated with the appliance key" : "no AUTH asked"))
            let keySHA256 = Digest.sha256(Data(try key.androidPublicKey())).hex
            custody.append(
                actor: identity.applianceId, action: .phoneConnected, object: sourceName,
                details: [
                    "serial": serial ?? "", "model": model ?? "", "authenticated": String(connection.authenticated),
                    "appliance_key_sha256": keySHA256, "lock_state": lockState,
                ])
            try saveState(&state, custody: custody, directory: lease.directory)

            // The logical profile.
            for (command, name) in Self.profile { try commands.run(command, name: name) }

            // The shared-storage tree.
            let files = FileExtraction(connection: connection, commands: commands, bag: bag)
            defer { files.close() }
            let listed = try files.walk(request.roots)
            let plannedBytes = listed.filter { $0.status?.type == .regular && $0.errno == nil }.reduce(UInt64(0)) { $0 + ($1.status?.size ?? 0) }
            let physicalSize: UInt64
            let wrap: (String) -> String = { adbdIsRoot ? $0 : "su -c '\($0)'" }
            var methodsNotAchieved: [PhoneExtraction.Method] = []
            var partition: String?
            if let requested = request.physicalPartition {
                if root {
                    let sizeOutput = try commands.run(wrap("blockdev --getsize64 \(requested)"), name: "blockdev-size")
                    guard sizeOutput.record.exitStatus == 0 || sizeOutput.record.exitStatus == nil,
                        let size = UInt64(String(decoding: sizeOutput.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                        size > 0
                    else {
                        throw AcquisitionError(
                            .sourceNotFound, path: "\(sourceName) \(requested)",
                            detail: "the phone gives no size for the partition (see \(sizeOutput.record.stdoutFile))")
                    }
                    physicalSize = size
                    partition = requested
                } else {
                    physicalSize = 0
                    methodsNotAchieved.append(.init(method: "physical", reason: "requested, but \(rootDetail)"))
                    log.note("physical image of \(requested) requested but not possible: \(rootDetail)", level: .warning)
                }
            } else {
                physicalSize = 0
                methodsNotAchieved.append(
                    .init(method: "physical", reason: root ? "not requested (root was available)" : "not requested; \(rootDetail)"))
            }
            methodsNotAchieved.append(.init(method: "file-system", reason: "not implemented by this version of Exhibit"))
            try store.ensureRoom(forImageOf: plannedBytes + physicalSize)

            let total = plannedBytes + physicalSize
            var previous: [String: FileRecord] = [:]
            if existing != nil, let data = FileManager.default.contents(atPath: PhoneJobState.filesPath(in: lease.directory)) {
                for line in data.split(separator: UInt8(ascii: "\n")) {
                    if let record = try? ExhibitJSON.decoder().decode(FileRecord.self, from: Data(line)) { previous[record.path] = record }
                }
            }
            let journal = try JournalAppender(PhoneJobState.filesPath(in: lease.directory))
            let phaseStart = Date()
            try files.extract(
                listed, previous: previous,
                onFile: { record in
                    if record.status == .complete { try journal.append(record) }
                    if cancellation.isCancelled { throw AcquisitionError(.cancelled, path: sourceName) }
                },
                progress: { pulled in
                    progress(
                        JobProgress(
                            phase: .acquiring, bytesDone: pulled, totalBytes: total, unreadableSectors: 0,
                            elapsed: Date().timeIntervalSince(phaseStart)))
                })
            let counts = Dictionary(grouping: files.records, by: \.status).mapValues(\.count)
            let pulledBytes = files.records.reduce(UInt64(0)) { $0 + ($1.bytesReceived ?? 0) }
            log.note(
                "files under \(request.roots.joined(separator: ", ")): \(files.records.count) entries, \(counts[.complete] ?? 0) complete, "
                    + "\(counts[.partial] ?? 0) partial, \(counts[.denied] ?? 0) denied, \(counts[.notPulled] ?? 0) not pulled, "
                    + "\(counts[.refused] ?? 0) refused; \(pulledBytes) bytes")
            for record in files.records where record.status == .partial || record.status == .denied || record.status == .error {
                // The phone chose the path: one printable line, whatever it holds.
                let shown = DeviceTreePolicy.printable(record.pathHex.map(Self.bytes(fromHex:)) ?? Array(record.path.utf8))
                log.note("  \(record.status.rawValue): \(shown): \(record.error ?? "")", level: .warning)
            }
            for anomaly in files.anomalies { log.note("  \(anomaly.logLine)", level: .warning) }

            // Physical image.
            var imageFiles: [AcquisitionRecord.ImageFile] = []
            var mediaDigests: [String: String] = [:]
            var physicalRecord: PhoneExtraction.Physical?
            var verification = AcquisitionRecord.Verification(result: "skipped", method: "not performed (--no-verify)")
            var warnings: [String] = []
            if let partition {
                let command = wrap("cat \(partition)")
                let imageDirectory = "\(bag)/data/image"
                try FileManager.default.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)
                let format = RawImage()
                let writer = try format.writer(
                    directory: imageDirectory, baseName: BundleName.fileSafe(exhibitId), totalSize: physicalSize,
                    keepFree: EvidenceStore.recordReserve, resumingAt: nil)
                let sha256 = StreamDigester(.sha256)
                let extra = request.extraDigests.filter { $0 != .sha256 }.map { StreamDigester($0) }
                let stream = try connection.open("exec:\(command)")
                defer { stream.close() }
                let source = PhoneStreamSource(stream: stream, path: "\(sourceName) \(partition)", size: physicalSize)
                log.note("physical image of \(partition) (\(physicalSize) bytes) through exec:\(command)")
                let outcome = try Pipeline.run(
                    source, into: [sha256, writer] + extra, configuration: request.pipeline, cancellation: cancellation
                ) {
                    progress(
                        JobProgress(
                            phase: .acquiring, bytesDone: pulledBytes + $0.bytesDone, totalBytes: total, unreadableSectors: 0,
                            elapsed: $0.elapsed))
                }
                try source.checkEnd()
                let digest = sha256.result!.hex
                mediaDigests["sha256"] = digest
                for digester in extra { mediaDigests[digester.algorithm.rawValue] = digester.result!.hex }
                imageFiles = [.init(path: "data/image/\(writer.fileNames[0])", sizeBytes: physicalSize, sha256: digest)]
                physicalRecord = .init(partition: partition, sizeBytes: physicalSize, command: "exec:\(command)")
                log.note("image SHA-256 \(digest), \(String(format: "%.1f", Double(physicalSize) / max(outcome.elapsed, 0.001) / 1e6)) MB/s")
                custody.append(
                    actor: identity.applianceId, action: .imageWritten, object: object,
                    details: ["bytes": String(physicalSize), "sha256": digest, "partition": partition])
                if request.verifyAfterWriting {
                    let readback = StreamDigester(.sha256)
                    _ = try Pipeline.run(try format.reader(paths: writer.paths), into: [readback], configuration: request.pipeline, cancellation: cancellation)
                    guard readback.result!.hex == digest else {
                        throw AcquisitionError(
                            .verifyMismatch, path: imageDirectory, detail: "the stored image hashes to \(readback.result!.hex), the stream to \(digest)")
                    }
                }
                try writer.makeReadOnly()
            }

            // Read back every extracted file and compare with the digest taken as it streamed.
            if request.verifyAfterWriting {
                let checkStart = Date()
                var checked = 0
                for record in files.records {
                    guard let stored = record.storedAs, let expected = record.sha256 else { continue }
                    let actual = try DurableFile.sha256(of: "\(bag)/\(stored)").hex
                    guard actual == expected else {
                        throw AcquisitionError(
                            .verifyMismatch, path: "\(bag)/\(stored)", detail: "the stored copy hashes to \(actual), the phone's stream to \(expected)")
                    }
                    checked += 1
                }
                verification = AcquisitionRecord.Verification(
                    result: "matched",
                    method: "every extracted file re-read from the store and re-hashed with SHA-256 against the digest taken as it streamed"
                        + (partition != nil ? "; the image read back and re-hashed" : ""),
                    durationSeconds: Date().timeIntervalSince(checkStart))
                log.note("read-back: \(checked) files\(partition != nil ? " and the image" : "") match their digests")
            } else {
                warnings.append("The extracted files were not read back and re-hashed (--no-verify).")
            }

            // Audit logs and the inventory.
            try DurableFile.create("\(bag)/\(PhoneExtraction.commandLogPath)", contents: try commands.log(), mode: 0o444)
            try DurableFile.create("\(bag)/\(PhoneExtraction.fileLogPath)", contents: try files.log(), mode: 0o444)
            var inventoryEntries: [(path: String, sha256: String)] = []
            for record in commands.records {
                inventoryEntries.append((record.stdoutFile, record.stdoutSHA256))
                if let file = record.stderrFile, let digest = record.stderrSHA256 { inventoryEntries.append((file, digest)) }
            }
            for record in files.records {
                if let stored = record.storedAs, let digest = record.sha256 { inventoryEntries.append((stored, digest)) }
            }
            let inventory = Data(inventoryEntries.map { "\($0.sha256)  \($0.path)\n" }.joined().utf8)
            try DurableFile.create("\(bag)/\(PhoneExtraction.inventoryPath)", contents: inventory, mode: 0o444)
            let inventorySHA256 = Digest.sha256(inventory).hex
            let inventoryBytes = inventoryEntries.reduce(UInt64(0)) { sum, entry in sum + (DurableFile.size(of: "\(bag)/\(entry.path)") ?? 0) }
            custody.append(
                actor: identity.applianceId, action: .logicalExtractionWritten, object: object,
                details: [
                    "files": String(counts[.complete] ?? 0), "partial": String(counts[.partial] ?? 0), "denied": String(counts[.denied] ?? 0),
                    "refused": String(counts[.refused] ?? 0), "anomalies": String(files.anomalies.count),
                    "commands": String(commands.records.count), "inventory_sha256": inventorySHA256,
                ])

            let method = partition != nil ? "physical" : "logical"
            if mediaDigests.isEmpty { mediaDigests["sha256"] = inventorySHA256 }
            let mediaSize = partition != nil ? physicalSize : inventoryBytes
            if let requested = request.physicalPartition, partition == nil {
                warnings.append("A physical image of \(requested) was requested but not made: \(rootDetail).")
            }
            if lockState == "locked" {
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
            let phone = PhoneExtraction(
                connection: .init(
                    transport: connection.transport.kind, address: connection.device,
                    protocolVersion: "0x" + String(connection.version, radix: 16), maximumPayload: connection.maximumPayload,
                    banner: connection.banner.properties, features: connection.banner.features.sorted(),
                    authenticated: connection.authenticated, applianceKeySHA256: keySHA256),
                device: device, methodAchieved: method, methodsNotAchieved: methodsNotAchieved, commands: commands.records.count,
                commandsFailed: commands.failed,
                files: .init(
                    roots: request.roots, entries: files.records.count, complete: counts[.complete] ?? 0, partial: counts[.partial] ?? 0,
                    denied: counts[.denied] ?? 0, notPulled: counts[.notPulled] ?? 0, refused: counts[.refused] ?? 0, bytes: pulledBytes),
                inventorySHA256: inventorySHA256, physical: physicalRecord, anomalies: files.anomalies)
            let finished = Date()
            let elapsed = finished.timeIntervalSince(started)
            let sectorSize: UInt32 = partition != nil ? 512 : 1
            var record = AcquisitionRecord(
                bundleId: bundleId, caseId: caseId, exhibitId: exhibitId, examiner: examiner, organization: settings.organization,
                appliance: .init(
                    id: identity.applianceId, certificateSHA256: identity.certificate.sha256Fingerprint.hex,
                    certificateSubject: identity.certificate.subject, certificateIssuer: identity.certificate.issuer,
                    hostname: ProcessInfo.processInfo.hostName),
                tool: .init(name: ToolVersion.name, version: ToolVersion.version, commandLine: state.commandLine),
                source: .phone(
                    path: sourceName, address: connection.device, sizeBytes: mediaSize, sectorSize: sectorSize, model: model,
                    vendor: manufacturer, serial: serial, transport: connection.transport.kind),
                startedAt: started, finishedAt: finished, durationSeconds: elapsed,
                averageMBPerSecond: Double(pulledBytes + physicalSize) / max(elapsed, 0.001) / 1e6,
                media: .init(sizeBytes: mediaSize, logicalSectors: mediaSize / UInt64(sectorSize), trailingBytes: mediaSize % UInt64(sectorSize), digests: mediaDigests),
                image: .init(format: RawImage().name, files: imageFiles),
                readPolicy: .init(
                    bufferBytes: request.pipeline.bufferSize, attemptsPerSector: 1,
                    errorGranularity: partition != nil ? "the stream (a phone read error ends it)" : "one file",
                    fill: "none: a file the phone fails to send is kept as received and marked partial"),
                unreadableRanges: [], unreadableSectors: 0, verification: verification, warnings: warnings)
            record.phone = phone
            if !state.interruptions.isEmpty {
                record.interruptions = state.interruptions.map { .init(at: $0.at, resumedAtOffset: $0.offset, reason: $0.reason) }
            }
            progress(JobProgress(phase: .sealing, bytesDone: total, totalBytes: total, unreadableSectors: 0, elapsed: 0, startBytes: total))
            try catalog.setJobState(jobId, state: .sealing)
            var knownDigests: [String: String] = [:]
            for entry in inventoryEntries { knownDigests[entry.path] = entry.sha256 }
            for file in imageFiles { knownDigests[file.path] = file.sha256 }
            knownDigests[PhoneExtraction.inventoryPath] = inventorySHA256
            sealing = true
            let summary = try lifecycle.publish(
                record: record, bag: bag, lease: lease, custody: &custody, log: log, knownDigests: knownDigests)
            jobLogger.info("sealed \(summary.bundlePath)")
            return summary
        } catch {
            if notThisJobsPhone {
                // The interrupted job and its pulled files wait for their own phone.
                lease.release()
                throw error
            }
            // A phone that went away or went silent leaves a job to resume, and so does an error
            // while sealing (a rename refused, the catalog): what was pulled is not thrown away,
            // and the phone may no longer hold it. Anything else fails the job.
            let interrupted = Self.outcome(of: error).interrupted || sealing
            throw lifecycle.stop(error, interrupted: interrupted, catalogued: catalogued, cancellation: cancellation, lease: lease) { reason in
                custody.append(
                    actor: identity.applianceId, action: .acquisitionInterrupted, object: object,
                    details: ["job": jobId, "reason": reason])
                state.interruptions.append(.init(at: UTCTimestamp.string(Date()), offset: 0, reason: reason))
                if let audit { state.commands = audit.records }
                try? saveState(&state, custody: custody, directory: lease.directory)
            }
        }
    }

    /// The bytes of `FileRecord.pathHex` (a path that is not UTF-8).
    static func bytes(fromHex hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(decoding: digits[$0...($0 + 1)], as: UTF8.self), radix: 16) }
    }

    /// Clears a resumed bag's `data/phone` of everything but the earlier commands' outputs.
    static func removeUnrecorded(in bag: String, keeping records: [CommandRecord]) {
        let kept = Set(records.flatMap { [$0.stdoutFile, $0.stderrFile].compactMap { $0 } })
        let phone = "\(bag)/data/phone"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: phone)) ?? [] where name != "commands" {
            try? FileManager.default.removeItem(atPath: "\(phone)/\(name)")
        }
        let directory = "\(bag)/\(CommandAudit.directory)"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where !kept.contains("\(CommandAudit.directory)/\(name)") {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
        }
    }

    private func saveState(_ state: inout PhoneJobState, custody: CustodyLog, directory: String) throws {
        state.custody = custody.lines
        try DurableFile.replace(PhoneJobState.path(in: directory), contents: try ExhibitJSON.encoder(pretty: true).encode(state))
    }

    /// The logical profile, after identity: settings, packages, selected services, processes, logs.
    static let profile: [(command: String, name: String)] = [
        ("settings list system", "settings-system"),
        ("settings list secure", "settings-secure"),
        ("settings list global", "settings-global"),
        ("pm list packages -f -U", "packages"),
        ("dumpsys account", "dumpsys-account"),
        ("dumpsys battery", "dumpsys-battery"),
        ("dumpsys telephony.registry", "dumpsys-telephony"),
        ("dumpsys wifi", "dumpsys-wifi"),
        ("dumpsys usagestats", "dumpsys-usagestats"),
        ("ps -A", "processes"),
        ("service list", "services"),
        ("logcat -d", "logcat"),
    ]

    /// `[key]: [value]` lines of getprop.
    static func properties(_ output: [UInt8]) -> [String: String] {
        var properties: [String: String] = [:]
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            guard line.hasPrefix("["), let middle = line.range(of: "]: ["), line.hasSuffix("]") else { continue }
            let key = String(line[line.index(after: line.startIndex)..<middle.lowerBound])
            let value = String(line[middle.upperBound..<line.index(before: line.endIndex)])
            properties[key] = value
        }
        return properties
    }

    /// From `dumpsys window`: the lock screen is showing, or not, or the build does not say.
    /// How a failed phone job ends: interrupted (a phone that went away or went silent; the
    /// same phone resumes it) or failed, and the phone state the technician must act on.
    public static func outcome(of error: any Error) -> (interrupted: Bool, phoneState: PhoneState?) {
        let cause = JobStop.cause(of: error)
        let adb = cause as? ADBError
        let acquisition = cause as? AcquisitionError
        let state: PhoneState? =
            switch adb?.code {
            case .unauthorized: .unauthorized
            case .offline, .connectFailed: .offline
            case .noPermission: .noPermission
            case .disconnected, .timeout: .disconnected
            default: nil
            }
        return ([.disconnected, .timeout].contains(adb?.code) || (acquisition?.interruptsJob ?? false), state)
    }

    static func lockState(_ window: String) -> String {
        for marker in ["mDreamingLockscreen=", "mShowingLockscreen=", "isStatusBarKeyguard="] {
            if window.contains(marker + "true") { return "locked" }
        }
        for marker in ["mDreamingLockscreen=", "mShowingLockscreen="] where window.contains(marker + "false") {
            return "unlocked"
        }
        return "unknown"
    }
}

/// Appends JSON lines to a journal file; a line torn by a crash is skipped when read.
final class JournalAppender {
    private let descriptor: Int32
    private let path: String
    private var lastSync = Date()

    init(_ path: String) throws(AcquisitionError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, errno: errno, detail: "the job's file journal") }
    }

    deinit {
        fdatasync(descriptor)
        close(descriptor)
    }

    func append(_ value: some Encodable) throws {
        let line = try ExhibitJSON.lines([value])
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == line.count else { throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "the job's file journal") }
        if Date().timeIntervalSince(lastSync) > 2 {
            fdatasync(descriptor)
            lastSync = Date()
        }
    }
}
