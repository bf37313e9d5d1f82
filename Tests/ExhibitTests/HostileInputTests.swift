// SPDX-License-Identifier: Apache-2.0
import Foundation
import StatusAPI
import Store
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// What a bad source, a careless operator or a hostile client can do to an acquisition, the
/// daemon or the store, and how each fails closed: refused with what and where, nothing lost.
@Suite struct HostileInputTests {
    // MARK: names

    @Test(arguments: [
        ("--examiner", "A\rExhibit-Media-SHA256: 0000"), ("--case", "C\nExhibit-Media-SHA256: 0000"),
        ("--exhibit", "E1\u{1B}[2J"), ("--examiner", "bell\u{07}"), ("--case", "next\u{85}line"),
    ])
    func controlCharactersInNamesAreRefusedAtTheCommandLine(_ option: String, _ value: String) throws {
        let store = try TestStore("names")
        let source = try SourceImage.create(at: store.scratch.file("n.img"), size: 1 << 20)
        var arguments = ["acquire", source, "--store", store.root, "--case", "C1", "--exhibit", "E1", "--examiner", "T"]
        let index = try #require(arguments.firstIndex(of: option))
        arguments[index + 1] = value
        let result = try exhibit(arguments)
        #expect(!result.succeeded)
        #expect(result.stderr.contains("control character U+"), "\(result)")
        #expect(store.bundles.isEmpty)
        let jobs = try StoreListing.of(store.root).entries
        #expect(jobs.isEmpty, "nothing was started: \(jobs)")
    }

    @Test func namesKeepTheirScriptInBundleNames() throws {
        let store = try TestStore("thai")
        let source = try SourceImage.create(at: store.scratch.file("t.img"), size: 1 << 20)
        let thai = try store.acquireBundle(source, caseId: "คดี-2569-0147", exhibit: "ของกลาง1")
        let khmer = try store.acquireBundle(source, caseId: "សំណុំរឿង-០១", exhibit: "E1")
        let thaiName = (thai as NSString).lastPathComponent
        #expect(thaiName.hasPrefix("คดี-2569-0147-ของกลาง1-"), "\(thaiName)")
        #expect((khmer as NSString).lastPathComponent.hasPrefix("សំណុំរឿង-០១-E1-"))
        #expect(try exhibit(["verify", thai, "--trust", store.trustAnchor]).succeeded)
        #expect(try StockChecks.bagit(thai).succeeded)
    }

    // MARK: sizes a user or a bundle gives

    /// Too small and too large (past a file offset's limit: the segment count overflowed and
    /// trapped, in `exhibit` and in the daemon at its first job), from the command line and from
    /// the daemon's settings, which then never serves.
    @Test(arguments: [("1", "is below the minimum"), ("18446744073709551615", "is above the maximum")])
    func absurdSegmentSizesAreRefusedBeforeAnythingIsWritten(size: String, problem: String) throws {
        let store = try TestStore("segments")
        let source = try SourceImage.create(at: store.scratch.file("s.img"), size: 4 << 20)
        for format in ["raw", "e01"] {
            let refused = try store.acquire(source, exhibit: "E1", ["--segment-size", size, "--format", format])
            #expect(refused.status == 64 && refused.stderr.contains("--segment-size \(size) \(problem)"), "\(refused)")
            // With --json (store.acquire gives it), the refusal is also JSON on stdout.
            let answer = try JSONSerialization.jsonObject(with: Data(refused.stdout.utf8)) as? [String: [String: String]]
            #expect(answer?["error"]?["stage"] == "options" && answer?["error"]?["message"]?.contains(problem) == true, "\(refused)")
        }
        let signed = try store.acquire(source, exhibit: "E1", ["--segment-size", "+2M"])
        #expect(signed.status == 64 && signed.stderr.contains("--segment-size must be a number of bytes"), "\(signed)")
        let config = store.scratch.file("bad.json")
        try #"{ "segmentSize": \#(size) }"#.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try Subprocess.run([
            "timeout", "20", "\(BuiltProducts.directory)/exhibitd", "--store", store.root, "--socket", store.scratch.file("s.sock"),
            "--config", config,
        ])
        #expect(daemon.status == 1 && daemon.stderr.contains("segmentSize \(size) \(problem)"), "\(daemon)")
        #expect(store.bundles.isEmpty)
    }

    /// A settings file the daemon cannot use as written stops it before it serves, naming what:
    /// a misspelt name (JSONDecoder passes over it, and the lab's E01 became raw), a write
    /// blocker id that would be dropped, a compression that does not exist, a setting named twice
    /// (JSONDecoder and JSONSerialization take different ones of the two values).
    @Test(arguments: [
        (#"{ "imageFromat": "e01", "compression": "best" }"#, #"has no setting "imageFromat""#),
        // Only the outermost names are settings; the first unknown one in the file is named.
        (#"{ "writeBlockers": { "1234:5678": "bridge" }, "segmentSise": 1, "checkpointSecs": 2 }"#, #"has no setting "segmentSise""#),
        (#"{ "imageFormat": "e01", "verify": true, "imageFormat": "raw" }"#, #"names "imageFormat" twice"#),
        (#"{ "writeBlockers": { "1234:5678": "a", "1234:5679": "b", "1234:5678": "c" }, "digests": ["md5"] }"#,
         #"names "writeBlockers.1234:5678" twice"#),

        (#"{ "writeBlockers": { "12345678": "bridge" } }"#, #"writeBlockers: "12345678" is not a USB id"#),
        (#"{ "imageFormat": "e01", "compression": "ultra" }"#, #"got imageFormat "e01", compression "ultra""#),
    ])
    func settingsTheDaemonCannotUseStopItBeforeItServes(settings: String, problem: String) throws {
        let daemon = try Self.startDaemon(settings: Data(settings.utf8))
        #expect(daemon.status == 1 && daemon.stderr.contains(problem), "\(daemon)")
    }

    /// Windows Notepad's "Unicode" is UTF-16 with a byte order mark: JSONDecoder would read it,
    /// the check for a member named twice would not, so it is refused, saying what to do.
    @Test(arguments: [true, false]) func aSettingsFileInUTF16IsRefusedAsNotUTF8(withByteOrderMark: Bool) throws {
        let text = #"{ "verify": true, "digests": ["md5"], "verify": false }"#
        var utf16: [UInt8] = withByteOrderMark ? [0xFF, 0xFE] : []
        for unit in text.utf16 { utf16 += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        let daemon = try Self.startDaemon(settings: Data(utf16))
        #expect(daemon.status == 1 && daemon.stderr.contains("is not UTF-8 text: save it as UTF-8"), "\(daemon)")
    }

    /// exhibitd started on a new store with `settings` as its `--config` file, limited to 20 s.
    static func startDaemon(settings: Data) throws -> Subprocess.Result {
        let store = try TestStore("settings")
        let config = store.scratch.file("settings.json")
        try settings.write(to: URL(fileURLWithPath: config))
        return try Subprocess.run([
            "timeout", "20", "\(BuiltProducts.directory)/exhibitd", "--store", store.root, "--socket", store.scratch.file("s.sock"),
            "--config", config,
        ])
    }

    /// What the chosen format cannot hold is refused naming the source, before the job is in the
    /// catalog: nothing to list, nothing to resume, nothing in the store's work.
    @Test func whatAnE01CannotHoldIsRefusedBeforeTheJobBegins() throws {
        let store = try TestStore("e01-refusals")
        let odd = store.scratch.file("odd.img")
        try Data(repeating: 7, count: 100_001).write(to: URL(fileURLWithPath: odd))
        let sparse = store.scratch.file("sparse.img")
        try #require(try Subprocess.run(["truncate", "-s", "10G", sparse]).succeeded)
        let cases = [
            (odd, ["--format", "e01"], "100001 bytes is not a whole number of 512-byte sectors"),
            (sparse, ["--format", "e01", "--segment-size", "1M"], "could take 11703 E01 files for 10737418240 bytes; at most 10000 are written (use at least 1180044 bytes)"),
            (sparse, ["--segment-size", "1M"], "would make 10240 segments of a 10737418240-byte source; at most 10000 are written (use at least 1073742 bytes)"),
        ]
        for (source, options, reason) in cases {
            let refused = try store.acquire(source, exhibit: "E1", options)
            #expect(refused.status != 0 && refused.stderr.contains("\(source); ") && refused.stderr.contains(reason), "\(refused)")
        }
        let jobs = try StoreListing.of(store.root).entries
        #expect(!jobs.contains { $0.exhibitId == "E1" }, "\(jobs)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(store.root)/work")) ?? []).isEmpty)
    }

    @Test func aHugeBagInfoIsRefusedWithoutReadingIt() throws {
        let store = try TestStore("huge")
        let source = try SourceImage.create(at: store.scratch.file("h.img"), size: 1 << 20)
        let bundle = try store.acquireBundle(source)
        try #require(try Subprocess.shell("chmod -R u+w '\(bundle)' && head -c 300M /dev/zero | tr '\\0' A >> '\(bundle)/bag-info.txt'").succeeded)
        let measured = try Subprocess.run(["/usr/bin/time", "-f", "%M", BuiltProducts.exhibit, "verify", bundle, "--trust", store.trustAnchor])
        #expect(measured.status == 1 && measured.stdout.contains("at most 65536 are read"), "\(measured)")
        let peakKiB = UInt64(measured.stderr.split(separator: "\n").last.map(String.init) ?? "") ?? .max
        #expect(peakKiB < 128 << 10, "verify's peak RSS was \(peakKiB) KiB")
    }

    // MARK: the daemon

    @Test func theDaemonRemovesOnlyAStaleSocket() throws {
        let store = try TestStore("socket")
        let precious = store.scratch.file("E1.raw")
        try Data("a sealed image\n".utf8).write(to: URL(fileURLWithPath: precious))
        let result = try Subprocess.run(["timeout", "20", "\(BuiltProducts.directory)/exhibitd", "--store", store.root, "--socket", precious])
        #expect(result.status == 1 && result.stderr.contains("is not a socket"), "\(result)")
        #expect(try String(contentsOfFile: precious, encoding: .utf8) == "a sealed image\n")
    }

    @Test func aSecondDaemonOnOneStoreIsRefused() throws {
        let daemon = try TestDaemon("two-daemons")
        let second = try Subprocess.run([
            "timeout", "20", "\(BuiltProducts.directory)/exhibitd", "--store", daemon.store.root, "--socket", daemon.store.scratch.file("second.sock"),
        ])
        #expect(second.status == 1 && second.stderr.contains("already serves this store"), "\(second)")
        #expect(try daemon.snapshot().daemon != nil, "the first daemon still serves")
    }

    @Test func theAuditTrailRecordsThePeerBesideTheClaimedClient() throws {
        let daemon = try TestDaemon("peer")
        let answer = try StatusClient(path: daemon.socket).send(
            StatusRequest(.openCase, caseId: "C-PEER", examiner: "Examiner", auto: false, client: "panel /dev/tty1"))
        #expect(answer.error == nil, "\(answer)")
        let events = try StoreListing.of(daemon.store.root).events
        let opened = events.filter { $0.action == "case-opened" }.map(\.fields)
        #expect(opened.contains { $0["client"] == "panel /dev/tty1" }, "the claimed client: \(events)")
        // The details' text as the catalog keeps it (slashes escaped, as JSONSerialization wrote them before).
        #expect(events.contains { $0.details.contains(#""client":"panel \/dev\/tty1""#) }, "\(events.map(\.details))")
        #expect(opened.contains { $0["peer"]?.contains("uid \(getuid()) pid \(getpid())") == true }, "the kernel's peer credentials are recorded: \(events)")
    }

    @Test func theSocketRefusesControlCharactersAndAnswersMalformedRequestsInWords() throws {
        let daemon = try TestDaemon("socket-names")
        let forged = try StatusClient(path: daemon.socket).send(
            StatusRequest(.openCase, caseId: "C\nExhibit-Media-SHA256: 0000", examiner: "E", auto: false, client: "test"))
        #expect(forged.error?.code == "invalid-request" && forged.error?.message.contains("U+000A") == true, "\(forged)")
        #expect(try daemon.snapshot().session == nil, "no case was opened")
        let cli = try daemon.cli(["case", "open", "--case", "C\rX", "--examiner", "E"])
        #expect(!cli.succeeded && cli.stderr.contains("control character"), "\(cli)")
        let raw = try Subprocess.run([
            "python3", "-c",
            "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{\"request\": 5}\\n'); print(s.makefile().readline())",

            daemon.socket,
        ])
        #expect(raw.stdout.contains("the member \\\"request\\\""), "\(raw)")
        #expect(!raw.stdout.contains("DecodingError") && !raw.stdout.contains("CodingKeys"), "\(raw)")
        #expect(try daemon.cli(["case", "open", "--case", "C-OK", "--examiner", "E"]).succeeded)
        let closed = try daemon.cli(["case", "close", "--json"])
        #expect(closed.succeeded && closed.stdout.contains("\"type\""), "case close --json: \(closed)")
    }
}

/// The same for sources that change under the job: they need root, loop devices and FUSE for a
/// disk slow enough to change while it is read.
@Suite(.serialized, .enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
struct ChangingSourceTests {
    /// `exhibit acquire` in the background; its journal tells how far it got.
    final class Run {
        let process = Process()
        let stderrPath: String

        init(_ arguments: [String], scratch: ScratchDirectory, label: String) throws {
            stderrPath = scratch.file("\(label).err")
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
            try process.run()
        }

        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// Waits until a journal in `store`'s work says at least `bytes` are durable.
        func waitForJournal(store: String, atLeast bytes: UInt64, timeout: TimeInterval = 60) -> Bool {
            waitForJournal(store: store, timeout: timeout) { ($0["copiedBytes"] as? NSNumber)?.uint64Value ?? 0 >= bytes }
        }

        /// Waits, polling every `pollMicroseconds`, until a journal in `store`'s work satisfies `condition`.
        func waitForJournal(
            store: String, timeout: TimeInterval = 60, pollMicroseconds: UInt32 = 50_000, _ condition: ([String: Any]) -> Bool
        ) -> Bool {
            DamagedMediaTests.waitForJournal(
                in: "\(store)/work", timeout: timeout, pollMicroseconds: pollMicroseconds, while: { process.isRunning }, condition)
        }
    }

    static func record(_ bundle: String) throws -> [String: Any] { try DamagedMediaTests.record(bundle) }

    /// `exhibit acquire SOURCE` of exhibit E1 into `store`, journaling every 0.2 s.
    static func acquisition(_ source: String, store: String) -> [String] {
        [
            "acquire", source, "--store", store, "--case", "C", "--exhibit", "E1", "--examiner", "T", "--json",
            "--checkpoint-seconds", "0.2",
        ]
    }

    static func bundlePath(_ result: Subprocess.Result) throws -> String {
        try #require((try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["bundlePath"] as? String, "\(result)")
    }

    @Test func anOperatorStopIsRecordedAndResumesWithAProofOfContinuity() throws {
        try StockChecks.requireTools()
        let store = try TestStore("stop")
        let backing = try SourceImage.create(at: store.scratch.file("disk.img"), size: 64 << 20, seed: 11)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let device = try FaultyLoopDevice(backing: backing, delayMilliseconds: 15, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let arguments = Self.acquisition(device.loop.path, store: store.root)
        let run = try Run(arguments, scratch: store.scratch, label: "stopped")
        try #require(run.waitForJournal(store: store.root, atLeast: 16 << 20), "the job never got going: \(run.stderr)")
        kill(run.process.processIdentifier, SIGTERM)
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 128 + SIGTERM, "\(run.stderr)")
        #expect(run.stderr.contains("stopped by the operator (SIGTERM)") && run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)")
        let list = try exhibit(["list", "--store", store.root])
        #expect(list.succeeded && list.stdout.contains("interrupted") && list.stdout.contains("stopped by the operator (SIGTERM)"), "\(list)")

        let resumed = try exhibit(arguments)
        try #require(resumed.succeeded, "\(resumed)")
        let bundle = try Self.bundlePath(resumed)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sourceSHA256)
        let interruptions = try Self.record(bundle)["interruptions"] as? [[String: Any]] ?? []
        #expect(interruptions.count == 1)
        #expect((interruptions.first?["reason"] as? String)?.contains("stopped by the operator (SIGTERM)") == true, "\(interruptions)")
        #expect((interruptions.first?["continuityCheck"] as? String)?.contains("compared byte for byte with the stored image: identical") == true, "\(interruptions)")
    }

    @Test func aSourceChangedWhileTheJobWasStoppedStartsANewJobAndSaysWhy() throws {
        try StockChecks.requireTools()
        let store = try TestStore("changed")
        let backing = try SourceImage.create(at: store.scratch.file("disk.img"), size: 64 << 20, seed: 12)
        let device = try FaultyLoopDevice(backing: backing, delayMilliseconds: 15, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let arguments = Self.acquisition(device.loop.path, store: store.root)
        let run = try Run(arguments, scratch: store.scratch, label: "first")
        try #require(run.waitForJournal(store: store.root, atLeast: 32 << 20), "the job never got going: \(run.stderr)")
        kill(run.process.processIdentifier, SIGINT)
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 128 + SIGINT, "\(run.stderr)")
        // Bytes at 16 MiB (already imaged) and at 56 MiB (not yet read) change, away from the first
        // and last MiB that identify the device; the loop device's cache is dropped as an unplug would.
        for offset in [16 << 20, 56 << 20] {
            try #require(try Subprocess.shell("printf 'CHANGED' | dd of='\(backing)' bs=1 seek=\(offset) conv=notrunc status=none").succeeded)
        }
        try #require(try Subprocess.run(["blockdev", "--flushbufs", device.loop.path]).succeeded)
        let changedSHA256 = try StockChecks.sum("sha256sum", backing)

        let second = try exhibit(arguments)
        try #require(second.succeeded, "\(second)")
        let bundle = try Self.bundlePath(second)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: changedSHA256)
        let record = try Self.record(bundle)
        #expect((record["interruptions"] as? [Any])?.isEmpty ?? true, "the sealed job is a new one")
        let warnings = record["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("was not continued") && $0.contains("byte \(16 << 20)") }, "\(warnings)")
        let list = try exhibit(["list", "--store", store.root])
        #expect(list.stdout.contains("failed") && list.stdout.contains("source changed since the interruption"), "\(list)")
    }

    /// The device changed while its job was stopped, and the store has room for the rest of the
    /// old job but not for a whole new image: the old job fails with the change, no new job
    /// begins, and the error says both, not only that the store is short.
    @Test func aChangedSourceWithoutRoomForANewJobSaysTheOldJobWasNotContinued() throws {
        let store = try TestStore("changed-short", onTmpfsOf: "256M")
        let (root, mount) = (store.root, try #require(store.mount))
        // Random first and last MiB (what identifies the device), zeros between: the E01 of the
        // first 32 MiB takes almost no room, so what decides is the room each job asks for (a raw
        // image's 32 MiB, removed with the failed job, would make room for the new one).
        let backing = try SourceImage.create(at: store.scratch.file("disk.img"), size: 64 << 20, seed: 15)
        try #require(try Subprocess.shell("dd if=/dev/zero of='\(backing)' bs=1M seek=1 count=62 conv=notrunc status=none").succeeded)
        let device = try FaultyLoopDevice(backing: backing, delayMilliseconds: 15, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let arguments = Self.acquisition(device.loop.path, store: root) + ["--format", "e01"]
        let run = try Run(arguments, scratch: store.scratch, label: "first")
        try #require(run.waitForJournal(store: root, atLeast: 32 << 20), "the job never got going: \(run.stderr)")
        kill(run.process.processIdentifier, SIGINT)
        run.process.waitUntilExit()
        try #require(run.process.terminationStatus == 128 + SIGINT, "\(run.stderr)")
        let oldJob = try #require(try StoreListing.of(root).entries.first?.jobId)
        try #require(try Subprocess.shell("printf 'CHANGED' | dd of='\(backing)' bs=1 seek=\(16 << 20) conv=notrunc status=none").succeeded)
        try #require(try Subprocess.run(["blockdev", "--flushbufs", device.loop.path]).succeeded)
        // Free: the rest of the old job (at most 32 MiB) and the records' reserve fit; a new 64 MiB image does not.
        var fs = statvfs()
        try #require(statvfs(mount, &fs) == 0)
        let free = UInt64(fs.f_bavail) * UInt64(fs.f_frsize)
        let keep = (48 << 20) + EvidenceStore.recordReserve
        try #require(free > keep, "the first run left \(free) bytes free")
        try #require(try Subprocess.run(["fallocate", "-l", "\(free - keep)", "\(mount)/filler"]).succeeded)

        let second = try exhibit(arguments)
        #expect(!second.succeeded, "\(second)")
        let error = second.stderr
        #expect(error.contains("the image needs") && error.contains("a new job for the device as it is now could not begin"), "\(error)")
        #expect(error.contains("the interrupted job \(oldJob) was not continued: source changed since the interruption"), "\(error)")
        #expect(store.bundles.isEmpty)
        let list = try exhibit(["list", "--store", root])
        #expect(list.stdout.contains("failed") && list.stdout.contains("source changed since the interruption"), "\(list)")
    }

    @Test func anImageFileThatChangesWhileItIsReadIsRefused() throws {
        let store = try TestStore("growing")
        // Slow and long enough that the append lands while the first pass still reads.
        let backing = try SourceImage.create(at: store.scratch.file("file.img"), size: 64 << 20, seed: 13)
        let device = try FaultyLoopDevice(backing: backing, delayMilliseconds: 15, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let arguments = Self.acquisition(device.imagePath, store: store.root)
        let run = try Run(arguments, scratch: store.scratch, label: "growing")
        try #require(run.waitForJournal(store: store.root, atLeast: 8 << 20), "the job never got going: \(run.stderr)")
        try #require(try Subprocess.shell("head -c 1M /dev/urandom >> '\(backing)'").succeeded)
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 1, "\(run.stderr)")
        #expect(run.stderr.contains("changed while it was read") && run.stderr.contains("size went from \(64 << 20)"), "\(run.stderr)")
        #expect(store.bundles.isEmpty)
    }

    @Test func aStoreFilledByAnotherProcessIsNamedAndStaysReadable() throws {
        try StockChecks.requireTools()
        let store = try TestStore("full", onTmpfsOf: "200M")
        let (scratch, root, mount) = (store.scratch, store.root, store.mount!)
        let backing = try SourceImage.create(at: scratch.file("slow.img"), size: 64 << 20, seed: 14)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let device = try FaultyLoopDevice(backing: backing, delayMilliseconds: 15, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let arguments = Self.acquisition(device.loop.path, store: root)
        let run = try Run(arguments, scratch: scratch, label: "full")
        try #require(run.waitForJournal(store: root, atLeast: 8 << 20), "the job never got going: \(run.stderr)")
        // Another process takes every free byte of the store's file system.
        let filler = "\(mount)/filler"
        _ = try Subprocess.shell("dd if=/dev/zero of='\(filler)' bs=1M status=none; true")
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus != 0)
        #expect(run.stderr.contains("store full") || run.stderr.contains("the store is full"), "\(run.stderr)")
        #expect(!run.stderr.contains("SQLite error"), "\(run.stderr)")
        let list = try exhibit(["list", "--store", root])
        #expect(list.succeeded && list.stdout.contains("interrupted"), "the full store still lists: \(list)")
        #expect(!list.stdout.contains("killed, crashed or power lost"), "\(list)")
        unlink(filler)
        let resumed = try exhibit(arguments)
        try #require(resumed.succeeded, "after freeing space: \(resumed)")
        try StockChecks.expectAllPass(try Self.bundlePath(resumed), trust: "\(root)/keys/agency-root.pem", sourceSHA256: sourceSHA256)
    }
}
