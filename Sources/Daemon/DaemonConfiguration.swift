// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Devices
import Foundation
import HumanText
import Imaging

/// `exhibitd --config FILE`: a JSON object; every member is optional.
///
/// ```json
/// { "socket": "/run/exhibit/exhibitd.sock", "socketGroup": "exhibit",
///   "digests": ["md5"], "segmentSize": 2147483648, "verify": true, "imageFormat": "e01", "compression": "fast",
///   "systemDisks": ["nvme0n1"], "writeBlockers": { "1234:5678": "Lab bridge X" },
///   "exhibitPrefix": "E", "recheckSeconds": 1, "phonePhysicalPartition": "/dev/block/by-name/userdata" }
/// ```
public struct DaemonConfiguration: Codable, Sendable {
    public var socket: String?
    /// The group that may use the status socket (mode 0660).
    public var socketGroup: String?
    /// Digests besides SHA-256.
    public var digests: [String]?
    public var segmentSize: UInt64?
    /// `raw` (the default) or `e01`; with `e01`, `compression` is `fast` (the default), `best` or `none`.
    public var imageFormat: String?
    public var compression: String?
    public var verify: Bool?
    /// Kernel names of disks that are the appliance's own, besides those found from mounts and swap.
    public var systemDisks: [String]?
    /// `vvvv:pppp` → name, added to the built-in write blocker ids.
    public var writeBlockers: [String: String]?
    /// Automatic exhibit numbers are this prefix and a number: E1, E2, …
    public var exhibitPrefix: String?
    /// How often sysfs is re-read: `blockdev --setro` emits no uevent, and events can be lost.
    public var recheckSeconds: Double?
    /// How far a job's resume journal may lag behind its first pass (default 5 s).
    public var checkpointSeconds: Double?
    /// A phone's block device to image when the phone gives root (`su`), besides the logical
    /// extraction, e.g. `/dev/block/by-name/userdata`; none by default.
    public var phonePhysicalPartition: String?

    public init() {}

    /// The lab's settings kept on the store itself, read when exhibitd is given no `--config`: on
    /// the appliance the root file system is read-only and replaced whole by an update, while the
    /// store partition stays.
    public static func storeSettingsPath(store: String) -> String { "\(store)/exhibitd.json" }

    /// The file exhibitd takes its settings from: `explicit` (`--config`), else the store's
    /// settings file if there is one; nil for the defaults.
    public static func settingsFile(explicit: String?, store: String) -> String? {
        if let explicit { return explicit }
        let path = storeSettingsPath(store: store)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    public static func load(_ path: String) throws -> DaemonConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(path: path, detail: "cannot read it")
        }
        guard data.count <= 1 << 20 else { throw ConfigurationError(path: path, detail: "is \(data.count) bytes; a configuration is at most 1 MiB") }
        // JSON between systems is UTF-8 (RFC 8259 § 8.1); JSONDecoder would also take UTF-16 or
        // UTF-32, which the check for a member named twice does not read. Without a byte order
        // mark their ASCII is valid UTF-8 but for its NULs, which JSON text never holds.
        guard !data.contains(0), String(validating: data, as: UTF8.self) != nil else {
            throw ConfigurationError(path: path, detail: "is not UTF-8 text: save it as UTF-8")
        }
        let configuration: DaemonConfiguration
        do {
            configuration = try JSONDecoder().decode(DaemonConfiguration.self, from: data)
        } catch {
            throw ConfigurationError(path: path, detail: "not a valid configuration: \(JSONProblem.describe(error))")
        }
        let names = JSONProblem.memberNames(in: data)
        if let twice = names.firstDuplicate {
            throw ConfigurationError(
                path: path,
                detail: "names \"\(PlainText.escaped(twice))\" twice (one reader would take the first value, another the last): "
                    + "keep one")
        }
        // JSONDecoder passes over a member that is no setting in silence.
        if let unknown = names.topLevel.first(where: { !memberNames.contains($0) }) {
            throw ConfigurationError(
                path: path,
                detail: "has no setting \"\(PlainText.escaped(unknown))\" (a misspelt name would leave its default, e.g. raw "
                    + "images instead of E01); the settings are \(memberNames.sorted().joined(separator: ", "))")
        }
        if let problem = configuration.problem { throw ConfigurationError(path: path, detail: problem) }
        return configuration
    }

    /// The members a settings file may have: the stored properties, whose names the JSON keys are.
    static let memberNames = Set(Mirror(reflecting: DaemonConfiguration()).children.compactMap(\.label))

    /// The settings jobs take, for the daemon's log at start: what the lab chose is visible there.
    public var summary: String {
        "image format \(imageFormatChoice), digests SHA-256" + extraDigests.map { ", \($0.displayName)" }.joined()
            + ", segment size " + (segmentSize.map { "\($0) bytes" } ?? "none (one file)")
            + ", read-back verification " + (verify == false ? "off" : "on")
    }

    /// What the daemon would otherwise drop or choke on: the same bounds as the command line's.
    var problem: String? {
        for name in digests ?? [] where DigestAlgorithm(rawValue: name.lowercased().replacingOccurrences(of: "-", with: "")) == nil {
            return "unknown digest \"\(PlainText.escaped(name))\": use md5, sha1 (SHA-256 is always computed)"
        }
        if let segmentSize, let problem = ImageSegmentation.problem(segmentSize: segmentSize) {
            return "segmentSize \(segmentSize) \(problem)"
        }
        if parsedImageFormat == nil {
            return "imageFormat must be \"raw\" or \"e01\", and compression (e01 only) \"fast\", \"best\" or \"none\"; got "
                + "imageFormat \"\(PlainText.escaped(imageFormat ?? "raw"))\""
                + (compression.map { ", compression \"\(PlainText.escaped($0))\"" } ?? "")
        }
        for id in (writeBlockers ?? [:]).keys where !Self.isProductID(id) {
            return "writeBlockers: \"\(PlainText.escaped(id))\" is not a USB id vendor:product of four hex digits each (e.g. 1234:abcd)"
        }
        if let recheckSeconds, !(0.1...3600).contains(recheckSeconds) { return "recheckSeconds must lie between 0.1 and 3600" }
        if let checkpointSeconds, !(0.1...3600).contains(checkpointSeconds) { return "checkpointSeconds must lie between 0.1 and 3600" }
        if let exhibitPrefix {
            do { try PlainText.validate(exhibitPrefix, field: "exhibitPrefix", maximumBytes: 32) } catch { return "\(error)" }
        }
        return nil
    }

    /// The image format of disk jobs (the configuration was checked when it was loaded).
    public var imageFormatChoice: ImageFormatChoice { parsedImageFormat ?? .raw }

    /// `imageFormat` and `compression` as a choice; nil when they name none (a `problem`).
    private var parsedImageFormat: ImageFormatChoice? { ImageFormatChoice(format: imageFormat ?? "raw", compression: compression) }

    public var extraDigests: [DigestAlgorithm] {
        (digests ?? []).compactMap { DigestAlgorithm(rawValue: $0.lowercased().replacingOccurrences(of: "-", with: "")) }
            .filter { $0 != .sha256 }
    }

    private static func isProductID(_ id: String) -> Bool {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { $0.count == 4 && $0.allSatisfy(\.isHexDigit) }
    }

    public var writeBlockerCatalog: WriteBlockerCatalog {
        var extra: [USBProductID: String] = [:]
        for (id, name) in writeBlockers ?? [:] {
            let parts = id.split(separator: ":")
            if parts.count == 2 { extra[USBProductID(vendor: String(parts[0]), product: String(parts[1]))] = name }
        }
        return WriteBlockerCatalog(extra: extra)
    }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let detail: String
    public var description: String { "configuration \(path): \(detail)" }
}
