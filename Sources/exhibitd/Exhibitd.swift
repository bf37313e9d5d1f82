// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Daemon
import Devices
import Foundation
import Logging
import StatusAPI
import Store

#if canImport(Glibc)
    import Glibc

#endif

@main
struct Exhibitd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exhibitd",
        abstract: "The appliance daemon: discovers disks, proves them read-only, acquires them into sealed bundles.",
        discussion: """
            Runs until SIGTERM or SIGINT; running jobs are then cancelled, kept under STORE/work/ and
            marked interrupted. Speaks the systemd notify protocol when NOTIFY_SOCKET is set.
            Status API: newline-delimited JSON on the socket (docs/status-api.md).
            """)

    @Option(help: "The store directory (provisioned with `exhibit provision`).") var store: String
    @Option(help: "The status socket (default \(StatusClient.defaultSocket), or the configuration's).") var socket: String?
    @Option(help: "A JSON configuration file (see docs/status-api.md); without it, STORE/exhibitd.json if present.")
    var config: String?
    @Flag(help: "Log at debug level.") var verbose = false

    func run() throws {
        // Every thread inherits this mask, so the signals reach only the sigwait below.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .info
            return handler
        }
        let logger = Logger(label: "exhibitd")
        let notifier = SystemdNotifier()
        // A settings file that cannot be used stops the daemon: acquiring with defaults the lab did
        // not choose (raw instead of E01, another digest) would go unnoticed until the hub.
        let settingsFile = DaemonConfiguration.settingsFile(explicit: config, store: store)
        let settings: DaemonConfiguration
        do {
            settings = try settingsFile.map(DaemonConfiguration.load) ?? DaemonConfiguration()
        } catch {
            throw failure("\(error)", notifier)
        }
        logger.info(
            "settings: \(settingsFile ?? "the defaults (no --config, no \(DaemonConfiguration.storeSettingsPath(store: store)))"): \(settings.summary)")
        let evidenceStore = EvidenceStore(root: store)
        do {
            _ = try evidenceStore.signingIdentity()
        } catch {
            throw failure("store \(evidenceStore.root) is not ready: \(error) (run `exhibit provision --store \(store)`)", notifier)
        }
        let storeLock: EvidenceStore.ServiceLock
        do { storeLock = try evidenceStore.lockForService() } catch { throw failure("\(error)", notifier) }
        defer { withExtendedLifetime(storeLock) {} }

        let mode = DiscoveryMode.detect()
        let daemon: ApplianceDaemon
        let server: StatusServer
        let monitor: DeviceMonitor
        do {
            daemon = try ApplianceDaemon(store: evidenceStore, configuration: settings, mode: mode, logger: logger)
            server = try StatusServer(
                path: socket ?? settings.socket ?? StatusClient.defaultSocket, group: settings.socketGroup ?? "exhibit",
                daemon: daemon, logger: logger)
            monitor = try DeviceMonitor(mode: mode, logger: logger)
            server.start()
            try monitor.start { daemon.handle($0) }
        } catch {
            throw failure("\(error)", notifier)
        }
        if mode.isDegraded { logger.warning("discovery: \(mode)") } else { logger.info("discovery: udev") }
        logger.info("serving \(server.path) for store \(evidenceStore.root)")
        notifier.notify(["READY=1", "STATUS=\(daemon.statusLine)", "MAINPID=\(getpid())"])

        let ticker = Ticker(daemon: daemon, notifier: notifier, interval: settings.recheckSeconds ?? 1)
        ticker.start()

        var received: Int32 = 0
        sigwait(&signals, &received)
        let signalName = received == SIGTERM ? "SIGTERM" : "SIGINT"
        logger.info("received \(signalName); stopping")
        // The ticker is stopped first: a watchdog ping after STOPPING=1 would claim a healthy
        // running service to a manager that has already begun stopping it.
        ticker.stop()
        notifier.notify(["STOPPING=1", "STATUS=stopping: checkpointing \(daemon.runningJobCount) running jobs"])
        monitor.stop()
        let clean = daemon.shutdown(timeout: 8, reason: "exhibitd was stopped (\(signalName))")
        server.stop()
        if !clean { logger.error("jobs still running after 8 s; exiting anyway (they are marked interrupted on restart)") }
        logger.info("stopped")
    }

    private func failure(_ message: String, _ notifier: SystemdNotifier) -> ExitCode {
        FileHandle.standardError.write(Data("exhibitd: \(message)\n".utf8))
        notifier.notify(["STATUS=failed: \(message)", "ERRNO=1"])
        return ExitCode(1)
    }
}

/// Re-checks sysfs every `interval`, updates systemd's STATUS= when it changes, and pings the
/// watchdog at half of WATCHDOG_USEC only while this loop runs, so a wedged daemon is restarted.
final class Ticker: @unchecked Sendable {
    private let daemon: ApplianceDaemon
    private let notifier: SystemdNotifier
    private let interval: TimeInterval
    private let stopped = NSCondition()
    private var stopping = false
    private var finished = false
    private var thread: Thread?

    init(daemon: ApplianceDaemon, notifier: SystemdNotifier, interval: TimeInterval) {
        self.daemon = daemon
        self.notifier = notifier
        self.interval = max(interval, 0.1)
    }

    func start() {
        let thread = Thread { [self] in
            var lastStatus = ""
            var nextRecheck = Date()
            var nextPing = Date()
            stopped.lock()
            defer {
                finished = true
                stopped.broadcast()
                stopped.unlock()
            }
            while !stopping {
                let now = Date()
                if now >= nextRecheck {
                    stopped.unlock()
                    daemon.recheck()
                    let status = daemon.statusLine
                    if status != lastStatus {
                        notifier.notify(["STATUS=\(status)"])
                        lastStatus = status
                    }
                    stopped.lock()
                    nextRecheck = now.addingTimeInterval(interval)
                }
                if let watchdog = notifier.watchdogInterval, now >= nextPing {
                    notifier.notify(["WATCHDOG=1"])
                    nextPing = now.addingTimeInterval(watchdog)
                }
                let wake = notifier.watchdogInterval == nil ? nextRecheck : min(nextRecheck, nextPing)
                _ = stopped.wait(until: wake)
            }
        }
        thread.name = "exhibit.ticker"
        self.thread = thread
        thread.start()
    }

    /// Returns once the loop has ended, so nothing is sent to systemd after this.
    func stop() {
        stopped.lock()
        stopping = true
        stopped.broadcast()
        while thread != nil && !finished { stopped.wait() }
        stopped.unlock()
    }
}
