// SPDX-License-Identifier: Apache-2.0
import ADB
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A simulated adbd on 127.0.0.1 (an ephemeral port, never 5555, which the adb server probes
/// as an emulator): it answers the connection handshake with its banner and refuses every
/// service it does not offer. Debian's `adb` is its conformance judge. Services, AUTH and
/// faults come with the rest of issue 6.
public final class SimulatedAndroidDevice: @unchecked Sendable {
    public let port: UInt16
    public let banner: ADBBanner
    private let listener: Int32
    private let stopped = NSLock()
    private var isStopped = false

    public init(banner: ADBBanner) throws {
        self.banner = banner
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard listener >= 0, bound == 0, listen(listener, 4) == 0 else {
            throw LoopDevice.LoopError(message: "simulated device: cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        self.listener = listener
        let thread = Thread { [self] in acceptConnections() }
        thread.name = "simulated-adbd"
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        let first = stopped.withLock { () -> Bool in
            defer { isStopped = true }
            return !isStopped
        }
        if first {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    private func acceptConnections() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            let thread = Thread { [self] in serve(connection) }
            thread.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var decoder = ADBMessageDecoder(checksum: .byteSum)
        var checksum = ADBChecksum.byteSum
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            let messages: [ADBMessage]
            do {
                messages = try decoder.feed(buffer[0..<count])
            } catch {
                return  // a host that does not speak ADB is hung up on
            }
            for message in messages {
                switch message.command {
                case .connect:
                    checksum = ADBChecksum.negotiated(ours: ADBProtocol.versionSkipChecksum, theirs: message.arg0)
                    decoder.checksum = checksum
                    let maximum = UInt32(min(Int(message.arg1), ADBProtocol.maximumPayload))
                    decoder.maximumPayload = Int(maximum)
                    send(connection, ADBMessage(.connect, ADBProtocol.versionSkipChecksum, maximum, payload: banner.payload), checksum)
                case .open:
                    // No service is offered yet: refused as adbd refuses an unknown one.
                    send(connection, ADBMessage(.close, 0, message.arg0), checksum)
                default:
                    break
                }
            }
        }
    }

    private func send(_ connection: Int32, _ message: ADBMessage, _ checksum: ADBChecksum) {
        let bytes = message.encoded(checksum: checksum)
        var sent = 0
        while sent < bytes.count {
            let result = bytes[sent...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { return }
            sent += result
        }
    }
}
