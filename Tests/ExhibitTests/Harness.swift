// SPDX-License-Identifier: Apache-2.0
import Foundation
import StatusAPI
import Store
import TestSupport
import Testing

/// A provisioned store in a scratch directory, driven through the real `exhibit` binary.
final class TestStore: @unchecked Sendable {
    let scratch: ScratchDirectory
    let root: String
    /// The tmpfs the store lives on, for a test that fills it (`onTmpfsOf`).
    let mount: String?

    /// With `onTmpfsOf` (a size such as `256M`), the store is on a tmpfs of its own, unmounted
    /// when the store goes.
    init(_ label: String = "store", onTmpfsOf size: String? = nil) throws {
        let scratch = try ScratchDirectory(label)
        let mount = size.map { _ in scratch.file("store-fs") }
        if let mount, let size {
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            try #require(try Subprocess.run(["mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mount]).succeeded)
        }
        self.scratch = scratch
        self.mount = mount
        root = mount.map { "\($0)/store" } ?? scratch.file("store")
        let result = try exhibit(["provision", "--store", root, "--appliance-id", "exhibit-test-\(label)"])
        try #require(result.succeeded, "provision: \(result)")
    }

    deinit {
        if let mount { _ = try? Subprocess.run(["umount", "-l", mount]) }
    }

    var trustAnchor: String { "\(root)/keys/agency-root.pem" }

    func acquire(_ source: String, case caseId: String = "CASE-1", exhibit exhibitId: String = "E1", _ extra: [String] = [])
        throws -> Subprocess.Result
    {
        try exhibit(["acquire", source, "--store", root, "--case", caseId, "--exhibit", exhibitId, "--examiner", "Test Examiner", "--json"] + extra)
    }

    /// Acquires and returns the sealed bundle's path, failing the test otherwise.
    func acquireBundle(_ source: String, caseId: String = "CASE-1", exhibit exhibitId: String = "E1", _ extra: [String] = []) throws -> String {
        let result = try acquire(source, case: caseId, exhibit: exhibitId, extra)
        try #require(result.succeeded, "acquire: \(result)")
        let summary = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return try #require(summary?["bundlePath"] as? String)
    }

    var bundles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/bundles")) ?? []).sorted()
    }
}

@discardableResult
func exhibit(_ arguments: [String]) throws -> Subprocess.Result {
    try Subprocess.run([BuiltProducts.exhibit] + arguments)
}

/// `exhibit list --json` of a store, decoded with the catalog's own types: a test asks for a
/// job's state or an audit event, not for how the JSON is spaced or escaped.
struct StoreListing: Decodable {
    var entries: [CatalogEntry]
    var events: [Catalog.Event]

    static func of(_ store: String) throws -> StoreListing {
        let result = try exhibit(["list", "--store", store, "--json"])
        try #require(result.succeeded, "\(result)")
        return try JSONDecoder().decode(StoreListing.self, from: Data(result.stdout.utf8))
    }

    func hasJob(in state: JobState) -> Bool { entries.contains { $0.state == state } }
    func hasEvent(_ action: String) -> Bool { events.contains { $0.action == action } }
}

extension Catalog.Event {
    /// The event's details, which the catalog keeps as a JSON object of strings.
    var fields: [String: String] { (try? JSONDecoder().decode([String: String].self, from: Data(details.utf8))) ?? [:] }
}

/// The hub's stock checks, each run with the real third-party tool.
enum StockChecks {
    static func requireTools() throws {
        for tool in ["bagit.py", "openssl", "case_validate", "sha256sum", "jq"] {
            try #require(Subprocess.has(tool), "\(tool) is not installed: run `make deps` (scripts/install-deps)")
        }
    }

    static func bagit(_ bundle: String) throws -> Subprocess.Result {
        try Subprocess.run(["bagit.py", "--validate", bundle])
    }

    static func cms(_ bundle: String, trust: String) throws -> Subprocess.Result {
        try Subprocess.run([
            "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "\(bundle)/seal.p7s", "-content",
            "\(bundle)/tagmanifest-sha256.txt", "-CAfile", trust, "-purpose", "any", "-out", "/dev/null",
        ])
    }

    static func caseValidate(_ bundle: String) throws -> Subprocess.Result {
        try Subprocess.run(["case_validate", "\(bundle)/data/case.jsonld"])
    }

    /// The media stream of the bundle's image through sha256sum: `cat` of the raw files (in name
    /// order), or an E01 exported to raw by libewf's own `ewfexport`.
    static func imageSHA256(_ bundle: String) throws -> String {
        if FileManager.default.fileExists(atPath: "\(bundle)/data/image/\(try e01Name(bundle) ?? "-")") {
            let scratch = try ScratchDirectory("ewfexport")
            let exported = try Subprocess.shell(
                "ewfexport -q -u -f raw -S 7EiB -t '\(scratch.file("media"))' '\(bundle)'/data/image/*.E01 >/dev/null && "
                    + "sha256sum '\(scratch.file("media"))'.raw | cut -d' ' -f1")
            return exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let result = try Subprocess.shell("cat '\(bundle)'/data/image/* | sha256sum | cut -d' ' -f1")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The first segment file of an E01 bundle, or nil for a raw one.
    static func e01Name(_ bundle: String) throws -> String? {
        try FileManager.default.contentsOfDirectory(atPath: "\(bundle)/data/image").sorted().first { $0.hasSuffix(".E01") }
    }

    static func sum(_ tool: String, _ file: String) throws -> String {
        try Subprocess.shell("\(tool) '\(file)' | cut -d' ' -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func bagInfo(_ bundle: String, _ label: String) throws -> String? {
        let text = try String(contentsOfFile: "\(bundle)/bag-info.txt", encoding: .utf8)
        return text.split(separator: "\n").first { $0.hasPrefix("\(label): ") }.map { String($0.dropFirst(label.count + 2)) }
    }

    /// DESIGN.md's custody check with jq and sha256sum; true when the chain and head hold.
    static func custodyChain(_ bundle: String) throws -> Bool {
        let script = """
            prev=$(printf '0%.0s' {1..64}); ok=1
            while IFS= read -r l; do [ "$(jq -r .prev <<<"$l")" = "$prev" ] || ok=0
              prev=$(printf '%s\\n' "$l" | sha256sum | cut -d' ' -f1); done < '\(bundle)/data/custody.jsonl'
            grep -q "^Custody-Log-Head-SHA256: $prev" '\(bundle)/bag-info.txt' || ok=0
            [ $ok = 1 ]
            """
        return try Subprocess.shell(script).succeeded
    }

    /// Every stock check a hub runs, expected to pass, plus `exhibit verify`.
    static func expectAllPass(_ bundle: String, trust: String, sourceSHA256: String) throws {
        let bag = try bagit(bundle)
        #expect(bag.succeeded, "bagit.py --validate: \(bag)")
        let seal = try cms(bundle, trust: trust)
        #expect(seal.succeeded && seal.stderr.contains("Verification successful"), "openssl cms -verify: \(seal)")
        let image = try imageSHA256(bundle)
        #expect(image == sourceSHA256, "sha256sum of the image")
        #expect(try bagInfo(bundle, "Exhibit-Media-SHA256") == sourceSHA256)
        let graph = try caseValidate(bundle)
        #expect(graph.succeeded && graph.stdout.contains("Conforms: True"), "case_validate: \(graph)")
        #expect(try custodyChain(bundle), "custody chain checked with jq and sha256sum")
        let verify = try exhibit(["verify", bundle, "--trust", trust])
        #expect(verify.succeeded && verify.stdout.contains("INTACT"), "exhibit verify: \(verify)")
    }
}

let loopUnavailable = LoopDevice.unavailableReason
let loopSkipComment: Comment = "needs root and loop devices; the reason is printed when skipped"

/// Prints why a test that needs the kernel is skipped, so the log says it.
func reportSkip(_ reason: String?, _ test: String) {
    if let reason { print("SKIPPED \(test): \(reason)") }
}

/// A store's `bundles/` made immutable (`chattr +i`), so that nothing can be renamed into it, not
/// even by root: a publication that fails after sealing. The flag is cleared by `release()`, and
/// at the latest when the value goes.
final class ImmutableBundles {
    let path: String

    /// Why the immutable flag cannot be set where the tests keep their stores (tried once on a
    /// scratch directory there), or nil: tests that need it are skipped with this reason.
    static let unavailableReason: String? = {
        guard let scratch = try? ScratchDirectory("chattr-probe") else { return "no scratch directory" }
        let probe = scratch.file("probe")
        guard (try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)) != nil,
            (try? Subprocess.run(["chattr", "+i", probe]))?.succeeded == true
        else { return "chattr +i does not work on the test stores' file system (\(scratch.file(""))); needs root and ext4, XFS or Btrfs" }
        _ = try? Subprocess.run(["chattr", "-i", probe])
        return nil
    }()

    init(in store: TestStore) throws {
        path = "\(store.root)/bundles"
        try #require(try Subprocess.run(["chattr", "+i", path]).succeeded, "chattr +i \(path)")
    }

    func release() throws {
        try #require(try Subprocess.run(["chattr", "-i", path]).succeeded, "chattr -i \(path)")
    }

    deinit { _ = try? Subprocess.run(["chattr", "-i", path]) }
}

/// A file under Tests/Fixtures (C sources the tests build).
func fixturePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/\(name)").path
}

/// The files this process holds open under a directory (from /proc/self/fd): what a thread left
/// behind by a dropped writer would keep.
enum OpenFiles {
    static func under(_ directory: String) -> [String] {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
            .filter { $0.hasPrefix(directory + "/") }
    }

    /// Polls until `condition` holds of the open files under `directory` or `timeout` passes; returns the last list.
    static func wait(under directory: String, timeout: TimeInterval = 3, until condition: ([String]) -> Bool) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var files = under(directory)
        while !condition(files), Date() < deadline {
            usleep(10_000)
            files = under(directory)
        }
        return files
    }
}
