// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What kind of thing the evidence stream is read from.
public enum SourceKind: String, Codable, Sendable {
    case blockDevice = "block-device"
    case regularFile = "regular-file"
    /// A phone read over ADB (logically, or a partition streamed through `exec:`).
    case androidDevice = "android-device"
}

/// Why Exhibit believes reading the source cannot change it.
public struct WriteProtectionEvidence: Codable, Sendable, Equatable {
    /// The kernel read-only flag from `BLKROGET` (block devices).
    public var kernelReadOnlyIoctl: Bool?
    /// `/sys/dev/block/M:m/ro` read before the device was opened.
    public var sysfsReadOnly: Bool?
    /// The descriptor's access mode; always `O_RDONLY`.
    public var openMode: String
    /// The technician overrode the refusal of a writable source (`--allow-writable-source`).
    public var writableOverride: Bool
    /// The recognised hardware write blocker the device was read through, when the kernel flag was off.
    public var hardwareWriteBlocker: String?
    /// A one-line statement for the report.
    public var summary: String

    public init(
        kernelReadOnlyIoctl: Bool? = nil, sysfsReadOnly: Bool? = nil, openMode: String, writableOverride: Bool, hardwareWriteBlocker: String? = nil, summary: String
    ) {
        self.kernelReadOnlyIoctl = kernelReadOnlyIoctl
        self.sysfsReadOnly = sysfsReadOnly
        self.openMode = openMode
        self.writableOverride = writableOverride
        self.hardwareWriteBlocker = hardwareWriteBlocker
        self.summary = summary
    }
}

/// A partition found on a whole-disk source (listed, not acquired separately).
public struct PartitionEntry: Codable, Sendable, Equatable {
    public var name: String
    public var startSector: UInt64?
    public var sectors: UInt64?

    public init(name: String, startSector: UInt64?, sectors: UInt64?) {
        self.name = name
        self.startSector = startSector
        self.sectors = sectors
    }
}

/// Everything known about the source at the time it was opened.
public struct SourceIdentity: Codable, Sendable, Equatable {
    public var path: String
    public var resolvedPath: String
    public var kind: SourceKind
    public var sizeBytes: UInt64
    public var logicalSectorSize: UInt32
    public var physicalSectorSize: UInt32
    /// Kernel name (`sdb`, `loop3`) and `major:minor` for block devices.
    public var kernelName: String?
    public var deviceNumber: String?
    public var model: String?
    public var vendor: String?
    public var serial: String?
    public var transport: String?
    public var isPartition: Bool?
    public var removable: Bool?
    public var partitions: [PartitionEntry]?
    /// For loop devices, the backing file (what a lab's validation file calls the test source).
    public var loopBackingFile: String?
    /// Mount points of this device or its partitions at open time (a mounted source may change).
    public var mountedAt: [String]?
    /// For regular files: modification time and inode, to tell one image file from another.
    public var fileModified: Date?
    public var fileInode: UInt64?
    public var writeProtection: WriteProtectionEvidence

    /// `size` in whole logical sectors, plus the bytes of a trailing partial sector.
    public var sectorCount: (sectors: UInt64, remainderBytes: UInt64) {
        let sector = UInt64(max(logicalSectorSize, 1))
        return (sizeBytes / sector, sizeBytes % sector)
    }

    public init(
        path: String, resolvedPath: String, kind: SourceKind, sizeBytes: UInt64, logicalSectorSize: UInt32, physicalSectorSize: UInt32, kernelName: String? = nil, deviceNumber: String? = nil, model: String? = nil, vendor: String? = nil, serial: String? = nil, transport: String? = nil, isPartition: Bool? = nil, removable: Bool? = nil, partitions: [PartitionEntry]? = nil, loopBackingFile: String? = nil, mountedAt: [String]? = nil, fileModified: Date? = nil, fileInode: UInt64? = nil, writeProtection: WriteProtectionEvidence
    ) {
        self.path = path
        self.resolvedPath = resolvedPath
        self.kind = kind
        self.sizeBytes = sizeBytes
        self.logicalSectorSize = logicalSectorSize
        self.physicalSectorSize = physicalSectorSize
        self.kernelName = kernelName
        self.deviceNumber = deviceNumber
        self.model = model
        self.vendor = vendor
        self.serial = serial
        self.transport = transport
        self.isPartition = isPartition
        self.removable = removable
        self.partitions = partitions
        self.loopBackingFile = loopBackingFile
        self.mountedAt = mountedAt
        self.fileModified = fileModified
        self.fileInode = fileInode
        self.writeProtection = writeProtection
    }
}

extension SourceIdentity {
    /// A phone read over ADB: no block device of the appliance's, so no sysfs facts; the
    /// write-protection evidence is what the appliance did and did not send.
    public static func phone(
        path: String, address: String, sizeBytes: UInt64, sectorSize: UInt32, model: String?, vendor: String?,
        serial: String?, transport: String
    ) -> SourceIdentity {
        SourceIdentity(
            path: path, resolvedPath: address, kind: .androidDevice, sizeBytes: sizeBytes, logicalSectorSize: sectorSize,
            physicalSectorSize: sectorSize, model: model, vendor: vendor, serial: serial, transport: transport,
            writeProtection: WriteProtectionEvidence(
                openMode: "ADB reading requests only",
                writableOverride: false,
                summary:
                    "Read over ADB with reading requests only: the shell commands listed in data/phone/commands.jsonl, "
                    + "sync STAT/LIST/RECV and exec: streams; nothing was pushed, installed or changed by Exhibit. "
                    + "A running Android still writes its own logs and caches."))
    }
}
