// SPDX-License-Identifier: Apache-2.0
import Foundation
import StatusAPI
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// `exhibit panel`: subscribes to the daemon and redraws when a message, a key, a resize or the
/// clock's next second arrives; between them it sleeps in `poll`. A lost daemon is an alert
/// and a retry every two seconds, never an exit: the panel is what the technician looks at.
public final class PanelApp: Sendable {
    private let socket: String
    private let language: PanelLanguage
    private let model = Mutex(PanelModel())
    private let stopping = Atomic<Bool>(false)
    /// A pipe whose read end wakes the loop: daemon messages and signals write a byte.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    static let reconnectSeconds: UInt32 = 2

    public init(socket: String, language: PanelLanguage) throws(PanelError) {
        self.socket = socket
        self.language = language
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            throw PanelError(.systemCall, "creating the panel's wake pipe: \(String(cString: strerror(errno)))")
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        (wakeRead, wakeWrite) = (ends[0], ends[1])
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    public func run() throws(PanelError) {
        let catalog = try MessageCatalog.load(language)
        let terminal = try PanelTerminal()
        defer { terminal.restore() }
        let client = "panel " + (ttyname(STDIN_FILENO).map { String(cString: $0) } ?? "pid \(getpid())")
        let socket = self.socket
        var controller = PanelController(language: language, text: catalog, client: client) { request in
            Result { () throws(DaemonRequestError) in try StatusClient(path: socket).send(request) }
        }
        let signals = watchSignals()
        defer { signals.forEach { $0.cancel() } }
        startSubscription()

        var decoder = KeyDecoder()
        var descriptors = [
            pollfd(fd: terminal.inputDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while !stopping.load(ordering: .relaxed) {
            let current = model.withLock { $0 }
            controller.follow(current)
            let (columns, rows) = terminal.size
            let now = Date()
            let screen = PanelScreen(model: current, ui: controller.ui, text: controller.text, columns: columns, rows: rows, now: now)
            terminal.draw(screen.lines(), columns: columns, rows: rows)
            // Sleep until input, a daemon message, a signal, or the clock's next second.
            let untilNextSecond = Int32(1000 - Int(now.timeIntervalSince1970 * 1000) % 1000) + 5
            for index in descriptors.indices { descriptors[index].revents = 0 }
            if poll(&descriptors, nfds_t(descriptors.count), untilNextSecond) < 0, errno != EINTR { break }
            if descriptors[1].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 256)
                while read(wakeRead, &sink, sink.count) > 0 {}
            }
            if descriptors[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                guard let bytes = terminal.readAvailable() else { break }  // the terminal hung up
                let keys = decoder.feed(bytes)
                for key in keys {
                    controller.handle(key, model: model.withLock { $0 })
                }
            }
        }
        stopping.store(true, ordering: .relaxed)
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// One thread keeps a subscription open; each message updates the model and wakes the loop.
    private func startSubscription() {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                var reason = "the daemon closed the connection"
                do {
                    try StatusClient(path: socket).exchange(StatusRequest(.subscribe)) { message in
                        model.withLock { $0.apply(message) }
                        wake()
                        return !stopping.load(ordering: .relaxed)
                    }
                } catch {
                    reason = "\(error)"
                }
                model.withLock { model in
                    model = PanelModel()
                    model.connection = .unreachable(reason)
                }
                wake()
                sleep(Self.reconnectSeconds)
            }
        }
        thread.name = "exhibit.panel-subscription"
        thread.start()
    }

    /// SIGWINCH redraws; SIGTERM, SIGINT and SIGHUP end the loop so the terminal is restored.
    private func watchSignals() -> [any DispatchSourceSignal] {
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGWINCH, SIGTERM, SIGINT, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                if number != SIGWINCH { stopping.store(true, ordering: .relaxed) }
                wake()
            }
            source.resume()
            sources.append(source)
        }
        return sources
    }
}
