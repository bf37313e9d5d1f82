// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Devices
import Foundation

/// `exhibitd --config FILE`: a JSON object; every member is optional.
///
/// ```json
/// { "socket": "/run/exhibit/exhibitd.sock", "socketGroup": "exhibit",
///   "digests": ["md5"], "segmentSize": 2147483648, "verify": true,
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

    public static func load(_ path: String) throws -> DaemonConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(path: path, detail: "cannot read it")
        }
        do {
            return try JSONDecoder().decode(DaemonConfiguration.self, from: data)
        } catch {
            throw ConfigurationError(path: path, detail: "not a valid configuration: \(error)")
        }
    }

    public var extraDigests: [DigestAlgorithm] {
        (digests ?? []).compactMap { DigestAlgorithm(rawValue: $0.lowercased().replacingOccurrences(of: "-", with: "")) }
            .filter { $0 != .sha256 }
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
