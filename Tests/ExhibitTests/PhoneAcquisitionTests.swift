// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import TestSupport
import Testing

/// `exhibit acquire adb:tcp:…` against the simulated phone, judged by the stock tools.
@Suite(.serialized) struct PhoneAcquisitionTests {
    func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func record(_ bundle: String) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(bundle)/data/acquisition.json")))
                as? [String: Any])
    }

    @Test func logicalAcquisitionKeepsEveryFileWithItsHashAndVerifies() throws {
        try StockChecks.requireTools()
        let store = try TestStore("phone-logical")
        let fixture = try PhoneFixture("phone-logical") { $0.authorization = .allowWhenAsked }
        defer { fixture.device.stop() }
        // --physical is asked but the phone has no root: the bundle says so and is logical.
        let result = try store.acquire("adb:tcp:127.0.0.1:\(fixture.device.port)", case: "CASE-P", exhibit: "PHONE-1", ["--physical"])
        try #require(result.succeeded, "\(result)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let bundle = try #require(summary["bundlePath"] as? String)

        // The appliance's key persists in the store (0600) and is the one the phone was offered.
        let keyMode = try FileManager.default.attributesOfItem(atPath: "\(store.root)/keys/adbkey")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let publicKey = try String(contentsOfFile: "\(store.root)/keys/adbkey.pub", encoding: .utf8)
        #expect(fixture.device.offeredKeys.map { $0.split(separator: " ").first } == [publicKey.split(separator: " ").first])

        // Every regular file the shell user may read is in data/files under its original path,
        // with the SHA-256 of the ground truth (sha256sum of the phone's file).
        let files = try lines("\(bundle)/data/phone/files.jsonl")
        var byPath: [String: [String: Any]] = [:]
        for file in files { byPath[file["path"] as? String ?? ""] = file }
        for path in fixture.files where path.hasPrefix("/sdcard/") && !path.hasPrefix(SimulatedPhoneTree.deniedDirectory) {
            let entry = try #require(byPath[path], "\(path) is not in files.jsonl")
            let truth = try fixture.sha256(path)
            #expect(entry["status"] as? String == "complete" && entry["sha256"] as? String == truth, "\(path): \(entry)")
            #expect(entry["storedAs"] as? String == "data/files" + path)
            #expect(try StockChecks.sum("sha256sum", "\(bundle)/data/files\(path)") == truth, "\(path)")
            #expect(entry["mode"] != nil && entry["mtime"] != nil && entry["inode"] != nil && entry["uid"] != nil)
        }
        #expect(byPath[SimulatedPhoneTree.deniedDirectory]?["status"] as? String == "denied")
        #expect(byPath["/sdcard/link-to-camera"]?["status"] as? String == "not-pulled")
        #expect(byPath["/sdcard/link-to-camera"]?["type"] as? String == "symlink")
        #expect(!FileManager.default.fileExists(atPath: "\(bundle)/data/files/sdcard/Android/data/org.telegram.messenger"))

        // Every command's output is kept and audited with its SHA-256 and exit status.
        let commands = try lines("\(bundle)/data/phone/commands.jsonl")
        let getprop = try #require(commands.first { $0["command"] as? String == "getprop" })
        #expect(getprop["exitStatus"] as? Int == 0 && getprop["service"] as? String == "shell,v2,raw")
        let getpropFile = try #require(getprop["stdoutFile"] as? String)
        #expect(try StockChecks.sum("sha256sum", "\(bundle)/\(getpropFile)") == getprop["stdoutSHA256"] as? String)
        #expect(try String(contentsOfFile: "\(bundle)/\(getpropFile)", encoding: .utf8).contains("[ro.product.model]: [SimPhone]"))
        #expect(commands.first { $0["command"] as? String == "su -c id" }?["exitStatus"] as? Int == 127)
        for name in ["settings list secure", "pm list packages -f -U", "logcat -d", "dumpsys window"] {
            #expect(commands.contains { $0["command"] as? String == name && $0["exitStatus"] as? Int == 0 }, "\(name)")
        }

        // The record: identity, state, method and why not physical.
        let phone = try #require(try record(bundle)["phone"] as? [String: Any])
        let device = try #require(phone["device"] as? [String: Any])
        #expect(device["model"] as? String == "SimPhone" && device["serial"] as? String == "SIM0123456789")
        #expect(device["androidVersion"] as? String == "13" && device["securityPatch"] as? String == "2024-05-05")
        #expect(device["lockState"] as? String == "unlocked" && device["root"] as? Bool == false)
        #expect(phone["methodAchieved"] as? String == "logical")
        let notAchieved = try #require(phone["methodsNotAchieved"] as? [[String: Any]])
        #expect(notAchieved.contains { $0["method"] as? String == "physical" && ($0["reason"] as? String ?? "").contains("su -c id") })
        #expect((phone["connection"] as? [String: Any])?["authenticated"] as? Bool == true)
        #expect((phone["connection"] as? [String: Any])?["bytesSetAsideBeforeHandshake"] as? Int == 0, "nothing is set aside over TCP")

        // The hub's checks: the inventory's SHA-256 is the media SHA-256; sha256sum -c holds.
        let inventory = try StockChecks.sum("sha256sum", "\(bundle)/data/phone/inventory.sha256")
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-SHA256") == inventory)
        let recheck = try Subprocess.run(["sha256sum", "--quiet", "-c", "data/phone/inventory.sha256"], directory: bundle)
        #expect(recheck.succeeded, "\(recheck)")
        #expect(try StockChecks.bagit(bundle).succeeded)
        let seal = try StockChecks.cms(bundle, trust: store.trustAnchor)
        #expect(seal.succeeded, "\(seal)")
        let graph = try StockChecks.caseValidate(bundle)
        #expect(graph.succeeded && graph.stdout.contains("Conforms: True"), "\(graph)")
        #expect(try StockChecks.custodyChain(bundle))
        let verify = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(verify.succeeded && verify.stdout.contains("INTACT"), "\(verify)")

        // A changed extracted file is caught by exhibit verify (naming it) and by bagit.py.
        let photo = "\(bundle)/data/files/sdcard/DCIM/Camera/IMG_20241101_101500.jpg"
        try Subprocess.shell("chmod u+w '\(photo)' && printf 'X' | dd of='\(photo)' bs=1 seek=1000 conv=notrunc status=none")
        let tampered = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(!tampered.succeeded && tampered.stdout.contains("data/files/sdcard/DCIM/Camera/IMG_20241101_101500.jpg"), "\(tampered)")
        #expect(!(try StockChecks.bagit(bundle).succeeded))
    }

    /// The phone's clock goes into the record with its offset from the appliance's, but only a
    /// time the record can name (years 0000-9999): a hostile or broken phone's `date +%s` is left
    /// out, and the job goes on. `printed`: what the phone's `date +%s` prints; nil, an hour slow.
    @Test(arguments: [nil, "1e300", "253402300800", "-62167219201"] as [String?])
    func aPhonesClockIsRecordedOnlyWhenARecordCanNameIt(printed: String?) throws {
        let store = try TestStore("phone-clock")
        let fixture = try PhoneFixture("phone-clock") { $0.clock = printed ?? "\(Int(Date().timeIntervalSince1970) - 3600)" }
        defer { fixture.device.stop() }
        let result = try store.acquire("adb:tcp:127.0.0.1:\(fixture.device.port)", case: "CASE-C", exhibit: "PHONE-C")
        try #require(result.succeeded, "\(result)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let bundle = try #require(summary["bundlePath"] as? String)
        let device = try #require((try record(bundle)["phone"] as? [String: Any])?["device"] as? [String: Any])
        if printed == nil {
            let offset = try #require(device["clockOffsetSeconds"] as? Double)
            #expect(abs(offset + 3600) < 30, "\(device)")
            let written = try #require(device["clockUTC"] as? String)
            #expect(UTCTimestamp.date(written) != nil, "\(written)")
        } else {
            #expect(device["clockUTC"] == nil && device["clockOffsetSeconds"] == nil, "\(device)")
        }
    }

    @Test func physicalImageThroughRootMatchesThePartition() throws {
        try StockChecks.requireTools()
        let store = try TestStore("phone-physical")
        let fixture = try PhoneFixture("phone-physical") { $0.rooted = true }
        defer { fixture.device.stop() }
        let result = try store.acquire(
            "adb:tcp:127.0.0.1:\(fixture.device.port)", case: "CASE-P", exhibit: "PHONE-2", ["--physical", "--digest", "md5"])
        try #require(result.succeeded, "\(result)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let bundle = try #require(summary["bundlePath"] as? String)
        let truth = try fixture.sha256(SimulatedPhoneTree.userdata)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: truth)
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-MD5") == StockChecks.sum("md5sum", fixture.root + SimulatedPhoneTree.userdata))
        let phone = try #require(try record(bundle)["phone"] as? [String: Any])
        #expect(phone["methodAchieved"] as? String == "physical")
        #expect((phone["physical"] as? [String: Any])?["partition"] as? String == SimulatedPhoneTree.userdata)
        #expect((phone["physical"] as? [String: Any])?["sizeBytes"] as? Int == 24 << 20)
        // The image was read back while the partition streamed, window by window.
        let method = try #require((try record(bundle)["verification"] as? [String: Any])?["method"] as? String)
        #expect(method.contains("read back from the store while the partition streamed"), "\(method)")
        let log = try String(contentsOfFile: "\(bundle)/data/acquisition.log", encoding: .utf8)
        #expect(log.contains("image read back while it was written: all 1 windows"), "\(log)")
        // The catalog knows the job's size once it is sealed.
        let listed = try StoreListing.of(store.root).entries
        #expect(listed.contains { $0.sizeBytes == 24 << 20 }, "\(listed)")
        // The logical part is there too, under its own inventory.
        let inventory = try StockChecks.sum("sha256sum", "\(bundle)/data/phone/inventory.sha256")
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Phone-Inventory-SHA256") == inventory)
        #expect(try Subprocess.run(["sha256sum", "--quiet", "-c", "data/phone/inventory.sha256"], directory: bundle).succeeded)
    }

    /// Memory stays bounded by the pipeline's buffers and the stream's inbox, whatever the
    /// partition's size: a 128 MiB partition may not take much more than a 16 MiB one. (Consumed
    /// 1 MiB payloads kept alive in the inbox made the 128 MiB run's peak 50 MiB higher.)
    @Test func physicalStreamingMemoryDoesNotGrowWithThePartition() throws {
        var peaks: [Int: Int] = [:]
        for mib in [16, 128] {
            let store = try TestStore("phone-memory-\(mib)")
            let fixture = try PhoneFixture("phone-memory-\(mib)", userdataSize: mib << 20) { $0.rooted = true }
            defer { fixture.device.stop() }
            let peak = store.scratch.file("peak")
            let result = try Subprocess.run([
                "/usr/bin/time", "-o", peak, "-f", "%M", BuiltProducts.exhibit, "acquire", "adb:tcp:127.0.0.1:\(fixture.device.port)",
                "--store", store.root, "--case", "CASE-M", "--exhibit", "P\(mib)", "--examiner", "T", "--physical", "--no-verify",
            ])
            try #require(result.succeeded, "\(result)")
            peaks[mib] = Int(try String(contentsOfFile: peak, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let small = try #require(peaks[16]), large = try #require(peaks[128])
        print("phone physical peak RSS: \(small) KiB for 16 MiB, \(large) KiB for 128 MiB")
        #expect(large - small < 16 << 10, "peak RSS grew from \(small) to \(large) KiB")
    }

    /// A phone bundle that cannot be moved into `bundles/` (an immutable directory) leaves its
    /// job interrupted with everything pulled; the next run seals it without pulling a file again.
    @Test(.enabled(if: ImmutableBundles.unavailableReason == nil, "needs chattr +i on the test stores' file system"))
    func aPhoneBundleThatCannotBeMovedIsSealedLaterWithoutPullingAgain() throws {
        try StockChecks.requireTools()
        let store = try TestStore("phone-unmovable")
        let immutable = try ImmutableBundles(in: store)
        let fixture = try PhoneFixture("phone-unmovable")
        defer { fixture.device.stop() }
        let source = "adb:tcp:127.0.0.1:\(fixture.device.port)"
        let first = try store.acquire(source, case: "CASE-U", exhibit: "PHONE-U")
        #expect(!first.succeeded && first.stderr.contains("rename"), "\(first)")
        let listing = try StoreListing.of(store.root)
        #expect(listing.hasJob(in: .interrupted) && listing.entries.allSatisfy { $0.bundleId == nil }, "\(listing.entries)")
        let pulled = fixture.device.receivedPaths
        #expect(pulled.contains("/sdcard/DCIM/Camera/VID_20241101_101800.mp4"))

        try immutable.release()
        let second = try store.acquire(source, case: "CASE-U", exhibit: "PHONE-U")
        try #require(second.succeeded, "\(second)")
        #expect(fixture.device.receivedPaths == pulled, "files were pulled again")
        #expect(store.bundles.count == 1)
        let bundle = "\(store.root)/bundles/\(store.bundles[0])"
        #expect(try Subprocess.run(["bagit.py", "--validate", bundle]).succeeded)
        for path in fixture.files where path.hasPrefix("/sdcard/") && !path.hasPrefix(SimulatedPhoneTree.deniedDirectory) {
            #expect(try StockChecks.sum("sha256sum", "\(bundle)/data/files\(path)") == fixture.sha256(path), "\(path)")
        }
        #expect((try record(bundle)["interruptions"] as? [Any])?.count == 1)
        #expect(try StockChecks.bagInfo(bundle, "Previous-Bundle-Seal-SHA256") == String(repeating: "0", count: 64))
        let verify = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(verify.succeeded, "\(verify)")
    }

    /// Every file under `directory` with its SHA-256 and modification time.
    static func snapshot(of directory: String) throws -> String {
        try Subprocess.shell("cd '\(directory)' && find . -type f ! -name .lock -printf '%p %T@ ' -exec sha256sum {} \\; | LC_ALL=C sort").stdout
    }

    @Test func aPhoneUnpluggedMidTransferLeavesAnInterruptedJobThatResumesWithoutPullingAgain() throws {
        try StockChecks.requireTools()
        let store = try TestStore("phone-resume")
        // The cable is pulled after 1 MiB: the first photo is in, the video is half way.
        let broken = try PhoneFixture("phone-resume") { $0.fault = .disconnect(afterBytes: 1 << 20) }
        let first = try store.acquire("adb:tcp:127.0.0.1:\(broken.device.port)", case: "CASE-R", exhibit: "PHONE-3", ["--adb-idle-timeout", "3"])
        broken.device.stop()
        #expect(!first.succeeded && first.stderr.contains("disconnected") && first.stderr.contains("RCV2 /sdcard/DCIM/Camera/VID"), "\(first)")
        #expect(store.bundles.isEmpty)
        let listing = try StoreListing.of(store.root)
        #expect(listing.hasJob(in: .interrupted), "\(listing.entries)")
        #expect(broken.device.receivedPaths.contains("/sdcard/DCIM/Camera/IMG_20241101_101500.jpg"))

        // Another phone offered for the same case and exhibit is refused and leaves the job alone.
        var other = SimulatedPhone(root: broken.root, serial: "OTHER0000")
        other.properties["ro.serialno"] = "OTHER0000"
        let stranger = try SimulatedAndroidDevice(other)
        let workBefore = try Self.snapshot(of: "\(store.root)/work")
        let refused = try store.acquire("adb:tcp:127.0.0.1:\(stranger.port)", case: "CASE-R", exhibit: "PHONE-3")
        stranger.stop()
        #expect(!refused.succeeded && refused.stderr.contains("was of the phone with serial SIM0123456789"), "\(refused)")
        #expect(stranger.receivedPaths.isEmpty && store.bundles.isEmpty)
        // Proved before anything was touched: not one file of the job's work changed or appeared.
        #expect(try Self.snapshot(of: "\(store.root)/work") == workBefore, "the refused phone changed the interrupted job's work")

        // Plugged back (a new connection to the same phone and tree): the job resumes.
        var phone = SimulatedPhone(root: broken.root)
        phone.deniedPaths = [SimulatedPhoneTree.deniedDirectory]
        let again = try SimulatedAndroidDevice(phone)
        defer { again.stop() }
        let second = try store.acquire("adb:tcp:127.0.0.1:\(again.port)", case: "CASE-R", exhibit: "PHONE-3")
        try #require(second.succeeded, "\(second)")
        #expect(!again.receivedPaths.contains("/sdcard/DCIM/Camera/IMG_20241101_101500.jpg"), "a file hashed before the cut was pulled again")
        #expect(again.receivedPaths.contains("/sdcard/DCIM/Camera/VID_20241101_101800.mp4"))
        #expect(store.bundles.count == 1)
        let bundle = "\(store.root)/bundles/\(store.bundles[0])"
        for path in broken.files where path.hasPrefix("/sdcard/") && !path.hasPrefix(SimulatedPhoneTree.deniedDirectory) {
            #expect(try StockChecks.sum("sha256sum", "\(bundle)/data/files\(path)") == broken.sha256(path), "\(path)")
        }
        let interruptions = try #require(try record(bundle)["interruptions"] as? [[String: Any]])
        #expect(interruptions.count == 1 && (interruptions[0]["reason"] as? String ?? "").contains("disconnected"))
        // The first connection's commands are kept beside the second's (nothing is replaced),
        // and nothing else is in the commands directory: not the refused phone's getprop.
        let commands = try lines("\(bundle)/data/phone/commands.jsonl")
        let getprops = commands.filter { $0["command"] as? String == "getprop" }
        #expect(getprops.map { $0["session"] as? Int } == [1, 2], "\(getprops)")
        #expect(Set(commands.compactMap { $0["seq"] as? Int }).count == commands.count)
        var named: Set<String> = []
        for command in commands {
            let file = try #require(command["stdoutFile"] as? String)
            named.insert(file)
            if let stderr = command["stderrFile"] as? String { named.insert(stderr) }
            #expect(try StockChecks.sum("sha256sum", "\(bundle)/\(file)") == command["stdoutSHA256"] as? String, "\(file)")
        }
        let present = try FileManager.default.contentsOfDirectory(atPath: "\(bundle)/data/phone/commands").map { "data/phone/commands/\($0)" }
        #expect(Set(present) == named)
        let verify = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(verify.succeeded, "\(verify)")
        #expect(try String(contentsOfFile: "\(bundle)/data/custody.jsonl", encoding: .utf8).contains("\"acquisition-resumed\""))
    }

    /// A tampered adbd (`HostileListing`) lists names that would climb out of the bag or name
    /// another path (`../evil`, `a/b`, a `..` file, an empty name, one with NUL, one of 5000
    /// bytes), a file whose name holds a carriage return, a directory that lists itself and two
    /// that list a new one at every level without end. Each trap costs only its own entry: the
    /// job seals the rest, the record lists every trap by its escaped raw name, nothing is
    /// written outside `data/files/`, and the endless directories stop at the depth and path
    /// bounds.
    @Test func aBoobyTrappedListingCostsOnlyItsOwnEntries() throws {
        try StockChecks.requireTools()
        let store = try TestStore("phone-hostile")
        let fixture = try PhoneFixture("phone-hostile") { $0.hostileListings = true }
        defer { fixture.device.stop() }
        let hostileFiles = try HostileListing.create(at: fixture.root)
        let result = try store.acquire("adb:tcp:127.0.0.1:\(fixture.device.port)", case: "CASE-H", exhibit: "PHONE-H")
        try #require(result.succeeded, "\(result)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let bundle = try #require(summary["bundlePath"] as? String)

        // The hub's checks hold for what was sealed.
        let bag = try StockChecks.bagit(bundle)
        #expect(bag.succeeded, "\(bag)")
        #expect(try Subprocess.run(["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], directory: bundle).succeeded)
        #expect(try Subprocess.run(["sha256sum", "--quiet", "-c", "data/phone/inventory.sha256"], directory: bundle).succeeded)
        #expect(try StockChecks.cms(bundle, trust: store.trustAnchor).succeeded)
        let graph = try StockChecks.caseValidate(bundle)
        #expect(graph.succeeded && graph.stdout.contains("Conforms: True"), "\(graph)")
        let verify = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(verify.succeeded && verify.stdout.contains("INTACT"), "\(verify)")

        // Every ordinary file is in data/files with the phone's SHA-256; the one whose name
        // holds a carriage return is kept under its escaped name.
        var byPath: [String: [String: Any]] = [:]
        for file in try lines("\(bundle)/data/phone/files.jsonl") { byPath[file["path"] as? String ?? ""] = file }
        let ordinary = fixture.files.filter { $0.hasPrefix("/sdcard/") && !$0.hasPrefix(SimulatedPhoneTree.deniedDirectory) }
        for path in ordinary + hostileFiles {
            let entry = try #require(byPath[path], "\(path) is not in files.jsonl")
            let truth = try fixture.sha256(path)
            #expect(entry["status"] as? String == "complete" && entry["sha256"] as? String == truth, "\(path): \(entry)")
            let stored = try #require(entry["storedAs"] as? String)
            #expect(try StockChecks.sum("sha256sum", "\(bundle)/\(stored)") == truth, "\(path)")
        }
        let escapedFile = "data/files\(HostileListing.directory)/x#x0Dforged"
        #expect(byPath["\(HostileListing.directory)/\(HostileListing.controlCharacterName)"]?["storedAs"] as? String == escapedFile)
        let insideSelf = byPath.keys.filter { $0.hasSuffix("/\(HostileListing.insideSelfListing)") }
        #expect(insideSelf == ["\(HostileListing.directory)/\(HostileListing.selfListing)/\(HostileListing.insideSelfListing)"])

        // No forged entry was asked for, and nothing of one exists anywhere near the store.
        let asked = fixture.device.receivedPaths.filter { $0.hasPrefix(HostileListing.directory + "/") }
        #expect(Set(asked) == Set(hostileFiles), "\(asked)")
        let strays = try Subprocess.run(["find", store.scratch.path, "-name", "*evil*"])
        #expect(strays.succeeded && strays.stdout.isEmpty, "\(strays)")
        let parent = (store.scratch.path as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).allSatisfy { !$0.contains("evil") })
        let everything = try Subprocess.run(["grep", "-rl", "EVIL: a forged entry", store.scratch.path])
        #expect(everything.stdout.isEmpty, "\(everything)")

        // The record names each trap by its escaped raw name, and what was done instead.
        let phone = try #require(try record(bundle)["phone"] as? [String: Any])
        let anomalies = try #require(phone["anomalies"] as? [[String: Any]])
        let directory = HostileListing.directory
        let expected: [(kind: String, path: String, name: String, action: String)] = [
            ("name-with-slash", "\(directory)/..\\x2Fevil", "../evil", "skipped"),
            ("name-with-slash", "\(directory)/a\\x2Fb", "a/b", "skipped"),
            ("dot-name", "\(directory)/..", "..", "skipped"),
            ("empty-name", "\(directory)/", "", "skipped"),
            ("name-with-nul", "\(directory)/nul\\x00byte", "nul\\x00byte", "skipped"),
            ("unprintable-name", "\(directory)/x\\x0Dforged", "x\\x0Dforged", "stored-under-safe-name"),
            ("directory-cycle", "\(directory)/self/self", "self", "not-walked"),
            ("path-too-long", "\(directory)/\(String(decoding: HostileListing.longForgedName, as: UTF8.self))",
             String(decoding: HostileListing.longForgedName, as: UTF8.self), "skipped"),
        ]
        for trap in expected {
            #expect(
                anomalies.contains {
                    $0["kind"] as? String == trap.kind && $0["path"] as? String == trap.path && $0["name"] as? String == trap.name
                        && $0["action"] as? String == trap.action
                }, "\(trap) is not in \(anomalies)")
        }
        #expect(anomalies.first { $0["kind"] as? String == "unprintable-name" }?["storedAs"] as? String == escapedFile)
        // The ordinary `.` and `..` directories of the listing are no anomaly.
        #expect(anomalies.filter { $0["kind"] as? String == "dot-name" }.count == 1)

        // The endless directories stop at the bounds: 128 levels below /sdcard, 1024-byte paths.
        let deepest = directory + String(repeating: "/\(HostileListing.endlessShort)", count: 127)
        #expect(anomalies.contains { $0["kind"] as? String == "too-deep" && $0["path"] as? String == deepest && $0["action"] as? String == "not-walked" })
        #expect(byPath[deepest]?["type"] as? String == "directory" && byPath[deepest + "/\(HostileListing.endlessShort)"] == nil)
        let longest = directory + String(repeating: "/\(HostileListing.endlessLong)", count: 10)
        #expect(longest.utf8.count == 1025)
        #expect(anomalies.contains { $0["kind"] as? String == "path-too-long" && $0["path"] as? String == longest && $0["action"] as? String == "skipped" })
        #expect(byPath.filter { $0.value["status"] as? String != "refused" }.keys.allSatisfy { $0.utf8.count <= 1024 })
        #expect(anomalies.count == expected.count + 2, "\(anomalies)")

        // files.jsonl marks the refused entries; the counts and acquisition.log say the same.
        let refused = byPath.values.filter { $0["status"] as? String == "refused" }
        #expect(refused.count == 7 && refused.allSatisfy { $0["anomaly"] != nil && $0["error"] != nil }, "\(refused)")
        #expect((phone["files"] as? [String: Any])?["refused"] as? Int == 7)
        let log = try String(contentsOfFile: "\(bundle)/data/acquisition.log", encoding: .utf8)
        #expect(!log.contains("\r"))
        for line in ["anomaly name-with-slash: \(directory)/..\\x2Fevil (skipped)", "anomaly unprintable-name: \(directory)/x\\x0Dforged", "anomaly too-deep: \(deepest)"] {
            #expect(log.contains(line), "\(line) is not in acquisition.log")
        }
        let warnings = try #require(try record(bundle)["warnings"] as? [String])
        #expect(warnings.contains { $0.contains("not followed") }, "\(warnings)")
    }

    /// A USB phone that is not there, or a badly written port, is a clear error that names the
    /// source, and leaves no job, work or bundle behind.
    @Test func aUSBPhoneThatIsNotThereIsAClearErrorAndLeavesNothing() throws {
        let store = try TestStore("phone-usb-missing")
        let missing = try store.acquire("adb:usb:NO-SUCH-PHONE", case: "CASE-U", exhibit: "P1")
        #expect(!missing.succeeded)
        #expect(missing.stderr.contains("no ADB device with usb serial NO-SUCH-PHONE"), "\(missing.stderr)")
        #expect(missing.stderr.contains("[connect-failed]"), "\(missing.stderr)")
        let badPort = try store.acquire("adb:usb-port:one", case: "CASE-U", exhibit: "P1")
        #expect(!badPort.succeeded && badPort.stderr.contains("adb:usb-port:BUS-PORT"), "\(badPort.stderr)")
        #expect(store.bundles.isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(store.root)/work")) ?? []).isEmpty)
    }
}
