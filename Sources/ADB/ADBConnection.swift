// SPDX-License-Identifier: Apache-2.0
import Foundation

/// How long Exhibit waits for a phone, so that a silent one never hangs a job.
public struct ADBTimeouts: Sendable {
    /// For each answer during CNXN/AUTH.
    public var handshake: Duration
    /// For the technician to tap "Allow" after the phone was shown the appliance's key.
    public var authorization: Duration
    /// For OKAY or CLSE after OPEN.
    public var open: Duration
    /// For the next data (or OKAY) on an open stream.
    public var idle: Duration

    public init(
        handshake: Duration = .seconds(10), authorization: Duration = .seconds(60), open: Duration = .seconds(10),
        idle: Duration = .seconds(30)
    ) {
        self.handshake = handshake
        self.authorization = authorization
        self.open = open
        self.idle = idle
    }
}

/// The appliance's side of AUTH: a signer for the phone's tokens and the public key to offer
/// when the phone knows none of them. Kept as closures so this module needs no crypto library.
public struct ADBHostCredentials: Sendable {
    public var sign: @Sendable ([UInt8]) throws -> [UInt8]
    /// `<base64 of Android's public-key structure> <name>`, as in `adbkey.pub`.
    public var publicKeyLine: String

    public init(publicKeyLine: String, sign: @escaping @Sendable ([UInt8]) throws -> [UInt8]) {
        self.sign = sign
        self.publicKeyLine = publicKeyLine
    }
}

/// Where the handshake is, for the daemon and the panel.
public enum ADBHandshakeState: String, Sendable, Equatable {
    /// CNXN sent, waiting for the phone.
    case connecting
    /// The phone was offered the appliance's key and shows "Allow USB debugging?".
    case awaitingAuthorization = "awaiting-authorization"
    case online
}

/// One authenticated connection to adbd, multiplexing streams over a transport. Each stream
/// has one WRTE in flight at a time in each direction (the protocol's flow control): Exhibit
/// answers the phone's WRTE with OKAY only while the stream's unread data stays below
/// `inboxLimit`, so a slow consumer slows the phone instead of filling memory.
public final class ADBConnection: @unchecked Sendable {
    /// What this host speaks; a variant is used when the phone offers it too.
    public static let hostFeatures: Set<String> = ["shell_v2", "cmd", "stat_v2", "ls_v2", "sendrecv_v2"]
    public static let inboxLimit = 4 << 20

    public let transport: any ADBTransport
    /// The phone's CNXN banner: system type, product properties, features.
    public let banner: ADBBanner
    public let version: UInt32
    public let maximumPayload: Int
    public let checksum: ADBChecksum
    public let timeouts: ADBTimeouts
    /// Whether the phone asked for AUTH and accepted a signature or the offered key.
    public let authenticated: Bool

    let condition = NSCondition()
    private var streams: [UInt32: ADBStream] = [:]
    private var nextLocalId: UInt32 = 1
    private(set) var failure: ADBError?

    public var device: String { transport.name }
    /// The protocol variants both sides speak.
    public var features: Set<String> { banner.features.intersection(Self.hostFeatures) }

    private init(
        transport: any ADBTransport, banner: ADBBanner, version: UInt32, maximumPayload: Int, timeouts: ADBTimeouts,
        authenticated: Bool
    ) {
        self.transport = transport
        self.banner = banner
        self.version = version
        self.maximumPayload = maximumPayload
        self.checksum = ADBChecksum.negotiated(ours: ADBProtocol.versionSkipChecksum, theirs: version)
        self.timeouts = timeouts
        self.authenticated = authenticated
    }

    /// Connects and authenticates: CNXN, then AUTH as the phone asks (a signed token; if the
    /// phone knows no key of ours, the public key, and a wait for the technician's "Allow").
    public static func connect(
        over transport: any ADBTransport, credentials: ADBHostCredentials, timeouts: ADBTimeouts = ADBTimeouts(),
        stateChanged: (ADBHandshakeState) -> Void = { _ in }
    ) throws(ADBError) -> ADBConnection {
        let device = transport.name
        let features = hostFeatures.sorted().joined(separator: ",")
        let hello = ADBMessage(
            .connect, ADBProtocol.versionSkipChecksum, UInt32(ADBProtocol.maximumPayload),
            payload: Array("host::features=\(features)".utf8))
        // Until both versions are known the sum is sent; peers that skip it ignore it.
        try transport.write(hello, checksum: .byteSum)
        stateChanged(.connecting)
        var deadline = ContinuousClock.now + timeouts.handshake
        var signed = false
        var offeredKey = false
        func outOfTime() -> ADBError {
            if offeredKey {
                return ADBError(
                    .unauthorized, operation: "AUTH", device: device,
                    "the phone did not accept the appliance's key within \(timeouts.authorization): unlock it, tap \"Allow\" "
                        + "(tick \"Always allow from this computer\") and reconnect")
            }
            let setAside = transport.bytesSetAside
            return ADBError(
                .offline, operation: "CNXN", device: device,
                setAside == 0
                    ? "the phone did not answer within \(timeouts.handshake): check that USB debugging is on and the cable carries data"
                    : "the phone did not answer within \(timeouts.handshake) (before that it sent \(SetAsideBytes.named(setAside))): "
                        + SetAsideBytes.advice)
        }
        while true {
            // Checked here too: a peer that sends stray messages without end never lets a read time out.
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw outOfTime() }
            let message: ADBMessage
            do throws(ADBError) {
                // CNXN and AUTH are checked by their content; their sums are not relied on
                // because a peer's mode is unknown until its CNXN. CNXN and AUTH stay within
                // 4096 bytes (ADBMessage's check); a previous session's WRTE may be larger.
                message = try transport.read(maximumPayload: ADBProtocol.maximumPayload, checksum: .skipped, timeout: remaining)
            } catch where error.code == .timeout {
                throw outOfTime()
            }
            switch message.command {
            case .connect:
                let banner: ADBBanner
                do throws(ADBProtocolError) {
                    banner = try ADBBanner(payload: message.payload)
                } catch {
                    throw ADBError(.protocolViolation, operation: "CNXN", device: device, error.description)
                }
                guard message.arg0 >= ADBProtocol.versionMinimum else {
                    throw ADBError(
                        .protocolViolation, operation: "CNXN", device: device,
                        "protocol version 0x\(String(message.arg0, radix: 16)) is older than any adbd")
                }
                let maximum = Int(min(message.arg1, UInt32(ADBProtocol.maximumPayload)))
                guard maximum >= 256 else {
                    throw ADBError(.protocolViolation, operation: "CNXN", device: device, "maxdata \(message.arg1) is too small")
                }
                let connection = ADBConnection(
                    transport: transport, banner: banner, version: min(message.arg0, ADBProtocol.versionSkipChecksum),
                    maximumPayload: maximum, timeouts: timeouts, authenticated: signed)
                connection.startReceiving()
                stateChanged(.online)
                return connection
            case .auth where message.arg0 == 1:
                guard message.payload.count == 20 else {
                    throw ADBError(
                        .protocolViolation, operation: "AUTH", device: device,
                        "the token is \(message.payload.count) bytes; adbd sends 20")
                }
                if !signed {
                    signed = true
                    let signature: [UInt8]
                    do {
                        signature = try credentials.sign(message.payload)
                    } catch {
                        throw ADBError(.unauthorized, operation: "AUTH", device: device, "cannot sign the phone's token: \(error)")
                    }
                    try transport.write(ADBMessage(.auth, 2, 0, payload: signature), checksum: .byteSum)
                    deadline = ContinuousClock.now + timeouts.handshake
                } else if !offeredKey {
                    // The phone does not know our key: offer it; the phone asks its user.
                    offeredKey = true
                    try transport.write(
                        ADBMessage(.auth, 3, 0, payload: Array(credentials.publicKeyLine.utf8) + [0]), checksum: .byteSum)
                    stateChanged(.awaitingAuthorization)
                    deadline = ContinuousClock.now + timeouts.authorization
                }
            case .startTLS:
                throw ADBError(
                    .unsupported, operation: "CNXN", device: device,
                    "the phone asks for TLS (Android 11 wireless debugging pairing); connect it by USB instead")
            default:
                // What a previous session left in the phone's buffer (a WRTE, OKAY or CLSE sent as
                // the cable was pulled) can come before CNXN: skipped, as adb's host skips them
                // while the device is offline. No stream is open yet to take them. (USB sets
                // them aside itself, with whatever part of their payload came: `classify`.)
                continue
            }
        }
    }

    /// Ends the connection and every stream on it.
    public func close() {
        transport.close()
        fail(ADBError(.disconnected, operation: "close", device: device, "the connection was closed by Exhibit"))
    }

    /// Opens a service (`shell,v2,raw:…`, `exec:…`, `sync:`) as a stream.
    public func open(_ destination: String) throws(ADBError) -> ADBStream {
        let operation = "OPEN \(destination)"
        condition.lock()
        if let failure {
            condition.unlock()
            throw failure.during(operation)
        }
        let localId = nextLocalId
        nextLocalId = nextLocalId == UInt32.max ? 1 : nextLocalId + 1
        let stream = ADBStream(connection: self, localId: localId, destination: destination)
        streams[localId] = stream
        condition.unlock()
        do throws(ADBError) {
            try transport.write(ADBMessage(.open, localId, 0, payload: Array(destination.utf8) + [0]), checksum: checksum)
            let deadline = ContinuousClock.now + timeouts.open
            condition.lock()
            defer { condition.unlock() }
            while stream.remoteId == 0 && !stream.peerClosed && failure == nil {
                guard condition.wait(until: Date.now.addingTimeInterval(Self.seconds(deadline - ContinuousClock.now))) else {
                    if stream.remoteId != 0 || stream.peerClosed || failure != nil { break }
                    throw ADBError(.timeout, operation: operation, device: device, "no answer within \(timeouts.open)")
                }
            }
            if let failure { throw failure.during(operation) }
            if stream.remoteId == 0 {
                throw ADBError(.refused, operation: operation, device: device, "the phone refused the service")
            }
            return stream
        } catch {
            forget(stream)
            throw error
        }
    }

    func forget(_ stream: ADBStream) {
        condition.lock()
        streams[stream.localId] = nil
        condition.unlock()
    }

    func send(_ message: ADBMessage) throws(ADBError) {
        try transport.write(message, checksum: checksum)
    }

    private func fail(_ error: ADBError) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    private func startReceiving() {
        let thread = Thread { [self] in receiveLoop() }
        thread.name = "exhibit.adb.receive"
        thread.start()
    }

    /// Routes the phone's messages to their streams until the connection ends.
    private func receiveLoop() {
        while true {
            let message: ADBMessage
            do throws(ADBError) {
                message = try transport.read(maximumPayload: maximumPayload, checksum: checksum, timeout: nil)
            } catch {
                fail(error)
                return
            }
            // arg1 is our local id for OKAY, WRTE and CLSE; arg0 the phone's.
            condition.lock()
            let stream = streams[message.arg1]
            var reply: ADBMessage?
            var violation: ADBError?
            switch message.command {
            case .okay:
                if let stream {
                    if stream.remoteId == 0 {
                        stream.remoteId = message.arg0
                    } else {
                        stream.mayWrite = true
                    }
                }
            case .write:
                if let stream, stream.remoteId == message.arg0, stream.owesOkay {
                    // Without delayed_ack (which this host does not offer) adbd sends one WRTE per
                    // OKAY. A phone that goes on while the OKAY is withheld ignores flow control;
                    // keeping what it sends would let it fill the appliance's memory.
                    violation = ADBError(
                        .protocolViolation, operation: "read \(stream.destination)", device: device,
                        "the phone sent more data before its last was acknowledged (it ignores ADB flow control)")
                } else if let stream, stream.remoteId == message.arg0 {
                    stream.deliver(message.payload)
                    if stream.unreadBytes < Self.inboxLimit {
                        reply = ADBMessage(.okay, stream.localId, stream.remoteId)
                    } else {
                        stream.owesOkay = true
                    }
                } else {
                    // Data for a stream we do not have: tell the phone it is closed.
                    reply = ADBMessage(.close, 0, message.arg0)
                }
            case .close:
                stream?.peerClosed = true
            case .connect:
                // adbd restarted (a new CNXN): every stream is gone.
                failure = ADBError(
                    .disconnected, operation: "receive", device: device, "the phone's adbd restarted (a new CNXN arrived)")
            default:
                break
            }
            condition.broadcast()
            condition.unlock()
            if let violation {
                fail(violation)
                return
            }
            if let reply {
                do throws(ADBError) { try send(reply) } catch {
                    fail(error)
                    return
                }
            }
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return max(0, Double(seconds) + Double(attoseconds) / 1e18)
    }
}

/// One service on the phone: bytes in both directions, ended by CLSE from either side.
public final class ADBStream: @unchecked Sendable {
    public let destination: String
    let localId: UInt32
    private let connection: ADBConnection
    // Guarded by connection.condition.
    var remoteId: UInt32 = 0
    var mayWrite = true
    var peerClosed = false
    var owesOkay = false
    private var inbox: [[UInt8]] = []
    private var inboxHead = 0
    private(set) var unreadBytes = 0
    /// The unread rest of the chunk `read(into:)` took last.
    private var current: [UInt8] = []
    private var currentIndex = 0
    private var closedByUs = false
    /// Bytes handed to the reader so far: the offset errors name.
    public private(set) var bytesRead: UInt64 = 0

    init(connection: ADBConnection, localId: UInt32, destination: String) {
        self.connection = connection
        self.localId = localId
        self.destination = destination
    }

    public var device: String { connection.device }

    func deliver(_ payload: [UInt8]) {
        guard !payload.isEmpty else { return }
        inbox.append(payload)
        unreadBytes += payload.count
    }

    /// The next chunk the phone sent, or nil when the stream has ended.
    public func read() throws(ADBError) -> [UInt8]? {
        if currentIndex < current.count {
            let rest = Array(current[currentIndex...])
            current = []
            currentIndex = 0
            bytesRead += UInt64(rest.count)
            return rest
        }
        let condition = connection.condition
        let deadline = Date.now.addingTimeInterval(ADBConnection.seconds(connection.timeouts.idle))
        condition.lock()
        while inboxHead == inbox.count {
            if peerClosed || closedByUs {
                condition.unlock()
                return nil
            }
            if let failure = connection.failure {
                condition.unlock()
                throw failure.during("read \(destination)", offset: bytesRead)
            }
            if !condition.wait(until: deadline), inboxHead == inbox.count, !peerClosed, connection.failure == nil {
                condition.unlock()
                throw ADBError(
                    .timeout, operation: "read \(destination)", device: device, offset: bytesRead,
                    "the phone sent nothing for \(connection.timeouts.idle)")
            }
        }
        let chunk = inbox[inboxHead]
        // Dropped at once: the slot would otherwise keep the chunk alive until the inbox is
        // compacted, 64 chunks later (64 MiB of 1 MiB payloads, all of it in the peak RSS).
        inbox[inboxHead] = []
        inboxHead += 1
        if inboxHead > 64 {
            inbox.removeFirst(inboxHead)
            inboxHead = 0
        }
        unreadBytes -= chunk.count
        var okay: ADBMessage?
        if owesOkay, unreadBytes < ADBConnection.inboxLimit {
            owesOkay = false
            okay = ADBMessage(.okay, localId, remoteId)
        }
        condition.unlock()
        if let okay { try connection.send(okay) }
        bytesRead += UInt64(chunk.count)
        return chunk
    }

    /// Fills `buffer` with up to `count` bytes; fewer only when the stream ended.
    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws(ADBError) -> Int {
        var filled = 0
        while filled < count {
            if currentIndex == current.count {
                guard let chunk = try read() else { break }
                bytesRead -= UInt64(chunk.count)
                current = chunk
                currentIndex = 0
            }
            let take = min(count - filled, current.count - currentIndex)
            current.withUnsafeBytes { (buffer + filled).copyMemory(from: $0.baseAddress! + currentIndex, byteCount: take) }
            currentIndex += take
            filled += take
            bytesRead += UInt64(take)
        }
        return filled
    }

    /// Exactly `count` bytes; a stream that ends sooner is a truncated answer.
    public func read(exactly count: Int, for operation: String) throws(ADBError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let start = bytesRead
        guard count > 0 else { return [] }
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(ADBError) -> Int in try read(into: buffer.baseAddress!, count: count) }
        }
        let filled = try result.get()
        guard filled == count else {
            throw ADBError(
                .protocolViolation, operation: operation, device: device, offset: start,
                "the phone closed \(destination) after \(filled) of \(count) bytes (truncated)")
        }
        return bytes
    }

    /// Sends `bytes`, in WRTEs of at most the negotiated size, each after the phone's OKAY of the last.
    public func write(_ bytes: [UInt8]) throws(ADBError) {
        var start = 0
        let condition = connection.condition
        while start < bytes.count {
            let deadline = Date.now.addingTimeInterval(ADBConnection.seconds(connection.timeouts.idle))
            condition.lock()
            while !mayWrite {
                if peerClosed || connection.failure != nil { break }
                if !condition.wait(until: deadline), !mayWrite {
                    condition.unlock()
                    throw ADBError(
                        .timeout, operation: "write \(destination)", device: device,
                        "the phone acknowledged nothing for \(connection.timeouts.idle)")
                }
            }
            if let failure = connection.failure {
                condition.unlock()
                throw failure.during("write \(destination)")
            }
            if peerClosed {
                condition.unlock()
                throw ADBError(.disconnected, operation: "write \(destination)", device: device, "the phone closed the stream")
            }
            mayWrite = false
            let remote = remoteId
            condition.unlock()
            let end = min(bytes.count, start + connection.maximumPayload)
            try connection.send(ADBMessage(.write, localId, remote, payload: Array(bytes[start..<end])))
            start = end
        }
    }

    /// Ends the stream (CLSE) unless the phone already did; unread data is dropped.
    public func close() {
        let condition = connection.condition
        condition.lock()
        let send = !closedByUs && !peerClosed && connection.failure == nil
        closedByUs = true
        let remote = remoteId
        condition.unlock()
        if send { try? connection.send(ADBMessage(.close, localId, remote)) }
        connection.forget(self)
    }
}
