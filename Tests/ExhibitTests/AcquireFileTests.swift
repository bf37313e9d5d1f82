// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// Acquisitions from regular image files, judged by the hub's stock tools.
@Suite struct AcquireFileTests {
    @Test func oddSizedFileWithAllDigestsPassesEveryStockCheck() throws {
        try StockChecks.requireTools()
        let store = try TestStore("file")
        // Not a multiple of 512: the trailing partial sector must be imaged too.
        let source = try SourceImage.create(at: store.scratch.file("odd.img"), size: 3_000_003)
        let bundle = try store.acquireBundle(source, ["--digest", "md5,sha1"])
        let sha256 = try StockChecks.sum("sha256sum", source)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: sha256)
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-MD5") == StockChecks.sum("md5sum", source))
        #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-SHA1") == StockChecks.sum("sha1sum", source))
        #expect(try StockChecks.bagInfo(bundle, "Internal-Sender-Identifier") == "exhibit-test-file")

        let record = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: "\(bundle)/data/acquisition.json"))) as! [String: Any]
        let media = record["media"] as! [String: Any]
        #expect(media["sizeBytes"] as? Int == 3_000_003)
        #expect(media["trailingBytes"] as? Int == 3_000_003 % 512)
        #expect((record["verification"] as! [String: Any])["result"] as? String == "matched")
    }

    @Test func segmentedImageConcatenatesToTheSource() throws {
        try StockChecks.requireTools()
        let store = try TestStore("segments")
        let source = try SourceImage.create(at: store.scratch.file("seg.img"), size: 3_500_000)
        let bundle = try store.acquireBundle(source, ["--segment-size", "1M"])
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(bundle)/data/image").sorted()
        #expect(files == ["E1.raw.000", "E1.raw.001", "E1.raw.002", "E1.raw.003"])
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", source))
        // Each segment's manifest line is checkable with coreutils alone.
        #expect(try Subprocess.shell("cd '\(bundle)' && sha256sum -c --quiet manifest-sha256.txt").succeeded)
    }

    @Test func consecutiveBundlesChainTheirSeals() throws {
        let store = try TestStore("chain")
        let source = try SourceImage.create(at: store.scratch.file("a.img"), size: 100_000)
        let first = try store.acquireBundle(source, exhibit: "E1", ["--no-verify"])
        let second = try store.acquireBundle(source, exhibit: "E2", ["--no-verify"])
        #expect(try StockChecks.bagInfo(first, "Previous-Bundle-Seal-SHA256") == String(repeating: "0", count: 64))
        #expect(try StockChecks.bagInfo(second, "Previous-Bundle-Seal-SHA256") == StockChecks.sum("sha256sum", "\(first)/seal.p7s"))
        #expect(try StockChecks.bagInfo(second, "Exhibit-Verification") == "skipped")
        let listing = try StoreListing.of(store.root)
        #expect(listing.entries.filter { $0.state == .sealed }.count == 2, "\(listing.entries)")
        #expect(listing.hasEvent("bundle-sealed"))
    }

    @Test func badSourcesAreRefusedWithTheirReason() throws {
        let store = try TestStore("refusals")
        let empty = store.scratch.file("empty.img")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let emptyResult = try store.acquire(empty)
        #expect(emptyResult.status != 0)
        #expect(emptyResult.stderr.contains("source is empty") && emptyResult.stderr.contains(empty))
        let missing = try store.acquire(store.scratch.file("nope.img"))
        #expect(missing.status != 0 && missing.stderr.contains("source not found"))
        let directory = try store.acquire(store.scratch.path)
        #expect(directory.status != 0 && directory.stderr.contains("not a block device or a regular file"))
        let badDigest = try store.acquire(empty, ["--digest", "crc32"])
        #expect(badDigest.status != 0 && badDigest.stderr.contains("unknown digest"))
        #expect(store.bundles.isEmpty)
        let unprovisioned = try exhibit([
            "acquire", empty, "--store", store.scratch.file("none"), "--case", "C", "--exhibit", "E", "--examiner", "X",
        ])
        #expect(unprovisioned.status != 0 && unprovisioned.stderr.contains("exhibit provision"))
    }

    @Test func provisioningTwiceChangesNothing() throws {
        let store = try TestStore("idempotent")
        let before = try Subprocess.shell("sha256sum '\(store.root)'/keys/* '\(store.root)'/store.json").stdout
        let again = try exhibit(["provision", "--store", store.root])
        #expect(again.succeeded && again.stdout.contains("unchanged"))
        let after = try Subprocess.shell("sha256sum '\(store.root)'/keys/* '\(store.root)'/store.json").stdout
        #expect(before == after)
        let mode = try Subprocess.shell("stat -c %a '\(store.root)/keys/device.key'").stdout
        #expect(mode.trimmingCharacters(in: .whitespacesAndNewlines) == "600")
    }

    @Test func aStoreWhoseParentIsMissingIsRefusedWithTheFix() throws {
        let scratch = try ScratchDirectory("no-parent")
        let store = scratch.file("missing/store")
        let refused = try exhibit(["provision", "--store", store])
        #expect(!refused.succeeded && refused.stderr.contains("the directory it would be in does not exist"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("missing")), "a mistyped path grew a directory")
    }

    /// The CSR flow: the agency (here, stock `openssl`) signs the appliance's request.
    @Test func agencyIssuedCertificateFromARequestSealsVerifiableBundles() throws {
        try StockChecks.requireTools()
        let scratch = try ScratchDirectory("csr")
        let store = scratch.file("store")
        let csr = scratch.file("device.csr")
        let request = try exhibit(["provision", "--store", store, "--appliance-id", "lab-7-imager", "--organization", "Lab 7", "--csr", csr])
        #expect(request.succeeded, "\(request)")
        #expect(!FileManager.default.fileExists(atPath: "\(store)/keys/device.pem"))
        let agency = try Subprocess.shell(
            """
            cd '\(scratch.path)' && \
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
              -subj '/CN=Agency Root' -days 30 -addext basicConstraints=critical,CA:TRUE \
              -addext keyUsage=critical,keyCertSign,cRLSign 2>&1 && \
            openssl x509 -req -in device.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out device.pem 2>&1
            """)
        try #require(agency.succeeded, "\(agency)")
        // A certificate from a request of another key is refused.
        let stranger = try exhibit(["provision", "--store", store, "--import-cert", scratch.file("ca.pem"), "--trust", scratch.file("ca.pem")])
        #expect(stranger.status != 0 && stranger.stderr.contains("not for this appliance's device key"))
        let imported = try exhibit(["provision", "--store", store, "--import-cert", scratch.file("device.pem"), "--trust", scratch.file("ca.pem")])
        #expect(imported.succeeded, "\(imported)")
        let source = try SourceImage.create(at: scratch.file("src.img"), size: 200_000)
        let acquired = try exhibit(["acquire", source, "--store", store, "--case", "C", "--exhibit", "E", "--examiner", "X", "--json"])
        try #require(acquired.succeeded, "\(acquired)")
        let bundle = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(store)/bundles").first)
        try StockChecks.expectAllPass(
            "\(store)/bundles/\(bundle)", trust: scratch.file("ca.pem"), sourceSHA256: try StockChecks.sum("sha256sum", source))
    }

    /// A bundle that cannot be moved into `bundles/` (here an immutable directory) is taken back
    /// out of the catalog, and its job stays interrupted with its image; once the store is fixed
    /// the next run finishes it from the store, and its seal is the first of the chain (the
    /// record that was taken back left nothing to link to).
    @Test(.enabled(if: ImmutableBundles.unavailableReason == nil, "needs chattr +i on the test stores' file system"))
    func aBundleThatCannotBeMovedLeavesAJobThatFinishesFromTheStore() throws {
        try StockChecks.requireTools()
        let store = try TestStore("unmovable")
        let immutable = try ImmutableBundles(in: store)
        let source = try SourceImage.create(at: store.scratch.file("s.img"), size: 5 << 20)
        let first = try store.acquire(source)
        #expect(!first.succeeded && first.stderr.contains("rename"), "\(first)")
        let listing = try StoreListing.of(store.root)
        #expect(listing.hasJob(in: .interrupted) && listing.entries.allSatisfy { $0.bundleId == nil }, "\(listing.entries)")

        try immutable.release()
        let bundle = try store.acquireBundle(source)
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", source))
        #expect(try StockChecks.bagInfo(bundle, "Previous-Bundle-Seal-SHA256") == String(repeating: "0", count: 64))
        let record = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(bundle)/data/acquisition.json"))) as? [String: Any])
        #expect((record["interruptions"] as? [Any])?.count == 1, "\(record["interruptions"] ?? "none")")
        #expect(store.bundles.count == 1)
    }

    /// A job is recorded sealed, then its bag is moved into `bundles/`, then its work directory
    /// is removed. A process killed after the record leaves the bag in its work directory (or
    /// only the directory); the next command that reconciles the store publishes the bag and
    /// removes the work, leaves any other job's work alone, and the chain of seals has no gap.
    @Test func aBundleRecordedButNotMovedIsPublishedByTheNextCommand() throws {
        try StockChecks.requireTools()
        let store = try TestStore("tidy")
        let source = try SourceImage.create(at: store.scratch.file("s.img"), size: 3 << 20)
        let result = try store.acquire(source)
        try #require(result.succeeded, "\(result)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let jobId = try #require(summary["jobId"] as? String)
        let bundleId = try #require(summary["bundleId"] as? String)
        let bundle = "\(store.root)/bundles/\(bundleId)"
        let sealedWork = "\(store.root)/work/\(jobId)"
        let otherWork = "\(store.root)/work/not-a-sealed-job"
        for directory in [sealedWork, otherWork] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data("journal".utf8).write(to: URL(fileURLWithPath: "\(directory)/journal.json"))
        }
        // What a kill between the record and the move leaves: the sealed bag under work/.
        try FileManager.default.moveItem(atPath: bundle, toPath: "\(sealedWork)/\(bundleId)")

        let listing = try StoreListing.of(store.root)
        #expect(!FileManager.default.fileExists(atPath: sealedWork))
        #expect(FileManager.default.fileExists(atPath: "\(otherWork)/journal.json"))
        #expect(listing.hasEvent("bundle-published"), "\(listing.events)")
        try StockChecks.expectAllPass(bundle, trust: store.trustAnchor, sourceSHA256: try StockChecks.sum("sha256sum", source))

        // The next bundle links to the one published late.
        let next = try store.acquireBundle(source, exhibit: "E2", ["--no-verify"])
        #expect(try StockChecks.bagInfo(next, "Previous-Bundle-Seal-SHA256") == StockChecks.sum("sha256sum", "\(bundle)/seal.p7s"))

        // A work directory left without its bag (killed after the move) is only removed.
        try FileManager.default.createDirectory(atPath: sealedWork, withIntermediateDirectories: true)
        #expect(try exhibit(["list", "--store", store.root]).succeeded)
        #expect(!FileManager.default.fileExists(atPath: sealedWork))
        #expect(FileManager.default.fileExists(atPath: "\(bundle)/seal.p7s"))
    }
}
