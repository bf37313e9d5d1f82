// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText

// The daemon's status API: newline-delimited JSON over a Unix socket. docs/status-api.md
// describes it for the panel and other clients; this file is its one definition.

/// Where one slot (one attached source) is.
public enum SlotState: String, Codable, Sendable, CaseIterable {
    /// Seen, not yet usable (a phone, or a disk still being inspected).
    case detected
    /// Read-only and waiting for an exhibit number (or for `--auto`).
    case ready
    /// Never opened: writable, or otherwise unsafe; `detail` says why and what to do.
    case refused
    /// `recovering`: the second pass re-reads the areas the first pass skipped.
    case acquiring, recovering, verifying, sealing, sealed, failed, interrupted
}

/// Where a phone stands with the appliance: each state other than `connecting`, `online` and
/// `disconnected` needs the technician (the alerts say what to do).
public enum PhoneState: String, Codable, Sendable, CaseIterable {
    case connecting
    /// The phone shows "Allow USB debugging?" for the appliance's key.
    case awaitingAuthorization = "awaiting-authorization"
    case online
    /// Online, with the lock screen showing.
    case locked
    /// Nobody tapped "Allow" in time.
    case unauthorized
    /// The phone did not answer the handshake.
    case offline
    /// The appliance may not open the phone's USB node.
    case noPermission = "no-permission"
    case disconnected
}

/// What a slot holds. A phone's platform (`android-adb`, `mtp`, `apple`) is its `phoneKind`:
/// each platform has its own job, and a slot is acquired only by the job of its platform.
public enum SlotKind: String, Codable, Sendable, CaseIterable {
    case disk
    case phone

    public var isPhone: Bool { self == .phone }
}

/// How much a daemon event asks of a person.
public enum EventLevel: String, Codable, Sendable {
    case info, warning, error
}

/// One attached source and its job.
public struct SlotStatus: Codable, Sendable, Equatable {
    public var slot: Int
    public var kind: SlotKind
    public var device: String
    public var syspath: String
    public var model: String?
    public var vendor: String?
    public var serial: String?
    public var transport: String?
    public var sizeBytes: UInt64
    public var logicalSectorSize: UInt32?
    /// The kernel read-only flag (sysfs `ro`), for disks.
    public var readOnly: Bool?
    /// A recognised hardware write blocker between the disk and the appliance.
    public var writeBlocker: String?
    /// `vvvv:pppp` of the USB device or of the disk's USB bridge.
    public var usbId: String?
    /// For phones: `android-adb`, `mtp`, `apple`.
    public var phoneKind: String?
    /// For phones being connected or acquired.
    public var phoneState: PhoneState? = nil
    public var partitions: [String]
    public var state: SlotState
    /// Why a slot is refused or failed, and what the technician can do.
    public var detail: String?
    public var caseId: String?
    public var exhibitId: String?
    public var jobId: String?
    public var bytesDone: UInt64
    public var currentMBPerSecond: Double?
    public var averageMBPerSecond: Double?
    public var etaSeconds: Double?
    public var unreadableSectors: UInt64
    /// Final digests by algorithm (`sha256`, `md5`, `sha1`), once sealed.
    public var digests: [String: String]
    public var bundleId: String?
    public var bundlePath: String?
    /// The format a disk's image is written in (`raw`, `E01 fast`), once a job has it.
    public var imageFormat: String? = nil
    /// What resumes the slot's interrupted job.
    public var resumeBy: ResumeAction? = nil
    public var updatedAt: String

    public init(
        slot: Int, kind: SlotKind, device: String, syspath: String, model: String? = nil, vendor: String? = nil, serial: String? = nil, transport: String? = nil, sizeBytes: UInt64, logicalSectorSize: UInt32? = nil, readOnly: Bool? = nil, writeBlocker: String? = nil, usbId: String? = nil, phoneKind: String? = nil, phoneState: PhoneState? = nil, partitions: [String], state: SlotState, detail: String? = nil, caseId: String? = nil, exhibitId: String? = nil, jobId: String? = nil, bytesDone: UInt64, currentMBPerSecond: Double? = nil, averageMBPerSecond: Double? = nil, etaSeconds: Double? = nil, unreadableSectors: UInt64, digests: [String: String], bundleId: String? = nil, bundlePath: String? = nil, updatedAt: String
    ) {
        self.slot = slot
        self.kind = kind
        self.device = device
        self.syspath = syspath
        self.model = model
        self.vendor = vendor
        self.serial = serial
        self.transport = transport
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = logicalSectorSize
        self.readOnly = readOnly
        self.writeBlocker = writeBlocker
        self.usbId = usbId
        self.phoneKind = phoneKind
        self.phoneState = phoneState
        self.partitions = partitions
        self.state = state
        self.detail = detail
        self.caseId = caseId
        self.exhibitId = exhibitId
        self.jobId = jobId
        self.bytesDone = bytesDone
        self.currentMBPerSecond = currentMBPerSecond
        self.averageMBPerSecond = averageMBPerSecond
        self.etaSeconds = etaSeconds
        self.unreadableSectors = unreadableSectors
        self.digests = digests
        self.bundleId = bundleId
        self.bundlePath = bundlePath
        self.updatedAt = updatedAt
    }
}

/// The daemon itself.
public struct DaemonInfo: Codable, Sendable, Equatable {
    public var version: String
    public var pid: Int32
    public var store: String
    public var applianceId: String
    /// `udev` or `kernel`.
    public var discovery: String
    public var degraded: Bool
    public var degradedReason: String?
    public var startedAt: String
    public var storeFreeBytes: UInt64?
    /// The appliance's own disks (never offered), with the reason.
    public var systemDisks: [String: String]

    public init(
        version: String, pid: Int32, store: String, applianceId: String, discovery: String, degraded: Bool, degradedReason: String? = nil, startedAt: String, storeFreeBytes: UInt64? = nil, systemDisks: [String: String]
    ) {
        self.version = version
        self.pid = pid
        self.store = store
        self.applianceId = applianceId
        self.discovery = discovery
        self.degraded = degraded
        self.degradedReason = degradedReason
        self.startedAt = startedAt
        self.storeFreeBytes = storeFreeBytes
        self.systemDisks = systemDisks
    }
}

/// The evidence store's room, so a technician knows before starting whether another image fits.
public struct StoreStatus: Codable, Sendable, Equatable {
    public var path: String
    public var freeBytes: UInt64
    public var totalBytes: UInt64
    /// The average size of the images sealed in this store, once there is one.
    public var averageImageBytes: UInt64?
    /// How many more images of the average size fit.
    public var imagesThatFit: UInt64?
    /// Less than `StoreStatus.almostFullFraction` of the store, or room for fewer than two average images.
    public var almostFull: Bool

    public static let almostFullFraction = 0.05

    /// `keptFree`: what a job leaves free for records; a store with no more than that is full.
    public init(path: String, freeBytes: UInt64, totalBytes: UInt64, averageImageBytes: UInt64?, keptFree: UInt64 = 0) {
        self.path = path
        self.freeBytes = freeBytes
        self.totalBytes = totalBytes
        self.averageImageBytes = averageImageBytes
        imagesThatFit = averageImageBytes.flatMap { $0 > 0 ? freeBytes / $0 : nil }
        almostFull =
            Double(freeBytes) < Double(totalBytes) * Self.almostFullFraction || (imagesThatFit ?? 2) < 2 || freeBytes <= keptFree
    }
}

/// What resumes an interrupted job, for the words a technician is shown.
public enum ResumeAction: String, Codable, Sendable, Equatable {
    /// The same device attached again (the daemon sees it and continues the job).
    case reconnectDevice = "reconnect-device"
    /// Free space in the store: the device is still there, and the daemon continues the job
    /// once the store has room.
    case freeStoreSpace = "free-store-space"
    /// The device's kernel read-only flag was cleared during the job: set it again.
    case makeReadOnly = "make-read-only"
}

/// What needs a person. The daemon raises an alert while its condition holds and drops it when
/// the condition ends; acknowledging one (from the panel) is recorded in the audit trail and
/// stops it standing out, without hiding it.
public struct AlertStatus: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A writable source was not opened; `fix` is the command that makes it read-only.
        case sourceRefused = "source-refused"
        case jobFailed = "job-failed"
        /// The job's work is kept; reattaching the same device resumes it.
        case jobInterrupted = "job-interrupted"
        case storeAlmostFull = "store-almost-full"
        /// Device discovery without udevd.
        case daemonDegraded = "daemon-degraded"
        /// A phone waits for "Allow USB debugging".
        case phoneUnauthorized = "phone-unauthorized"
        case phoneLocked = "phone-locked"
        /// The appliance may not open the phone's USB node.
        case phoneNoPermission = "phone-no-permission"
        case phoneOffline = "phone-offline"
    }

    /// Stable while the condition lasts: kind and the slot's device or the job.
    public var id: String
    public var kind: Kind
    public var slot: Int?
    public var device: String?
    public var caseId: String?
    public var exhibitId: String?
    /// The technical reason, in English, from the daemon or the job.
    public var detail: String?
    /// A command that resolves it, where there is one.
    public var fix: String?
    /// For an interrupted job: what resumes it.
    public var resumeBy: ResumeAction?
    public var raisedAt: String
    public var acknowledgedBy: String?
    public var acknowledgedAt: String?

    public init(id: String, kind: Kind, raisedAt: String) {
        self.id = id
        self.kind = kind
        self.raisedAt = raisedAt
    }
}

/// The open case session.
public struct CaseSessionStatus: Codable, Sendable, Equatable {
    public var caseId: String
    public var examiner: String
    public var auto: Bool
    public var openedAt: String
    /// The exhibit number the next automatic acquisition gets.
    public var nextExhibitId: String

    public init(
        caseId: String, examiner: String, auto: Bool, openedAt: String, nextExhibitId: String
    ) {
        self.caseId = caseId
        self.examiner = examiner
        self.auto = auto
        self.openedAt = openedAt
        self.nextExhibitId = nextExhibitId
    }
}

/// Something that happened, for the panel's log line.
public struct DaemonEvent: Codable, Sendable, Equatable {
    public var level: EventLevel
    public var slot: Int?
    public var device: String?
    public var message: String

    public init(
        level: EventLevel, slot: Int? = nil, device: String? = nil, message: String
    ) {
        self.level = level
        self.slot = slot
        self.device = device
        self.message = message
    }
}

/// Every message the daemon sends. `type` says which of the optional members are present.
public struct StatusMessage: Codable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The whole state: `daemon`, `session` (absent when no case is open), `slots`, `jobs`,
        /// `alerts`, `store`.
        case snapshot
        /// One slot changed: `slot`.
        case slot
        /// A slot is gone (device removed): `slot` with its last state.
        case slotRemoved = "slot-removed"
        /// The case session opened or closed: `session` (absent when closed).
        case session
        /// `event`.
        case event
        /// A command succeeded: `request`, and `slot` or `session` where it concerns one.
        case ok
        /// A request failed: `request`, `error`.
        case error
        /// The alerts changed: `alerts`, the whole current list.
        case alerts
        /// The store's free space changed: `store`.
        case store
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var type: Kind
    public var time: String
    public var daemon: DaemonInfo?
    public var session: CaseSessionStatus?
    public var slots: [SlotStatus]?
    /// Recent jobs from the catalog, newest first (also those of earlier daemon runs).
    public var jobs: [CatalogEntry]?
    public var slot: SlotStatus?
    public var event: DaemonEvent?
    public var alerts: [AlertStatus]?
    public var store: StoreStatus?
    public var request: String?
    public var error: Failure?

    public init(_ type: Kind) {
        self.type = type
        self.time = UTCTimestamp.string(Date())
    }
}

/// What clients send, one JSON object per line.
public struct StatusRequest: Codable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Answered with one `snapshot`.
        case snapshot
        /// Answered with a `snapshot`, then every change until the client disconnects.
        case subscribe
        /// `caseId`, `examiner`, optional `auto`.
        case openCase = "open-case"
        case closeCase = "close-case"
        /// `slot`, `exhibitId`.
        case acquire
        /// `alertId`: recorded in the audit trail with `actor` and `client`.
        case acknowledge
    }

    public var request: Kind
    public var caseId: String?
    public var examiner: String?
    public var auto: Bool?
    public var slot: Int?
    public var exhibitId: String?
    public var alertId: String?
    /// Who acts (for the audit trail); the open case's examiner when absent.
    public var actor: String?
    /// Where the request comes from, for the audit trail: `panel /dev/tty1`, `exhibit case`.
    public var client: String?

    public init(
        _ request: Kind, caseId: String? = nil, examiner: String? = nil, auto: Bool? = nil, slot: Int? = nil,
        exhibitId: String? = nil, alertId: String? = nil, actor: String? = nil, client: String? = nil
    ) {
        self.request = request
        self.caseId = caseId
        self.examiner = examiner
        self.auto = auto
        self.slot = slot
        self.exhibitId = exhibitId
        self.alertId = alertId
        self.actor = actor
        self.client = client
    }
}

/// One JSON object per line, keys sorted so lines are stable for tests and logs.
public enum StatusCoding {
    public static func line<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        data.append(0x0A)
        return data
    }

    /// Takes the first complete line (without its newline) off `pending`, or nil when none is complete.
    public static func nextLine(_ pending: inout Data) -> Data? {
        guard let newline = pending.firstIndex(of: 0x0A) else { return nil }
        let line = Data(pending[pending.startIndex..<newline])
        pending = Data(pending[(newline + 1)...])
        return line
    }

    public static func decode<T: Decodable>(_ type: T.Type, from line: some StringProtocol) throws -> T {
        try JSONDecoder().decode(type, from: Data(line.utf8))
    }
}
