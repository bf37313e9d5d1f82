// SPDX-License-Identifier: Apache-2.0
import CBlockDevice
import Cryptography
import Devices
import Foundation
import HumanText
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// What to do with a block device whose kernel read-only flag is off.
public enum WritableSourcePolicy: Sendable, Equatable {
    /// Refuse it before it is opened (the default).
    case refuse
    /// The device sits behind the named, recognised hardware write blocker, which stops writes
    /// whatever the kernel flag says; the bundle records the blocker and the flag's state.
    case hardwareWriteBlocker(String)
    /// Read it anyway and record the override in the bundle (tests and lab validation only).
    case allowAndRecord
}

/// The one owner of an evidence source's read-only descriptor. The descriptor is opened
/// `O_RDONLY` only after write protection is established, and closed when the owner ends.
public struct EvidenceSource: ~Copyable {
    public let identity: SourceIdentity
    private let descriptor: Int32
    private let openedStatus: stat

    private init(identity: SourceIdentity, descriptor: Int32, opened: stat) {
        self.identity = identity
        self.descriptor = descriptor
        self.openedStatus = opened
    }

    deinit { _ = Glibc.close(descriptor) }

    /// The source as a job reads it; valid only while this source is alive.
    public var opened: OpenedSource {
        OpenedSource(
            identity: identity, openedStatus: openedStatus,
            access: SourceAccess(
                descriptor: descriptor, path: identity.path, size: identity.sizeBytes,
                sectorSize: Int(identity.logicalSectorSize), isBlockDevice: identity.kind == .blockDevice,
                requiresReadOnlyFlag: identity.writeProtection.kernelReadOnlyIoctl == true))
    }

    /// Inspects `path`, proves it read-only (block devices) and opens it `O_RDONLY`.
    public static func open(
        _ path: String, writablePolicy: WritableSourcePolicy = .refuse
    ) throws(AcquisitionError) -> EvidenceSource {
        var before = stat()
        guard stat(path, &before) == 0 else {
            let error = errno
            throw AcquisitionError(
                error == ENOENT ? .sourceNotFound : .inspectFailed, path: path, errno: error)
        }
        let mode = before.st_mode & S_IFMT
        guard mode == S_IFBLK || mode == S_IFREG else {
            throw AcquisitionError(
                .sourceUnsupported, path: path, detail: "not a block device or a regular file")
        }
        let isBlock = mode == S_IFBLK
        let sysfs = isBlock ? SysfsBlockDevice(major: DeviceNumber.major(before.st_rdev), minor: DeviceNumber.minor(before.st_rdev)) : nil

        // Refuse a writable device before it is ever opened.
        let sysfsReadOnly = sysfs?.readOnly
        if isBlock, sysfsReadOnly == false, writablePolicy == .refuse {
            throw writableRefusal(path)
        }

        let descriptor = openReadOnly(path, isRegularFile: !isBlock)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, errno: errno) }
        var opened = stat()
        guard fstat(descriptor, &opened) == 0 else {
            let error = errno
            _ = Glibc.close(descriptor)
            throw AcquisitionError(.inspectFailed, path: path, errno: error)
        }
        guard opened.st_dev == before.st_dev, opened.st_ino == before.st_ino, opened.st_rdev == before.st_rdev else {
            _ = Glibc.close(descriptor)
            throw AcquisitionError(.sourceChanged, path: path, detail: "the path changed while it was being opened")
        }

        do throws(AcquisitionError) {
            let identity =
                try isBlock
                ? blockIdentity(path: path, descriptor: descriptor, sysfs: sysfs!, sysfsReadOnly: sysfsReadOnly, policy: writablePolicy)
                : fileIdentity(path: path, resolvedPath: openedPath(descriptor) ?? absolute(path), status: opened)
            guard identity.sizeBytes > 0 else {
                throw AcquisitionError(.sourceEmpty, path: path, detail: "a 0-byte source has nothing to acquire")
            }
            _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
            return EvidenceSource(identity: identity, descriptor: descriptor, opened: opened)
        } catch {
            _ = Glibc.close(descriptor)
            throw error
        }
    }

    /// The fix names the device node itself: `blockdev --setro` on a /dev/disk/by-id link works,
    /// but a technician checking the flag with `lsblk` sees the kernel's name.
    public static func writableRefusal(_ path: String) -> AcquisitionError {
        let device = (path as NSString).resolvingSymlinksInPath
        return AcquisitionError(
            .sourceWritable, path: path,
            detail: "its kernel read-only flag is off, so it was not opened; attach it behind a write blocker "
                + "or run `blockdev --setro \(device)`, then try again")
    }

    private static func openReadOnly(_ path: String, isRegularFile: Bool) -> Int32 {
        let flags = O_RDONLY | O_CLOEXEC | O_NOCTTY
        if isRegularFile {
            // Reading must not even touch an image file's access time; O_NOATIME needs ownership or CAP_FOWNER.
            let descriptor = Glibc.open(path, flags | linuxNoAccessTimeFlag)
            if descriptor >= 0 || errno != EPERM { return descriptor }
        }
        return Glibc.open(path, flags)
    }

    private static func blockIdentity(
        path: String, descriptor: Int32, sysfs: SysfsBlockDevice, sysfsReadOnly: Bool?, policy: WritableSourcePolicy
    ) throws(AcquisitionError) -> SourceIdentity {
        var readOnly: Int32 = 0
        guard exhibit_blk_read_only(descriptor, &readOnly) == 0 else {
            throw AcquisitionError(.inspectFailed, path: path, errno: errno, detail: "BLKROGET")
        }
        if readOnly == 0, policy == .refuse { throw writableRefusal(path) }
        var size: UInt64 = 0
        var logical: UInt32 = 512
        var physical: UInt32 = 512
        guard exhibit_blk_size_bytes(descriptor, &size) == 0 else {
            throw AcquisitionError(.inspectFailed, path: path, errno: errno, detail: "BLKGETSIZE64")
        }
        guard exhibit_blk_logical_sector_size(descriptor, &logical) == 0 else {
            throw AcquisitionError(.inspectFailed, path: path, errno: errno, detail: "BLKSSZGET")
        }
        if exhibit_blk_physical_sector_size(descriptor, &physical) != 0 { physical = logical }

        let names = sysfs.identification()
        var blocker: String? = nil
        if readOnly == 0, case .hardwareWriteBlocker(let name) = policy { blocker = name }
        let overridden = readOnly == 0 && blocker == nil
        let summary =
            if let blocker {
                "hardware write blocker \(blocker); the kernel read-only flag was off; opened O_RDONLY"
            } else if overridden {
                "WRITABLE: the kernel read-only flag was off and the refusal was overridden (--allow-writable-source); opened O_RDONLY"
            } else {
                "kernel read-only flag set (BLKROGET=1\(sysfsReadOnly == true ? ", sysfs ro=1" : "")) before opening; opened O_RDONLY"
            }
        let backing = sysfs.attribute("loop/backing_file")
        let mounts = sysfs.mountPoints()
        return SourceIdentity(
            path: path, resolvedPath: openedPath(descriptor) ?? absolute(path), kind: .blockDevice,
            sizeBytes: size, logicalSectorSize: logical, physicalSectorSize: physical,
            kernelName: sysfs.kernelName, deviceNumber: sysfs.deviceNumber,
            model: names.model, vendor: names.vendor, serial: names.serial, transport: names.transport,
            isPartition: sysfs.isPartition, removable: sysfs.attribute("removable").map { $0 == "1" },
            partitions: sysfs.partitions(), loopBackingFile: backing, mountedAt: mounts.isEmpty ? nil : mounts,
            fileModified: nil, fileInode: nil,
            writeProtection: WriteProtectionEvidence(
                kernelReadOnlyIoctl: readOnly != 0, sysfsReadOnly: sysfsReadOnly, openMode: "O_RDONLY",
                writableOverride: overridden, hardwareWriteBlocker: blocker, summary: summary))
    }

    /// The absolute path of what `descriptor` opened, symlinks and `..` resolved, as the kernel
    /// names it (a path given relative to the working directory, which the record does not keep,
    /// or through /dev/disk/by-id, says little of what was read).
    private static func openedPath(_ descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, Int(PATH_MAX))
        guard count > 0, buffer[0] == CChar(UInt8(ascii: "/")) else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Without /proc: at least not relative to a working directory the record does not keep.
    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    private static func fileIdentity(path: String, resolvedPath: String, status: stat) throws(AcquisitionError) -> SourceIdentity {
        let modified = Date(
            timeIntervalSince1970: TimeInterval(status.st_mtim.tv_sec) + TimeInterval(status.st_mtim.tv_nsec) / 1e9)
        return SourceIdentity(
            path: path, resolvedPath: resolvedPath, kind: .regularFile,
            sizeBytes: UInt64(status.st_size), logicalSectorSize: 512, physicalSectorSize: 512,
            kernelName: nil, deviceNumber: nil, model: nil, vendor: nil, serial: nil, transport: "file",
            isPartition: nil, removable: nil, partitions: nil, loopBackingFile: nil, mountedAt: nil,
            fileModified: modified, fileInode: UInt64(status.st_ino),
            writeProtection: WriteProtectionEvidence(
                kernelReadOnlyIoctl: nil, sysfsReadOnly: nil, openMode: "O_RDONLY", writableOverride: false,
                hardwareWriteBlocker: nil, summary: "regular image file, opened O_RDONLY|O_NOATIME; its sectors are nominal 512-byte units"))
    }

    /// O_NOATIME (Linux, all architectures Exhibit runs on); Glibc hides it without _GNU_SOURCE.
    private static let linuxNoAccessTimeFlag: Int32 = 0o1000000
}

/// An open evidence source as a job reads it: readers for the passes, the second pass's
/// recovery, the fingerprint and the change check. A view of the `EvidenceSource` that owns the
/// descriptor, valid only while that source is alive (a job uses it inside `withEvidenceSource`).
public struct OpenedSource: @unchecked Sendable {
    public let identity: SourceIdentity
    let openedStatus: stat
    let access: SourceAccess

    /// A reader for a pass over the source (the first pass, a continuity check).
    public func makeReader() -> SourceReader { SourceReader(access) }

    /// The second pass over skipped areas.
    public func makeRecovery() -> SectorRecovery { SectorRecovery(access) }

    /// For an image file: how it changed since it was opened (its size or modification time),
    /// or nil. A file written to while it is read would give an image of neither state.
    public func changeSinceOpening() -> String? {
        guard identity.kind == .regularFile else { return nil }
        var now = stat()
        guard fstat(access.descriptor, &now) == 0 else { return "it can no longer be inspected: \(String(cString: strerror(errno)))" }
        var changes: [String] = []
        let before = openedStatus
        if now.st_size != before.st_size { changes.append("its size went from \(before.st_size) to \(now.st_size) bytes") }
        if now.st_mtim.tv_sec != before.st_mtim.tv_sec || now.st_mtim.tv_nsec != before.st_mtim.tv_nsec {
            changes.append("it was modified (mtime \(Self.time(before.st_mtim)) → \(Self.time(now.st_mtim)))")
        }
        return changes.isEmpty ? nil : changes.joined(separator: " and ")
    }

    private static func time(_ value: timespec) -> String {
        UTCTimestamp.string(Date(timeIntervalSince1970: TimeInterval(value.tv_sec) + TimeInterval(value.tv_nsec) / 1e9))
    }

    /// SHA-256 over the size and the first and last MiB (unreadable sectors as zeros): with
    /// serial, model and size, what tells a re-attached source from another one of the same size.
    public func fingerprint() throws -> String {
        var recovery = makeRecovery()
        recovery.attemptsPerSector = 1
        recovery.secondsPerArea = 10
        let size = identity.sizeBytes
        let sector = UInt64(identity.logicalSectorSize)
        var length = min(size, 1 << 20)
        if identity.kind == .blockDevice { length -= length % sector }
        var buffer: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&buffer, 4096, SectorRecovery.pieceSize) == 0, let buffer else {
            throw AcquisitionError(.readFailed, path: identity.path, detail: "no memory for the fingerprint")
        }
        defer { free(buffer) }
        let first = try recovery.recover(ByteSpan(start: 0, length: length), buffer: buffer) { _, _, _ in }
        let last = try recovery.recover(ByteSpan(start: size - length, length: length), buffer: buffer) { _, _, _ in }
        return Digest.sha256("\(size) \(first.sha256) \(last.sha256)").hex
    }
}

/// Scoped access to an evidence source: the descriptor cannot escape `body`.
public func withEvidenceSource<T>(
    at path: String, writablePolicy: WritableSourcePolicy = .refuse,
    _ body: (borrowing EvidenceSource) throws -> T
) throws -> T {
    let source = try EvidenceSource.open(path, writablePolicy: writablePolicy)
    return try body(source)
}
