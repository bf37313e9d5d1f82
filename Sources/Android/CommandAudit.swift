// SPDX-License-Identifier: Apache-2.0
import ADB
import Evidence
import Foundation
import HumanText

#if canImport(Glibc)
    import Glibc

#endif

/// One command of a phone acquisition, as `data/phone/commands.jsonl` records it.
public struct CommandRecord: Codable, Sendable {
    public var seq: Int
    public var command: String
    public var service: String?
    public var startedAt: String
    public var durationSeconds: Double
    public var exitStatus: Int?
    public var stdoutFile: String
    public var stdoutBytes: UInt64
    public var stdoutSHA256: String
    public var stderrFile: String?
    public var stderrBytes: UInt64
    public var stderrSHA256: String?
    public var error: String?
    /// Which connection ran it: 1, then one more after each interruption.
    public var session: Int? = nil
}

/// Runs the commands of a phone acquisition through the shell (v2 when offered) and keeps
/// each one's stdout and stderr as files in the bag with their SHA-256, exit status and timing.
public final class CommandAudit {
    private let connection: ADBConnection
    private let bag: String
    public private(set) var records: [CommandRecord]
    private let session: Int
    public static let directory = "data/phone/commands"

    /// `earlier`: the records of a resumed job's earlier connections; numbering goes on after them.
    public init(connection: ADBConnection, bag: String, earlier: [CommandRecord] = [], session: Int = 1) throws {
        self.connection = connection
        self.bag = bag
        records = earlier
        self.session = session
        try FileManager.default.createDirectory(atPath: "\(bag)/\(Self.directory)", withIntermediateDirectories: true)
    }

    public var failed: Int { records.filter { $0.error != nil || ($0.exitStatus ?? 0) != 0 }.count }

    /// Runs `command`; returns the first `keep` bytes of its stdout for parsing, and the record.
    /// A phone-side failure (non-zero exit) is recorded, not thrown; a connection failure throws.
    @discardableResult
    public func run(_ command: String, name: String, keep: Int = 1 << 20) throws -> (stdout: [UInt8], record: CommandRecord) {
        let seq = records.count + 1
        let base = "\(Self.directory)/\(String(format: "%02d", seq))-\(name)"
        let out = try HashingFile("\(bag)/\(base).txt")
        var err: HashingFile?
        var kept: [UInt8] = []
        let started = Date()
        var record = CommandRecord(
            seq: seq, command: command, service: nil, startedAt: UTCTimestamp.string(started), durationSeconds: 0,
            exitStatus: nil, stdoutFile: "\(base).txt", stdoutBytes: 0, stdoutSHA256: "", stderrFile: nil, stderrBytes: 0,
            stderrSHA256: nil, error: nil, session: session)
        func finish() {
            record.durationSeconds = Date().timeIntervalSince(started)
            record.stdoutBytes = out.bytes
            record.stdoutSHA256 = out.finish()
            if let err {
                record.stderrFile = "\(base).stderr.txt"
                record.stderrBytes = err.bytes
                record.stderrSHA256 = err.finish()
            }
            records.append(record)
        }
        do {
            let outcome = try connection.shell(
                command,
                stdout: { chunk in
                    if kept.count < keep { kept += chunk.prefix(keep - kept.count) }
                    try out.write(chunk)
                },
                stderr: { chunk in
                    if err == nil { err = try HashingFile("\(bag)/\(base).stderr.txt") }
                    try err?.write(chunk)
                })
            record.service = outcome.service
            record.exitStatus = outcome.exitStatus
        } catch {
            record.error = "\(error)"
            finish()
            throw error
        }
        finish()
        return (kept, record)
    }

    /// `data/phone/commands.jsonl`, one object per line.
    public func log() throws -> Data { try ExhibitJSON.lines(records) }
}
