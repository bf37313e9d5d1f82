// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Runs real programs (the `exhibit` binary and the third-party judges) from tests.
public enum Subprocess {
    public struct Result: Sendable, CustomStringConvertible {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var succeeded: Bool { status == 0 }
        public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    /// Runs `arguments` (the first is looked up in PATH) to completion, with SIGTERM, SIGINT and
    /// SIGHUP unblocked: children inherit the test runner's blocked signal mask, under which
    /// `timeout` would signal a hung program (a QEMU guest, a verifier) that never receives it.
    @discardableResult
    public static func run(_ arguments: [String], directory: String? = nil, input: Data? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["--default-signal=TERM,INT,HUP"] + arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(input) }
        try? inPipe.fileHandleForWriting.close()
        // Read both pipes concurrently so neither can fill up and block the child.
        let errData = LockedData()
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self))
    }

    /// Runs a shell command line with bash.
    @discardableResult
    public static func shell(_ command: String, directory: String? = nil) throws -> Result {
        try run(["bash", "-c", command], directory: directory)
    }

    /// Whether a program is on PATH.
    public static func has(_ program: String) -> Bool {
        (try? shell("command -v \(program)"))?.succeeded ?? false
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}
