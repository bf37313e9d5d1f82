// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What a phone acquisition adds to `acquisition.json`: the phone's identity and state, the
/// method achieved (and why no stronger one), and where the command audit log and the file
/// inventory are.
///
/// For a logical extraction the media SHA-256 (bag-info's `Exhibit-Media-SHA256`) is the
/// SHA-256 of `data/phone/inventory.sha256`, which lists every extracted file with the SHA-256
/// computed while it streamed from the phone; a hub checks it with
/// `sha256sum data/phone/inventory.sha256` and `sha256sum -c` from the bag root. For a
/// physical image it is the image's SHA-256, as for disks, and `inventorySHA256` covers the
/// logical part taken alongside.
public struct PhoneExtraction: Codable, Sendable {
    public struct Method: Codable, Sendable {
        /// `logical`, `file-system` or `physical`.
        public var method: String
        public var reason: String
        public init(method: String, reason: String) {
            self.method = method
            self.reason = reason
        }
    }

    public struct Connection: Codable, Sendable {
        /// `adb-tcp` or `adb-usb`.
        public var transport: String
        public var address: String
        public var protocolVersion: String
        public var maximumPayload: Int
        /// The phone's CNXN banner: product properties and features.
        public var banner: [String: String]
        public var features: [String]
        /// Whether the phone required AUTH (and accepted the appliance's key).
        public var authenticated: Bool
        /// SHA-256 of the appliance's ADB public key (Android's 524-byte structure).
        public var applianceKeySHA256: String
        /// Bytes the phone sent on this connection before its answer to the appliance's CNXN that
        /// belonged to no message of it (what a pulled USB cable leaves queued on a phone's
        /// endpoint), set aside unread: none of them is evidence. 0 over TCP.
        public var bytesSetAsideBeforeHandshake: Int?
        public init(
            transport: String, address: String, protocolVersion: String, maximumPayload: Int, banner: [String: String],
            features: [String], authenticated: Bool, applianceKeySHA256: String, bytesSetAsideBeforeHandshake: Int
        ) {
            self.transport = transport
            self.address = address
            self.protocolVersion = protocolVersion
            self.maximumPayload = maximumPayload
            self.banner = banner
            self.features = features
            self.authenticated = authenticated
            self.applianceKeySHA256 = applianceKeySHA256
            self.bytesSetAsideBeforeHandshake = bytesSetAsideBeforeHandshake
        }
    }

    public struct Device: Codable, Sendable {
        public var manufacturer: String?
        public var model: String?
        public var serial: String?
        public var androidVersion: String?
        public var sdk: String?
        public var securityPatch: String?
        public var buildFingerprint: String?
        public var buildType: String?
        /// `ro.crypto.type` / `ro.crypto.state`: `file`-based encryption, `encrypted`.
        public var encryption: String?
        /// The phone's clock (`date +%s`) and how far it was from the appliance's.
        public var clockUTC: String?
        public var clockOffsetSeconds: Double?
        /// `locked` (lock screen showing), `unlocked`, or `unknown`.
        public var lockState: String
        public var root: Bool
        /// How root was reached (`su`, `adbd runs as root`) or why not.
        public var rootDetail: String
        public init(lockState: String, root: Bool, rootDetail: String) {
            self.lockState = lockState
            self.root = root
            self.rootDetail = rootDetail
        }
    }

    public struct Files: Codable, Sendable {
        /// The phone directories walked (`/sdcard`).
        public var roots: [String]
        public var entries: Int
        public var complete: Int
        public var partial: Int
        public var denied: Int
        /// Directories, symlinks and special files: recorded, not pulled.
        public var notPulled: Int
        /// Entries whose listed name or path could not be followed: recorded, not pulled (see
        /// `anomalies`). Nil in bundles of versions that did not count them.
        public var refused: Int?
        public var bytes: UInt64
        public init(
            roots: [String], entries: Int, complete: Int, partial: Int, denied: Int, notPulled: Int, refused: Int? = nil, bytes: UInt64
        ) {
            self.roots = roots
            self.entries = entries
            self.complete = complete
            self.partial = partial
            self.denied = denied
            self.notPulled = notPulled
            self.refused = refused
            self.bytes = bytes
        }
    }

    public struct Physical: Codable, Sendable {
        public var partition: String
        public var sizeBytes: UInt64
        /// The `exec:` command that streamed it.
        public var command: String
        public init(partition: String, sizeBytes: UInt64, command: String) {
            self.partition = partition
            self.sizeBytes = sizeBytes
            self.command = command
        }
    }

    public var platform = "android"
    public var connection: Connection
    public var device: Device
    /// `logical` or `physical` (file-system extraction is not implemented).
    public var methodAchieved: String
    public var methodsNotAchieved: [Method]
    /// `data/phone/commands.jsonl`: every command with its output's SHA-256, exit status and timing.
    public var commandLog: String
    public var commands: Int
    public var commandsFailed: Int
    /// `data/phone/files.jsonl`: every entry walked, with metadata and status.
    public var fileLog: String
    public var files: Files
    public var inventory: String
    public var inventorySHA256: String
    public var physical: Physical?
    /// What the phone's listings held that was not followed as it stood (names that are no file
    /// name, a directory that lists itself, a walk past its bounds) and what was done instead,
    /// each path as one printable line. Nil in bundles of versions that did not look.
    public var anomalies: [FileTreeAnomaly]?

    public init(
        connection: Connection, device: Device, methodAchieved: String, methodsNotAchieved: [Method], commands: Int,
        commandsFailed: Int, files: Files, inventorySHA256: String, physical: Physical?, anomalies: [FileTreeAnomaly]? = nil
    ) {
        self.connection = connection
        self.device = device
        self.methodAchieved = methodAchieved
        self.methodsNotAchieved = methodsNotAchieved
        self.commandLog = PhoneExtraction.commandLogPath
        self.commands = commands
        self.commandsFailed = commandsFailed
        self.fileLog = PhoneExtraction.fileLogPath
        self.files = files
        self.inventory = PhoneExtraction.inventoryPath
        self.inventorySHA256 = inventorySHA256
        self.physical = physical
        self.anomalies = anomalies
    }

    public static let commandLogPath = "data/phone/commands.jsonl"
    public static let fileLogPath = "data/phone/files.jsonl"
    public static let inventoryPath = "data/phone/inventory.sha256"
}
