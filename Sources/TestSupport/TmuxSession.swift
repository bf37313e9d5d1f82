// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A program in a real terminal: a tmux session on a private server, driven with send-keys and
/// read with capture-pane, as a technician's keyboard and eyes would.
public final class TmuxSession: @unchecked Sendable {
    private let socket: String
    public let name = "panel"

    public static var unavailableReason: String? {
        Subprocess.has("tmux") ? nil : "tmux is not installed (scripts/install-deps)"
    }

    /// Starts `command` in a `columns` × `rows` window; the server speaks UTF-8 whatever the caller's locale.
    public init(_ command: [String], columns: Int, rows: Int, scratch: ScratchDirectory) throws {
        socket = scratch.file("tmux.sock")
        let quoted = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        // exec: the pane's process is the program itself, not a shell around it.
        // The server this starts keeps every descriptor it inherits: give it no pipe to hold open.
        let start = Process()
        start.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        start.arguments = [
            "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "tmux", "-S", socket, "new-session", "-d", "-s", name, "-x", String(columns), "-y",
            String(rows), "exec " + quoted,
        ]
        start.standardInput = FileHandle.nullDevice
        start.standardOutput = FileHandle.nullDevice
        start.standardError = FileHandle.nullDevice
        // Not waited for: Foundation learns of a child's exit from a descriptor the child
        // inherits, and the tmux server forked from it keeps that open too.
        try start.run()
        let deadline = Date().addingTimeInterval(10)
        while try !tmux(["has-session", "-t", name]).succeeded {
            guard Date() < deadline else { throw LoopDevice.LoopError(message: "tmux did not start a session") }
            usleep(50_000)
        }
        _ = try tmux(["set-option", "-t", name, "remain-on-exit", "on"])
        serverPID = (try? tmux(["display-message", "-p", "-t", name, "#{pid}"])).flatMap {
            Int32($0.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// The tmux server's process: stopped by pid as well, since the socket may already be gone
    /// with the scratch directory it lives in.
    private var serverPID: Int32?

    /// Stops the server and the program in it. SIGKILL: both inherit the test runner's blocked
    /// signal mask, so SIGTERM would wait forever.
    public func close() {
        let pane = panePID
        _ = try? tmux(["kill-server"])
        for pid in [pane, serverPID].compactMap({ $0 }) { kill(pid, SIGKILL) }
        serverPID = nil
    }

    deinit { close() }

    /// The screen's rows as tmux shows them (trailing blanks trimmed).
    public func screen() throws -> [String] {
        let result = try tmux(["capture-pane", "-p", "-t", name])
        return result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// The screen as one text, for failure messages.
    public var text: String { (try? screen().joined(separator: "\n")) ?? "(no screen)" }

    /// Keys by tmux name (`Enter`, `Escape`, `Up`) or literal text.
    public func press(_ keys: String...) throws { _ = try tmux(["send-keys", "-t", name] + keys) }
    public func type(_ text: String) throws { _ = try tmux(["send-keys", "-t", name, "-l", text]) }

    public func resize(columns: Int, rows: Int) throws {
        _ = try tmux(["resize-window", "-t", name, "-x", String(columns), "-y", String(rows)])
    }

    /// The process in the pane.
    public var panePID: Int32? {
        (try? tmux(["display-message", "-p", "-t", name, "#{pane_pid}"])).flatMap {
            Int32($0.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Waits until the screen satisfies `condition`; returns that screen, or nil on timeout.
    public func waitForScreen(timeout: TimeInterval, _ condition: ([String]) -> Bool) throws -> [String]? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            let rows = try screen()
            if condition(rows) { return rows }
            usleep(150_000)
        } while Date() < deadline
        return nil
    }

    private func tmux(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run(["env", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "tmux", "-S", socket] + arguments)
    }
}
