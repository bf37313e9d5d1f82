// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// The client side: `exhibit status`, `exhibit case`, `exhibit acquire --slot`, and the panel.
public struct StatusClient: Sendable {
    public static let defaultSocket = "/run/exhibit/exhibitd.sock"
    public let path: String

    public init(path: String = defaultSocket) { self.path = path }

    /// Sends one request and returns the one answer.
    public func send(_ request: StatusRequest) throws(DaemonRequestError) -> StatusMessage {
        var answer: StatusMessage? = nil
        try exchange(request) { message in
            answer = message
            return false
        }
        guard let answer else { throw DaemonRequestError(.failed, "\(path): the daemon closed the connection without an answer") }
        return answer
    }

    /// Sends `request` and hands each answer line to `body` until it returns false or the daemon hangs up.
    public func exchange(_ request: StatusRequest, _ body: (StatusMessage) -> Bool) throws(DaemonRequestError) {
        let descriptor = try connect()
        defer { close(descriptor) }
        let line = StatusCoding.line(request)
        let written = line.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        guard written == line.count else {
            throw DaemonRequestError(.failed, "\(path): cannot send the request: \(String(cString: strerror(errno)))")
        }
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            while let text = StatusCoding.nextLine(&pending) {
                let message: StatusMessage
                do {
                    message = try JSONDecoder().decode(StatusMessage.self, from: text)
                } catch {
                    throw DaemonRequestError(.failed, "\(path): the daemon sent an unreadable message: \(error)")
                }
                if !body(message) { return }
            }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { return }
            pending.append(contentsOf: buffer[0..<count])
        }
    }

    private func connect() throws(DaemonRequestError) -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw DaemonRequestError(.failed, "socket: \(String(cString: strerror(errno)))") }
        var address = try Self.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let error = errno
            close(descriptor)
            throw DaemonRequestError(
                .failed, "cannot reach exhibitd at \(path): \(String(cString: strerror(error))); is the daemon running?")
        }
        return descriptor
    }

    public static func isListening(_ path: String) -> Bool {
        guard let descriptor = try? StatusClient(path: path).connect() else { return false }
        close(descriptor)
        return true
    }

    public static func address(_ path: String) throws(DaemonRequestError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw DaemonRequestError(.invalidRequest, "socket path too long (\(bytes.count) bytes): \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return address
    }
}
