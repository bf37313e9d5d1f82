// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// What a hostile carrier can do to a sealed bundle that no manifest covers: entries planted
/// past PATH_MAX, links and special files, a forged bag-info, bytes after the seal, a bundle
/// under another bundle's name, a rogue store's trust anchor. Each must make `exhibit verify`
/// fail closed, and where the README's stock recipe is meant to catch it, that recipe too.
@Suite(.serialized) struct HostileBundleTests {
    final class Fixture: @unchecked Sendable {
        let store: TestStore
        let bundle: String
        let name: String

        init() throws {
            store = try TestStore("hostile")
            let source = try SourceImage.create(at: store.scratch.file("h.img"), size: 8 << 20)
            bundle = try store.acquireBundle(source)
            name = (bundle as NSString).lastPathComponent
        }

        /// A writable copy under the bundle's own name (so only the planted change differs).
        func copy(_ label: String) throws -> String {
            let parent = store.scratch.file(label)
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            let target = "\(parent)/\(name)"
            try #require(try Subprocess.run(["cp", "-a", bundle, target]).succeeded)
            try #require(try Subprocess.shell("chmod -R u+w '\(target)'").succeeded)
            return target
        }

        /// `exhibit verify`, bounded in time: a verifier that opens a FIFO would hang here (SIGKILL:
        /// children inherit the test runner's blocked signal mask, so a SIGTERM stays pending).
        func verify(_ bag: String, _ extra: [String] = []) throws -> Subprocess.Result {
            try Subprocess.run(["timeout", "-s", "KILL", "60", BuiltProducts.exhibit, "verify", bag, "--trust", store.trustAnchor] + extra)
        }
    }

    static let fixture = Result { try Fixture() }
    func fixture() throws -> Fixture { try Self.fixture.get() }

    /// The README's stock check for entries no manifest or checksum tool looks at.
    static func strayEntries(_ bag: String) throws -> String {
        try Subprocess.shell(
            """
            cd '\(bag)' && { find . ! -type f ! -type d; \
              comm -23 <(find data -type f | LC_ALL=C sort) <(cut -c67- manifest-sha256.txt | LC_ALL=C sort); }
            """
        ).stdout
    }

    @Test func aFilePlantedPastPathMaxIsFound() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("deep")
        // 90 levels of 60-byte names: a path of 5,400 bytes, beyond PATH_MAX (4096).
        var directory = open("\(bag)/data", O_RDONLY | O_DIRECTORY)
        try #require(directory >= 0)
        let component = String(repeating: "d", count: 60)
        for _ in 0..<90 {
            #expect(mkdirat(directory, component, 0o755) == 0)
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY)
            close(directory)
            directory = next
            try #require(directory >= 0)
        }
        let planted = openat(directory, "planted.txt", O_WRONLY | O_CREAT, 0o644)
        #expect(planted >= 0)
        _ = write(planted, "forged\n", 7)
        close(planted)
        close(directory)

        let verify = try fixture.verify(bag)
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("planted.txt") && verify.stdout.contains("not in the manifest"), "\(verify)")
        #expect(try Self.strayEntries(bag).contains("planted.txt"), "the README's find/comm check names the planted file")
    }

    @Test func aDirectoryNestedBeyondTheWalksDepthIsReportedNotSkipped() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("too-deep")
        var directory = open("\(bag)/data", O_RDONLY | O_DIRECTORY)
        for _ in 0..<210 {
            _ = mkdirat(directory, "d", 0o755)
            let next = openat(directory, "d", O_RDONLY | O_DIRECTORY)
            close(directory)
            directory = next
        }
        close(directory)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1 && verify.stdout.contains("directories deep"), "\(verify)")
    }

    @Test(arguments: ["file-link", "directory-link", "dangling-link", "link-loop", "fifo", "device-link"])
    func linksAndSpecialFilesAreRefusedWithoutBeingFollowed(_ kind: String) throws {
        let fixture = try fixture()
        let bag = try fixture.copy(kind)
        let outside = fixture.store.scratch.file("outside-\(kind)")
        let plant: String
        switch kind {
        case "file-link":  // a listed file replaced by a link to an identical copy outside the bundle
            plant = "cp data/acquisition.log '\(outside)' && rm data/acquisition.log && ln -s '\(outside)' data/acquisition.log"
        case "directory-link":  // the image directory moved out and linked: every stock fixity check still passes
            plant = "mv data/image '\(outside)' && ln -s '\(outside)' data/image"
        case "dangling-link":
            plant = "ln -s /nonexistent/evidence data/extra"
        case "link-loop":
            plant = "ln -s loop-b data/loop-a && ln -s loop-a data/loop-b"
        case "fifo":  // in place of a listed file: whoever opens it to read waits for ever
            plant = "rm data/acquisition.log && mkfifo data/acquisition.log"
        default:  // a listed file replaced by a link to /dev/zero
            plant = "rm data/case.jsonld && ln -s /dev/zero data/case.jsonld"
        }
        try #require(try Subprocess.shell("cd '\(bag)' && \(plant)").succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1, "\(kind) must fail, not hang (124) nor pass: \(verify)")
        #expect(verify.stdout.contains("a sealed bundle holds only regular files and directories"), "\(kind): \(verify)")
        #expect(!(try Self.strayEntries(bag).isEmpty), "\(kind): the README's find check lists it")
    }

    @Test func aForgedBagInfoFieldIsRefused() throws {
        let fixture = try fixture()
        // A CR inside a value: bagit.py reads universal newlines, so it is a second field to it.
        let bag = try fixture.copy("cr")
        try #require(
            try Subprocess.shell(
                "cd '\(bag)' && sed -i 's/^\\(Exhibit-Examiner: .*\\)$/\\1\\rExhibit-Media-SHA256: 0000/' bag-info.txt"
            ).succeeded)
        let cr = try fixture.verify(bag)
        #expect(cr.status == 1 && cr.stdout.contains("U+000D"), "\(cr)")
        // A label given twice.
        let twice = try fixture.copy("twice")
        try #require(try Subprocess.shell("cd '\(twice)' && echo 'Exhibit-Media-SHA256: 0000' >> bag-info.txt").succeeded)
        let repeated = try fixture.verify(twice)
        #expect(repeated.status == 1 && repeated.stdout.contains("is given again"), "\(repeated)")
    }

    @Test func bytesAfterTheSealAreRefused() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("trailing")
        try #require(try Subprocess.shell("printf 'trailing' >> '\(bag)/seal.p7s'").succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1 && verify.stdout.contains("bytes follow the seal's DER value"), "\(verify)")
    }

    @Test func aBundleUnderAnotherNameIsFlagged() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("renamed")
        let renamed = ((bag as NSString).deletingLastPathComponent as NSString).appendingPathComponent("CASE-1-E9-20260101T000000Z-00000000")
        try FileManager.default.moveItem(atPath: bag, toPath: renamed)
        let verify = try fixture.verify(renamed)
        #expect(verify.status == 1 && verify.stdout.contains("FAIL bundle-name"), "\(verify)")
    }

    @Test func aRogueStoresAnchorBesideTheBundleIsNotTrusted() throws {
        let fixture = try fixture()
        // A rogue appliance's bundle, carried inside the rogue's own store with its own root.
        let rogue = try TestStore("rogue")
        let source = try SourceImage.create(at: rogue.scratch.file("r.img"), size: 1 << 20)
        let bundle = try rogue.acquireBundle(source)
        let alone = try Subprocess.run([BuiltProducts.exhibit, "verify", bundle], input: nil)
        #expect(alone.status == 1 && alone.stdout.contains("no trust anchor is configured"), "\(alone)")
        let trusted = try fixture.verify(bundle)
        #expect(trusted.status == 1 && trusted.stdout.contains("FAIL seal"), "\(trusted)")
        #expect(trusted.stdout.contains("trust anchor ") && trusted.stdout.contains(fixture.store.trustAnchor), "the anchor used is named: \(trusted)")
        // The operator may name the appliance's own store explicitly.
        let own = try exhibit(["verify", fixture.bundle, "--store", fixture.store.root])
        #expect(own.succeeded && own.stdout.contains("(the seal's chain ends here)"), "\(own)")
    }

    @Test func aMissingTrustFileIsNamedPlainly() throws {
        let fixture = try fixture()
        let missing = try exhibit(["verify", fixture.bundle, "--trust", "/nonexistent/agency-root.pem"])
        #expect(missing.status == 1 && missing.stderr.contains("trust anchor /nonexistent/agency-root.pem: no such file"), "\(missing)")
        #expect(!missing.stderr.contains("NSCocoaErrorDomain"), "\(missing)")
    }

    @Test func aFailedAcquisitionStillAnswersInJSON() throws {
        let fixture = try fixture()
        let failed = try fixture.store.acquire("/nonexistent/disk.img", exhibit: "E5")
        #expect(failed.status == 1)
        let answer = try JSONSerialization.jsonObject(with: Data(failed.stdout.utf8)) as? [String: Any]
        let error = answer?["error"] as? [String: Any]
        #expect((error?["message"] as? String)?.contains("/nonexistent/disk.img") == true, "\(failed)")
    }

    @Test func aTagManifestEntryOutsideTheTagFilesIsNamedNotOpened() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("tag-escape")
        try #require(try Subprocess.shell("cd '\(bag)' && echo \"$(printf '0%.0s' {1..64})  ../x\" >> tagmanifest-sha256.txt").succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1 && verify.stdout.contains("../x") && verify.stdout.contains("not one of the bag's tag files"), "\(verify)")
        #expect(!verify.stdout.contains("the file was changed"), "\(verify)")
    }
}

extension HostileBundleTests {
    /// Edits `data/acquisition.json` of a bundle copy with a Python expression over `r` (the record).
    static func forgeRecord(_ bag: String, _ edit: String) throws {
        let script = "import json,sys; p=sys.argv[1]+'/data/acquisition.json'; r=json.load(open(p)); \(edit); json.dump(r, open(p,'w'))"
        try #require(try Subprocess.run(["python3", "-c", script, bag]).succeeded)
    }

    @Test("numbers forged in acquisition.json (a window size of 0, image sizes that overflow 64 bits): findings, not a trap")
    func forgedRecordNumbersAreFindingsNotATrap() throws {
        let fixture = try fixture()
        // A window size of 0 with a changed image byte: locating the change divided by it.
        let zero = try fixture.copy("window-zero")
        try Self.forgeRecord(zero, "r['verification']['windowSize']=0")
        try #require(try Subprocess.shell("cd '\(zero)/data/image' && printf 'X' | dd of=\"$(ls | head -1)\" bs=1 seek=4096 conv=notrunc status=none").succeeded)
        let located = try fixture.verify(zero)
        #expect(located.status == 1, "a trap exits 132: \(located)")
        #expect(located.stdout.contains("verification.windowSize 0 is not one Exhibit writes"), "\(located)")
        // Two image files of 2^63 bytes each: their sum overflowed.
        let huge = try fixture.copy("sizes-overflow")
        try Self.forgeRecord(huge, "f=r['image']['files'][0]; f['sizeBytes']=2**63; r['image']['files']=[f, dict(f)]")
        let summed = try fixture.verify(huge)
        #expect(summed.status == 1 && summed.stdout.contains("image files do not add up to the media size"), "\(summed)")
    }
}

extension HostileBundleTests {
    @Test("a payload file grown to a sparse TiB (a few MiB on the carrier): refused by its size at once, not hashed for minutes", arguments: ["log", "image"])
    func aSparseTebibyteIsNotHashed(grown: String) throws {
        let fixture = try fixture()
        let bag = try fixture.copy("sparse-\(grown)")
        let file = grown == "log" ? "data/acquisition.log" : "data/image/$(ls '\(bag)/data/image' | head -1)"
        try #require(try Subprocess.shell("cd '\(bag)' && truncate -s 1T \"\(file)\"").succeeded)
        let started = Date()
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1, "hashing a TiB times out (124): \(verify)")
        #expect(verify.stdout.contains("more than Payload-Oxum declares"), "\(verify)")
        #expect(Date().timeIntervalSince(started) < 30)
    }
}

extension HostileBundleTests {
    /// Opening a device node runs its driver (a tape rewinds when closed, a watchdog arms): the
    /// verifier must refuse one in place of an image file without opening it. inotify reports
    /// every open of the node but O_PATH's, which opens nothing.
    @Test("a device node in place of an image file is refused without being opened")
    func aDeviceNodeIsRefusedUnopened() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("device-node")
        try #require(try Subprocess.shell("cd '\(bag)/data/image' && f=$(ls | head -1) && rm \"$f\" && mknod \"$f\" c 1 3").succeeded)
        let watcher = """
            import ctypes, os, subprocess, sys
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK)
            node = sys.argv[1]
            assert libc.inotify_add_watch(fd, node.encode(), 0x20) >= 0
            verify = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=60)
            try: opens = len(os.read(fd, 65536)) // 16
            except BlockingIOError: opens = 0
            print(f"opens {opens} status {verify.returncode}"); print(verify.stdout)
            """
        let node = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(bag)/data/image").first)
        let run = try Subprocess.run(
            ["python3", "-c", watcher, "\(bag)/data/image/\(node)", BuiltProducts.exhibit, "verify", bag, "--trust", fixture.store.trustAnchor])
        #expect(run.stdout.hasPrefix("opens 0 status 1"), "\(run)")
        #expect(run.stdout.contains("character device"), "\(run)")
    }
}
