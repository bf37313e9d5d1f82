// SPDX-License-Identifier: Apache-2.0
import ADB
import Android
import Cryptography
import Evidence
import Foundation
import HumanText
import Imaging
import StatusAPI
import Store

/// An Android phone over ADB behind the job lifecycle: who the phone is and its state (shell
/// commands, each audited), the logical profile, the shared-storage tree (sync v2), with root a
/// partition through `exec:` (AndroidPhysicalImage.swift), the read-back and the record
/// (AndroidRecord.swift). A resumed job keeps what the interrupted one pulled and recorded.
final class AndroidDriver: AcquisitionDriver {
    let connection: ADBConnection
    let key: AndroidDebugKey
    let request: PhoneAcquisitionRequest
    let store: EvidenceStore
    let organization: String
    let resumed: Bool
    let directory: String
    let phoneState: (PhoneState) -> Void
    var state: PhoneJobState
    private(set) var catalogued: Bool
    private var audit: CommandAudit?

    init(
        connection: ADBConnection, key: AndroidDebugKey, request: PhoneAcquisitionRequest, store: EvidenceStore, organization: String,
        state: PhoneJobState, resumed: Bool, directory: String, phoneState: @escaping (PhoneState) -> Void
    ) {
        self.connection = connection
        self.key = key
        self.request = request
        self.store = store
        self.organization = organization
        self.state = state
        self.resumed = resumed
        self.directory = directory
        self.phoneState = phoneState
        self.catalogued = resumed
    }

    var sourceName: String { request.source.description }

    /// Who the phone said it is and what state it was in, as the record keeps it.
    struct Session {
        var device: PhoneExtraction.Device
        var adbdIsRoot: Bool
        var keySHA256: String
        /// How shell commands that need root are run: as they are when adbd is root, else through su.
        func asRoot(_ command: String) -> String { adbdIsRoot ? command : "su -c '\(command)'" }
    }

    func acquire(_ job: RunningJob) throws -> FinishedAcquisition {
        let commands = try prepareBag(job)
        let session = try identify(job, commands: commands)
        for (command, name) in PhoneAcquisition.profile { try commands.run(command, name: name) }
        let files = FileExtraction(connection: connection, commands: commands, bag: job.bag)
        defer { files.close() }
        let listed = try files.walk(request.roots)
        let plannedBytes = listed.filter { $0.status?.type == .regular && $0.errno == nil }.reduce(UInt64(0)) { $0 + ($1.status?.size ?? 0) }
        let physical = try physicalPlan(job, session: session, commands: commands)
        try store.ensureRoom(forImageOf: plannedBytes + (physical.partition?.size ?? 0))
        let total = plannedBytes + (physical.partition?.size ?? 0)
        try extractFiles(job, files: files, listed: listed, total: total)
        let image = try physical.partition.map { partition in
            try physicalImage(job, partition: partition, session: session, pulledBytes: Self.pulledBytes(files), total: total)
        }
        let verification = try verifyExtractedFiles(job, files: files, imaged: image != nil)
        let inventory = try writeAuditLogs(job, commands: commands, files: files)
        return record(job, session: session, commands: commands, files: files, image: image, physical: physical, inventory: inventory,
            verification: verification)
    }

    // MARK: stopping

    var stopDetails: [String: String] { [:] }

    /// A phone that went away or went silent leaves a job to resume: what was pulled is not
    /// thrown away, and the phone may no longer hold it. Anything else fails the job.
    func stopLeavesJobToResume(_ error: any Error) -> Bool { PhoneAcquisition.outcome(of: error).interrupted }

    func keepStop(reason: String, custody: CustodyLog) {
        state.interruptions.append(.init(at: UTCTimestamp.string(Date()), offset: 0, reason: reason))
        if let audit { state.commands = audit.records }
        try? state.save(custody: custody, in: directory)
    }

    // MARK: start

    /// Commands are run again on a resumed job, numbered after the earlier connections' ones,
    /// whose outputs and records are kept; files already pulled and hashed are kept. Only what no
    /// record names goes: the logs written at the end and the output of a command the
    /// interruption cut short.
    private func prepareBag(_ job: RunningJob) throws -> CommandAudit {
        let bag = job.bag
        let earlierCommands = state.commands ?? []
        PhoneAcquisition.removeUnrecorded(in: bag, keeping: earlierCommands)
        try BundlePublication.removeTagFiles(bag: bag)
        try? FileManager.default.removeItem(atPath: "\(bag)/data/image")
        for name in ["acquisition.json", "case.jsonld", "custody.jsonl", "acquisition.log"] {
            try? FileManager.default.removeItem(atPath: "\(bag)/data/\(name)")
        }
        try FileManager.default.createDirectory(atPath: "\(bag)/data/files", withIntermediateDirectories: true)
        let commands = try CommandAudit(connection: connection, bag: bag, earlier: earlierCommands, session: state.interruptions.count + 1)
        audit = commands
        return commands
    }

    /// The phone's identity and state through audited commands; then the job enters the catalog
    /// and custody. A phone whose serial is not an interrupted job's stops here, touching nothing.
    private func identify(_ job: RunningJob, commands: CommandAudit) throws -> Session {
        let bannerSerial = connection.banner.serial.isEmpty ? nil : connection.banner.serial
        let properties = PhoneAcquisition.properties(try commands.run("getprop", name: "getprop").stdout)
        let serial = properties["ro.serialno"] ?? bannerSerial
        if resumed, let jobSerial = state.serial, serial != jobSerial {
            throw AcquisitionError(
                .notTheJobsDevice, path: sourceName, detail: "job \(job.jobId) was of the phone with serial \(jobSerial), this is \(serial ?? "unknown")")
        }
        state.serial = serial
        let clockText = String(decoding: try commands.run("date +%s", name: "date").stdout, as: UTF8.self)
        let clockRead = Date()
        let shellIdentity = String(decoding: try commands.run("id", name: "id").stdout, as: UTF8.self)
        let adbdIsRoot = shellIdentity.hasPrefix("uid=0(")
        let (root, rootDetail) = adbdIsRoot ? (true, "adbd runs as root") : try rootThroughSu(commands)
        let window = String(decoding: try commands.run("dumpsys window", name: "dumpsys-window").stdout, as: UTF8.self)
        let lockState = PhoneAcquisition.lockState(window)
        phoneState(lockState == "locked" ? .locked : .online)
        var device = PhoneExtraction.Device(lockState: lockState, root: root, rootDetail: rootDetail)
        device.manufacturer = properties["ro.product.manufacturer"]
        device.model = properties["ro.product.model"] ?? connection.banner.properties["ro.product.model"]
        device.serial = serial
        device.androidVersion = properties["ro.build.version.release"]
        device.sdk = properties["ro.build.version.sdk"]
        device.securityPatch = properties["ro.build.version.security_patch"]
        device.buildFingerprint = properties["ro.build.fingerprint"]
        device.buildType = properties["ro.build.type"]
        device.encryption = [properties["ro.crypto.type"], properties["ro.crypto.state"]].compactMap { $0 }.joined(separator: ", ")
        // A clock a record can name: `date +%s` of a hostile phone may say "inf" or 1e300.
        if let seconds = Double(clockText.trimmingCharacters(in: .whitespacesAndNewlines)),
            case let phoneClock = Date(timeIntervalSince1970: seconds), UTCTimestamp.canWrite(phoneClock)
        {
            device.clockUTC = UTCTimestamp.string(phoneClock)
            device.clockOffsetSeconds = (phoneClock.timeIntervalSince(clockRead) * 10).rounded() / 10
        }
        let session = Session(device: device, adbdIsRoot: adbdIsRoot, keySHA256: Digest.sha256(Data(try key.androidPublicKey())).hex)
        try start(job, session: session)
        return session
    }

    private func rootThroughSu(_ commands: CommandAudit) throws -> (Bool, String) {
        let su = try commands.run("su -c id", name: "su-id")
        let root = su.record.exitStatus == 0 && String(decoding: su.stdout, as: UTF8.self).hasPrefix("uid=0(")
        return (root, root ? "su gives uid 0" : "no root: `su -c id` exited \(su.record.exitStatus.map(String.init) ?? "without a status")")
    }

    /// The job in the catalog, its start in the log and custody, the phone's connection audited.
    private func start(_ job: RunningJob, session: Session) throws {
        let device = session.device
        try job.lifecycle.recordStart(
            resuming: catalogued, sourcePath: sourceName, model: device.model, serial: device.serial, sizeBytes: 0,
            details: ["serial": device.serial ?? ""])
        catalogued = true
        job.noteStart(
            source: sourceName, commandLine: request.commandLine, startedAt: state.startedAt,
            resumed: resumed ? (reason: state.interruptions.last?.reason ?? "an interruption", offset: nil) : nil)
        job.log.note(
            "phone \(sourceName) over \(connection.transport.kind): \(device.manufacturer ?? "-") \(device.model ?? "-"), "
                + "serial \(device.serial ?? "-"), Android \(device.androidVersion ?? "-") (SDK \(device.sdk ?? "-"), "
                + "patch \(device.securityPatch ?? "-")), lock state \(device.lockState), \(device.rootDetail)")
        job.log.note(
            "ADB: protocol 0x\(String(connection.version, radix: 16)), maxdata \(connection.maximumPayload), "
                + "features \(connection.features.sorted().joined(separator: ",")), "
                + (connection.authenticated ? "authenticated with the appliance key" : "no AUTH asked"))
        job.custody.append(
            actor: job.applianceId, action: .phoneConnected, object: sourceName,
            details: [
                "serial": device.serial ?? "", "model": device.model ?? "", "authenticated": String(connection.authenticated),
                "appliance_key_sha256": session.keySHA256, "lock_state": device.lockState,
            ])
        try state.save(custody: job.custody, in: directory)
    }
}
