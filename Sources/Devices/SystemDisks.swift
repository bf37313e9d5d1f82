// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// The appliance's own disks: those that hold `/`, `/boot`, `/usr`, `/var`, the evidence store or
/// swap, followed through partitions, device-mapper/MD slaves and loop backing files to the whole
/// disks underneath. They are never offered as sources, whatever the udev rules say.
public enum SystemDisks {
    /// Mount points whose devices are always the appliance's own.
    static let systemMountPoints: Set<String> = ["/", "/boot", "/boot/efi", "/usr", "/var"]

    /// Whole-disk kernel names (`vda`, `nvme0n1`) mapped to why they are system disks.
    public static func find(storePath: String, configured: [String] = [], sysfsRoot: String = "/sys") -> [String: String] {
        var reasons: [String: String] = [:]
        func mark(_ number: String, _ reason: String) {
            for disk in wholeDisks(holding: number, sysfsRoot: sysfsRoot) where reasons[disk] == nil {
                reasons[disk] = reason
            }
        }
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        var storeMount: (point: String, number: String)? = nil
        let store = (storePath as NSString).standardizingPath
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { continue }
            let number = String(fields[2])
            let point = unescape(String(fields[4]))
            if systemMountPoints.contains(point) { mark(number, "holds \(point)") }
            if store == point || store.hasPrefix(point == "/" ? "/" : point + "/"),
                point.count > (storeMount?.point.count ?? -1)
            {
                storeMount = (point, number)
            }
        }
        if let storeMount { mark(storeMount.number, "holds the evidence store (\(store))") }
        let swaps = (try? String(contentsOfFile: "/proc/swaps", encoding: .utf8)) ?? ""
        for line in swaps.split(separator: "\n").dropFirst() {
            guard let path = line.split(separator: " ").first.map(String.init) else { continue }
            var status = stat()
            guard stat(path, &status) == 0 else { continue }
            let isBlock = status.st_mode & S_IFMT == S_IFBLK
            let device = isBlock ? status.st_rdev : status.st_dev
            mark("\(DeviceNumber.major(device)):\(DeviceNumber.minor(device))", "holds swap (\(path))")
        }
        for name in configured where reasons[name] == nil { reasons[name] = "listed as a system disk in the configuration" }
        return reasons
    }

    /// The whole disks under a block device number, following partitions, slaves and loop backing files.
    static func wholeDisks(holding number: String, sysfsRoot: String, depth: Int = 0) -> Set<String> {
        guard depth < 8, !number.hasPrefix("0:"),
            let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(sysfsRoot)/dev/block/\(number)")
        else { return [] }
        let directory = URL(fileURLWithPath: resolved, relativeTo: URL(fileURLWithPath: "\(sysfsRoot)/dev/block/"))
            .standardizedFileURL.path
        let isPartition = FileManager.default.fileExists(atPath: "\(directory)/partition")
        let disk = isPartition ? (directory as NSString).deletingLastPathComponent : directory
        var found: Set<String> = [(disk as NSString).lastPathComponent]
        for slave in (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/slaves")) ?? [] {
            if let slaveNumber = SysfsBlockDevice.readTrimmed("\(directory)/slaves/\(slave)/dev") {
                found.formUnion(wholeDisks(holding: slaveNumber, sysfsRoot: sysfsRoot, depth: depth + 1))
            }
        }
        if let backing = SysfsBlockDevice.readTrimmed("\(disk)/loop/backing_file") {
            var status = stat()
            if stat(backing, &status) == 0 {
                found.formUnion(
                    wholeDisks(holding: "\(DeviceNumber.major(status.st_dev)):\(DeviceNumber.minor(status.st_dev))", sysfsRoot: sysfsRoot, depth: depth + 1))
            }
        }
        return found
    }

    /// mountinfo escapes space, tab, newline and backslash as octal.
    static func unescape(_ field: String) -> String {
        field.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
            .replacingOccurrences(of: "\\012", with: "\n").replacingOccurrences(of: "\\134", with: "\\")
    }

}
