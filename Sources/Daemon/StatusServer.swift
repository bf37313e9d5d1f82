// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import Logging
import StatusAPI
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// The status API's Unix socket (mode 0660, group `exhibit` when it exists): one thread accepts,
/// one thread per client reads requests, and a subscribed client gets a writer thread fed by the
/// hub. The server owns the listening descriptor; each client thread owns its connection's.
public final class StatusServer: Sendable {
    public let path: String
    private let daemon: ApplianceDaemon
    private let logger: Logger
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)

    public init(path: String, group: String?, daemon: ApplianceDaemon, logger: Logger) throws(DaemonRequestError) {
        self.path = path
        self.daemon = daemon
        self.logger = logger
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.removeStaleSocket(path)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw DaemonRequestError(.failed, "socket: \(String(cString: strerror(errno)))") }
        var address = try StatusClient.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            let error = errno
            close(listener)
            throw DaemonRequestError(.failed, "bind \(path): \(String(cString: strerror(error)))")
        }
        chmod(path, 0o660)
        if let group, let entry = getgrnam(group) {
            chown(path, uid_t.max, entry.pointee.gr_gid)
        } else if let group {
            logger.warning("status socket \(path): group \(group) does not exist; the socket stays root's group")
        }
    }

    deinit { close(listener) }

    /// A socket left by a daemon that died is replaced; a live one is not, and nothing that is not
    /// a socket is ever removed (a mistyped --socket could name a sealed image).
    static func removeStaleSocket(_ path: String) throws(DaemonRequestError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw DaemonRequestError(
                .failed, "\(path): exists and is not a socket; exhibitd replaces only a socket a stopped daemon left (choose another --socket)")
        }
        if StatusClient.isListening(path) {
            throw DaemonRequestError(.failed, "\(path): another exhibitd is already serving this socket")
        }
        unlink(path)
    }

    public func start() {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                let handler = Thread { [self] in serve(client) }
                handler.name = "exhibit.status-client"
                handler.start()
            }
        }
        thread.name = "exhibit.status-accept"
        thread.start()
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        unlink(path)
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        let peer = Self.peer(of: client)
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            while let line = StatusCoding.nextLine(&pending) {
                if line.isEmpty { continue }
                let request: StatusRequest
                do {
                    request = try JSONDecoder().decode(StatusRequest.self, from: line)
                } catch {
                    var message = StatusMessage(.error)
                    message.error = .init(
                        code: DaemonRequestError.Code.invalidRequest.rawValue, message: "not a status request: \(JSONProblem.describe(error))")
                    guard send(client, StatusCoding.line(message)) else { return }
                    continue
                }
                if request.request == .subscribe {
                    stream(to: client)
                    return
                }
                guard send(client, StatusCoding.line(answer(request, peer: peer))) else { return }
            }
            let count = recv(client, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { return }
            pending.append(contentsOf: buffer[0..<count])
            if pending.count > 1 << 20 { return }  // no request is this long
        }
    }

    /// Who is at the other end, as the kernel says (`SO_PEERCRED`): the audit trail records it
    /// beside the `client` a request claims, which anyone who can reach the socket may write.
    static func peer(of client: Int32) -> String {
        var credentials = (pid: Int32(0), uid: UInt32(0), gid: UInt32(0))
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            return "unknown (\(String(cString: strerror(errno))))"
        }
        return "uid \(credentials.uid) pid \(credentials.pid)"
    }

    /// Every name a request carries is refused if it holds a control character: it would be
    /// written into the catalog, custody logs and bag-info of every bundle of the case.
    static func validateNames(_ request: StatusRequest) throws(DaemonRequestError) {
        let fields = [
            ("caseId", request.caseId), ("examiner", request.examiner), ("exhibitId", request.exhibitId),
            ("actor", request.actor), ("client", request.client),
        ]
        for (field, value) in fields {
            guard let value else { continue }
            do { try PlainText.validate(value, field: field) } catch {
                throw DaemonRequestError(.invalidRequest, "\(error)")
            }
        }
    }

    func answer(_ request: StatusRequest, peer: String? = nil) -> StatusMessage {
        do {
            try Self.validateNames(request)
            switch request.request {
            case .snapshot, .subscribe:
                return daemon.snapshot()
            case .openCase:
                guard let caseId = request.caseId?.trimmingCharacters(in: .whitespaces), !caseId.isEmpty,
                    let examiner = request.examiner?.trimmingCharacters(in: .whitespaces), !examiner.isEmpty
                else { throw DaemonRequestError(.invalidRequest, "open-case needs caseId and examiner") }
                var message = ok(request)
                message.session = try daemon.openCase(
                    caseId: caseId, examiner: examiner, auto: request.auto ?? false, client: request.client, peer: peer)
                return message
            case .closeCase:
                guard try daemon.closeCase(actor: request.actor, client: request.client, peer: peer) != nil else { throw DaemonRequestError(.noCase, "no case is open") }
                return ok(request)
            case .acquire:
                guard let slot = request.slot, let exhibitId = request.exhibitId else {
                    throw DaemonRequestError(.invalidRequest, "acquire needs slot and exhibitId")
                }
                var message = ok(request)
                message.slot = try daemon.acquire(slot: slot, exhibitId: exhibitId, actor: request.actor, client: request.client, peer: peer)
                return message
            case .acknowledge:
                guard let alertId = request.alertId else { throw DaemonRequestError(.invalidRequest, "acknowledge needs alertId") }
                var message = ok(request)
                message.alerts = [try daemon.acknowledge(alertId: alertId, actor: request.actor, client: request.client, peer: peer)]
                return message
            }
        } catch let error as DaemonRequestError {
            return failure(request, code: error.code.rawValue, error.message)
        } catch {
            return failure(request, code: DaemonRequestError.Code.failed.rawValue, "\(error)")
        }
    }

    private func ok(_ request: StatusRequest) -> StatusMessage {
        var message = StatusMessage(.ok)
        message.request = request.request.rawValue
        return message
    }

    private func failure(_ request: StatusRequest, code: String, _ text: String) -> StatusMessage {
        var message = StatusMessage(.error)
        message.request = request.request.rawValue
        message.error = .init(code: code, message: text)
        return message
    }

    /// A snapshot, then every change. Subscribing before the snapshot is taken means no change
    /// between the two is lost (a client may see one twice).
    private func stream(to client: Int32) {
        let subscription = daemon.hub.subscribe()
        defer { daemon.hub.unsubscribe(subscription) }
        guard send(client, StatusCoding.line(daemon.snapshot())) else { return }
        // The client's half-close or disconnect ends the subscription. The watcher reads the
        // connection's descriptor, so it must be done before `serve` closes it (a closed number is
        // soon another file's).
        let watcherDone = DispatchSemaphore(value: 0)
        let watcher = Thread {
            var byte: UInt8 = 0
            while recv(client, &byte, 1, 0) > 0 {}
            subscription.close()
            watcherDone.signal()
        }
        watcher.start()
        while let line = subscription.next() {
            guard send(client, line) else { break }
        }
        shutdown(client, Int32(SHUT_RDWR))
        watcherDone.wait()
    }

    private func send(_ client: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let result = Glibc.send(client, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { return false }
                sent += result
            }
            return true
        }
    }
}
