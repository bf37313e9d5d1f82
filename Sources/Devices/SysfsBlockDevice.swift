// SPDX-License-Identifier: Apache-2.0
import Foundation
import Imaging

/// Reads a block device's attributes from sysfs (`/sys/dev/block/M:m`) and, where udevd runs,
/// its properties from the udev database. No ioctl and no open of the device itself.
public struct SysfsBlockDevice: Sendable {
    let major: UInt32
    let minor: UInt32
    let sysfsRoot: String

    public init(major: UInt32, minor: UInt32, sysfsRoot: String = "/sys") {
        self.major = major
        self.minor = minor
        self.sysfsRoot = sysfsRoot
    }

    public var deviceNumber: String { "\(major):\(minor)" }

    /// The canonical sysfs directory (`/sys/devices/.../block/sdb`).
    public var directory: String? {
        let link = "\(sysfsRoot)/dev/block/\(deviceNumber)"
        guard let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
        let url = URL(fileURLWithPath: resolved, relativeTo: URL(fileURLWithPath: "\(sysfsRoot)/dev/block/"))
        return url.standardizedFileURL.path
    }

    public var kernelName: String? { directory.map { ($0 as NSString).lastPathComponent } }

    public func attribute(_ name: String) -> String? {
        guard let directory else { return nil }
        return Self.readTrimmed("\(directory)/\(name)")
    }

    /// The `ro` attribute: true when the kernel flag is set.
    public var readOnly: Bool? { attribute("ro").map { $0 == "1" } }

    public var isPartition: Bool { attribute("partition") != nil }

    /// The whole-disk directory for a partition, or the device's own for a disk.
    public var diskDirectory: String? {
        guard let directory else { return nil }
        return isPartition ? (directory as NSString).deletingLastPathComponent : directory
    }

    public func partitions() -> [PartitionEntry] {
        guard !isPartition, let directory, let kernelName,
            let entries = try? FileManager.default.contentsOfDirectory(atPath: directory)
        else { return [] }
        return entries.filter { $0.hasPrefix(kernelName) && FileManager.default.fileExists(atPath: "\(directory)/\($0)/partition") }
            .sorted()
            .map { name in
                PartitionEntry(
                    name: name,
                    startSector: Self.readTrimmed("\(directory)/\(name)/start").flatMap { UInt64($0) },
                    sectors: Self.readTrimmed("\(directory)/\(name)/size").flatMap { UInt64($0) })
            }
    }

    /// Model, vendor and serial from the SCSI/NVMe/MMC device directory, then the udev database.
    public func identification() -> (model: String?, vendor: String?, serial: String?, transport: String?) {
        let udev = udevProperties()
        let deviceDirectory = diskDirectory.map { "\($0)/device" }
        func fromDevice(_ name: String) -> String? {
            guard let deviceDirectory else { return nil }
            return Self.readTrimmed("\(deviceDirectory)/\(name)").flatMap { $0.isEmpty ? nil : $0 }
        }
        let model = udev["ID_MODEL"].map { $0.replacingOccurrences(of: "_", with: " ") } ?? fromDevice("model") ?? fromDevice("name")
        let vendor = udev["ID_VENDOR"] ?? fromDevice("vendor")
        let serial = udev["ID_SERIAL_SHORT"] ?? fromDevice("serial") ?? vpdSerial(deviceDirectory)
        return (model, vendor, serial, udev["ID_BUS"] ?? transportFromPath())
    }

    /// Unit serial number from SCSI VPD page 0x80 (4-byte header, then ASCII).
    private func vpdSerial(_ deviceDirectory: String?) -> String? {
        guard let deviceDirectory,
            let data = FileManager.default.contents(atPath: "\(deviceDirectory)/vpd_pg80"), data.count > 4
        else { return nil }
        let text = String(decoding: data.dropFirst(4), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines.union(.controlCharacters))
        return text.isEmpty ? nil : text
    }

    private func transportFromPath() -> String? {
        guard let directory else { return nil }
        if directory.contains("/usb") { return "usb" }
        if directory.contains("/nvme") { return "nvme" }
        if directory.contains("/ata") { return "ata" }
        if directory.contains("/mmc") { return "mmc" }
        if directory.contains("/virtio") { return "virtio" }
        if directory.contains("/virtual/block/loop") { return "loop" }
        if directory.contains("/virtual/") { return "virtual" }
        if directory.contains("/host") { return "scsi" }
        return nil
    }

    /// `E:KEY=VALUE` lines of `/run/udev/data/bM:m`; empty where udevd does not run.
    func udevProperties() -> [String: String] {
        guard let text = try? String(contentsOfFile: "/run/udev/data/b\(deviceNumber)", encoding: .utf8) else { return [:] }
        var properties: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("E:") {
            let pair = line.dropFirst(2).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { properties[String(pair[0])] = String(pair[1]) }
        }
        return properties
    }

    /// Mount points whose device is this one or one of its partitions, from `/proc/self/mountinfo`.
    public func mountPoints() -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        var numbers: Set<String> = [deviceNumber]
        if let directory, !isPartition, let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) {
            for entry in entries {
                if let number = Self.readTrimmed("\(directory)/\(entry)/dev"),
                    FileManager.default.fileExists(atPath: "\(directory)/\(entry)/partition")
                {
                    numbers.insert(number)
                }
            }
        }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4, numbers.contains(String(fields[2])) else { return nil }
            return String(fields[4])
        }
    }

    /// A sysfs attribute file's text without surrounding whitespace; nil when it cannot be read.
    public static func readTrimmed(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
