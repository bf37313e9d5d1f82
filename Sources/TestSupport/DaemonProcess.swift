// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A real `exhibitd` on a test store and socket, stopped with SIGTERM.
public final class DaemonProcess: @unchecked Sendable {
    public let process = Process()
    public let socket: String
    public let logPath: String

    public init(store: String, socket: String, log: String, environment: [String: String] = [:], extra: [String] = []) throws {
        self.socket = socket
        self.logPath = log
        process.executableURL = URL(fileURLWithPath: "\(BuiltProducts.directory)/exhibitd")
        process.arguments = ["--store", store, "--socket", socket, "--verbose"] + extra
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
    }

    /// Waits until the socket accepts connections.
    public func waitUntilServing(timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: socket),
                (try? Subprocess.run([BuiltProducts.exhibit, "status", "--socket", socket]))?.succeeded == true
            {
                return true
            }
            if !process.isRunning { return false }
            usleep(100_000)
        }
        return false
    }

    /// SIGTERM, then waits up to `timeout`; returns the seconds it took, or nil if it did not exit.
    @discardableResult
    public func terminate(timeout: TimeInterval = 15) -> TimeInterval? {
        let started = Date()
        guard process.isRunning else { return 0 }
        process.terminate()
        while process.isRunning, Date().timeIntervalSince(started) < timeout { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return Date().timeIntervalSince(started)
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit { terminate(timeout: 5) }
}

/// A slow disk: a FUSE file whose every read waits, attached read-only as a loop device.
/// Built from Tests/Fixtures/slowfile.c with the system compiler and libfuse3.
public final class SlowLoopDevice: @unchecked Sendable {
    public let loop: LoopDevice
    private let fuse: Process
    private let mountPoint: String

    /// Why a slow device cannot be made here, or nil.
    public static var unavailableReason: String? {
        if let reason = LoopDevice.unavailableReason { return reason }
        if !FileManager.default.fileExists(atPath: "/dev/fuse") { return "no /dev/fuse in this environment" }
        if !((try? Subprocess.shell("pkg-config --exists fuse3"))?.succeeded ?? false) {
            return "libfuse3-dev is not installed (scripts/install-deps)"
        }
        return nil
    }

    public init(backing: String, delayMilliseconds: Int, scratch: ScratchDirectory, fixture: String) throws {
        let binary = scratch.file("slowfile")
        let build = try Subprocess.shell("cc -O2 '\(fixture)' $(pkg-config --cflags --libs fuse3) -o '\(binary)'")
        guard build.succeeded else { throw LoopDevice.LoopError(message: "building the FUSE fixture: \(build)") }
        mountPoint = scratch.file("slow-mount")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        fuse = Process()
        fuse.executableURL = URL(fileURLWithPath: binary)
        fuse.arguments = [backing, String(delayMilliseconds), mountPoint, "-f"]
        fuse.standardError = FileHandle.nullDevice
        try fuse.run()
        let image = "\(mountPoint)/image"
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: image), Date() < deadline { usleep(50_000) }
        loop = try LoopDevice(backing: image, readOnly: true)
    }

    deinit {
        loop.detach()
        _ = try? Subprocess.run(["umount", "-l", mountPoint])
        if fuse.isRunning { fuse.terminate() }
    }
}
