// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// Acquisitions from real kernel loop devices.
@Suite(.serialized, .enabled(if: loopUnavailable == nil, loopSkipComment))
struct BlockDeviceTests {
    @Test func writableDeviceIsRefusedUntouchedThenAcquiredOnceReadOnly() throws {
        try StockChecks.requireTools()
        let store = try TestStore("loop")
        let backing = try SourceImage.create(at: store.scratch.file("disk.img"), size: 8 << 20)
        let before = try StockChecks.sum("sha256sum", backing)
        let mtimeBefore = try Subprocess.shell("stat -c %Y.%y '\(backing)'").stdout
        let loop = try LoopDevice(backing: backing)
        defer { loop.detach() }

        let refused = try store.acquire(loop.path)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("source is writable") && refused.stderr.contains("blockdev --setro \(loop.path)"))
        #expect(store.bundles.isEmpty)
        // Named through a link (as /dev/disk/by-id/… is), the fix still names the device itself.
        let link = store.scratch.file("by-id-link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: loop.path)
        let throughLink = try store.acquire(link)
        #expect(throughLink.stderr.contains("blockdev --setro \(loop.path)"), "\(throughLink)")

        try loop.setReadOnly(true)
        let bundle = try store.acquireBundle(loop.path)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: before)
        let record = try String(contentsOfFile: "\(bundle)/data/acquisition.json", encoding: .utf8)
        #expect(record.contains("\"kind\" : \"block-device\"") && record.contains("\"kernelReadOnlyIoctl\" : true"))
        #expect(record.contains("\"loopBackingFile\" : \"\(backing)\""))
        #expect(try StockChecks.sum("sha256sum", backing) == before)
        #expect(try Subprocess.shell("stat -c %Y.%y '\(backing)'").stdout == mtimeBefore)
    }

    @Test func fourKibibyteSectorDeviceRecordsItsGeometry() throws {
        try StockChecks.requireTools()
        let store = try TestStore("loop4k")
        let backing = try SourceImage.create(at: store.scratch.file("disk4k.img"), size: 6 << 20)
        let loop = try LoopDevice(backing: backing, sectorSize: 4096)
        defer { loop.detach() }
        try loop.setReadOnly(true)
        let bundle = try store.acquireBundle(loop.path, ["--digest", "md5"])
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", backing))
        let record = try String(contentsOfFile: "\(bundle)/data/acquisition.json", encoding: .utf8)
        #expect(record.contains("\"logicalSectorSize\" : 4096"))
        #expect(record.contains("\"logicalSectors\" : 1536"))
    }

    @Test func overriddenWritableSourceIsRecorded() throws {
        let store = try TestStore("override")
        let backing = try SourceImage.create(at: store.scratch.file("rw.img"), size: 1 << 20)
        let loop = try LoopDevice(backing: backing)
        defer { loop.detach() }
        let bundle = try store.acquireBundle(loop.path, ["--allow-writable-source"])
        let record = try String(contentsOfFile: "\(bundle)/data/acquisition.json", encoding: .utf8)
        #expect(record.contains("\"writableOverride\" : true") && record.contains("allow-writable-source"))
        #expect(try exhibit(["verify", bundle, "--store", store.root]).succeeded)
    }

    /// A store on a small tmpfs: refused before anything is written, with the sizes.
    @Test func storeTooSmallIsRefusedBeforeStarting() throws {
        let scratch = try ScratchDirectory("small")
        let mountPoint = scratch.file("mnt")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try Subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", mountPoint])
        try #require(mount.succeeded, "mounting a tmpfs (the suite runs as root): \(mount)")
        defer { _ = try? Subprocess.run(["umount", mountPoint]) }
        let store = "\(mountPoint)/store"
        #expect(try exhibit(["provision", "--store", store]).succeeded)
        let source = try SourceImage.create(at: scratch.file("big.img"), size: 40 << 20)
        let result = try exhibit(["acquire", source, "--store", store, "--case", "C", "--exhibit", "E", "--examiner", "X"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("not enough space in the store") && result.stderr.contains("bytes"))
        #expect(result.stderr.contains("acquire failed: store: "), "a store error is named as the store's: \(result)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(store)/bundles").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(store)/work").isEmpty)
    }
}

/// Killing the acquiring process leaves nothing half-sealed, and the next run succeeds.
@Suite struct InterruptionTests {
    @Test func sigkillMidRunLeavesNoBundleAndTheNextRunSeals() throws {
        let store = try TestStore("kill")
        let source = store.scratch.file("big.img")
        // 3 GiB, mostly sparse: fast to read, long enough to be killed in the middle.
        try #require(try Subprocess.shell("truncate -s 3G '\(source)' && printf 'evidence' | dd of='\(source)' bs=1 seek=1000000 conv=notrunc status=none").succeeded)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.exhibit)
        process.arguments = [
            "acquire", source, "--store", store.root, "--case", "C", "--exhibit", "E1", "--examiner", "X", "--checkpoint-seconds", "0.1",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The job's own journal says when it is in the middle of its first pass (an image file's
        // size says nothing: zero blocks are holes, so it jumps to the full size at once).
        let deadline = Date().addingTimeInterval(60)
        var journal: [String: Any] = [:]
        while Date() < deadline, process.isRunning {
            let path = try Subprocess.shell("ls '\(store.root)'/work/*/journal.json 2>/dev/null | head -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if let data = FileManager.default.contents(atPath: path), let parsed = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                journal = parsed
                if (journal["copiedBytes"] as? NSNumber)?.uint64Value ?? 0 > 0, journal["phase"] as? String == "copying" { break }
            }
            usleep(20_000)
        }
        try #require(process.isRunning, "the acquisition finished before it could be interrupted")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(journal["phase"] as? String == "copying", "killed during the first pass: \(journal)")
        #expect(store.bundles.isEmpty, "a killed run must leave nothing in bundles/")
        #expect(try StoreListing.of(store.root).hasJob(in: .interrupted))

        let small = try SourceImage.create(at: store.scratch.file("small.img"), size: 1 << 20)
        let bundle = try store.acquireBundle(small, exhibit: "E2")
        #expect(store.bundles.count == 1)
        #expect(try exhibit(["verify", bundle, "--store", store.root]).succeeded)
    }
}
