// SPDX-License-Identifier: Apache-2.0
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// Carries whole ADB messages to and from one phone. A transport has one reader (the
/// connection's receive thread) and any number of writers; `write` is safe to call from
/// several threads at once.
public protocol ADBTransport: AnyObject, Sendable {
    /// How the phone is reached, for errors and records: `tcp:HOST:PORT`, `usb:BUS-PORT`.
    var name: String { get }
    /// `adb-tcp` or `adb-usb`, for the acquisition record.
    var kind: String { get }
    func write(_ message: ADBMessage, checksum: ADBChecksum) throws(ADBError)
    /// The next message. `timeout` nil waits until a message arrives or the transport is closed.
    func read(maximumPayload: Int, checksum: ADBChecksum, timeout: Duration?) throws(ADBError) -> ADBMessage
    /// Ends the connection; a blocked `read` returns `disconnected`. Safe to call more than once.
    func close()
    /// Bytes that came before the phone's first handshake message and belonged to no message of
    /// this connection (what a pulled USB cable can leave queued on the phone's endpoint: pieces
    /// of an earlier stream, or its messages with what part of their payload came), set aside unread.
    var bytesSetAside: Int { get }
}

extension ADBTransport {
    /// A byte stream (TCP) has no packets to tell a leftover by: nothing is set aside.
    public var bytesSetAside: Int { 0 }
}

/// How the technician is told of bytes set aside before a phone's answer, wherever they stop the
/// handshake: what they were, and that a replug clears what a phone's endpoint still holds.
enum SetAsideBytes {
    static func named(_ count: Int) -> String { "\(count) bytes that belonged to no message of this connection" }
    static let advice = "unplug it and plug it back in; if this happens again, try another cable"
}

/// ADB over TCP (adbd listening after `adb tcpip`, an emulator, or the test simulator): the
/// 24-byte header and the payload go back to back on one socket.
public final class TCPTransport: ADBTransport, @unchecked Sendable {
    public let name: String
    public let kind = "adb-tcp"
    private let socketDescriptor: Int32
    private let writeLock = NSLock()
    private let writeTimeout: Duration
    private let closed = Atomic(false)
    /// Bytes read so far, the offset that protocol errors name.
    private var received: UInt64 = 0

    /// Connects to `host:port` (an IPv4 address or a name), waiting at most `connectTimeout`.
    public init(host: String, port: UInt16, connectTimeout: Duration = .seconds(10), writeTimeout: Duration = .seconds(30))
        throws(ADBError)
    {
        name = "tcp:\(host):\(port)"
        self.writeTimeout = writeTimeout
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let lookup = getaddrinfo(host, String(port), &hints, &list)
        guard lookup == 0, let first = list else {
            throw ADBError(.connectFailed, operation: "connect", device: name, "cannot resolve \(host): \(String(cString: gai_strerror(lookup)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let address = candidate {
            candidate = address.pointee.ai_next
            let descriptor = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard descriptor >= 0 else { continue }
            if connect(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0, errno != EINPROGRESS {
                lastError = String(cString: strerror(errno))
                Glibc.close(descriptor)
                continue
            }
            var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&entry, 1, Self.milliseconds(connectTimeout))
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &socketError, &length)
            guard ready == 1, socketError == 0 else {
                lastError = ready == 0 ? "no answer within \(connectTimeout)" : String(cString: strerror(socketError))
                Glibc.close(descriptor)
                continue
            }
            // Blocking from here on; every wait goes through poll with a limit.
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var bufferSize: Int32 = 4 << 20
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
            socketDescriptor = descriptor
            return
        }
        throw ADBError(.connectFailed, operation: "connect", device: name, lastError)
    }

    deinit { Glibc.close(socketDescriptor) }

    public func close() {
        if closed.exchange(true, ordering: .acquiringAndReleasing) { return }
        // shutdown wakes a reader blocked in poll; the descriptor is closed by deinit, its only owner.
        shutdown(socketDescriptor, Int32(SHUT_RDWR))
    }

    public func write(_ message: ADBMessage, checksum: ADBChecksum) throws(ADBError) {
        let header = message.header(checksum: checksum)
        writeLock.lock()
        defer { writeLock.unlock() }
        try send(header, operation: "send \(message.command)")
        if !message.payload.isEmpty { try send(message.payload, operation: "send \(message.command)") }
    }

    private func send(_ bytes: [UInt8], operation: String) throws(ADBError) {
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes {
                Glibc.send(socketDescriptor, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if result > 0 {
                sent += result
                continue
            }
            if result < 0, errno == EINTR { continue }
            if result < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                var entry = pollfd(fd: socketDescriptor, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&entry, 1, Self.milliseconds(writeTimeout))
                if ready == 0 {
                    throw ADBError(.timeout, operation: operation, device: name, "the phone took nothing for \(writeTimeout)")
                }
                continue
            }
            throw ADBError(.disconnected, operation: operation, device: name, "the connection is gone: \(String(cString: strerror(errno)))")
        }
    }

    public func read(maximumPayload: Int, checksum: ADBChecksum, timeout: Duration?) throws(ADBError) -> ADBMessage {
        let offset = received
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var header = [UInt8](repeating: 0, count: ADBProtocol.headerSize)
        try receive(into: &header, deadline: deadline, operation: "receive message header", allowCleanEnd: true)
        return try ADBMessageHeader.assemble(
            header, offset: offset, maximumPayload: maximumPayload, checksum: checksum, device: name
        ) { (length, command) throws(ADBError) in
            var payload = [UInt8](repeating: 0, count: length)
            // Once a header has arrived, its payload follows at once; a stall here is a broken peer.
            try receive(
                into: &payload, deadline: deadline ?? ContinuousClock.now + .seconds(30),
                operation: "receive \(command) payload", allowCleanEnd: false)
            return payload
        }
    }

    private func receive(into bytes: inout [UInt8], deadline: ContinuousClock.Instant?, operation: String, allowCleanEnd: Bool)
        throws(ADBError)
    {
        var filled = 0
        while filled < bytes.count {
            var entry = pollfd(fd: socketDescriptor, events: Int16(POLLIN), revents: 0)
            let wait = deadline.map { Self.milliseconds(max(.zero, $0 - ContinuousClock.now)) } ?? -1
            let ready = poll(&entry, 1, wait)
            if ready < 0, errno == EINTR { continue }
            if ready == 0 {
                throw ADBError(
                    .timeout, operation: operation, device: name, offset: received,
                    "the phone sent nothing in time" + (filled > 0 ? " (\(filled) of \(bytes.count) bytes arrived)" : ""))
            }
            let count = bytes.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress! + filled, $0.count - filled, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let why = closed.load(ordering: .acquiring) ? "the connection was closed" : "the phone ended the connection"
                throw ADBError(
                    .disconnected, operation: operation, device: name, offset: received,
                    filled == 0 && allowCleanEnd ? why : "\(why) \(filled) bytes into a \(bytes.count)-byte read (truncated)")
            }
            filled += count
            received += UInt64(count)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

extension ADBMessageHeader {
    /// A message as a transport receives it: the header checked, then exactly its payload read
    /// (by `readPayload`, skipped when empty) and checked; every violation named with `offset`.
    static func assemble(
        _ header: [UInt8], offset: UInt64, maximumPayload: Int, checksum: ADBChecksum, device: String,
        readPayload: (_ length: Int, _ command: ADBCommand) throws(ADBError) -> [UInt8]
    ) throws(ADBError) -> ADBMessage {
        let parsed: ADBMessageHeader
        do throws(ADBProtocolError) {
            parsed = try ADBMessageHeader(header, offset: offset, maximumPayload: maximumPayload)
        } catch {
            throw ADBError(.protocolViolation, operation: "receive", device: device, offset: offset, error.description)
        }
        let payload = parsed.length > 0 ? try readPayload(parsed.length, parsed.command) : []
        do throws(ADBProtocolError) {
            try parsed.check(payload, checksum: checksum, offset: offset)
        } catch {
            throw ADBError(.protocolViolation, operation: "receive", device: device, offset: offset, error.description)
        }
        return ADBMessage(parsed.command, parsed.arg0, parsed.arg1, payload: payload)
    }
}
