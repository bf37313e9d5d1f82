// SPDX-License-Identifier: Apache-2.0
import Daemon
import Foundation
import StatusAPI
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// A daemon on a test store, with helpers to wait for slot states through the real status socket.
final class TestDaemon: @unchecked Sendable {
    let store: TestStore
    let socket: String
    var process: DaemonProcess

    /// `configuration` goes to a file given with `--config`, or with `inStore` to the store's
    /// own settings file, which exhibitd reads without being told.
    /// With `onTmpfsOf` the store is on a tmpfs of that size (`TestStore`).
    init(
        _ label: String, environment: [String: String] = [:], configuration: String? = nil, inStore: Bool = false,
        onTmpfsOf size: String? = nil
    ) throws {
        store = try TestStore(label, onTmpfsOf: size)
        socket = store.scratch.file("exhibitd.sock")
        var extra: [String] = []
        if let configuration {
            let path = inStore ? DaemonConfiguration.storeSettingsPath(store: store.root) : store.scratch.file("exhibitd.json")
            try configuration.write(toFile: path, atomically: true, encoding: .utf8)
            if !inStore { extra = ["--config", path] }
        }
        arguments = (environment, extra)
        process = try DaemonProcess(
            store: store.root, socket: socket, log: store.scratch.file("exhibitd.log"), environment: environment, extra: extra)
        try #require(process.waitUntilServing(), "exhibitd did not start: \(process.log)")
    }

    /// The daemon stops before its store goes (a store on a tmpfs is unmounted with it).
    deinit { _ = process.terminate() }

    /// The environment and arguments the daemon was started with, for `restart`.
    private let arguments: (environment: [String: String], extra: [String])

    /// Starts exhibitd again as it was started (the one before must have exited), its settings
    /// file read again.
    func restart() throws {
        process = try DaemonProcess(
            store: store.root, socket: socket, log: store.scratch.file("exhibitd-2.log"), environment: arguments.environment,
            extra: arguments.extra)
        try #require(process.waitUntilServing(), "exhibitd did not restart: \(process.log)")
    }

    func snapshot() throws -> StatusMessage {
        try StatusClient(path: socket).send(StatusRequest(.snapshot))
    }

    func slot(for device: String) throws -> SlotStatus? {
        try snapshot().slots?.first { $0.device == device }
    }

    /// Polls until the device's slot satisfies `condition`; returns it, or nil on timeout.
    func waitForSlot(_ device: String, timeout: TimeInterval, _ condition: (SlotStatus) -> Bool) throws -> SlotStatus? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let slot = try slot(for: device), condition(slot) { return slot }
            usleep(100_000)
        }
        return nil
    }

    /// Polls until an alert satisfies `condition` (alerts follow the slot change that raises
    /// them in a message of their own); returns it, or nil on timeout.
    func waitForAlert(timeout: TimeInterval, _ condition: (AlertStatus) -> Bool) throws -> AlertStatus? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let alert = try snapshot().alerts?.first(where: condition) { return alert }
            usleep(100_000)
        }
        return nil
    }

    func cli(_ arguments: [String]) throws -> Subprocess.Result {
        try exhibit(arguments + ["--socket", socket])
    }
}

/// `exhibit status --watch --json` in the background, collecting the daemon's lines.
final class StatusWatch: @unchecked Sendable {
    let process = Process()
    let output: String

    init(socket: String, output: String) throws {
        self.output = output
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
        process.arguments = ["status", "--watch", "--json", "--socket", socket]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        try process.run()
    }

    var lines: [String] {
        ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func messages() throws -> [StatusMessage] {
        try lines.map { try StatusCoding.decode(StatusMessage.self, from: $0) }
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

private func fileFingerprint(_ path: String) throws -> String {
    try Subprocess.shell("stat -c '%Y.%y %s' '\(path)' && sha256sum '\(path)'").stdout
}

@Suite(.serialized, .enabled(if: loopUnavailable == nil, loopSkipComment))
struct DaemonTests {
    @Test func refusesWritableAcquiresReadOnlyAndReportsEveryMessageType() throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("daemon-e2e")
        let scratch = daemon.store.scratch

        // A writable disk attached before any case: refused, with the fix, and never opened.
        let writableImage = try SourceImage.create(at: scratch.file("writable.img"), size: 24 << 20, seed: 11)
        let before = try fileFingerprint(writableImage)
        let writable = try LoopDevice(backing: writableImage)
        let refused = try daemon.waitForSlot(writable.path, timeout: 5) { $0.state == .refused }
        let refusal = try #require(refused, "writable device not refused within 5 s: \(daemon.process.log)")
        #expect(refusal.detail?.contains("blockdev --setro \(writable.path)") == true)

        let watch = try StatusWatch(socket: daemon.socket, output: scratch.file("watch.jsonl"))
        defer { watch.stop() }
        usleep(300_000)
        let opened = try daemon.cli(["case", "open", "--case", "CASE-D", "--examiner", "Daemon Tester", "--auto"])
        try #require(opened.succeeded, "case open: \(opened)")

        // A read-only disk attached to an --auto case is detected within 5 s and sealed.
        let image = try SourceImage.create(at: scratch.file("auto.img"), size: 40 << 20 | 3584, seed: 12)
        let attached = Date()
        let loop = try LoopDevice(backing: image, readOnly: true)
        let detected = try daemon.waitForSlot(loop.path, timeout: 5) { _ in true }
        #expect(detected != nil, "not detected within 5 s")
        #expect(Date().timeIntervalSince(attached) < 5)
        let sealedSlot = try daemon.waitForSlot(loop.path, timeout: 60) { [.sealed, .failed, .interrupted].contains($0.state) }
        let sealed = try #require(sealedSlot, "not sealed: \(daemon.process.log)")
        #expect(sealed.state == .sealed, "\(sealed.detail ?? "")")
        #expect(sealed.exhibitId == "E1")
        let bundle = try #require(sealed.bundlePath)
        try StockChecks.expectAllPass(bundle, trust: daemon.store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", image))
        #expect(sealed.digests["sha256"] == (try StockChecks.sum("sha256sum", image)))

        // The writable one is untouched and has no job; after setro it is ready and can be
        // acquired by slot number.
        #expect(try fileFingerprint(writableImage) == before)
        #expect(try daemon.slot(for: writable.path)?.state == .refused)
        let list = try exhibit(["list", "--store", daemon.store.root, "--json"])
        #expect(!list.stdout.contains(writable.path), "a refused device must have no job")
        try writable.setReadOnly(true)
        let ready = try daemon.waitForSlot(writable.path, timeout: 5) { $0.state == .ready }
        let readySlot = try #require(ready, "setro not noticed within 5 s")
        let manual = try daemon.cli(["acquire", "--slot", String(readySlot.slot), "--exhibit", "W-1"])
        #expect(manual.succeeded, "\(manual)")
        let manualDone = try daemon.waitForSlot(writable.path, timeout: 60) { $0.state == .sealed || $0.state == .failed }
        #expect(manualDone?.state == .sealed, "\(manualDone?.detail ?? daemon.process.log)")
        #expect(manualDone?.exhibitId == "W-1")

        // Errors are answered, not dropped.
        let missing = try daemon.cli(["acquire", "--slot", "99", "--exhibit", "X"])
        #expect(!missing.succeeded)
        #expect(missing.stderr.contains("no slot 99"), "\(missing)")
        let error = try StatusClient(path: daemon.socket).send(StatusRequest(.acquire, slot: 99, exhibitId: "X"))
        #expect(error.type == .error && error.error?.code == "no-such-slot")
        let ok = try StatusClient(path: daemon.socket).send(StatusRequest(.openCase, caseId: "CASE-D", examiner: "Daemon Tester", auto: true))
        #expect(ok.type == .ok && ok.session?.caseId == "CASE-D")

        loop.detach()
        _ = try daemon.waitForSlot(loop.path, timeout: 5) { _ in false }
        #expect(try daemon.cli(["case", "close"]).succeeded)
        usleep(500_000)
        #expect(daemon.process.terminate() != nil)
        watch.stop()

        // Every line decodes, and the subscription showed every kind of change, in order.
        let messages = try watch.messages()
        let kinds = Set(messages.map(\.type))
        for kind in [StatusMessage.Kind.snapshot, .slot, .slotRemoved, .session, .event] {
            #expect(kinds.contains(kind), "no \(kind.rawValue) message in \(watch.lines.count) lines")
        }
        let states = messages.compactMap { $0.type == .slot && $0.slot?.device == loop.path ? $0.slot?.state : nil }
        // Up to the seal: after the loop device is detached, a parallel test may attach another
        // under the same name. The image is read back during the acquisition (no verifying phase).
        var order: [SlotState] = []
        for state in states where order.last != state && order.last != .sealed { order.append(state) }
        #expect(order == [.ready, .acquiring, .sealing, .sealed], "states: \(order)")
        let snapshot = try #require(messages.first)
        #expect(snapshot.type == .snapshot && snapshot.daemon?.pid != nil)
        #expect(snapshot.daemon?.degraded == !FileManager.default.fileExists(atPath: "/run/udev/control"))
    }

    /// A disk whose bundle cannot be moved into `bundles/` (immutable here) leaves its slot
    /// interrupted, as the job records itself (the error is of a kind that fails other jobs), and
    /// its image kept; plugged in again once the store is fixed, the job is finished from the store.
    @Test(.enabled(if: ImmutableBundles.unavailableReason == nil, "needs chattr +i on the test stores' file system"))
    func aDiskStoppedWhileSealingIsInterruptedAndFinishedWhenPluggedAgain() throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("daemon-unmovable")
        let immutable = try ImmutableBundles(in: daemon.store)
        let opened = try daemon.cli(["case", "open", "--case", "CASE-S", "--examiner", "Daemon Tester", "--auto"])
        try #require(opened.succeeded, "case open: \(opened)")
        let image = try SourceImage.create(at: daemon.store.scratch.file("s.img"), size: 12 << 20, seed: 21)
        let first = try LoopDevice(backing: image, readOnly: true)
        let stopped = try daemon.waitForSlot(first.path, timeout: 60) { [.sealed, .failed, .interrupted].contains($0.state) }
        #expect(stopped?.state == .interrupted, "\(stopped?.detail ?? daemon.process.log)")
        #expect(try daemon.snapshot().alerts?.contains { $0.kind == .jobInterrupted } == true)

        try immutable.release()
        first.detach()
        let again = try LoopDevice(backing: image, readOnly: true)
        let done = try daemon.waitForSlot(again.path, timeout: 60) { [.sealed, .failed].contains($0.state) }
        let sealed = try #require(done, "not finished: \(daemon.process.log)")
        #expect(sealed.state == .sealed, "\(sealed.detail ?? "")")
        let bundle = try #require(sealed.bundlePath)
        try StockChecks.expectAllPass(bundle, trust: daemon.store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", image))
        #expect(try String(contentsOfFile: "\(bundle)/data/custody.jsonl", encoding: .utf8).contains("\"acquisition-resumed\""))
    }

    /// A disk whose read-only flag is cleared while the daemon reads it: the job stops
    /// interrupted, and the slot and its alert ask for the flag back (`resumeBy` make-read-only,
    /// the fix `blockdev --setro DEV`), not for the disk to be reconnected; once the flag is set
    /// the daemon continues the job by itself, and the bundle holds the source as it is.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aDiskThatBecomesWritableAsksForTheFlagBackAndResumes() throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("daemon-writable")
        let scratch = daemon.store.scratch
        #expect(try daemon.cli(["case", "open", "--case", "CASE-W", "--examiner", "Tester", "--auto"]).succeeded)
        let image = try SourceImage.create(at: scratch.file("flag.img"), size: 48 << 20, seed: 31)
        let sourceSHA256 = try StockChecks.sum("sha256sum", image)
        let device = try FaultyLoopDevice(
            backing: image, delayMilliseconds: 60, protectedByFlagOnly: true, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let path = device.loop.path
        let reading = try daemon.waitForSlot(path, timeout: 30) { $0.state == .acquiring && $0.bytesDone > 0 }
        try #require(reading != nil, "the job did not start: \(daemon.process.log)")
        try device.loop.setReadOnly(false)

        let stopped = try #require(
            try daemon.waitForSlot(path, timeout: 30) { [.interrupted, .failed, .sealed].contains($0.state) }, "\(daemon.process.log)")
        #expect(stopped.state == .interrupted && stopped.resumeBy == .makeReadOnly, "\(stopped)")
        #expect(stopped.detail?.contains("source became writable") == true, "\(stopped.detail ?? "")")
        let alert = try daemon.waitForAlert(timeout: 5) { $0.kind == .jobInterrupted && $0.device == path }
        #expect(alert?.resumeBy == .makeReadOnly && alert?.fix == "blockdev --setro \(path)", "\(String(describing: alert))")

        try device.loop.setReadOnly(true)
        let sealed = try #require(
            try daemon.waitForSlot(path, timeout: 90) { [.sealed, .failed].contains($0.state) }, "not resumed: \(daemon.process.log)")
        #expect(sealed.state == .sealed && sealed.jobId == stopped.jobId, "\(sealed)")
        let bundle = try #require(sealed.bundlePath)
        try StockChecks.expectAllPass(bundle, trust: daemon.store.trustAnchor, sourceSHA256: sourceSHA256)
        #expect(try StockChecks.sum("sha256sum", image) == sourceSHA256, "the source changed")
        #expect(daemon.process.terminate() != nil)
    }

    /// The store fills while exhibitd reads a disk: the job stops interrupted, the slot and its
    /// alert ask for room in the store (`resumeBy` free-store-space), the store alert shows, and
    /// once room is made the daemon continues the job by itself (it looks again every 10 s).
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aFullStoreAsksForRoomAndTheJobResumesOnceThereIs() throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("daemon-full", onTmpfsOf: "320M")
        let (scratch, mount) = (daemon.store.scratch, try #require(daemon.store.mount))
        #expect(try daemon.cli(["case", "open", "--case", "CASE-F", "--examiner", "Tester", "--auto"]).succeeded)
        let image = try SourceImage.create(at: scratch.file("big.img"), size: 128 << 20, seed: 32)
        let sourceSHA256 = try StockChecks.sum("sha256sum", image)
        let device = try FaultyLoopDevice(backing: image, delayMilliseconds: 20, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let path = device.loop.path
        let writing = try daemon.waitForSlot(path, timeout: 30) { $0.state == .acquiring && $0.bytesDone >= 16 << 20 }
        try #require(writing != nil, "the job did not start: \(daemon.process.log)")
        // Something else takes all but 40 MiB of the store.
        let filler = "\(mount)/filler"
        let free = try Subprocess.shell("df -B1 --output=avail '\(mount)' | tail -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fill = try #require(UInt64(free)) - (40 << 20)
        try #require(try Subprocess.shell("fallocate -l \(fill) '\(filler)' || head -c \(fill) /dev/zero > '\(filler)'").succeeded)

        let stopped = try #require(
            try daemon.waitForSlot(path, timeout: 30) { [.interrupted, .failed, .sealed].contains($0.state) }, "\(daemon.process.log)")
        #expect(stopped.state == .interrupted && stopped.resumeBy == .freeStoreSpace, "\(stopped)")
        #expect(stopped.detail?.hasPrefix("store: ") == true && stopped.detail?.contains("store full") == true, "\(stopped.detail ?? "")")
        let interrupted = try daemon.waitForAlert(timeout: 5) { $0.kind == .jobInterrupted && $0.device == path }
        #expect(interrupted?.resumeBy == .freeStoreSpace && interrupted?.fix == nil, "\(String(describing: interrupted))")
        #expect(try daemon.waitForAlert(timeout: 5) { $0.kind == .storeAlmostFull } != nil, "\(daemon.process.log)")

        unlink(filler)
        let sealed = try #require(
            try daemon.waitForSlot(path, timeout: 90) { [.sealed, .failed].contains($0.state) }, "not resumed: \(daemon.process.log)")
        #expect(sealed.state == .sealed && sealed.jobId == stopped.jobId, "\(sealed)")
        try StockChecks.expectAllPass(try #require(sealed.bundlePath), trust: daemon.store.trustAnchor, sourceSHA256: sourceSHA256)
        withExtendedLifetime(device) {}
        #expect(daemon.process.terminate() != nil)
    }

    /// A disk whose bytes changed while exhibitd was stopped: the interrupted job is failed with
    /// the reason and the disk is acquired anew as a new job (it had taken the old job's id, which
    /// the catalog refused). The slot follows the new job: interrupted in its turn (the flag
    /// cleared), its alert names it, not the old one, and it resumes and seals.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aDiskChangedWhileTheDaemonWasStoppedIsAcquiredAnewAsANewJob() throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("daemon-changed", configuration: #"{ "checkpointSeconds": 0.3 }"#)
        let scratch = daemon.store.scratch
        #expect(try daemon.cli(["case", "open", "--case", "CASE-X", "--examiner", "Tester", "--auto"]).succeeded)
        let image = try SourceImage.create(at: scratch.file("changing.img"), size: 48 << 20, seed: 34)
        let device = try FaultyLoopDevice(
            backing: image, delayMilliseconds: 30, protectedByFlagOnly: true, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let path = device.loop.path
        let reading = try daemon.waitForSlot(path, timeout: 30) { $0.state == .acquiring && $0.bytesDone > 0 }
        let oldJob = try #require(reading?.jobId, "the job did not start: \(daemon.process.log)")
        // Stopped once its journal holds 16 MiB: what a resume takes as read.
        let journaled = DamagedMediaTests.waitForJournal(in: "\(daemon.store.root)/work", timeout: 30, pollMicroseconds: 20_000) {
            ($0["copiedBytes"] as? NSNumber)?.uint64Value ?? 0 >= 16 << 20
        }
        try #require(journaled, "the journal never held 16 MiB: \(daemon.process.log)")
        #expect(daemon.process.terminate(timeout: 15) != nil, "exhibitd did not stop")
        // A byte the journal holds as read changes, away from the first and last MiB that identify the disk.
        try #require(try Subprocess.shell("printf 'CHANGED' | dd of='\(image)' bs=1 seek=\(8 << 20) conv=notrunc status=none").succeeded)
        try #require(try Subprocess.run(["blockdev", "--flushbufs", path]).succeeded)
        let changedSHA256 = try StockChecks.sum("sha256sum", image)

        try daemon.restart()
        let renewed = try #require(
            try daemon.waitForSlot(path, timeout: 60) { $0.state == .acquiring && $0.jobId != oldJob && $0.bytesDone > 0 },
            "the slot never followed a new job: \(daemon.process.log)")
        let newJob = try #require(renewed.jobId)
        try device.loop.setReadOnly(false)
        let stopped = try daemon.waitForSlot(path, timeout: 30) { $0.state != .acquiring }
        #expect(stopped?.state == .interrupted && stopped?.jobId == newJob, "\(String(describing: stopped))")
        let alert = try daemon.waitForAlert(timeout: 5) { $0.kind == .jobInterrupted }
        #expect(alert?.id == "job-interrupted:\(newJob)", "\(String(describing: alert))")
        try device.loop.setReadOnly(true)
        let sealed = try #require(
            try daemon.waitForSlot(path, timeout: 90) { [.sealed, .failed].contains($0.state) }, "\(daemon.process.log)")
        #expect(sealed.state == .sealed && sealed.jobId == newJob, "\(sealed)")
        #expect(try daemon.snapshot().alerts?.contains { $0.id.contains(oldJob) } == false)
        #expect(sealed.digests["sha256"] == changedSHA256)
        let bundle = try #require(sealed.bundlePath)
        try StockChecks.expectAllPass(bundle, trust: daemon.store.trustAnchor, sourceSHA256: changedSHA256)
        let jobs = try daemon.snapshot().jobs ?? []
        let old = jobs.first { $0.jobId == oldJob }
        #expect(old?.state == .failed && old?.error?.contains("source changed since the interruption") == true, "\(String(describing: old))")
        #expect(jobs.first { $0.jobId == sealed.jobId }?.state == .sealed)
        withExtendedLifetime(device) {}
        #expect(daemon.process.terminate() != nil)
    }

    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func slowSourceDoesNotDelayOthersAndSigtermInterruptsCleanly() throws {
        let daemon = try TestDaemon("daemon-concurrent")
        let scratch = daemon.store.scratch
        #expect(try daemon.cli(["case", "open", "--case", "CASE-C", "--examiner", "Tester", "--auto"]).succeeded)

        let slowImage = try SourceImage.create(at: scratch.file("slow.img"), size: 64 << 20, seed: 21)
        // The fixture passes the loop driver's reads (up to 1 MiB) straight through, so 125 ms each is
        // about 5 MB/s: slow enough that the fast devices seal while this one is still being read.
        let slow = try FaultyLoopDevice(
            backing: slowImage, delayMilliseconds: 125, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let fastImages = try [22, 23].map { try SourceImage.create(at: scratch.file("fast\($0).img"), size: 48 << 20, seed: UInt64($0)) }
        let fast = try fastImages.map { try LoopDevice(backing: $0, readOnly: true) }

        for (device, image) in zip(fast, fastImages) {
            let done = try daemon.waitForSlot(device.path, timeout: 60) { [.sealed, .failed, .interrupted].contains($0.state) }
            #expect(done?.state == .sealed, "\(device.path): \(done?.detail ?? daemon.process.log)")
            #expect(done?.digests["sha256"] == (try StockChecks.sum("sha256sum", image)))
        }
        let slowSlot = try #require(try daemon.slot(for: slow.loop.path), "slow device not detected")
        #expect(slowSlot.state == .acquiring, "the slow device should still be reading: \(slowSlot.state)")
        #expect(slowSlot.bytesDone < slowSlot.sizeBytes)
        let jobId = try #require(slowSlot.jobId)

        // SIGTERM mid-acquisition: a clean exit within 10 s, the job interrupted, its work kept.
        let seconds = daemon.process.terminate(timeout: 15)
        let exited = try #require(seconds, "exhibitd did not exit after SIGTERM")
        #expect(exited < 10)
        #expect(daemon.process.process.terminationStatus == 0, "\(daemon.process.log)")

        try daemon.restart()
        let jobs = try daemon.snapshot().jobs ?? []
        let job = try #require(jobs.first { $0.jobId == jobId }, "the interrupted job is not shown after restart")
        #expect(job.state == .interrupted)
        #expect(job.error?.hasPrefix("exhibitd was stopped (SIGTERM) at byte ") == true, "\(job)")
        #expect(FileManager.default.fileExists(atPath: "\(daemon.store.root)/work/\(jobId)"), "the partial work must be kept")
        #expect(!daemon.store.bundles.contains { $0.contains("-E\(slowSlot.exhibitId?.dropFirst() ?? "")-") && $0.hasSuffix(jobId.prefix(8)) })
        // (Other suites' loop devices, attached meanwhile, are arrivals for this daemon's automatic
        // case: only this test's devices are counted.)
        let ours = Set([slow.loop.path] + fast.map(\.path))
        // The catalog agrees with the store: one bundle per sealed job, nothing else in bundles/.
        let sealedJobs = jobs.filter { $0.state == .sealed }
        #expect(sealedJobs.filter { ours.contains($0.sourcePath) }.count == 2)
        #expect(Set(sealedJobs.compactMap(\.bundleId)) == Set(daemon.store.bundles))
        // Disks that were attached before the restart are not arrivals: nothing is acquired twice
        // (the slow disk may only continue its own job).
        sleep(2)
        let later = (try daemon.snapshot().jobs ?? []).filter { ours.contains($0.sourcePath) }
        #expect(Set(later.map(\.jobId)) == Set(jobs.filter { ours.contains($0.sourcePath) }.map(\.jobId)), "jobs started after the restart")
        #expect(daemon.process.terminate() != nil)
    }
}

@Suite struct DaemonServiceTests {
    /// The store's settings file is read without `--config`; one it cannot use stops exhibitd
    /// before it serves, naming the file and the value, instead of acquiring with the defaults.
    @Test func refusesAStoreSettingsFileItCannotUse() throws {
        let store = try TestStore("store-settings")
        let settings = DaemonConfiguration.storeSettingsPath(store: store.root)
        try #"{"imageFormat": "e02"}"#.write(toFile: settings, atomically: true, encoding: .utf8)
        let process = try DaemonProcess(store: store.root, socket: store.scratch.file("d.sock"), log: store.scratch.file("d.log"))
        #expect(!process.waitUntilServing(timeout: 5), "exhibitd served with a settings file it cannot use")
        process.process.waitUntilExit()
        #expect(process.process.terminationStatus != 0)
        #expect(process.log.contains(settings) && process.log.contains("imageFormat must be"), "\(process.log)")
    }

    @Test func speaksTheSystemdNotifyProtocol() throws {
        let scratch = try ScratchDirectory("notify")
        let socketPath = scratch.file("notify.sock")
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(receiver >= 0)
        defer { close(receiver) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let daemon = try TestDaemon("notify", environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"])
        var datagrams: [String] = []
        let deadline = Date().addingTimeInterval(2)
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Pings come every 0.2 s, as often as the receive timeout: the loop ends at its deadline,
        // not at a quiet moment, which may never come while the daemon runs.
        func drain(until end: Date) {
            while Date() < end {
                let count = recv(receiver, &buffer, buffer.count, 0)
                if count <= 0 { return }
                datagrams.append(String(decoding: buffer[0..<count], as: UTF8.self))
            }
        }
        while Date() < deadline { drain(until: deadline) }
        #expect(daemon.process.terminate() != nil)
        drain(until: .distantFuture)

        let ready = datagrams.firstIndex { $0.split(separator: "\n").contains("READY=1") }
        #expect(ready != nil, "no READY=1 in \(datagrams)")
        #expect(datagrams.contains { $0.hasPrefix("READY=1") && $0.contains("STATUS=") })
        // Watchdog at half of WATCHDOG_USEC: 0.2 s, so about ten in two seconds.
        let pings = datagrams.filter { $0 == "WATCHDOG=1" }.count
        #expect(pings >= 5, "only \(pings) watchdog pings in 2 s: \(datagrams)")
        #expect(datagrams.last?.hasPrefix("STOPPING=1") == true, "\(datagrams.suffix(3))")
    }

    @Test(.enabled(if: Subprocess.has("systemd-analyze"), "systemd-analyze is not installed (scripts/install-deps)"))
    func unitFilePassesSystemdAnalyzeVerify() throws {
        let scratch = try ScratchDirectory("unit")
        let unit = try String(contentsOfFile: fixturePath("../../Systemd/exhibitd.service"), encoding: .utf8)
        // The installed path does not exist on a build machine; verify checks the executable.
        let local = unit.replacingOccurrences(of: "/usr/libexec/exhibit/exhibitd", with: "\(BuiltProducts.directory)/exhibitd")
        try local.write(toFile: scratch.file("exhibitd.service"), atomically: true, encoding: .utf8)
        let result = try Subprocess.run(["systemd-analyze", "verify", scratch.file("exhibitd.service")])
        #expect(result.succeeded && result.stderr.isEmpty, "\(result)")
        #expect(unit.contains("Type=notify") && unit.contains("WatchdogSec=") && unit.contains("IPAddressDeny=any"))
        #expect(unit.contains("RestrictAddressFamilies=AF_UNIX AF_NETLINK") && !unit.contains("PrivateNetwork=yes"))
    }

    @Test(
        .enabled(if: loopUnavailable == nil, loopSkipComment),
        .enabled(if: Subprocess.has("udevadm") && Subprocess.has("unshare"), "udevadm or unshare is not installed (scripts/install-deps installs udev)"))
    func udevRulesMakeEvidenceReadOnlyAndLeaveTheSystemDiskAlone() throws {
        let scratch = try ScratchDirectory("udev")
        let image = try SourceImage.create(at: scratch.file("evidence.img"), size: 1 << 20)
        let loop = try LoopDevice(backing: image)
        let rules = fixturePath("../../Udev")
        let systemDisk = try Subprocess.shell("lsblk -no PKNAME $(findmnt -no SOURCE /) 2>/dev/null | head -1").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let rootDevice = try Subprocess.shell("findmnt -no SOURCE /").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let rootDisk = systemDisk.isEmpty ? (rootDevice as NSString).lastPathComponent : systemDisk
        // udevadm test reads rules from /run/udev/rules.d and writes its database there: a private
        // mount namespace with a tmpfs on /run keeps the host untouched.
        let script = """
            set -e
            mount -t tmpfs tmpfs /run
            mkdir -p /run/udev/rules.d
            for f in '\(rules)'/*.rules; do
              sed "s|/usr/libexec/exhibit/exhibit-system-disk|\(rules)/exhibit-system-disk|" "$f" > /run/udev/rules.d/${f##*/}
            done
            echo "== evidence"
            udevadm test --action=change /sys/class/block/\((loop.path as NSString).lastPathComponent) 2>&1
            echo "== system"
            udevadm test --action=add /sys/class/block/\(rootDisk) 2>&1
            """
        let result = try Subprocess.run(["unshare", "--mount", "bash", "-c", script])
        try #require(result.succeeded, "\(result)")
        let parts = result.stdout.components(separatedBy: "== system")
        let evidence = parts[0]
        let system = parts.count > 1 ? parts[1] : ""
        #expect(evidence.contains("\nUDISKS_IGNORE=1"), "\(evidence)")
        #expect(evidence.contains("run: '/usr/sbin/blockdev --setro \(loop.path)'"), "\(evidence)")
        #expect(system.contains("EXHIBIT_SYSTEM_DISK=1"), "\(rootDisk): \(system)")
        #expect(!system.contains("UDISKS_IGNORE=1") && !system.contains("--setro"), "\(system)")
        // The host's own read-only state is not changed by a simulation.
        #expect(!FileManager.default.fileExists(atPath: "/run/udev/rules.d/62-exhibit-readonly.rules"))
    }
}
