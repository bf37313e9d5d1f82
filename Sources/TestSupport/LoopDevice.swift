// SPDX-License-Identifier: Apache-2.0
import Foundation
import Synchronization

/// A real kernel loop device over a file, detached when released.
public final class LoopDevice: @unchecked Sendable {
    public let path: String
    private let attached = Mutex(true)

    /// Why loop devices cannot be used here, or nil when they can (root and /dev/loop-control).
    public static var unavailableReason: String? {
        if getuid() != 0 { return "loop devices need root (running as uid \(getuid()))" }
        if !FileManager.default.fileExists(atPath: "/dev/loop-control") { return "no /dev/loop-control in this environment" }
        if !Subprocess.has("losetup") { return "losetup is not installed (util-linux)" }
        return nil
    }

    public init(backing file: String, sectorSize: Int = 512, readOnly: Bool = false) throws {
        var arguments = ["losetup", "--find", "--show", "--sector-size", String(sectorSize)]
        if readOnly { arguments.append("--read-only") }
        let result = try Subprocess.run(arguments + [file])
        guard result.succeeded else { throw LoopError(message: "losetup failed: \(result.stderr)") }
        path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // A loop device keeps its kernel read-only flag across detach and attach, so whatever the
        // previous user left is reset here.
        try setReadOnly(readOnly)
    }

    public func setReadOnly(_ readOnly: Bool) throws {
        let result = try Subprocess.run(["blockdev", readOnly ? "--setro" : "--setrw", path])
        guard result.succeeded else { throw LoopError(message: "blockdev failed: \(result.stderr)") }
    }

    /// The read-only flag is cleared first: the next test to attach this loop number would see
    /// it for an instant (a daemon's uevent lands before `init` resets it) and take a writable
    /// device for a read-only one.
    /// Only once: after it, the loop number may already be another test's device.
    public func detach() {
        guard attached.withLock({ was in defer { was = false }; return was }) else { return }
        _ = try? Subprocess.run(["blockdev", "--setrw", path])
        _ = try? Subprocess.run(["losetup", "-d", path])
    }

    deinit { detach() }

    public struct LoopError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}
