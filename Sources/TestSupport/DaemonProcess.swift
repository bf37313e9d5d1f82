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
