// SPDX-License-Identifier: Apache-2.0
import ADB
import Android
import Cryptography
import Evidence
import Foundation
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

    /// Saved at every step, with custody so far.
    mutating func save(custody: CustodyLog, in directory: String) throws {
        self.custody = custody.lines
        try DurableFile.replace(Self.path(in: directory), contents: try ExhibitJSON.encoder(pretty: true).encode(self))
    }
    /// Finished file records, one JSON object a line, appended as each file is done.
    static func filesPath(in directory: String) -> String { "\(directory)/phone-files.jsonl" }
}

/// Android phones.
extension Acquisitions {
    /// Acquires an Android phone over ADB into a sealed bundle: identity and state through shell
    /// v2 commands, the shared-storage tree through sync v2, and, with root, a partition through
    /// `exec:` into the same pipeline as disks.
    public func acquirePhone(
        _ request: PhoneAcquisitionRequest, cancellation: CancellationFlag = CancellationFlag(),
        progress: @escaping (JobProgress) -> Void = { _ in }, phoneState: @escaping (PhoneState) -> Void = { _ in }
    ) throws(JobError) -> AcquisitionSummary {
        let prerequisites = try JobPrerequisites(of: store)
        let key = try JobError.during("keys") { try store.androidDebugKey() }
        let credentials = try JobError.during("keys") {
            ADBHostCredentials(
                publicKeyLine: try key.publicKeyLine(name: "exhibit@\(prerequisites.identity.applianceId)"), sign: { try key.signToken($0) })
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
                connection: connection, key: key, request: request, prerequisites: prerequisites, cancellation: cancellation,
                progress: progress, phoneState: phoneState)
        }
    }

    private func acquire(
        connection: ADBConnection, key: AndroidDebugKey, request: PhoneAcquisitionRequest, prerequisites: JobPrerequisites,
        cancellation: CancellationFlag, progress: @escaping (JobProgress) -> Void, phoneState: @escaping (PhoneState) -> Void
    ) throws -> AcquisitionSummary {
        let existing = try interruptedJob(of: connection, request: request, catalog: prerequisites.catalog)
        let started = existing?.startedAt ?? Date()
        let jobId = existing?.jobId ?? request.jobId
        let bannerSerial = connection.banner.serial.isEmpty ? nil : connection.banner.serial
        let state =
            existing
            ?? PhoneJobState(
                jobId: jobId, bundleId: BundleName.make(caseId: request.caseId, exhibitId: request.exhibitId, at: started, jobId: jobId),
                startedAt: started, caseId: request.caseId, exhibitId: request.exhibitId, examiner: request.examiner,
                source: request.source.description, serial: bannerSerial, commandLine: request.commandLine, interruptions: [], custody: [])
        let lifecycle = JobLifecycle(
            store: store, catalog: prerequisites.catalog, identity: prerequisites.identity, jobId: jobId, caseId: state.caseId, exhibitId: state.exhibitId,
            examiner: state.examiner)
        var jobLogger = logger
        jobLogger[metadataKey: "job.id"] = "\(jobId)"
        jobLogger[metadataKey: "device.path"] = "\(request.source.description)"
        let lease = try lifecycle.lease(resuming: existing != nil)
        let driver = AndroidDriver(
            connection: connection, key: key, request: request, store: store, organization: prerequisites.settings.organization, state: state,
            resumed: existing != nil, directory: lease.directory, phoneState: phoneState)
        return try lifecycle.run(
            driver, lease: lease, bundleId: state.bundleId, custody: CustodyLog(restoring: state.custody), logger: jobLogger,
            cancellation: cancellation, progress: progress)
    }

    /// The interrupted job of this case and exhibit that this phone continues, if any. Which phone
    /// this is is proved before any lease is taken or any file touched: another phone offered for
    /// the job must leave its work exactly as it was.
    private func interruptedJob(of connection: ADBConnection, request: PhoneAcquisitionRequest, catalog: Catalog) throws -> PhoneJobState? {
        let bannerSerial = connection.banner.serial.isEmpty ? nil : connection.banner.serial
        for candidate in try catalog.interruptedJobs(caseId: request.caseId, exhibitId: request.exhibitId) {
            let directory = "\(store.workDirectory)/\(candidate)"
            guard let data = FileManager.default.contents(atPath: PhoneJobState.path(in: directory)),
                let state = try? ExhibitJSON.decoder().decode(PhoneJobState.self, from: data)
            else { continue }
            if let jobSerial = state.serial {
                let phoneSerial = try PhoneAcquisition.serial(of: connection) ?? bannerSerial
                guard phoneSerial == jobSerial else {
                    throw AcquisitionError(
                        .notTheJobsDevice, path: request.source.description,
                        detail: "job \(state.jobId) was of the phone with serial \(jobSerial), this is \(phoneSerial ?? "unknown"); "
                            + "its work is kept for its own phone")
                }
            }
            return state
        }
        return nil
    }
}

/// What the Android job reads from a phone's answers, and how its errors end a job.
public enum PhoneAcquisition {
    /// The phone's serial as `getprop` gives it, asked before the job starts (like a disk's
    /// fingerprint, it identifies the source; the job's audited getprop follows).
    static func serial(of connection: ADBConnection) throws -> String? {
        let answer = try connection.shellOutput("getprop ro.serialno")
        let serial = String(decoding: answer.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return serial.isEmpty ? nil : serial
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
