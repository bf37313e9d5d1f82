// SPDX-License-Identifier: Apache-2.0

/// How a shell command ended.
public struct ShellOutcome: Sendable, Equatable {
    /// The command's exit status; nil under shell v1, which does not carry it.
    public var exitStatus: Int?
    /// `shell,v2,raw` (stdout and stderr apart, exit status) or `shell` (v1: one stream).
    public var service: String
    public var stdoutBytes: UInt64
    public var stderrBytes: UInt64
}

extension ADBConnection {
    /// Runs `command` in the phone's shell without a terminal, passing stdout and stderr to the
    /// handlers as they arrive. Shell v2 when the phone offers it (Android 7+), else v1.
    public func shell(
        _ command: String, stdout: ([UInt8]) throws -> Void, stderr: ([UInt8]) throws -> Void
    ) throws -> ShellOutcome {
        let v2 = features.contains("shell_v2")
        let service = v2 ? "shell,v2,raw" : "shell"
        let stream = try open("\(service):\(command)")
        defer { stream.close() }
        var outcome = ShellOutcome(exitStatus: nil, service: service, stdoutBytes: 0, stderrBytes: 0)
        guard v2 else {
            while let chunk = try stream.read() {
                outcome.stdoutBytes += UInt64(chunk.count)
                try stdout(chunk)
            }
            return outcome
        }
        let operation = "shell v2 \(command)"
        while true {
            let start = stream.bytesRead
            let header = try stream.read(exactly: ShellPacket.headerSize, for: operation)
            let length = Int((1...4).reduce(UInt32(0)) { $0 | UInt32(header[$1]) << (8 * ($1 - 1)) })
            guard let kind = ShellPacket.Kind(rawValue: header[0]) else {
                throw ADBError(.protocolViolation, operation: operation, device: device, offset: start, "shell packet id \(header[0]) is not 0-5")
            }
            guard length <= maximumPayload else {
                throw ADBError(
                    .protocolViolation, operation: operation, device: device, offset: start,
                    "shell packet announces \(length) bytes, more than the \(maximumPayload) negotiated")
            }
            let data = try stream.read(exactly: length, for: operation)
            switch kind {
            case .stdout:
                outcome.stdoutBytes += UInt64(length)
                try stdout(data)
            case .stderr:
                outcome.stderrBytes += UInt64(length)
                try stderr(data)
            case .exit:
                guard let status = ShellPacket(kind, data).exitStatus else {
                    throw ADBError(.protocolViolation, operation: operation, device: device, offset: start, "exit packet of \(length) bytes; it carries one")
                }
                outcome.exitStatus = Int(status)
                return outcome
            case .stdin, .closeStdin, .windowSizeChange:
                continue
            }
        }
    }

    /// Runs a short command and returns its whole output (for identity queries, `su` checks).
    public func shellOutput(_ command: String) throws -> (stdout: [UInt8], stderr: [UInt8], outcome: ShellOutcome) {
        var out: [UInt8] = []
        var err: [UInt8] = []
        let outcome = try shell(command, stdout: { out += $0 }, stderr: { err += $0 })
        return (out, err, outcome)
    }
}
