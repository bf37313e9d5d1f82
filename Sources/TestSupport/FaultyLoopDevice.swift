// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A faulty disk: a FUSE file whose reads can be slow, fail with EIO over chosen byte ranges, or find
/// the disk gone, attached read-only as a loop device. Built from Tests/Fixtures/faultfile.c with the
/// system compiler and libfuse3.
///
/// The kernel fails exactly the loop requests that touch a bad range: O_DIRECT reads of one sector
/// fail only on bad sectors, while buffered reads fail on the whole page-cache folio around one.
public final class FaultyLoopDevice: @unchecked Sendable {
    public let loop: LoopDevice
    private let fuse: Process
    private let mountPoint: String
    private let badFile: String
    private let size: UInt64

    /// Why a faulty device cannot be made here, or nil.
    public static var unavailableReason: String? {
        if let reason = LoopDevice.unavailableReason { return reason }
        if !FileManager.default.fileExists(atPath: "/dev/fuse") { return "no /dev/fuse in this environment" }
        if !Subprocess.has("cc") { return "no C compiler (scripts/install-deps)" }
        if !((try? Subprocess.shell("pkg-config --exists fuse3"))?.succeeded ?? false) {
            return "libfuse3-dev is not installed (scripts/install-deps)"
        }
        return nil
    }

    /// The FUSE file the loop devices read: `backing`'s bytes, with the faults.
    public var imagePath: String { "\(mountPoint)/image" }

    /// `badRanges` are byte ranges; a read that touches one fails whole with EIO. A range of
    /// `wearingOut` reads `goodReads` times, then fails every read (counted on `imagePath`, which
    /// has no page cache; the loop device's cache can serve a read again without the file). With
    /// `protectedByFlagOnly` the loop is attached read-write and only its kernel read-only flag is
    /// set, so a test can clear it (on a loop attached `--read-only` the flag cannot be cleared).
    public init(
        backing: String, badRanges: [(offset: UInt64, length: UInt64)] = [],
        wearingOut: [(offset: UInt64, length: UInt64, goodReads: Int)] = [], delayMilliseconds: Int = 0, sectorSize: Int = 512, protectedByFlagOnly: Bool = false, scratch: ScratchDirectory, fixture: String
    ) throws {
        // Built once per scratch directory, so several devices in one test share the binary.
        let binary = scratch.file("faultfile")
        if !FileManager.default.isExecutableFile(atPath: binary) {
            let build = try Subprocess.shell("cc -O2 '\(fixture)' $(pkg-config --cflags --libs fuse3) -o '\(binary)'")
            guard build.succeeded else { throw LoopDevice.LoopError(message: "building the FUSE fixture: \(build)") }
        }
        let name = "fault-\(UUID().uuidString.prefix(8))"
        let mountPoint = scratch.file("\(name)-mount")
        let badFile = scratch.file("\(name)-bad")
        let log = scratch.file("\(name).log")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // The ranges go in a bad file (the fixture re-reads it on SIGHUP, for changing faults by hand).
        try FaultyLoopDevice.badFileText(badRanges).write(toFile: badFile, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: log, contents: nil)

        let fuse = Process()
        fuse.executableURL = URL(fileURLWithPath: binary)
        fuse.arguments =
            [backing, mountPoint, "--delay-ms", String(delayMilliseconds), "--bad-file", badFile]
            + wearingOut.flatMap { ["--fail-after", "\($0.offset):\($0.length):\($0.goodReads)"] }
        fuse.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try fuse.run()
        let image = "\(mountPoint)/image"
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: image), fuse.isRunning, Date() < deadline { usleep(50_000) }
        guard let size = FaultyLoopDevice.fileSize(image) else {
            FaultyLoopDevice.stop(fuse, mountPoint: mountPoint)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw LoopDevice.LoopError(message: "the FUSE fixture did not mount \(mountPoint): \(output)")
        }
        do {
            if protectedByFlagOnly {
                loop = try LoopDevice(backing: image, sectorSize: sectorSize, readOnly: false)
                try loop.setReadOnly(true)
            } else {
                loop = try LoopDevice(backing: image, sectorSize: sectorSize, readOnly: true)
            }
        } catch {
            FaultyLoopDevice.stop(fuse, mountPoint: mountPoint)
            throw error
        }
        self.fuse = fuse
        self.mountPoint = mountPoint
        self.badFile = badFile
        self.size = size
    }

    /// The disk degrades (or recovers): `ranges` become its bad ranges, once the fixture's /faults
    /// lists them, and the loop device's page cache is dropped so that its reads reach them.
    public func setBadRanges(_ ranges: [(offset: UInt64, length: UInt64)]) throws {
        let text = Self.badFileText(ranges)
        try text.write(toFile: badFile, atomically: true, encoding: .utf8)
        try send(SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while (try? String(contentsOfFile: "\(mountPoint)/faults", encoding: .utf8)) != text {
            guard Date() < deadline else { throw LoopDevice.LoopError(message: "the FUSE fixture did not take the bad ranges \(text)") }
            usleep(20_000)
        }
        let flush = try Subprocess.run(["blockdev", "--flushbufs", loop.path])
        guard flush.succeeded else { throw LoopDevice.LoopError(message: "blockdev --flushbufs failed: \(flush.stderr)") }
    }

    /// The disk goes away: its file reports size 0 and reads fail with ENXIO, and `loop` is told
    /// (`losetup -c`), so it has capacity 0 and its reads return 0 bytes. Other loop devices over
    /// the image keep their size and fail every read with EIO until they are told too.
    public func vanish() throws {
        try send(SIGUSR1)
        try waitForImageSize(0)
        try refreshCapacity()
    }

    /// The disk comes back with its size and bytes, and `loop` is told.
    public func reappear() throws {
        try send(SIGUSR2)
        try waitForImageSize(size)
        try refreshCapacity()
    }

    deinit {
        loop.detach()
        Self.stop(fuse, mountPoint: mountPoint)
    }

    /// One "START LENGTH" line per range: the bad-file format, and what the fixture's /faults shows.
    private static func badFileText(_ ranges: [(offset: UInt64, length: UInt64)]) -> String {
        ranges.map { "\($0.offset) \($0.length)\n" }.joined()
    }

    private static func fileSize(_ path: String) -> UInt64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value
    }

    /// Not waited for: libfuse takes about 1.5 s to exit after SIGTERM, and it exits on its own.
    private static func stop(_ fuse: Process, mountPoint: String) {
        // Lazy, because a loop device still open elsewhere keeps the file busy.
        _ = try? Subprocess.run(["umount", "-l", mountPoint])
        if fuse.isRunning { fuse.terminate() }
    }

    private func send(_ signal: Int32) throws {
        guard fuse.isRunning, kill(fuse.processIdentifier, signal) == 0 else {
            throw LoopDevice.LoopError(message: "the FUSE fixture is not running")
        }
    }

    /// The fixture reports the size at every stat (no attribute cache), so this sees the signal land.
    private func waitForImageSize(_ expected: UInt64) throws {
        let deadline = Date().addingTimeInterval(5)
        while Self.fileSize(imagePath) != expected {
            guard Date() < deadline else {
                throw LoopDevice.LoopError(message: "\(imagePath) did not become \(expected) bytes")
            }
            usleep(20_000)
        }
    }

    private func refreshCapacity() throws {
        let result = try Subprocess.run(["losetup", "-c", loop.path])
        guard result.succeeded else { throw LoopDevice.LoopError(message: "losetup -c failed: \(result.stderr)") }
    }
}
