// SPDX-License-Identifier: Apache-2.0
import Acquisition
import Cryptography
import Foundation

/// An inclusive byte range.
public struct ByteRange: Codable, Sendable, Equatable, CustomStringConvertible {
    public var first: UInt64
    public var last: UInt64
    public var description: String { "bytes \(first)-\(last)" }
}

/// One thing `exhibit verify` found wrong, and where.
public struct VerificationFinding: Codable, Sendable, CustomStringConvertible {
    /// Which check failed (`seal`, `payload-manifest`, `media-sha256` …).
    public var check: String
    /// The bag-relative file concerned, when there is one.
    public var file: String?
    /// For image files, the byte range of the file that differs.
    public var byteRange: ByteRange?
    public var message: String

    public var description: String {
        var text = "\(check): "
        if let file { text += file + (byteRange.map { " \($0)" } ?? "") + ": " }
        return text + message
    }
}

/// The outcome of verifying one bundle.
public struct VerificationReport: Codable, Sendable {
    public var bundle: String
    public var intact: Bool
    /// Every check by name, `passed` or `failed`, in the order they ran.
    public var checks: [String: String]
    public var findings: [VerificationFinding]
    public var mediaSHA256: String?
    public var signer: String?
    public var signerCertificateSHA256: String?
    public var caseId: String?
    public var exhibitId: String?
}

/// Checks a sealed bundle the way the hub does, and more: BagIt structure and fixity, the CMS
/// seal against the agency trust anchor and the signer's identity, the custody chain and its head,
/// the media SHA-256 against the image, and the consistency of the records. Every failure is
/// reported, not only the first.
public struct BundleVerifier: Sendable {
    public let bundle: String
    public let trustAnchors: [Certificate]

    public init(bundle: String, trustAnchors: [Certificate]) {
        self.bundle = bundle
        self.trustAnchors = trustAnchors
    }

    static let requiredLabels = [
        "Source-Organization", "External-Identifier", "Internal-Sender-Identifier", "Bagging-Date",
        "Payload-Oxum", "Exhibit-Media-SHA256", "Custody-Log-Head-SHA256", "Previous-Bundle-Seal-SHA256",
    ]

    public func verify() -> VerificationReport {
        var report = VerificationReport(bundle: bundle, intact: true, checks: [:], findings: [])
        var failedChecks: Set<String> = []
        func fail(_ check: String, _ file: String? = nil, _ range: ByteRange? = nil, _ message: String) {
            report.findings.append(VerificationFinding(check: check, file: file, byteRange: range, message: message))
            failedChecks.insert(check)
        }
        func read(_ relative: String, check: String) -> Data? {
            guard let data = FileManager.default.contents(atPath: "\(bundle)/\(relative)") else {
                fail(check, relative, nil, "missing")
                return nil
            }
            return data
        }
        let checkNames = [
            "bagit-declaration", "bag-info", "tag-manifest", "payload-manifest", "payload-oxum", "seal",
            "custody-chain", "media-sha256", "records",
        ]

        // bagit.txt
        if let declaration = read(BagIt.declarationFile, check: "bagit-declaration"),
            String(decoding: declaration, as: UTF8.self) != BagIt.declaration
        {
            fail("bagit-declaration", BagIt.declarationFile, nil, "is not the BagIt 1.0 declaration with UTF-8 tag files")
        }

        // bag-info.txt
        var info: [String: String] = [:]
        if let data = read(BagIt.bagInfo, check: "bag-info") {
            for field in BagIt.parseBagInfo(String(decoding: data, as: UTF8.self)) where info[field.label] == nil {
                info[field.label] = field.value
            }
            for label in Self.requiredLabels where info[label] == nil {
                fail("bag-info", BagIt.bagInfo, nil, "has no \(label)")
            }
        }
        report.mediaSHA256 = info["Exhibit-Media-SHA256"]

        // Tag manifest: exactly the three tag files, each matching.
        let tagData = read(BagIt.tagManifest, check: "tag-manifest")
        if let tagData {
            let parsed = BagIt.parseManifest(String(decoding: tagData, as: UTF8.self))
            for line in parsed.badLines { fail("tag-manifest", BagIt.tagManifest, nil, "line \(line) is not `SHA256  PATH`") }
            let expected: Set = [BagIt.declarationFile, BagIt.bagInfo, BagIt.payloadManifest]
            let listed = Set(parsed.entries.map(\.path))
            for missing in expected.subtracting(listed).sorted() {
                fail("tag-manifest", missing, nil, "is not listed in \(BagIt.tagManifest)")
            }
            for entry in parsed.entries {
                guard let data = FileManager.default.contents(atPath: "\(bundle)/\(entry.path)") else {
                    fail("tag-manifest", entry.path, nil, "listed in \(BagIt.tagManifest) but missing")
                    continue
                }
                if Digest.sha256(data).hex != entry.sha256 {
                    fail("tag-manifest", entry.path, nil, "SHA-256 differs from \(BagIt.tagManifest): the file was changed")
                }
            }
        }
        // Nothing else belongs at the bag root.
        let rootAllowed: Set = [
            BagIt.declarationFile, BagIt.bagInfo, BagIt.payloadManifest, BagIt.tagManifest, BagIt.seal, "data",
        ]
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: bundle) {
            for entry in entries.sorted() where !rootAllowed.contains(entry) {
                fail("tag-manifest", entry, nil, "unexpected file at the bag root, covered by no manifest")
            }
        }

        // Seal: CMS over the tag manifest, chaining to the agency trust anchor; signer = sender.
        if let tagData, let signature = read(BagIt.seal, check: "seal") {
            if trustAnchors.isEmpty {
                fail("seal", BagIt.seal, nil, "no trust anchor: give the agency root with --trust PEM")
            } else {
                do {
                    let verified = try DetachedSignature.verify(signature, content: tagData, trustAnchors: trustAnchors)
                    report.signer = verified.signer.subject
                    report.signerCertificateSHA256 = verified.signer.sha256Fingerprint.hex
                    let name = verified.signer.subjectCommonName
                    if let sender = info["Internal-Sender-Identifier"], name != sender {
                        fail(
                            "seal", BagIt.seal, nil,
                            "signed by \(name ?? "a certificate without CN"), but bag-info names appliance \(sender)")
                    }
                } catch {
                    fail(
                        "seal", BagIt.seal, nil,
                        "CMS signature over \(BagIt.tagManifest) does not verify against the trust anchor: \(error)")
                }
            }
        }

        // Payload manifest: complete, no strays, fixity. Image files are checked with the media stream below.
        let record = FileManager.default.contents(atPath: "\(bundle)/data/acquisition.json").flatMap {
            try? ExhibitJSON.decoder().decode(AcquisitionRecord.self, from: $0)
        }
        let imagePaths = Set(record?.image.files.map(\.path) ?? [])
        var manifestEntries: [String: String] = [:]
        if let data = read(BagIt.payloadManifest, check: "payload-manifest") {
            let parsed = BagIt.parseManifest(String(decoding: data, as: UTF8.self))
            for line in parsed.badLines {
                fail("payload-manifest", BagIt.payloadManifest, nil, "line \(line) is not `SHA256  PATH`")
            }
            for entry in parsed.entries {
                if entry.path.hasPrefix("/") || entry.path.split(separator: "/").contains("..")
                    || !entry.path.hasPrefix("data/")
                {
                    fail("payload-manifest", entry.path, nil, "unsafe or non-payload path in the manifest")
                    continue
                }
                if manifestEntries[entry.path] != nil {
                    fail("payload-manifest", entry.path, nil, "listed twice")
                }
                manifestEntries[entry.path] = entry.sha256
            }
            let present = BagIt.files(under: "\(bundle)/data", relativeTo: bundle)
            for path in present where manifestEntries[path] == nil {
                fail("payload-manifest", path, nil, "file in data/ is not in the manifest (added or renamed)")
            }
            var octets: UInt64 = 0
            for path in present { octets += DurableFile.size(of: "\(bundle)/\(path)") ?? 0 }
            if let oxum = info["Payload-Oxum"], oxum != "\(octets).\(present.count)" {
                fail("payload-oxum", BagIt.bagInfo, nil, "Payload-Oxum is \(oxum), the payload is \(octets).\(present.count)")
            }
            for (path, expected) in manifestEntries.sorted(by: { $0.key < $1.key }) where !imagePaths.contains(path) {
                let full = "\(bundle)/\(path)"
                guard FileManager.default.fileExists(atPath: full) else {
                    fail("payload-manifest", path, nil, "in the manifest but missing (removed or renamed)")
                    continue
                }
                do {
                    if try DurableFile.sha256(of: full).hex != expected {
                        fail("payload-manifest", path, nil, "SHA-256 differs from the manifest: the file was changed")
                    }
                } catch {
                    fail("payload-manifest", path, nil, "cannot be read: \(error)")
                }
            }
        }

        // Custody chain and head.
        if let data = read("data/custody.jsonl", check: "custody-chain") {
            let chain = CustodyLog.check(data)
            for broken in chain.breaks { fail("custody-chain", "data/custody.jsonl", nil, broken.description) }
            if let head = info["Custody-Log-Head-SHA256"], head != chain.head {
                fail("custody-chain", BagIt.bagInfo, nil, "Custody-Log-Head-SHA256 is not the SHA-256 of the log's last line")
            }
        }

        // Records and the media stream.
        if let record {
            report.caseId = record.caseId
            report.exhibitId = record.exhibitId
            checkMedia(record: record, info: info, manifest: manifestEntries, fail: fail)
            checkRecords(record: record, info: info, fail: fail)
        } else {
            fail("records", "data/acquisition.json", nil, "missing or not an \(AcquisitionRecord.currentFormat) record")
            failedChecks.insert("media-sha256")
        }

        for name in checkNames { report.checks[name] = failedChecks.contains(name) ? "failed" : "passed" }
        report.intact = report.findings.isEmpty
        return report
    }

    private func checkMedia(
        record: AcquisitionRecord, info: [String: String], manifest: [String: String],
        fail: (String, String?, ByteRange?, String) -> Void
    ) {
        let files = record.image.files
        if files.isEmpty, let phone = record.phone {
            // A logical phone extraction: the media stream is the inventory of extracted files.
            guard let inventory = FileManager.default.contents(atPath: "\(bundle)/\(phone.inventory)") else {
                fail("media-sha256", phone.inventory, nil, "the inventory of the logical extraction is missing")
                return
            }
            let digest = Digest.sha256(inventory).hex
            if let sealed = info["Exhibit-Media-SHA256"], sealed != digest {
                fail("media-sha256", phone.inventory, nil, "the inventory hashes to \(digest), bag-info says \(sealed)")
            }
            return
        }
        let paths = files.map { "\(bundle)/\($0.path)" }
        for file in files {
            if manifest[file.path] == nil {
                fail("payload-manifest", file.path, nil, "image file recorded in acquisition.json is not in the manifest")
            }
            guard let size = DurableFile.size(of: "\(bundle)/\(file.path)") else {
                fail("media-sha256", file.path, nil, "image file is missing")
                return
            }
            if size != file.sizeBytes {
                fail("media-sha256", file.path, nil, "is \(size) bytes; \(file.sizeBytes) were written")
            }
        }
        let sizes = paths.map { DurableFile.size(of: $0) ?? 0 }
        let stream = StreamDigester(.sha256)
        let perFile = RangeDigester(rangeSizes: sizes, label: "per-file SHA-256")
        do {
            let image = try ImageFiles(paths: paths)
            _ = try Pipeline.run(image, into: files.count > 1 ? [stream, perFile] : [stream])
        } catch {
            fail("media-sha256", nil, nil, "the image cannot be read: \(error)")
            return
        }
        guard let streamDigest = stream.result?.hex else { return }
        let fileDigests = files.count > 1 ? perFile.results.map(\.hex) : [streamDigest]
        var changed = false
        for (file, digest) in zip(files, fileDigests) where manifest[file.path] != nil && manifest[file.path] != digest {
            changed = true
            fail("payload-manifest", file.path, nil, "SHA-256 differs from the manifest: the image file was changed")
        }
        if let sealed = info["Exhibit-Media-SHA256"], sealed != streamDigest {
            changed = true
            fail("media-sha256", nil, nil, "the image files hash to \(streamDigest), bag-info says \(sealed)")
        }
        if changed { locateChanges(record: record, paths: paths, sizes: sizes, fail: fail) }
    }

    /// Re-reads the image against the window digests recorded at read-back, and names each
    /// changed window as a byte range of the file it lies in.
    private func locateChanges(
        record: AcquisitionRecord, paths: [String], sizes: [UInt64], fail: (String, String?, ByteRange?, String) -> Void
    ) {
        guard let windowSize = record.verification.windowSize, let expected = record.verification.windowSHA256 else {
            fail("media-sha256", nil, nil, "no window digests were recorded (acquired with --no-verify): the change cannot be located more precisely than the file")
            return
        }
        let total = sizes.reduce(0, +)
        let windows = RangeDigester(rangeSize: windowSize, totalSize: total, label: "window SHA-256")
        guard let image = try? ImageFiles(paths: paths), (try? Pipeline.run(image, into: [windows])) != nil else { return }
        var fileStarts: [UInt64] = []
        var start: UInt64 = 0
        for size in sizes {
            fileStarts.append(start)
            start += size
        }
        for (index, digest) in windows.results.enumerated() where index >= expected.count || expected[index] != digest.hex {
            let first = UInt64(index) * windowSize
            let last = min(first + windowSize, total) - 1
            // Name the range in each file the window overlaps.
            for (fileIndex, fileStart) in fileStarts.enumerated() {
                let fileEnd = fileStart + sizes[fileIndex]
                guard first < fileEnd, last >= fileStart else { continue }
                let range = ByteRange(first: max(first, fileStart) - fileStart, last: min(last, fileEnd - 1) - fileStart)
                fail(
                    "media-sha256", record.image.files[fileIndex].path, range,
                    "differs from what was acquired (stream bytes \(first)-\(last))")
            }
        }
        if windows.results.count != expected.count {
            fail("media-sha256", nil, nil, "the image has \(windows.results.count) windows of \(windowSize) bytes; \(expected.count) were recorded")
        }
    }

    private func checkRecords(
        record: AcquisitionRecord, info: [String: String], fail: (String, String?, ByteRange?, String) -> Void
    ) {
        let sha = record.mediaSHA256
        if let sealed = info["Exhibit-Media-SHA256"], sealed != sha {
            fail("records", "data/acquisition.json", nil, "media SHA-256 \(sha) differs from bag-info's \(sealed)")
        }
        if let phone = record.phone { checkPhone(phone, record: record, fail: fail) }
        if !(record.phone != nil && record.image.files.isEmpty),
            record.image.files.map(\.sizeBytes).reduce(0, +) != record.media.sizeBytes
        {
            fail("records", "data/acquisition.json", nil, "image files do not add up to the media size")
        }
        let recorded = Set(record.image.files.map(\.path))
        let present = Set(BagIt.files(under: "\(bundle)/data/image", relativeTo: bundle))
        for path in present.subtracting(recorded).sorted() {
            fail("records", path, nil, "image file not recorded in acquisition.json")
        }
        if let sender = info["Internal-Sender-Identifier"], sender != record.appliance.id {
            fail("records", "data/acquisition.json", nil, "appliance \(record.appliance.id) differs from bag-info's \(sender)")
        }
        guard let graph = FileManager.default.contents(atPath: "\(bundle)/data/case.jsonld") else {
            fail("records", "data/case.jsonld", nil, "missing")
            return
        }
        if !CaseGraph.sha256Values(in: graph).contains(sha) {
            fail("records", "data/case.jsonld", nil, "has no SHA256 hash equal to the media SHA-256")
        }
        if !CaseGraph.exhibitNumbers(in: graph).contains(record.exhibitId) {
            fail("records", "data/case.jsonld", nil, "names no provenance record for exhibit \(record.exhibitId)")
        }
    }

    /// A phone bundle's inventory: its SHA-256 as recorded, every line's digest as in the payload
    /// manifest (whose fixity was checked above), and every extracted file listed.
    private func checkPhone(
        _ phone: PhoneExtraction, record: AcquisitionRecord, fail: (String, String?, ByteRange?, String) -> Void
    ) {
        guard let inventory = FileManager.default.contents(atPath: "\(bundle)/\(phone.inventory)") else {
            fail("records", phone.inventory, nil, "missing")
            return
        }
        if Digest.sha256(inventory).hex != phone.inventorySHA256 {
            fail("records", phone.inventory, nil, "its SHA-256 differs from acquisition.json's inventorySHA256")
        }
        let parsed = BagIt.parseManifest(String(decoding: inventory, as: UTF8.self))
        for line in parsed.badLines { fail("records", phone.inventory, nil, "line \(line) is not `SHA256  PATH`") }
        var listed: [String: String] = [:]
        for entry in parsed.entries { listed[entry.path] = entry.sha256 }
        let manifest = FileManager.default.contents(atPath: "\(bundle)/\(BagIt.payloadManifest)").map {
            BagIt.parseManifest(String(decoding: $0, as: UTF8.self)).entries
        } ?? []
        var manifested: [String: String] = [:]
        for entry in manifest { manifested[entry.path] = entry.sha256 }
        for (path, digest) in listed.sorted(by: { $0.key < $1.key }) where manifested[path] != digest {
            fail(
                "records", path, nil,
                manifested[path] == nil
                    ? "listed in the inventory but not in the bag" : "its SHA-256 at extraction differs from the manifest's")
        }
        let extracted = BagIt.files(under: "\(bundle)/data/files", relativeTo: bundle)
            + BagIt.files(under: "\(bundle)/data/phone/commands", relativeTo: bundle)
        for path in extracted where listed[path] == nil {
            fail("records", path, nil, "extracted file not listed in the inventory")
        }
    }
}
