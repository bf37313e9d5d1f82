// SPDX-License-Identifier: Apache-2.0
import Daemon
import Foundation
import StatusAPI
import TestSupport
import Testing

/// E01 bundles from `exhibit acquire --format e01`, judged by libewf's own tools (ewfverify,
/// ewfinfo, ewfexport), The Sleuth Kit, and the hub's stock checks as for raw.
@Suite(.serialized, .enabled(if: Subprocess.has("ewfverify") && Subprocess.has("mmls"), "needs ewf-tools and sleuthkit (scripts/install-deps)"))
struct E01AcquisitionTests {
    /// A 64 MiB disk: an MBR with one Linux partition from 1 MiB holding an ext4 file system with
    /// two files, then half random, half zero bytes. Returns its path.
    static func diskWithAFileSystem(in scratch: ScratchDirectory) throws -> String {
        let disk = scratch.file("disk.img")
        let content = scratch.file("content")
        try FileManager.default.createDirectory(atPath: "\(content)/cases", withIntermediateDirectories: true)
        try Data("ledger of transfers\n".utf8).write(to: URL(fileURLWithPath: "\(content)/cases/ledger.txt"))
        try Data(repeating: 0x42, count: 300_000).write(to: URL(fileURLWithPath: "\(content)/photo.jpg"))
        let script = """
            set -e
            truncate -s 64M '\(disk)'
            head -c 20M /dev/urandom | dd of='\(disk)' bs=1M seek=40 conv=notrunc status=none
            printf 'label: dos\\nstart=2048, size=65536, type=83\\n' | sfdisk -q '\(disk)'
            mkfs.ext4 -q -F -d '\(content)' '\(scratch.file("fs.img"))' 32M
            dd if='\(scratch.file("fs.img"))' of='\(disk)' bs=1M seek=1 conv=notrunc status=none
            """
        let made = try Subprocess.shell(script)
        try #require(made.succeeded, "making the disk: \(made)")
        return disk
    }

    @Test func anE01BundlePassesEveryJudge() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01")
        let disk = try Self.diskWithAFileSystem(in: store.scratch)
        let sourceSHA256 = try StockChecks.sum("sha256sum", disk)
        let bundle = try store.acquireBundle(disk, caseId: "KH-2026-0113", exhibit: "E7", ["--format", "e01", "--compression", "fast"])
        let e01 = "\(bundle)/data/image/E7.E01"
        #expect(FileManager.default.fileExists(atPath: e01))
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sourceSHA256)

        let verify = try Subprocess.run(["ewfverify", "-q", e01])
        #expect(verify.succeeded && verify.stdout.contains("SUCCESS"), "ewfverify: \(verify)")
        let info = try Subprocess.run(["ewfinfo", e01]).stdout
        let record = try DamagedMediaTests.record(bundle)
        let digests = try #require((record["media"] as? [String: Any])?["digests"] as? [String: String])
        for expected in [
            "Case number:\t\tKH-2026-0113", "Evidence number:\tE7", "Examiner name:\t\tTest Examiner", "Software version used:\tExhibit",
            "MD5:\t\t\t\(digests["md5"] ?? "?")", "SHA1:\t\t\t\(digests["sha1"] ?? "?")", "Bytes per sector:\t512",
        ] {
            #expect(info.contains(expected), "ewfinfo lacks \(expected):\n\(info)")
        }
        #expect(digests["md5"] == (try StockChecks.sum("md5sum", disk)))
        #expect((record["image"] as? [String: Any])?["format"] as? String == "e01")
        let detail = (record["image"] as? [String: Any])?["detail"] as? String ?? ""
        #expect(detail.contains("compression fast (zlib streams from ISA-L level 2)") && detail.contains("32768-byte chunks of 512-byte sectors"), "\(detail)")
        // A new E01 is read back once complete, decoded by Exhibit's parser, window by window
        // against the tags of the stream read; the chaining values locate a later change.
        let verification = try #require(record["verification"] as? [String: Any])
        #expect(verification["result"] as? String == "matched")
        #expect((verification["method"] as? String)?.contains("read back once complete, decoded by Exhibit's own") == true, "\(verification)")
        #expect((verification["windowChainSHA256"] as? [String])?.isEmpty == false)
        let custody = try String(contentsOfFile: "\(bundle)/data/custody.jsonl", encoding: .utf8)
        #expect(custody.contains("read back once the image was complete"), "\(custody)")
        let rawSize = try FileManager.default.attributesOfItem(atPath: disk)[.size] as? Int ?? 0
        let e01Size = try FileManager.default.attributesOfItem(atPath: e01)[.size] as? Int ?? .max
        #expect(e01Size < rawSize * 3 / 4, "the E01 (\(e01Size) bytes) did not compress the zeros of a \(rawSize)-byte disk")

        // The Sleuth Kit reads it as an EWF image: the partition table, then the file system.
        #expect(try Subprocess.run(["img_stat", e01]).stdout.contains("ewf"))
        let partitions = try Subprocess.run(["mmls", e01]).stdout
        #expect(partitions.contains("0000002048"), "mmls: \(partitions)")
        let files = try Subprocess.run(["fls", "-r", "-o", "2048", e01]).stdout
        #expect(files.contains("ledger.txt") && files.contains("photo.jpg"), "fls: \(files)")
    }

    /// A source given by a relative path through a symlink: the record keeps the words given and
    /// the absolute path the kernel opened (the working directory is recorded nowhere), and the
    /// E01 describes it by the latter, as an image file, not a physical disk.
    @Test func aFileGivenByARelativeLinkIsNamedByWhatWasOpened() throws {
        let store = try TestStore("e01-relative")
        let source = try SourceImage.create(at: store.scratch.file("seized.img"), size: 2 << 20, seed: 41)
        let directory = store.scratch.file("cwd")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: store.scratch.file("link.img"), withDestinationPath: "seized.img")
        let run = try Subprocess.run(
            [BuiltProducts.exhibit, "acquire", "../link.img", "--store", store.root, "--case", "C", "--exhibit", "E1", "--examiner", "T",
             "--json", "--format", "e01"], directory: directory)
        let bundle = try ChangingSourceTests.bundlePath(run)
        let recorded = try #require(try DamagedMediaTests.record(bundle)["source"] as? [String: Any])
        let opened = URL(fileURLWithPath: source).resolvingSymlinksInPath().path
        #expect(recorded["path"] as? String == "../link.img" && recorded["resolvedPath"] as? String == opened, "\(recorded)")
        let info = try Subprocess.run(["ewfinfo", "\(bundle)/data/image/E1.E01"]).stdout
        #expect(info.contains("Description:\t\t\(opened)\n") && info.contains("Is physical:\t\tno"), "\(info)")
    }

    /// The E01 header is tab- and line-separated text: a file name with a tab and a line break
    /// (here one that reads as a case number) is written escaped, as bag-info writes it, and
    /// cannot set fields of its own.
    @Test func aFileNameCannotWriteFieldsOfTheE01Header() throws {
        let store = try TestStore("e01-header-name")
        let source = store.scratch.file("seized\tdisk\nCase number\tFORGED.img")
        _ = try SourceImage.create(at: source, size: 1 << 20, seed: 43)
        let bundle = try store.acquireBundle(source, caseId: "KH-REAL", ["--format", "e01"])
        let info = try Subprocess.run(["ewfinfo", "\(bundle)/data/image/E1.E01"]).stdout
        #expect(info.contains("Case number:\t\tKH-REAL\n") && !info.contains("FORGED\n"), "\(info)")
        #expect(info.contains("seized\\x09disk\\x0ACase number\\x09FORGED.img"), "\(info)")
    }

    /// In 4 MiB segment files libewf closes a chunk section with each file: those are read back
    /// from the store while the disk is still read, the last once the E01 is complete, and the
    /// manifest's digests of the files come from the same reads (bagit.py recomputes them).
    @Test func aSegmentedE01IsReadBackSectionBySectionWhileWritten() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-sections")
        let disk = try Self.diskWithAFileSystem(in: store.scratch)
        let bundle = try store.acquireBundle(disk, exhibit: "E9", ["--format", "e01", "--segment-size", "\(4 << 20)"])
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", disk))
        let verify = try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/E9.E01"])
        #expect(verify.succeeded && verify.stdout.contains("SUCCESS"), "ewfverify: \(verify)")
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(bundle)/data/image")
        #expect(files.filter { $0.hasPrefix("E9.E") }.count > 3, "\(files)")
        let method = try #require((try DamagedMediaTests.record(bundle)["verification"] as? [String: Any])?["method"] as? String)
        #expect(method.contains("each chunk section of the image closed during the first pass (stream bytes 0 to "), "\(method)")
        let log = try String(contentsOfFile: "\(bundle)/data/acquisition.log", encoding: .utf8)
        #expect(log.contains("read back as the first pass closed its chunk sections (stream bytes 0 to "), "\(log)")
    }

    /// Segment files are read back one at a time: an E01 of 48 segments is acquired under a limit
    /// of 40 open files (a service has 1,024; 2 GiB segments of a 1 TB disk are hundreds).
    @Test func anE01OfManySegmentsIsReadBackWithFewDescriptors() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-descriptors")
        let source = try SourceImage.create(at: store.scratch.file("random.img"), size: 48 << 20, seed: 48)
        let result = try Subprocess.run(
            [
                "prlimit", "--nofile=40:40", BuiltProducts.exhibit, "acquire", source, "--store", store.root, "--case", "CASE-1",
                "--exhibit", "E5", "--examiner", "Test Examiner", "--json", "--format", "e01", "--segment-size", "\(1 << 20)",
            ])
        try #require(result.succeeded, "\(result)")
        let bundle = try #require(
            (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["bundlePath"] as? String)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(bundle)/data/image")
        #expect(files.filter { $0.hasPrefix("E5.E") }.count >= 48, "\(files)")
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", source))
        #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/E5.E01"]).succeeded)
        // `exhibit verify` too, whose libewf holds every segment open: its soft limit goes up to the hard one.
        let verify = try Subprocess.run(["prlimit", "--nofile=40:4096", BuiltProducts.exhibit, "verify", bundle, "--trust", store.trustAnchor])
        #expect(verify.succeeded && verify.stdout.contains("INTACT"), "\(verify)")
    }

    /// A chunk changed with its checksum made right reads without error: exhibit verify locates
    /// the change by the chained window values the record keeps, as for raw images.
    @Test func aChunkChangedWithItsChecksumMadeRightIsLocated() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-rechecksummed")
        let source = try SourceImage.create(at: store.scratch.file("random.img"), size: 130 << 20, seed: 130)
        let bundle = try store.acquireBundle(source, ["--format", "e01", "--compression", "none"])
        let e01 = "\(bundle)/data/image/E1.E01"
        try #require(chmod(e01, 0o644) == 0)
        // Stored uncompressed, each chunk followed by its Adler-32: media byte 64 MiB + 100 is in chunk 2048.
        let sectors = try #require(try E01DecoderTests.sections(e01).first { $0.type == "sectors" })
        let chunk = sectors.offset + 76 + 2048 * (32768 + 4)
        try E01DecoderTests.patch(e01, at: chunk + 100) { $0[0] ^= 0x5A }
        try E01DecoderTests.rechecksum(e01, over: chunk, count: 32768)
        let verify = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(!verify.succeeded)
        #expect(verify.stdout.contains("stream bytes 67108864-134217727 hold the first change from what was acquired"), "\(verify.stdout)")
    }

    /// One flipped byte inside a compressed chunk: libewf's ewfverify, the seal's manifest and
    /// `exhibit verify` (naming the chunk's byte range) all catch it.
    @Test func aFlippedByteInACompressedChunkIsCaughtByEveryJudge() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-flip")
        let disk = try Self.diskWithAFileSystem(in: store.scratch)
        let bundle = try store.acquireBundle(disk, ["--format", "e01"])
        let e01 = "\(bundle)/data/image/E1.E01"
        // Inside the first chunks' compressed data (the sections before them are a few KiB).
        let size = (try FileManager.default.attributesOfItem(atPath: e01)[.size] as? Int) ?? 0
        try #require(size > 1 << 20)
        #expect(chmod(e01, 0o644) == 0)
        let flip = try Subprocess.shell("printf '\\x5a' | dd of='\(e01)' bs=1 seek=600000 conv=notrunc status=none")
        try #require(flip.succeeded)
        #expect(try Subprocess.run(["ewfverify", "-q", e01]).succeeded == false, "ewfverify missed the flipped byte")
        #expect(try StockChecks.bagit(bundle).succeeded == false)
        let verify = try exhibit(["verify", bundle, "--trust", store.trustAnchor])
        #expect(!verify.succeeded && verify.stdout.contains("NOT INTACT"))
        #expect(verify.stdout.contains("E1.E01: SHA-256 differs from the manifest"), "\(verify.stdout)")
        // Named as the hub finds it: the chunk's media bytes, its segment file and where in it the chunk is stored.
        let named = try #require(
            verify.stdout.firstMatch(of: #/E1\.E01 at byte ([0-9]+); the E01 chunk stored there, holding media bytes [0-9]+ to [0-9]+, is damaged/#),
            "\(verify.stdout)")
        let stored = try #require(Int(named.output.1))
        #expect(stored <= 600000 && stored > 600000 - 33000, "\(named.output.0)")
    }

    /// Damaged media into an E01: unreadable sectors zero-filled at their own offsets, listed in
    /// the E01's acquisition-error section exactly as in acquisition.json, and the stream libewf
    /// exports is the one sealed.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"), arguments: [512, 4096])
    func unreadableSectorsAreListedInTheE01(sectorSize: Int) throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-bad\(sectorSize)")
        let size = 24 << 20
        let backing = try SourceImage.create(at: store.scratch.file("failing.img"), size: size, seed: UInt64(sectorSize) + 7)
        let sector = UInt64(sectorSize)
        let bad: [(first: UInt64, count: UInt64)] = [((1 << 20) / sector + 3, 1), ((9 << 20) / sector, 40), (UInt64(size) / sector - 2, 1)]
        let bytes = bad.map { (offset: $0.first * sector, length: $0.count * sector) }
        let device = try FaultyLoopDevice(
            backing: backing, badRanges: bytes, sectorSize: sectorSize, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let expected = try DamagedMediaTests.expectedSHA256(of: backing, zeroing: bytes, scratch: store.scratch)

        let bundle = try store.acquireBundle(device.loop.path, ["--format", "e01"])
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
        #expect(try DamagedMediaTests.recordedRanges(bundle) == bad.map { [$0.first, $0.count, 5] })
        let e01 = "\(bundle)/data/image/E1.E01"
        #expect(try Subprocess.run(["ewfverify", "-q", e01]).succeeded)
        let info = try Subprocess.run(["ewfinfo", e01]).stdout
        #expect(info.contains("Bytes per sector:\t\(sectorSize)"))
        for range in bad {
            #expect(
                info.contains("at sector(s): \(range.first) - \(range.first + range.count - 1) number: \(range.count)"),
                "ewfinfo lacks \(range):\n\(info)")
        }
        // exhibit verify holds the two lists together: a record that drops a range is named.
        let forged = store.scratch.file("forged")
        try FileManager.default.createDirectory(atPath: forged, withIntermediateDirectories: true)
        let copy = "\(forged)/\((bundle as NSString).lastPathComponent)"
        try #require(try Subprocess.run(["cp", "-a", bundle, copy]).succeeded && (try Subprocess.shell("chmod -R u+w '\(copy)'")).succeeded)
        try HostileBundleTests.forgeRecord(copy, "r['unreadableRanges'] = r['unreadableRanges'][1:]")
        let verify = try exhibit(["verify", copy, "--trust", store.trustAnchor])
        let first = bad[0].first * sector
        #expect(!verify.succeeded && verify.stdout.contains("the E01 lists unreadable bytes \(first)-\(first + sector - 1), "), "\(verify.stdout)")
    }

    /// SIGKILL in the middle of the first pass of an E01 (decided from the journal, not a clock):
    /// the next run proves from the journaled digest state that the source is unchanged, lets
    /// libewf continue its segment file, and seals the uninterrupted run's digests; ewfverify and
    /// every stock check pass.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aKilledE01AcquisitionResumesToTheSameDigests() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-kill")
        let (backing, device, arguments) = try Self.killedAt24MiB(store)
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        #expect(store.bundles.isEmpty)

        let resumed = try withExtendedLifetime(device) { try exhibit(arguments) }
        try #require(resumed.succeeded, "\(resumed)")
        let bundle = try ChangingSourceTests.bundlePath(resumed)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sourceSHA256)
        #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/E1.E01"]).succeeded)
        let interruptions = try DamagedMediaTests.record(bundle)["interruptions"] as? [[String: Any]] ?? []
        #expect(interruptions.count == 1)
        let proof = interruptions.first?["continuityCheck"] as? String ?? ""
        #expect(proof.contains("intermediate hash value equals the one journaled"), "\(interruptions)")
        // Its first bytes were written by another run: read back whole and hashed, not by windows.
        let method = (try DamagedMediaTests.record(bundle)["verification"] as? [String: Any])?["method"] as? String ?? ""
        #expect(method.contains("re-hashed with SHA-256 (always, because the job was interrupted"), "\(method)")
    }

    /// A 64 MiB disk (half random, half zero) on a slow faulty loop device, its E01 acquisition
    /// SIGKILLed once the journal names 24 MiB written: the disk, its device (alive, for the
    /// test to change) and the arguments that resume the job.
    /// With `wearingOut`, the source is the device's image file, whose every read reaches the range.
    static func killedAt24MiB(
        _ store: TestStore, _ options: [String] = [], wearingOut: [(offset: UInt64, length: UInt64, goodReads: Int)] = []
    ) throws -> (backing: String, device: FaultyLoopDevice, arguments: [String]) {
        let backing = store.scratch.file("disk.img")
        try #require(try Subprocess.shell("head -c 32M /dev/urandom > '\(backing)'; head -c 32M /dev/zero >> '\(backing)'").succeeded)
        let device = try FaultyLoopDevice(
            backing: backing, wearingOut: wearingOut, delayMilliseconds: 15, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let source = wearingOut.isEmpty ? device.loop.path : device.imagePath
        let arguments = ChangingSourceTests.acquisition(source, store: store.root) + ["--format", "e01"] + options
        let run = try ChangingSourceTests.Run(arguments, scratch: store.scratch, label: "killed")
        try #require(run.waitForJournal(store: store.root, atLeast: 24 << 20), "the job never got going: \(run.stderr)")
        kill(run.process.processIdentifier, SIGKILL)
        run.process.waitUntilExit()
        return (backing, device, arguments)
    }

    /// A disk that degraded while its E01 job was stopped: the resumed run cannot prove it the same
    /// device by its digest, since a sector read before is unreadable now. It says so (not that
    /// the device was changed), and acquires it anew with that sector listed.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aDiskThatDegradedWhileStoppedIsNamedDegradedNotChanged() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-degraded")
        let (backing, device, arguments) = try Self.killedAt24MiB(store)
        let bad = [(offset: UInt64(1 << 20), length: UInt64(512))]
        try device.setBadRanges(bad)

        let resumed = try withExtendedLifetime(device) { try exhibit(arguments) }
        try #require(resumed.succeeded, "\(resumed)")
        let bundle = try ChangingSourceTests.bundlePath(resumed)
        let expected = try DamagedMediaTests.expectedSHA256(of: backing, zeroing: bad, scratch: store.scratch)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
        let warnings = try DamagedMediaTests.record(bundle)["warnings"] as? [String] ?? []
        #expect(
            warnings.contains { $0.contains("was not continued") && $0.contains("source bytes 1048576-") && $0.contains("the device degraded") },
            "\(warnings)")
        #expect(!warnings.contains { $0.contains("no longer hash") }, "\(warnings)")
    }

    /// A sector that wears out while the job resumes: read by the killed run, then by the resumed
    /// run's continuity proof (which therefore holds), it fails as that run reads again from
    /// libewf's last closed section. The digests restored at the journal's offset cover the sector
    /// as first read, the image would hold zeros: the job is acquired anew, its record saying why,
    /// the sector listed as unreadable.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aSectorThatFailsAfterTheContinuityProofStartsANewJob() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-worn")
        let worn = (offset: UInt64(8 << 20), length: UInt64(4096))
        let (backing, device, arguments) = try Self.killedAt24MiB(store, wearingOut: [(worn.offset, worn.length, goodReads: 2)])

        let resumed = try withExtendedLifetime(device) { try exhibit(arguments) }
        try #require(resumed.succeeded, "\(resumed)")
        let bundle = try ChangingSourceTests.bundlePath(resumed)
        let expected = try DamagedMediaTests.expectedSHA256(of: backing, zeroing: [worn], scratch: store.scratch)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
        let record = try DamagedMediaTests.record(bundle)
        #expect((record["interruptions"] as? [Any])?.isEmpty ?? true, "the sealed job is a new one")
        let warnings = record["warnings"] as? [String] ?? []
        #expect(
            warnings.contains {
                $0.contains("was not continued") && $0.contains("source bytes \(worn.offset)-") && $0.contains("read again from byte")
                    && $0.contains("the device degraded")
            }, "\(warnings)")
        #expect(try DamagedMediaTests.recordedRanges(bundle).map { Array($0.prefix(2)) } == [[worn.offset / 512, worn.length / 512]])
        let list = try exhibit(["list", "--store", store.root])
        #expect(list.stdout.contains("failed") && list.stdout.contains("source changed since the interruption"), "\(list)")
    }

    /// The same degraded disk, its E01 in 4 MiB segments: the sector now unreadable lies in a
    /// chunk section libewf closed before the kill, so the resumed run takes it from the image as
    /// stored, proves the whole by the journaled digest, and continues; the bundle holds the
    /// sector as first read (the uninterrupted run's digest), and the record says the disk degraded.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aDiskThatDegradedWhileStoppedIsContinuedFromTheClosedSections() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-degraded-continued")
        let (backing, device, arguments) = try Self.killedAt24MiB(store, ["--segment-size", "4M"])
        let sourceSHA256 = try StockChecks.sum("sha256sum", backing)
        try device.setBadRanges([(offset: UInt64(1 << 20), length: UInt64(512))])

        let resumed = try withExtendedLifetime(device) { try exhibit(arguments) }
        try #require(resumed.succeeded, "\(resumed)")
        let bundle = try ChangingSourceTests.bundlePath(resumed)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sourceSHA256)
        #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/E1.E01"]).succeeded)
        let record = try DamagedMediaTests.record(bundle)
        let proof = (record["interruptions"] as? [[String: Any]])?.first?["continuityCheck"] as? String ?? ""
        #expect(proof.contains("from byte 1048576 on, taken from the image as stored before the interruption"), "\(proof)")
        let warnings = record["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("degraded while the job was stopped") && $0.contains("from byte 1048576 on") }, "\(warnings)")
        #expect((record["unreadableSectors"] as? NSNumber)?.intValue == 0)
    }

    /// SIGKILL while the E01 is being completed (every byte in the store and the digests final,
    /// the staged stream being encoded and libewf finalizing; decided from the journal: phase
    /// `imaged`, no image files yet): the next run completes the E01 from the store, and every
    /// judge accepts it. The unreadable sector early in the disk makes the E01 stage nearly all
    /// of the stream, so completion takes long enough to be hit.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aKillWhileTheE01IsCompletedIsResumedFromTheStore() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-complete-kill")
        let backing = try E01Judges.halfRandomHalfZero(at: store.scratch.file("disk.img"), size: 256 << 20, seed: "complete-kill")
        let bad = [(offset: UInt64(1 << 20), length: UInt64(512))]
        let device = try FaultyLoopDevice(backing: backing, badRanges: bad, scratch: store.scratch, fixture: fixturePath("faultfile.c"))
        let expected = try DamagedMediaTests.expectedSHA256(of: backing, zeroing: bad, scratch: store.scratch)
        let arguments = ChangingSourceTests.acquisition(device.loop.path, store: store.root) + ["--format", "e01"]
        let run = try ChangingSourceTests.Run(arguments, scratch: store.scratch, label: "completing")
        let completing = run.waitForJournal(store: store.root, timeout: 300, pollMicroseconds: 2_000) {
            $0["phase"] as? String == "imaged" && $0["imageFiles"] == nil
        }
        kill(run.process.processIdentifier, SIGKILL)
        run.process.waitUntilExit()
        try #require(completing, "the job was not seen completing its E01: \(run.stderr)")
        #expect(store.bundles.isEmpty)

        let resumed = try exhibit(arguments)
        try #require(resumed.succeeded, "\(resumed)")
        let bundle = try ChangingSourceTests.bundlePath(resumed)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
        let e01 = "\(bundle)/data/image/E1.E01"
        #expect(try Subprocess.run(["ewfverify", "-q", e01]).succeeded)
        #expect(try Subprocess.run(["ewfinfo", e01]).stdout.contains("at sector(s): 2048 - 2048 number: 1"))
        // libewf had kept none of the chunks before the staged stream: they came from the source again, proved by SHA-256.
        let interruptions = try DamagedMediaTests.record(bundle)["interruptions"] as? [[String: Any]] ?? []
        let proof = interruptions.first?["continuityCheck"] as? String ?? ""
        #expect(interruptions.count == 1 && proof.contains("lost bytes 0-1048575 and took them from this read"), "\(interruptions)")
    }

    /// A job resumed after its first pass completes its E01 with a new writer; that writer keeps
    /// the store's room for records as the first pass's did. Killed in its second pass, the job
    /// is resumed with 8 MiB more than that room free (enough for the 4 MiB staged stream, not
    /// for the reserve and one interval of writes): it stops as `store full`, keeping its work,
    /// and completes once the space is back.
    @Test(.enabled(if: FaultyLoopDevice.unavailableReason == nil, "needs root, loop devices and FUSE"))
    func aResumedE01KeepsTheStoreReserve() throws {
        try StockChecks.requireTools()
        let store = try TestStore("e01-resumed-reserve", onTmpfsOf: "256M")
        let (scratch, root, mount) = (store.scratch, store.root, store.mount!)
        let backing = try SourceImage.create(at: scratch.file("failing.img"), size: 48 << 20, seed: 23)
        let bad = [(offset: UInt64(44 << 20), length: UInt64(400 * 512))]
        // Each read a few milliseconds late: a second pass of seconds, long enough to be hit.
        let device = try FaultyLoopDevice(
            backing: backing, badRanges: bad, delayMilliseconds: 3, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let expected = try DamagedMediaTests.expectedSHA256(of: backing, zeroing: bad, scratch: scratch)
        let arguments = ChangingSourceTests.acquisition(device.loop.path, store: root) + ["--format", "e01"]
        try DamagedMediaTests.killJob(arguments, whenJournalIn: "recovering", copiedBelow: .max, work: "\(root)/work")

        let filler = "\(mount)/filler"
        let free = try Subprocess.shell("df -B1 --output=avail '\(mount)' | tail -1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fill = try #require(UInt64(free)) - (72 << 20)
        try #require(try Subprocess.shell("fallocate -l \(fill) '\(filler)'").succeeded)
        let full = try exhibit(arguments)
        #expect(!full.succeeded && full.stderr.contains("failed: store: store full") && full.stderr.contains("kept for records"), "\(full)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/bundles")) ?? []).isEmpty)

        unlink(filler)
        let resumed = try withExtendedLifetime(device) { try exhibit(arguments) }
        try #require(resumed.succeeded, "after freeing space: \(resumed)")
        let bundle = try ChangingSourceTests.bundlePath(resumed)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: expected)
        #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/E1.E01"]).succeeded)
        let reasons = (try DamagedMediaTests.record(bundle)["interruptions"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons.count == 2 && reasons.last?.contains("store full") == true, "\(reasons)")
    }

    /// The daemon configured for E01 (`imageFormat`, `compression`) by the lab's settings file in
    /// the store (no `--config`, as on the appliance): a disk that arrives in an auto case is
    /// sealed as an E01 that every judge accepts, and its slot says its format.
    @Test(.enabled(if: loopUnavailable == nil, loopSkipComment))
    func theDaemonWritesE01WhenConfiguredSo() throws {
        try StockChecks.requireTools()
        let daemon = try TestDaemon("daemon-e01", configuration: #"{"imageFormat": "e01", "compression": "best"}"#, inStore: true)
        #expect(
            daemon.process.log.contains("settings: \(DaemonConfiguration.storeSettingsPath(store: daemon.store.root)): image format E01 best,"),
            "\(daemon.process.log)")
        #expect(try daemon.cli(["case", "open", "--case", "KH-E", "--examiner", "Daemon Tester", "--auto"]).succeeded)
        let image = try SourceImage.create(at: daemon.store.scratch.file("s.img"), size: 12 << 20, seed: 33)
        let disk = try LoopDevice(backing: image, readOnly: true)
        defer { disk.detach() }
        let acquiring = try daemon.waitForSlot(disk.path, timeout: 60) { $0.jobId != nil }
        #expect(acquiring?.imageFormat == "E01 best", "\(String(describing: acquiring))")
        let done = try daemon.waitForSlot(disk.path, timeout: 120) { [.sealed, .failed, .interrupted].contains($0.state) }
        let sealed = try #require(done, "not finished: \(daemon.process.log)")
        #expect(sealed.state == .sealed, "\(sealed.detail ?? "")")
        let bundle = try #require(sealed.bundlePath)
        try StockChecks.expectAllPass(bundle, trust: daemon.store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", image))
        let e01 = try #require(try StockChecks.e01Name(bundle))
        let info = try Subprocess.run(["ewfinfo", "\(bundle)/data/image/\(e01)"]).stdout
        #expect(info.contains("Case number:\t\tKH-E") && info.contains("Compression level:\tbest compression"), "\(info)")
        #expect(try Subprocess.run(["ewfverify", "-q", "\(bundle)/data/image/\(e01)"]).succeeded)
    }
}
