// SPDX-License-Identifier: Apache-2.0

/// Shell protocol v2 (`shell,v2,raw:…`, AOSP shell_protocol.h): packets of a 1-byte id, a
/// 4-byte little-endian length and the data. It keeps stdout and stderr apart and carries the
/// command's exit status, which the acquisition's audit log records.
public struct ShellPacket: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case stdin = 0, stdout = 1, stderr = 2, exit = 3, closeStdin = 4, windowSizeChange = 5
    }

    public var kind: Kind
    public var data: [UInt8]

    public init(_ kind: Kind, _ data: [UInt8] = []) {
        self.kind = kind
        self.data = data
    }

    public static let headerSize = 5

    public var encoded: [UInt8] {
        [kind.rawValue] + (0..<4).map { UInt8(truncatingIfNeeded: UInt32(data.count) >> (8 * $0)) } + data
    }

    /// The exit status an `exit` packet carries (its one data byte).
    public var exitStatus: UInt8? { kind == .exit && data.count == 1 ? data[0] : nil }
}

/// Reassembles shell packets from a stream's WRTE payloads, however they are split.
public struct ShellPacketDecoder: Sendable {
    /// adbd sends at most its buffer size per packet; anything far larger is not shell v2.
    public var maximumData: Int
    private var buffer: [UInt8] = []
    private var consumed: UInt64 = 0
    private var failure: ADBProtocolError?

    public init(maximumData: Int = ADBProtocol.maximumPayload) { self.maximumData = maximumData }

    public var pendingBytes: Int { buffer.count }

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(ADBProtocolError) -> [ShellPacket] {
        if let failure { throw failure }
        buffer.append(contentsOf: bytes)
        var packets: [ShellPacket] = []
        var start = 0
        defer {
            buffer.removeFirst(start)
            consumed += UInt64(start)
        }
        while buffer.count - start >= ShellPacket.headerSize {
            let offset = consumed + UInt64(start)
            let length = Int((1...4).reduce(UInt32(0)) { $0 | UInt32(buffer[start + $1]) << (8 * ($1 - 1)) })
            guard let kind = ShellPacket.Kind(rawValue: buffer[start]) else {
                let error = ADBProtocolError(.unknownCommand, offset: offset, "shell packet id \(buffer[start]) is not 0-5")
                failure = error
                throw error
            }
            guard length <= maximumData else {
                let error = ADBProtocolError(
                    .oversizePayload, offset: offset, "shell packet announces \(length) bytes, more than \(maximumData)")
                failure = error
                throw error
            }
            guard buffer.count - start >= ShellPacket.headerSize + length else { break }
            packets.append(ShellPacket(kind, Array(buffer[(start + 5)..<(start + 5 + length)])))
            start += ShellPacket.headerSize + length
        }
        return packets
    }

    public func finish() throws(ADBProtocolError) {
        if let failure { throw failure }
        guard buffer.isEmpty else {
            throw ADBProtocolError(.truncated, offset: consumed, "the shell stream ended \(buffer.count) bytes into a packet")
        }
    }
}
