// SPDX-License-Identifier: Apache-2.0

// The Android Debug Bridge's wire message (AOSP adb, docs/dev/protocol.md): a 24-byte
// little-endian header of six 32-bit words - command, arg0, arg1, payload length, payload
// "checksum" (a plain byte sum, or 0 from peers at version 0x01000001 and later) and magic
// (command XOR 0xFFFFFFFF) - then the payload. Everything a phone sends is untrusted: the
// decoder checks each field before it believes it.

/// A message's command word: four ASCII letters, little-endian.
public struct ADBCommand: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let sync = ADBCommand(rawValue: 0x434E_5953)
    public static let connect = ADBCommand(rawValue: 0x4E58_4E43)
    public static let auth = ADBCommand(rawValue: 0x4854_5541)
    public static let open = ADBCommand(rawValue: 0x4E45_504F)
    public static let okay = ADBCommand(rawValue: 0x5941_4B4F)
    public static let close = ADBCommand(rawValue: 0x4553_4C43)
    public static let write = ADBCommand(rawValue: 0x4554_5257)
    public static let startTLS = ADBCommand(rawValue: 0x534C_5453)

    public static let known: Set<ADBCommand> = [.sync, .connect, .auth, .open, .okay, .close, .write, .startTLS]
    /// What a phone sends before a connection is up: its answer to the host's CNXN.
    public static let handshake: Set<ADBCommand> = [.connect, .auth, .startTLS]

    /// `CNXN`, `WRTE`, … (or the hex value when it is not printable).
    public var description: String {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (8 * $0)) }
        guard bytes.allSatisfy({ (0x20...0x7E).contains($0) }) else { return "0x" + String(rawValue, radix: 16) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Protocol versions and limits (AOSP adb.h).
public enum ADBProtocol {
    public static let versionMinimum: UInt32 = 0x0100_0000
    /// From this version on, senders put 0 in the checksum field and receivers do not check it.
    public static let versionSkipChecksum: UInt32 = 0x0100_0001
    /// CNXN and AUTH stay within this, whatever was negotiated.
    public static let maximumPayloadV1 = 4096
    public static let maximumPayload = 1 << 20
    public static let headerSize = 24
}

/// Whether the checksum field carries the payload's byte sum (peers below 0x01000001) or is skipped.
public enum ADBChecksum: Sendable, Equatable {
    case byteSum
    case skipped

    /// The mode two peers use: the sum only when either side is older than 0x01000001.
    public static func negotiated(ours: UInt32, theirs: UInt32) -> ADBChecksum {
        min(ours, theirs) >= ADBProtocol.versionSkipChecksum ? .skipped : .byteSum
    }

    public static func sum(_ payload: some Collection<UInt8>) -> UInt32 {
        payload.reduce(UInt32(0)) { $0 &+ UInt32($1) }
    }
}

/// One ADB message.
public struct ADBMessage: Sendable, Equatable, CustomStringConvertible {
    public var command: ADBCommand
    public var arg0: UInt32
    public var arg1: UInt32
    public var payload: [UInt8]

    public init(_ command: ADBCommand, _ arg0: UInt32, _ arg1: UInt32, payload: [UInt8] = []) {
        self.command = command
        self.arg0 = arg0
        self.arg1 = arg1
        self.payload = payload
    }

    /// The 24-byte header. Over USB the header and the payload go as two bulk transfers.
    public func header(checksum: ADBChecksum) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ADBProtocol.headerSize)
        let words = [
            command.rawValue, arg0, arg1, UInt32(payload.count),
            checksum == .byteSum ? ADBChecksum.sum(payload) : 0, command.rawValue ^ 0xFFFF_FFFF,
        ]
        for word in words { bytes += (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
        return bytes
    }

    /// Header and payload together, as sent over TCP.
    public func encoded(checksum: ADBChecksum) -> [UInt8] { header(checksum: checksum) + payload }

    public var description: String { "\(command)(\(arg0), \(arg1), \(payload.count) bytes)" }
}

/// A message the peer sent that is not ADB, or a stream that ended inside one. `offset` is the
/// byte offset in the connection's stream where the bad message starts.
public struct ADBProtocolError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        case badMagic = "bad-magic"
        case oversizePayload = "oversize-payload"
        case checksumMismatch = "checksum-mismatch"
        case unknownCommand = "unknown-command"
        case truncated
        case malformedBanner = "malformed-banner"
    }

    public let code: Code
    public let offset: UInt64
    public let message: String

    public init(_ code: Code, offset: UInt64, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String { "ADB \(code.rawValue) at stream offset \(offset): \(message)" }
}

/// A checked 24-byte message header. Transports that read a header and then exactly its
/// payload (USB's two transfers, TCP) and the reassembling decoder check headers the same way.
public struct ADBMessageHeader: Sendable, Equatable {
    public let command: ADBCommand
    public let arg0: UInt32
    public let arg1: UInt32
    public let length: Int
    public let payloadSum: UInt32

    /// Checks magic, command and the announced length (CNXN and AUTH stay within 4096 bytes).
    public init(_ bytes: some RandomAccessCollection<UInt8>, offset: UInt64, maximumPayload: Int) throws(ADBProtocolError) {
        precondition(bytes.count == ADBProtocol.headerSize)
        let word = { Self.word($0, of: bytes) }
        command = ADBCommand(rawValue: word(0))
        arg0 = word(1)
        arg1 = word(2)
        length = Int(word(3))
        payloadSum = word(4)
        guard word(5) == command.rawValue ^ 0xFFFF_FFFF else {
            throw ADBProtocolError(
                .badMagic, offset: offset, "magic 0x\(String(word(5), radix: 16)) is not the command \(command) inverted")
        }
        guard ADBCommand.known.contains(command) else {
            throw ADBProtocolError(.unknownCommand, offset: offset, "unknown command \(command)")
        }
        let limit = [.connect, .auth].contains(command) ? min(maximumPayload, ADBProtocol.maximumPayloadV1) : maximumPayload
        guard length <= limit else {
            throw ADBProtocolError(
                .oversizePayload, offset: offset, "\(command) announces \(length) payload bytes, more than the \(limit) allowed")
        }
    }

    /// Whether 24 bytes end with their first word inverted, as every header does.
    public static func hasMagic(_ bytes: some RandomAccessCollection<UInt8>) -> Bool {
        bytes.count == ADBProtocol.headerSize && word(5, of: bytes) == word(0, of: bytes) ^ 0xFFFF_FFFF
    }

    /// The command word of a header's 24 bytes; neither their size nor their magic is checked here.
    public static func command(of bytes: some RandomAccessCollection<UInt8>) -> ADBCommand { ADBCommand(rawValue: word(0, of: bytes)) }

    /// The little-endian word at `index` (0 to 5) of a header's bytes.
    private static func word(_ index: Int, of bytes: some RandomAccessCollection<UInt8>) -> UInt32 {
        let base = bytes.index(bytes.startIndex, offsetBy: index * 4)
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[bytes.index(base, offsetBy: $1)]) << (8 * $1) }
    }

    /// Checks the payload's byte sum when the connection carries one.
    public func check(_ payload: some Collection<UInt8>, checksum: ADBChecksum, offset: UInt64) throws(ADBProtocolError) {
        guard checksum == .byteSum else { return }
        let sum = ADBChecksum.sum(payload)
        guard sum == payloadSum else {
            throw ADBProtocolError(
                .checksumMismatch, offset: offset, "\(command) payload sums to \(sum), its header says \(payloadSum)")
        }
    }
}

/// Reassembles messages from the bytes of a connection, however they are split. It never
/// allocates more than `maximumPayload` for a payload and stops at the first bad header:
/// after a framing error nothing later in the stream can be trusted to be aligned.
public struct ADBMessageDecoder: Sendable {
    /// The largest payload accepted: the negotiated `maxdata`, at most 1 MiB.
    public var maximumPayload: Int
    public var checksum: ADBChecksum
    private var buffer: [UInt8] = []
    /// Stream offset of `buffer[0]`.
    private var consumed: UInt64 = 0
    private var failure: ADBProtocolError?

    public init(maximumPayload: Int = ADBProtocol.maximumPayload, checksum: ADBChecksum = .skipped) {
        self.maximumPayload = min(maximumPayload, ADBProtocol.maximumPayload)
        self.checksum = checksum
    }

    /// Bytes received that do not yet make a whole message.
    public var pendingBytes: Int { buffer.count }

    /// The whole messages in what has arrived so far.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(ADBProtocolError) -> [ADBMessage] {
        if let failure { throw failure }
        buffer.append(contentsOf: bytes)
        var messages: [ADBMessage] = []
        var start = 0
        defer {
            buffer.removeFirst(start)
            consumed += UInt64(start)
        }
        while buffer.count - start >= ADBProtocol.headerSize {
            let offset = consumed + UInt64(start)
            let header: ADBMessageHeader
            do throws(ADBProtocolError) {
                header = try ADBMessageHeader(buffer[start..<(start + ADBProtocol.headerSize)], offset: offset, maximumPayload: maximumPayload)
            } catch {
                failure = error
                throw error
            }
            guard buffer.count - start >= ADBProtocol.headerSize + header.length else { break }
            let payload = Array(buffer[(start + ADBProtocol.headerSize)..<(start + ADBProtocol.headerSize + header.length)])
            do throws(ADBProtocolError) {
                try header.check(payload, checksum: checksum, offset: offset)
            } catch {
                failure = error
                throw error
            }
            messages.append(ADBMessage(header.command, header.arg0, header.arg1, payload: payload))
            start += ADBProtocol.headerSize + header.length
        }
        return messages
    }

    /// The connection ended: an error when it ended inside a message.
    public func finish() throws(ADBProtocolError) {
        if let failure { throw failure }
        guard buffer.isEmpty else {
            throw ADBProtocolError(
                .truncated, offset: consumed, "the connection ended \(buffer.count) bytes into a message")
        }
    }
}
