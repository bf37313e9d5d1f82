// SPDX-License-Identifier: Apache-2.0
import Foundation
import StatusAPI
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// The NIST CFTT-style harness: real loop devices over a FUSE file that fails chosen byte ranges
/// (the kernel's own I/O error path), killed and unplugged acquisitions, full stores and a 32 TiB
/// source. The display names carry the DA test case each test covers; `scripts/conformance`
/// turns them into the lab's table.
@Suite(.serialized, .enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE; see SKIPPED lines"))
struct DamagedMediaTests {
    /// A copy of `source` with the given byte ranges zeroed, made with dd, and its sha256sum:
    /// the expected image, computed without Exhibit's code.
    static func expectedSHA256(of source: String, zeroing ranges: [(offset: UInt64, length: UInt64)], scratch: ScratchDirectory) throws -> String {
        let copy = scratch.file("expected-\(UUID().uuidString.prefix(6)).img")
        try #require(try Subprocess.run(["cp", "--sparse=never", source, copy]).succeeded)
        for range in ranges {
            let fill = try Subprocess.shell(
                "head -c \(range.length) /dev/zero | dd of='\(copy)' bs=64K seek=\(range.offset) oflag=seek_bytes conv=notrunc status=none")
            try #require(fill.succeeded, "dd: \(fill)")
        }
        defer { unlink(copy) }
        return try StockChecks.sum("sha256sum", copy)
    }

    static func record(_ bundle: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(bundle)/data/acquisition.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// (first sector, count, errno) of each recorded unreadable range.
    static func recordedRanges(_ bundle: String) throws -> [[UInt64]] {
        let ranges = try record(bundle)["unreadableRanges"] as? [[String: Any]] ?? []
        return ranges.map {
            [($0["firstSector"] as? NSNumber)?.uint64Value ?? 0, ($0["sectorCount"] as? NSNumber)?.uint64Value ?? 0,
             ($0["errno"] as? NSNumber)?.uint64Value ?? 0]
        }
    }

    @Test("DA-09: unreadable sectors are zero-filled at their own offsets and recorded exactly", arguments: [512, 4096])
    func badSectorsAreZeroFilledAndRecorded(sectorSize: Int) throws {
        try StockChecks.requireTools()
        let store = try TestStore("bad\(sectorSize)")
        let size = 48 << 20
        let backing = try SourceImage.create(at: store.scratch.file("failing.img"), size: size, seed: UInt64(sectorSize))
        let sourceBefore = try StockChecks.sum("sha256sum", backing)
        let sector = UInt64(sectorSize)
        // One sector; a run of thousands; two sectors close together (one page apart at most); one near the end.
        let badSectors: [(first: UInt64, count: UInt64)] = [
            ((1 << 20) / sector + 3, 1),
            ((10 << 20) / sector, sectorSize == 512 ? 3000 : 400),
            ((30 << 20) / sector + 1, 1), ((30 << 20) / sector + 3, 1),
            (UInt64(size) / sector - 2, 1),
        ]
        let bytes = badSectors.map { (offset: $0.first * sector, length: $0.count * sector) }
        let device = try FaultyLoopDevice(
            backing: backing, badRanges: bytes, sectorSize: sectorSize, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let expected = try Self.expectedSHA256(of: backing, zeroing: bytes, scratch: store.scratch)
        #expect(expected != sourceBefore)

        let bundle = try store.acquireBundle(device.loop.path, ["--digest", "md5"])
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
        let recorded = try Self.recordedRanges(bundle)
        #expect(recorded == badSectors.map { [$0.first, $0.count, 5] }, "recorded \(recorded)")
        let record = try Self.record(bundle)
        let total = badSectors.reduce(0) { $0 + $1.count }
        #expect((record["unreadableSectors"] as? NSNumber)?.uint64Value == total)
        // The first pass read back its whole image; the second checked the store from the first skipped byte on.
        let method = (record["verification"] as? [String: Any])?["method"] as? String ?? ""
        #expect(method.hasPrefix("each \(1 << 26)-byte window of the image as the first pass wrote it"), "\(method)")
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Unreadable-Sectors") == String(total))
        let log = try String(contentsOfFile: "\(bundle)/data/acquisition.log", encoding: .utf8)
        #expect(log.contains("LBA \(badSectors[1].first)-\(badSectors[1].first + badSectors[1].count - 1)"))
        let graph = try String(contentsOfFile: "\(bundle)/data/case.jsonld", encoding: .utf8)
        #expect(graph.contains("\(total) unreadable sectors"))
        #expect(try StockChecks.sum("sha256sum", backing) == sourceBefore, "the source changed")
    }

    @Test(
        "A raw image with unreadable sectors, killed in its first or its second pass: the bytes before the first skipped byte are read back"
    )
    func interruptedDamagedRawImageIsReadBackBeforeItsFrontier() throws {
        try StockChecks.requireTools()
        let store = try TestStore("front")
        let backing = try SourceImage.create(at: store.scratch.file("failing.img"), size: 48 << 20, seed: 17)
        let bad: (offset: UInt64, length: UInt64) = (44 << 20, 400 * 512)
        // Each read a few milliseconds late: a first pass of a second or two, a second pass of seconds.
        let device = try FaultyLoopDevice(
            backing: backing, badRanges: [bad], delayMilliseconds: 3, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let expected = try Self.expectedSHA256(of: backing, zeroing: [bad], scratch: store.scratch)
        // Killed once the first pass has journaled some bytes, well before its end (it cannot reach the
        // second pass before the signal lands), or once in the second pass.
        let methods = try [("E1", "copying", UInt64(40 << 20)), ("E2", "recovering", UInt64.max)].map { exhibitId, phase, limit in
            let arguments = [
                "acquire", device.loop.path, "--store", store.root, "--case", "CASE-1", "--exhibit", exhibitId, "--examiner", "T",
                "--json", "--checkpoint-seconds", "0.2",
            ]
            try Self.killJob(arguments, whenJournalIn: phase, copiedBelow: limit, work: "\(store.root)/work")
            let resumed = try exhibit(arguments)
            try #require(resumed.succeeded, "\(resumed)")
            let bundle = try #require(
                (try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any])?["bundlePath"] as? String)
            try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
            let custody = try String(contentsOfFile: "\(bundle)/data/custody.jsonl", encoding: .utf8)
            #expect(custody.components(separatedBy: "\"image-verified\"").count - 1 == 1, "one verification in custody: \(custody)")
            // The skipped area fails again when continuity is proved: expected, not a degraded disk.
            let warnings = try Self.record(bundle)["warnings"] as? [String] ?? []
            #expect(!warnings.contains { $0.contains("degraded") }, "\(warnings)")
            return (try Self.record(bundle)["verification"] as? [String: Any])?["method"] as? String ?? ""
        }
        // Resumed in the first pass: bytes written after the resumption were read back by no one before the second pass.
        #expect(methods[0].contains("re-hashed with SHA-256 (always, because the job was interrupted and resumed)"), "\(methods[0])")
        // Resumed in the second pass: the first pass had read back its whole image.
        #expect(methods[1].hasPrefix("each \(1 << 26)-byte window of the image as the first pass wrote it"), "\(methods[1])")
    }

    /// `exhibit arguments`, running, its output dropped.
    static func startExhibit(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The journals of the jobs in a store's `work` directory, as they are now.
    static func journals(in work: String) -> [[String: Any]] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []).compactMap { job in
            guard let data = FileManager.default.contents(atPath: "\(work)/\(job)/journal.json") else { return nil }
            return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
    }

    /// Waits, polling every `pollMicroseconds` while `running`, until a journal in `work`
    /// satisfies `condition`; false on timeout or once `running` is false.
    static func waitForJournal(
        in work: String, timeout: TimeInterval = 60, pollMicroseconds: UInt32 = 50_000, while running: () -> Bool = { true },
        _ condition: ([String: Any]) -> Bool
    ) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, running() {
            if journals(in: work).contains(where: condition) { return true }
            usleep(pollMicroseconds)
        }
        return false
    }

    /// Starts `exhibit arguments` and SIGKILLs it once its journal says `phase` with some bytes
    /// copied, fewer than `limit`.
    static func killJob(_ arguments: [String], whenJournalIn phase: String, copiedBelow limit: UInt64, work: String) throws {
        let process = try startExhibit(arguments)
        let reached = waitForJournal(in: work, pollMicroseconds: 10_000, while: { process.isRunning }) { state in
            let copied = (state["copiedBytes"] as? NSNumber)?.uint64Value ?? 0
            return state["phase"] as? String == phase && copied > 0 && copied < limit
        }
        try #require(reached && process.isRunning, "the job reached its \(phase) phase and was still running")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    @Test("DA-06/DA-07 with interruptions: SIGKILL at random points, each followed by a restart, ends with the uninterrupted SHA-256")
    func killedAcquisitionResumesToTheSameDigest() throws {
        try StockChecks.requireTools()
        let store = try TestStore("kill")
        let backing = store.scratch.file("disk.img")
        try #require(try Subprocess.shell("head -c 1G /dev/urandom > '\(backing)'").succeeded)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let loop = try LoopDevice(backing: backing, readOnly: true)
        defer { loop.detach() }

        let uninterrupted = try store.acquireBundle(loop.path, exhibit: "E0")
        #expect(try StockChecks.bagInfo(uninterrupted, "Exhibit-Media-SHA256") == sourceSHA256)

        let arguments = [
            "acquire", loop.path, "--store", store.root, "--case", "CASE-1", "--exhibit", "E1", "--examiner", "Test Examiner",
            "--json", "--checkpoint-seconds", "0.3", "--segment-size", "300M", "--digest", "sha1",
        ]
        var kills = 0
        var completed = false
        var generator = SystemRandomNumberGenerator()
        for round in 0..<5 {
            let process = try Self.startExhibit(arguments)
            let delay = Double.random(in: 0.3...1.8, using: &generator)
            usleep(UInt32(delay * 1e6))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // A run may finish before the signal lands, or seal its bundle and be killed while it
            // tidies up (its work directory is removed by the next run): then the job is done.
            guard process.terminationReason == .uncaughtSignal, !store.bundles.contains(where: { $0.contains("-E1-") }) else {
                completed = true
                print("round \(round): sealed before the kill after \(String(format: "%.2f", delay)) s")
                if process.terminationReason == .uncaughtSignal { _ = try exhibit(["list", "--store", store.root]) }
                break
            }
            kills += 1
            print("round \(round): SIGKILL after \(String(format: "%.2f", delay)) s")
            // Nothing half-sealed: the only bundle is the uninterrupted one.
            #expect(store.bundles.count == 1, "after kill \(round): \(store.bundles)")
        }
        if !completed {
            let final = try exhibit(arguments)
            try #require(final.succeeded, "final run: \(final)")
        }
        #expect(store.bundles.count == 2, "\(store.bundles)")
        let name = try #require(store.bundles.first { $0.contains("-E1-") })
        let bundle = "\(store.root)/bundles/\(name)"
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sourceSHA256)
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-SHA1") == (try StockChecks.sum("sha1sum", backing)))
        let record = try Self.record(bundle)
        let interruptions = record["interruptions"] as? [[String: Any]] ?? []
        #expect(interruptions.count == kills, "\(kills) kills, \(interruptions.count) interruptions recorded")
        #expect((record["verification"] as? [String: Any])?["result"] as? String == "matched")
        let custody = try String(contentsOfFile: "\(bundle)/data/custody.jsonl", encoding: .utf8)
        #expect(custody.components(separatedBy: "acquisition-resumed").count - 1 == kills)
        let leftover = (try? FileManager.default.contentsOfDirectory(atPath: "\(store.root)/work")) ?? []
        #expect(leftover.isEmpty, "work left behind: \(leftover)")
        #expect(try StockChecks.sum("sha256sum", backing) == sourceSHA256, "the source changed")
    }

    @Test(
        "DA-17: a store that fills mid-run stops the job cleanly; other bundles stay intact; it finishes once space is freed",
        arguments: ["raw", "e01"])
    func storeThatFillsMidRunInterruptsAndResumes(format: String) throws {
        try StockChecks.requireTools()
        let store = try TestStore("fills", onTmpfsOf: "320M")
        let (scratch, root, mount, trust) = (store.scratch, store.root, store.mount!, store.trustAnchor)

        let earlierSource = try SourceImage.create(at: scratch.file("earlier.img"), size: 4 << 20, seed: 3)
        let earlier = try exhibit(["acquire", earlierSource, "--store", root, "--case", "C", "--exhibit", "E0", "--examiner", "T", "--json"])
        try #require(earlier.succeeded, "\(earlier)")
        let earlierBundle = try #require(
            (try JSONSerialization.jsonObject(with: Data(earlier.stdout.utf8)) as? [String: Any])?["bundlePath"] as? String)

        let backing = try SourceImage.create(at: scratch.file("slow.img"), size: 128 << 20, seed: 4)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let device = try FaultyLoopDevice(
            backing: backing, delayMilliseconds: 20, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let arguments = [
            "acquire", device.loop.path, "--store", root, "--case", "C", "--exhibit", "E1", "--examiner", "T", "--json",
            "--checkpoint-seconds", "0.5", "--format", format,
        ]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
        process.arguments = arguments
        let errors = scratch.file("first.err")
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Once the job is writing, something else takes all but 40 MiB of the store.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, (try? Subprocess.shell("du -sb '\(root)/work' | cut -f1").stdout).flatMap({ UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) ?? 0 < 16 << 20 {
            usleep(100_000)
        }
        let filler = "\(mount)/filler"
        let free = try Subprocess.shell("df -B1 --output=avail '\(mount)' | tail -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fill = (UInt64(free) ?? 0) - (40 << 20)
        try #require(try Subprocess.shell("fallocate -l \(fill) '\(filler)' || head -c \(fill) /dev/zero > '\(filler)'").succeeded)
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus != 0)
        #expect(stderr.contains("store full"), "stderr: \(stderr)")
        #expect(try Subprocess.run(["ls", "\(root)/bundles"]).stdout.split(separator: "\n").count == 1, "only the earlier bundle")
        let listing = try StoreListing.of(root)
        #expect(listing.hasJob(in: .interrupted), "catalog: \(listing.entries)")
        let intact = try exhibit(["verify", earlierBundle, "--trust", trust])
        #expect(intact.succeeded && intact.stdout.contains("INTACT"), "\(intact)")
        #expect(try StockChecks.bagit(earlierBundle).succeeded)

        unlink(filler)
        let resumed = try exhibit(arguments)
        try #require(resumed.succeeded, "after freeing space: \(resumed)")
        let bundle = try #require(
            (try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any])?["bundlePath"] as? String)
        try StockChecks.expectAllPass(bundle, trust: trust, sourceSHA256: sourceSHA256)
        let record = try Self.record(bundle)
        let reasons = (record["interruptions"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons.count == 1 && reasons[0].contains("store full"), "\(reasons)")
        if format == "e01" {
            #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/E1.E01"]).succeeded)
        }
        #expect(try StockChecks.sum("sha256sum", backing) == sourceSHA256, "the source changed")
    }

    @Test(
        "Write protection: a source whose read-only flag is lost pauses at its next read, I/O error or not, and resumes once it is set again",
        arguments: [true, false])
    func sourceThatBecomesWritablePausesAndResumes(withAnUnreadableSector: Bool) throws {
        let store = try TestStore("writable")
        let size = 24 << 20
        let backing = try SourceImage.create(at: store.scratch.file("flaky.img"), size: size, seed: 9)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let bad = withAnUnreadableSector ? [(offset: UInt64(20 << 20), length: UInt64(4096))] : []
        let device = try FaultyLoopDevice(
            backing: backing, badRanges: bad, delayMilliseconds: 10, protectedByFlagOnly: true, scratch: store.scratch,
            fixture: fixturePath("faultfile.c"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
        process.arguments = [
            "acquire", device.loop.path, "--store", store.root, "--case", "CASE-1", "--exhibit", "E1", "--examiner", "T",
            "--checkpoint-seconds", "0.3",
        ]
        let errors = store.scratch.file("first.err")
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, ((try? FileManager.default.contentsOfDirectory(atPath: "\(store.root)/work")) ?? []).isEmpty {
            usleep(50_000)
        }
        try device.loop.setReadOnly(false)
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus != 0)
        #expect(stderr.contains("refused: source became writable"), "stderr: \(stderr)")
        #expect(store.bundles.isEmpty)

        try device.loop.setReadOnly(true)
        let bundle = try store.acquireBundle(device.loop.path)
        let expected = try Self.expectedSHA256(of: backing, zeroing: bad, scratch: store.scratch)
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-SHA256") == expected)
        #expect(try StockChecks.imageSHA256(bundle) == expected)
        let reasons = (try Self.record(bundle)["interruptions"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons.count == 1 && reasons[0].contains("source became writable"), "\(reasons)")
        #expect(try StockChecks.sum("sha256sum", backing) == sourceSHA256, "the source changed")
    }

    /// The second pass reads the flag before each 4 MiB piece it re-reads, as the first pass does
    /// before each buffer: an area that reads cleanly the second time raises no I/O error to have
    /// the flag checked after. Here a 24 MiB area (six pieces) fails in the first pass and reads
    /// cleanly in the second; the flag is cleared as the second pass begins.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func sourceThatBecomesWritableInTheSecondPassPausesBeforeItsNextPiece() throws {
        try StockChecks.requireTools()
        let store = try TestStore("writable-second")
        let backing = try SourceImage.create(at: store.scratch.file("healing.img"), size: 48 << 20, seed: 33)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let bad = (offset: UInt64(8 << 20), length: UInt64(24 << 20))
        let device = try FaultyLoopDevice(
            backing: backing, badRanges: [bad], delayMilliseconds: 15, protectedByFlagOnly: true, scratch: store.scratch,
            fixture: fixturePath("faultfile.c"))
        let arguments = [
            "acquire", device.loop.path, "--store", store.root, "--case", "CASE-1", "--exhibit", "E1", "--examiner", "T", "--json",
            "--checkpoint-seconds", "0.2",
        ]
        let run = try ChangingSourceTests.Run(arguments, scratch: store.scratch, label: "first")
        let process = run.process
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        // Past the bad area in the first pass, the disk heals: the second pass reads it cleanly.
        try #require(
            run.waitForJournal(store: store.root, pollMicroseconds: 5_000) {
                $0["phase"] as? String == "copying" && ($0["copiedBytes"] as? NSNumber)?.uint64Value ?? 0 >= bad.offset + bad.length + (4 << 20)
            }, "the first pass did not pass the area")
        try device.setBadRanges([])
        try #require(
            run.waitForJournal(store: store.root, pollMicroseconds: 5_000) { $0["phase"] as? String == "recovering" }, "no second pass")
        try device.loop.setReadOnly(false)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0, "the second pass went on with the flag cleared")
        #expect(store.bundles.isEmpty)

        try device.loop.setReadOnly(true)
        let bundle = try store.acquireBundle(device.loop.path)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sourceSHA256)
        let record = try Self.record(bundle)
        #expect((record["unreadableSectors"] as? NSNumber)?.uint64Value == 0)
        // Stopped at a piece of the area (each begins 4 MiB after the one before; the first when
        // the flag was cleared before its check), not after the area.
        let reasons = (record["interruptions"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        let offset = reasons.first.flatMap { $0.firstMatch(of: /at byte (\d+);/).flatMap { UInt64($0.1) } } ?? 0
        #expect(
            reasons.count == 1 && reasons[0].contains("source became writable") && offset >= bad.offset
                && (offset - bad.offset) % (4 << 20) == 0 && offset < bad.offset + bad.length,
            "\(reasons)")
        #expect(try StockChecks.sum("sha256sum", backing) == sourceSHA256, "the source changed")
    }

    @Test("Large sources: a 32 TiB sparse file is accepted with its exact size, a sane ETA and flat memory")
    func hugeSparseSourceHasFlatMemory() throws {
        let scratch = try ScratchDirectory("huge")
        let mount = scratch.file("big-fs")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        try #require(try Subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40T", "tmpfs", mount]).succeeded)
        defer { _ = try? Subprocess.run(["umount", "-l", mount]) }
        let source = "\(mount)/32tib.img"
        try #require(try Subprocess.run(["truncate", "-s", "32T", source]).succeeded)
        let root = "\(mount)/store"
        try #require(try exhibit(["provision", "--store", root]).succeeded)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
        process.arguments = [
            "acquire", source, "--store", root, "--case", "C", "--exhibit", "HUGE", "--examiner", "T", "--progress-json",
        ]
        let progress = scratch.file("progress.jsonl")
        _ = FileManager.default.createFile(atPath: progress, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: progress))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        func residentKiB() -> Int? {
            let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
                .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) }
        }
        sleep(3)
        let early = try #require(residentKiB(), "exhibit exited early: \((try? String(contentsOfFile: progress, encoding: .utf8)) ?? "")")
        sleep(5)
        let late = try #require(residentKiB())
        kill(process.processIdentifier, SIGKILL)
        print("32 TiB source: VmRSS \(early) KiB after 3 s, \(late) KiB after 8 s")
        #expect(late < 128 << 10, "resident memory \(late) KiB")
        #expect(late - early < 16 << 10, "memory grew from \(early) to \(late) KiB")

        let samples = ((try? String(contentsOfFile: progress, encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let last = try #require(samples.last, "no progress lines")
        #expect((last["totalBytes"] as? NSNumber)?.uint64Value == 32 << 40)
        let done = (last["bytesDone"] as? NSNumber)?.uint64Value ?? 0
        #expect(done > 1 << 30, "only \(done) bytes read in 8 s")
        let eta = (last["etaSeconds"] as? NSNumber)?.doubleValue ?? -1
        let rate = (last["averageMBPerSecond"] as? NSNumber)?.doubleValue ?? 0
        let expectedEta = Double((32 << 40) - done) / (rate * 1e6)
        #expect(eta > 0 && abs(eta - expectedEta) / expectedEta < 0.05, "ETA \(eta) s at \(rate) MB/s")
        // The zeros were not written: the store holds holes, not 32 TiB of RAM.
        let used = try Subprocess.shell("df -B1 --output=used '\(mount)' | tail -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((UInt64(used) ?? .max) < 64 << 20, "tmpfs use \(used)")
    }

    @Test(
        "Interruptions: an unplugged source resumes when it comes back; another device of the same size does not",
        arguments: ["raw", "e01"])
    func unpluggedSourceResumesOnlyOnTheSameDevice(format: String) throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("unplug-\(format)", configuration: #"{"checkpointSeconds": 0.3, "imageFormat": "\#(format)"}"#)
        let scratch = daemon.store.scratch
        let opened = try daemon.cli(["case", "open", "--case", "CASE-U", "--examiner", "Unplug Tester", "--auto"])
        try #require(opened.succeeded, "case open: \(opened)")
        let size = 96 << 20
        let backing = try SourceImage.create(at: scratch.file("unplugged.img"), size: size, seed: 21)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        let device = try FaultyLoopDevice(
            backing: backing, delayMilliseconds: 60, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let node = device.loop.path
        let started = try daemon.waitForSlot(node, timeout: 30) { $0.state == .acquiring && $0.bytesDone >= 24 << 20 }
        let first = try #require(started, "not acquiring: \(daemon.process.log)")

        try device.vanish()
        // The slot may show `interrupted` only briefly (a disk with no medium loses its slot); the
        // catalog keeps the job's state.
        var stopped: CatalogEntry? = nil
        let deadline = Date().addingTimeInterval(30)
        while stopped == nil, Date() < deadline {
            stopped = try daemon.snapshot().jobs?.first { $0.jobId == first.jobId && $0.state != .acquiring }
            if stopped == nil { usleep(100_000) }
        }
        let interrupted = try #require(stopped, "no interruption: \(daemon.process.log)")
        #expect(interrupted.state == .interrupted && interrupted.error?.contains("source vanished") == true, "\(interrupted)")

        // Another disk of the same size: a new job, never the interrupted one.
        let otherImage = try SourceImage.create(at: scratch.file("other.img"), size: size, seed: 22)
        let other = try LoopDevice(backing: otherImage, readOnly: true)
        defer { other.detach() }
        let otherDone = try daemon.waitForSlot(other.path, timeout: 60) { [.sealed, .failed, .interrupted].contains($0.state) }
        let otherSlot = try #require(otherDone, "other disk: \(daemon.process.log)")
        #expect(otherSlot.state == .sealed && otherSlot.jobId != first.jobId && otherSlot.exhibitId == "E2", "\(otherSlot)")
        #expect(otherSlot.digests["sha256"] == (try StockChecks.sum("sha256sum", otherImage)))

        // The lab switches format and restarts exhibitd; the unplugged disk comes back: its job
        // goes on where it stopped, in the format it began with, and its slot says which.
        let switched = format == "raw" ? "e01" : "raw"
        try #"{"checkpointSeconds": 0.3, "imageFormat": "\#(switched)"}"#.write(
            toFile: daemon.store.scratch.file("exhibitd.json"), atomically: true, encoding: .utf8)
        try #require(daemon.process.terminate(timeout: 15) != nil, "exhibitd did not stop")
        try daemon.restart()
        try device.reappear()
        let resumedDone = try daemon.waitForSlot(node, timeout: 90) {
            $0.jobId == first.jobId && [.sealed, .failed].contains($0.state)
        }
        let resumed = try #require(resumedDone, "not resumed: \(daemon.process.log)")
        #expect(resumed.state == .sealed && resumed.exhibitId == first.exhibitId, "\(resumed)")
        #expect(resumed.imageFormat == first.imageFormat && daemon.process.log.contains("the format it began with"), "\(resumed)")
        let bundle = try #require(resumed.bundlePath)
        try StockChecks.expectAllPass(bundle, trust: daemon.store.trustAnchor, sourceSHA256: sourceSHA256)
        let reasons = (try Self.record(bundle)["interruptions"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons.count == 1 && reasons[0].contains("source vanished"), "\(reasons)")
        if format == "e01" {
            #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/\(first.exhibitId ?? "-").E01"]).succeeded)
        }
        #expect(daemon.store.bundles.count == 2, "\(daemon.store.bundles)")
        #expect(try StockChecks.sum("sha256sum", backing) == sourceSHA256, "the source changed")
    }
}
