// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// Each tampering must make `exhibit verify` fail and name the cause, and the stock check that
/// should catch it must fail too.
@Suite(.serialized) struct TamperTests {
    final class Fixture: @unchecked Sendable {
        let store: TestStore
        let bundle: String
        let sourceSHA256: String

        init() throws {
            store = try TestStore("tamper")
            let source = try SourceImage.create(at: store.scratch.file("t.img"), size: 200 << 20)
            bundle = try store.acquireBundle(source, ["--segment-size", "64M"])
            sourceSHA256 = try StockChecks.sum("sha256sum", source)
        }

        /// A writable copy of the sealed bundle to tamper with.
        func copy(_ name: String) throws -> String {
            let target = store.scratch.file(name)
            try #require(try Subprocess.run(["cp", "-a", bundle, target]).succeeded)
            try #require(try Subprocess.shell("chmod -R u+w '\(target)'").succeeded)
            return target
        }

        func verify(_ bundle: String) throws -> Subprocess.Result {
            try exhibit(["verify", bundle, "--trust", store.trustAnchor, "--json"])
        }
    }

    static let fixture = Result { try Fixture() }

    func fixture() throws -> Fixture { try Self.fixture.get() }

    /// Recomputes both manifests with coreutils, as an attacker without the key would.
    func remanifest(_ bag: String) throws {
        let script = """
            cd '\(bag)' && find data -type f | LC_ALL=C sort | xargs sha256sum > manifest-sha256.txt && \
            sed -i "s/^Payload-Oxum: .*/Payload-Oxum: $(find data -type f -printf '%s\\n' | awk '{s+=$1} END {print s}').$(find data -type f | wc -l)/" bag-info.txt && \
            sha256sum bagit.txt bag-info.txt manifest-sha256.txt > tagmanifest-sha256.txt
            """
        try #require(try Subprocess.shell(script).succeeded)
    }

    @Test func untouchedBundlePassesEverything() throws {
        try StockChecks.requireTools()
        let fixture = try fixture()
        try StockChecks.expectAllPass(fixture.bundle, trust: fixture.store.trustAnchor, sourceSHA256: fixture.sourceSHA256)
    }

    @Test func flippedImageByteIsLocated() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("flip")
        // Byte 100 000 000 of the stream lies in the second 64 MiB segment.
        let segment = "\(bag)/data/image/E1.raw.001"
        let offset = 100_000_000 - (64 << 20)
        try #require(try Subprocess.shell("printf '\\x5a' | dd of='\(segment)' bs=1 seek=\(offset) conv=notrunc status=none").succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("data/image/E1.raw.001"))
        // The 64 MiB verification window holding the byte, as a range of that segment.
        #expect(verify.stdout.contains("\"first\" : 0") && verify.stdout.contains("\"last\" : 67108863"))
        #expect(verify.stdout.contains("stream bytes 67108864-134217727"))
        #expect(try !StockChecks.bagit(bag).succeeded)
        #expect(try StockChecks.imageSHA256(bag) != fixture.sourceSHA256)
    }

    @Test func addedRemovedAndRenamedPayloadFilesAreCaught() throws {
        let fixture = try fixture()
        let added = try fixture.copy("added")
        _ = FileManager.default.createFile(atPath: "\(added)/data/note.txt", contents: Data("planted\n".utf8))
        let addedResult = try fixture.verify(added)
        #expect(addedResult.status == 1 && addedResult.stdout.contains("data/note.txt"))
        #expect(try !StockChecks.bagit(added).succeeded)

        let removed = try fixture.copy("removed")
        try FileManager.default.removeItem(atPath: "\(removed)/data/acquisition.log")
        let removedResult = try fixture.verify(removed)
        #expect(removedResult.status == 1 && removedResult.stdout.contains("data/acquisition.log"))
        #expect(try !StockChecks.bagit(removed).succeeded)

        let renamed = try fixture.copy("renamed")
        try FileManager.default.moveItem(atPath: "\(renamed)/data/image/E1.raw.002", toPath: "\(renamed)/data/image/E1.raw.009")
        let renamedResult = try fixture.verify(renamed)
        #expect(renamedResult.status == 1)
        #expect(renamedResult.stdout.contains("E1.raw.009") && renamedResult.stdout.contains("E1.raw.002"))
        // The image file the manifest lists is missed by the manifest's check itself, not only by the media's.
        let findings = (try JSONSerialization.jsonObject(with: Data(renamedResult.stdout.utf8)) as? [String: Any])?["findings"] as? [[String: String]]
        #expect(
            findings?.contains { $0["check"] == "payload-manifest" && $0["file"] == "data/image/E1.raw.002" } == true,
            "\(renamedResult.stdout)")
        #expect(try !StockChecks.bagit(renamed).succeeded)
    }

    @Test func remanifestedBagFailsOnlyTheSeal() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("remanifest")
        try #require(try Subprocess.shell("printf 'x' >> '\(bag)/data/acquisition.log'").succeeded)
        try remanifest(bag)
        // BagIt alone is fooled: that is why there is a seal.
        #expect(try StockChecks.bagit(bag).succeeded)
        #expect(try !StockChecks.cms(bag, trust: fixture.store.trustAnchor).succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1 && verify.stdout.contains("\"check\" : \"seal\""))
    }

    @Test func resealedByAnotherAgencyFails() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("resigned")
        let other = try TestStore("other-agency")
        // Same appliance CN, different (self-made) CA: re-sign the tag manifest with its device key.
        let result = try Subprocess.shell(
            """
            openssl cms -sign -binary -in '\(bag)/tagmanifest-sha256.txt' -signer '\(other.root)/keys/device.pem' \
              -inkey '\(other.root)/keys/device.key' -md sha256 -outform DER -out '\(bag)/seal.p7s'
            """)
        try #require(result.succeeded, "\(result)")
        #expect(try !StockChecks.cms(bag, trust: fixture.store.trustAnchor).succeeded)
        #expect(try StockChecks.cms(bag, trust: other.trustAnchor).succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1 && verify.stdout.contains("\"check\" : \"seal\""))
        // Trusting the other agency instead still fails: the signer is not the bag's appliance.
        let other_ = try exhibit(["verify", bag, "--trust", other.trustAnchor])
        #expect(other_.status == 1 && other_.stdout.contains("bag-info names appliance"))
    }

    @Test func custodyEditsRemovalsAndReordersAreCaught() throws {
        let fixture = try fixture()
        let edits = [
            ("edited", "sed -i '2s/write-protection-verified/write-protection-skipped/' data/custody.jsonl"),
            ("dropped", "sed -i '2d' data/custody.jsonl"),
            ("reordered", "{ sed -n '2p' data/custody.jsonl; sed -n '1p' data/custody.jsonl; sed -n '3,$p' data/custody.jsonl; } > c && mv c data/custody.jsonl"),
        ]
        for (name, edit) in edits {
            let bag = try fixture.copy("custody-\(name)")
            try #require(try Subprocess.shell("cd '\(bag)' && \(edit)").succeeded)
            let verify = try fixture.verify(bag)
            #expect(verify.status == 1 && verify.stdout.contains("custody-chain"), "\(name): \(verify)")
            #expect(try !StockChecks.custodyChain(bag), "\(name): jq chain check")
            #expect(try !StockChecks.bagit(bag).succeeded, "\(name): bagit")
            // Even with the manifests recomputed, the seal no longer matches.
            try remanifest(bag)
            #expect(try !StockChecks.cms(bag, trust: fixture.store.trustAnchor).succeeded, "\(name): cms")
            #expect(try fixture.verify(bag).status == 1)
        }
    }

    @Test func bagInfoEditIsCaught() throws {
        let fixture = try fixture()
        let bag = try fixture.copy("baginfo")
        try #require(try Subprocess.shell("sed -i 's/^External-Identifier: .*/External-Identifier: OTHER\\/E9/' '\(bag)/bag-info.txt'").succeeded)
        let verify = try fixture.verify(bag)
        #expect(verify.status == 1 && verify.stdout.contains("bag-info.txt") && verify.stdout.contains("tag-manifest"))
        #expect(try !StockChecks.bagit(bag).succeeded)
    }
}
