// SPDX-License-Identifier: Apache-2.0
import Cryptography
import ExpertWitness
import Foundation
import HumanText
import Imaging

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
        if let file { text += PlainText.escaped(file) + (byteRange.map { " \($0)" } ?? "") + ": " }
        return text + PlainText.escaped(message)
    }
}

/// A certificate the operator configured as a root of trust, and where it came from.
public struct TrustAnchor: Sendable {
    public let certificate: Certificate
    /// The file (or setting) it was read from, for the report.
    public let source: String

    public init(certificate: Certificate, source: String) {
        self.certificate = certificate
        self.source = source
    }

    public struct Summary: Codable, Sendable, Equatable {
        public var subject: String
        public var sha256: String
        public var source: String
    }

    public var summary: Summary { Summary(subject: certificate.subject, sha256: certificate.sha256Fingerprint.hex, source: source) }
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
    /// Every anchor the operator configured, and the one the seal's chain ends in.
    public var trustAnchors: [TrustAnchor.Summary] = []
    public var trustAnchorUsed: TrustAnchor.Summary?

    /// The checks in the order they run and are printed.
    public static let checkNames = [
        "entries", "bagit-declaration", "bag-info", "tag-manifest", "payload-manifest", "payload-oxum", "seal",
        "custody-chain", "media-sha256", "records", "bundle-name",
    ]
}

/// The most the verifier reads of each file it parses: a carrier cannot make it exhaust memory
/// with a huge tag file (image and payload files are streamed, never held).
public enum VerificationLimits {
    public static let declaration = 4 << 10
    public static let bagInfo = 64 << 10
    public static let manifest = 256 << 20
    public static let seal = 1 << 20
    public static let record = 64 << 20
}

/// Checks a sealed bundle the way the hub does, and more: every entry of the bundle, BagIt
/// structure and fixity, the CMS seal against the operator's trust anchors and the signer's
/// identity, the custody chain and its head, the media SHA-256 against the image, and the
/// consistency of the records. It fails closed: it follows no link, opens no special file,
/// reads nothing outside the bundle and bounds what it reads. Every failure is reported.
public struct BundleVerifier: Sendable {
    public let bundle: String
    public let trustAnchors: [TrustAnchor]

    public init(bundle: String, trustAnchors: [TrustAnchor]) {
        self.bundle = bundle
        self.trustAnchors = trustAnchors
    }

    public func verify() -> VerificationReport {
        var report = VerificationReport(bundle: bundle, intact: false, checks: [:], findings: [])
        report.trustAnchors = trustAnchors.map(\.summary)
        do {
            let tree = try BundleTree(path: bundle)
            let run = VerificationRun(tree: tree, anchors: trustAnchors, report: report)
            run.checkAll()
            report = run.report
        } catch {
            report.findings.append(VerificationFinding(check: "entries", file: nil, byteRange: nil, message: "\(error)"))
        }
        let failed = Set(report.findings.map(\.check))
        for name in VerificationReport.checkNames { report.checks[name] = failed.contains(name) ? "failed" : "passed" }
        report.intact = report.findings.isEmpty
        return report
    }
}

/// One verification: the bundle's tree, what was read from it so far, and the findings.
final class VerificationRun {
    let tree: BundleTree
    let anchors: [TrustAnchor]
    var report: VerificationReport
    var listing = BundleTree.Listing()
    var info = BagInfo()
    var tagManifest: Data?
    var manifest: [String: String] = [:]
    var record: AcquisitionRecord?
    /// Set when data/ holds more bytes than Payload-Oxum says (or it says nothing): then no
    /// payload file is hashed, since a carrier's sparse file of a TiB would take hours to.
    var payloadUnbounded = false

    init(tree: BundleTree, anchors: [TrustAnchor], report: VerificationReport) {
        self.tree = tree
        self.anchors = anchors
        self.report = report
    }

    func fail(_ check: String, _ file: String? = nil, _ range: ByteRange? = nil, _ message: String) {
        report.findings.append(VerificationFinding(check: check, file: file, byteRange: range, message: message))
    }

    /// A file's contents, or nil with a finding naming why it cannot be read.
    func read(_ relative: String, limit: Int, check: String) -> Data? {
        do {
            return try tree.contents(of: relative, limit: limit)
        } catch {
            fail(check, relative, nil, error.code == .missing ? "missing" : "\(error)")
            return nil
        }
    }

    func checkAll() {
        checkEntries()
        checkDeclaration()
        checkBagInfo()
        checkTagManifest()
        checkSeal()
        record = readRecord()
        checkPayload()
        checkCustody()
        if let record {
            report.caseId = record.caseId
            report.exhibitId = record.exhibitId
            checkMedia(record)
            checkRecords(record)
            checkName(record)
        } else {
            fail("media-sha256", nil, nil, "not checked: the record that lists the image files is unusable")
        }
    }

    // MARK: entries

    static let rootEntries: Set = [
        BagIt.declarationFile, BagIt.bagInfo, BagIt.payloadManifest, BagIt.tagManifest, BagIt.seal, "data",
    ]

    /// Every entry, however deep: only regular files and directories, nothing unlisted at the root.
    func checkEntries() {
        listing = tree.walk()
        for refusal in listing.refusals { fail("entries", refusal.path, nil, refusal.reason) }
        for entry in listing.unreadable {
            fail("entries", entry.path, nil, "cannot be examined: \(String(cString: strerror(entry.errno))) (errno \(entry.errno))")
        }
        let root = Set(listing.files.keys.filter { !$0.contains("/") } + listing.directories.filter { !$0.contains("/") })
        for entry in root.subtracting(Self.rootEntries).sorted() {
            fail("entries", entry, nil, "unexpected entry at the bag root, covered by no manifest")
        }
        if !listing.directories.contains("data") { fail("entries", "data", nil, "the payload directory is missing") }
    }

    // MARK: BagIt tag files

    func checkDeclaration() {
        guard let data = read(BagIt.declarationFile, limit: VerificationLimits.declaration, check: "bagit-declaration") else { return }
        if data != Data(BagIt.declaration.utf8) {
            fail("bagit-declaration", BagIt.declarationFile, nil, "is not the BagIt 1.0 declaration with UTF-8 tag files")
        }
    }

    func checkBagInfo() {
        guard let data = read(BagIt.bagInfo, limit: VerificationLimits.bagInfo, check: "bag-info") else { return }
        let parsed = BagInfo.parse(data)
        info = parsed.info
        for problem in parsed.problems { fail("bag-info", BagIt.bagInfo, nil, problem) }
        for label in BagInfoLabel.required where info[label] == nil {
            fail("bag-info", BagIt.bagInfo, nil, "has no \(label.rawValue)")
        }
        report.mediaSHA256 = info[.mediaSHA256]
    }

    /// Exactly the three tag files, each matching; a listed path outside them is named as such,
    /// never opened.
    func checkTagManifest() {
        guard let data = read(BagIt.tagManifest, limit: VerificationLimits.manifest, check: "tag-manifest") else { return }
        tagManifest = data
        let parsed = BagIt.parseManifest(String(decoding: data, as: UTF8.self))
        for line in parsed.badLines { fail("tag-manifest", BagIt.tagManifest, nil, "line \(line) is not `SHA256  PATH`") }
        let expected: Set = [BagIt.declarationFile, BagIt.bagInfo, BagIt.payloadManifest]
        for missing in expected.subtracting(parsed.entries.map(\.path)).sorted() {
            fail("tag-manifest", missing, nil, "is not listed in \(BagIt.tagManifest)")
        }
        var seen: Set<String> = []
        for entry in parsed.entries {
            guard expected.contains(entry.path) else {
                fail("tag-manifest", entry.path, nil, "is listed in \(BagIt.tagManifest) but is not one of the bag's tag files (\(expected.sorted().joined(separator: ", "))); not opened")
                continue
            }
            guard seen.insert(entry.path).inserted else {
                fail("tag-manifest", entry.path, nil, "is listed twice in \(BagIt.tagManifest)")
                continue
            }
            let limit = entry.path == BagIt.payloadManifest ? VerificationLimits.manifest : VerificationLimits.bagInfo
            guard let contents = read(entry.path, limit: limit, check: "tag-manifest") else { continue }
            if Digest.sha256(contents).hex != entry.sha256 {
                fail("tag-manifest", entry.path, nil, "SHA-256 differs from \(BagIt.tagManifest): the file was changed")
            }
        }
    }

    // MARK: seal

    /// CMS over the tag manifest, chaining to one of the operator's anchors; signer = sender.
    func checkSeal() {
        guard let tagManifest, let signature = read(BagIt.seal, limit: VerificationLimits.seal, check: "seal") else { return }
        guard !anchors.isEmpty else {
            fail("seal", BagIt.seal, nil, "no trust anchor is configured: give the agency root with --trust PEM")
            return
        }
        do {
            let verified = try DetachedSignature.verify(signature, content: tagManifest, trustAnchors: anchors.map(\.certificate))
            report.signer = verified.signer.subject
            report.signerCertificateSHA256 = verified.signer.sha256Fingerprint.hex
            report.trustAnchorUsed = anchorUsed(signature: signature)
            let name = verified.signer.subjectCommonName
            if let sender = info[.internalSenderIdentifier], name != sender {
                fail("seal", BagIt.seal, nil, "signed by \(name ?? "a certificate without CN"), but bag-info names appliance \(sender)")
            }
        } catch {
            fail("seal", BagIt.seal, nil, "CMS signature over \(BagIt.tagManifest) does not verify against the trust anchors: \(error)")
        }
    }

    /// The anchor the seal's chain ends in: the first that verifies it alone.
    private func anchorUsed(signature: Data) -> TrustAnchor.Summary? {
        guard let tagManifest else { return nil }
        if anchors.count == 1 { return anchors[0].summary }
        return anchors.first {
            (try? DetachedSignature.verify(signature, content: tagManifest, trustAnchors: [$0.certificate])) != nil
        }?.summary
    }

    // MARK: payload

    func readRecord() -> AcquisitionRecord? {
        guard let data = read("data/acquisition.json", limit: VerificationLimits.record, check: "records") else { return nil }
        do {
            return try ExhibitJSON.decoder().decode(AcquisitionRecord.self, from: data)
        } catch {
            fail("records", "data/acquisition.json", nil, "is not an \(AcquisitionRecord.currentFormat) record")
            return nil
        }
    }

    /// The manifest is complete, has no strays, and every non-image file matches it. Image files
    /// are checked with the media stream.
    func checkPayload() {
        guard let data = read(BagIt.payloadManifest, limit: VerificationLimits.manifest, check: "payload-manifest") else { return }
        let parsed = BagIt.parseManifest(String(decoding: data, as: UTF8.self))
        for line in parsed.badLines { fail("payload-manifest", BagIt.payloadManifest, nil, "line \(line) is not `SHA256  PATH`") }
        for entry in parsed.entries {
            let components = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard entry.path.hasPrefix("data/"), !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                fail("payload-manifest", entry.path, nil, "unsafe or non-payload path in the manifest; not opened")
                continue
            }
            if manifest[entry.path] != nil { fail("payload-manifest", entry.path, nil, "listed twice") }
            manifest[entry.path] = entry.sha256
        }
        let payload = listing.files.filter { $0.key.hasPrefix("data/") }
        for path in payload.keys.sorted() where manifest[path] == nil {
            fail("payload-manifest", path, nil, "file in data/ is not in the manifest (added or renamed)")
        }
        let bytes = payload.values.reduce(UInt64(0)) { sum, size in
            let (total, overflow) = sum.addingReportingOverflow(size)
            return overflow ? .max : total
        }
        let oxum = "\(bytes).\(payload.count)"
        if let sealed = info[.payloadOxum], sealed != oxum {
            fail("payload-oxum", BagIt.bagInfo, nil, "Payload-Oxum is \(sealed), the payload is \(oxum)")
        }
        // Hashing reads every byte: never more than the bag declares (a bundle of a few MiB on the
        // carrier can hold a sparse file of a TiB).
        let declared = info[.payloadOxum].flatMap { UInt64($0.split(separator: ".").first ?? "") }
        if declared.map({ bytes > $0 }) ?? true {
            payloadUnbounded = true
            fail("payload-oxum", nil, nil, "data/ holds \(bytes) bytes, more than Payload-Oxum declares (\(declared.map(String.init) ?? "nothing")): no payload file is hashed")
        }
        let imagePaths = Set(record?.image.files.map(\.path) ?? [])
        for (path, expected) in manifest.sorted(by: { $0.key < $1.key }) where !payloadUnbounded {
            guard payload[path] != nil else {
                fail("payload-manifest", path, nil, "in the manifest but not a file of the bundle (removed, renamed or replaced)")
                continue
            }
            // An image file is hashed by the media check, from the reads that decode the stream.
            guard !imagePaths.contains(path) else { continue }
            do {
                if try tree.sha256(of: path).hex != expected {
                    fail("payload-manifest", path, nil, "SHA-256 differs from the manifest: the file was changed")
                }
            } catch {
                fail("payload-manifest", path, nil, "cannot be read: \(error)")
            }
        }
    }

    // MARK: custody

    func checkCustody() {
        guard let data = read("data/custody.jsonl", limit: VerificationLimits.record, check: "custody-chain") else { return }
        let chain = CustodyLog.check(data)
        for broken in chain.breaks { fail("custody-chain", "data/custody.jsonl", nil, broken.description) }
        if let head = info[.custodyLogHead], head != chain.head {
            fail("custody-chain", BagIt.bagInfo, nil, "Custody-Log-Head-SHA256 is not the SHA-256 of the log's last line")
        }
    }

    // MARK: records

    func checkRecords(_ record: AcquisitionRecord) {
        let sha = record.mediaSHA256
        if let sealed = info[.mediaSHA256], sealed != sha {
            fail("records", "data/acquisition.json", nil, "media SHA-256 \(sha) differs from bag-info's \(sealed)")
        }
        if let phone = record.phone { checkPhone(phone) }
        // Added without trapping: a carrier can write sizes near 2^64.
        let imageBytes = record.image.files.reduce(UInt64(0) as UInt64?) { sum, file in
            sum.flatMap { let (total, overflow) = $0.addingReportingOverflow(file.sizeBytes); return overflow ? nil : total }
        }
        if record.image.format == RawImage().name, !(record.phone != nil && record.image.files.isEmpty), imageBytes != record.media.sizeBytes {
            fail("records", "data/acquisition.json", nil, "image files do not add up to the media size")
        }
        let recorded = Set(record.image.files.map(\.path))
        for path in listing.files.keys.sorted() where path.hasPrefix("data/image/") && !recorded.contains(path) {
            fail("records", path, nil, "image file not recorded in acquisition.json")
        }
        if let sender = info[.internalSenderIdentifier], sender != record.appliance.id {
            fail("records", "data/acquisition.json", nil, "appliance \(record.appliance.id) differs from bag-info's \(sender)")
        }
        guard let graph = read("data/case.jsonld", limit: VerificationLimits.record, check: "records") else { return }
        if !CaseGraph.sha256Values(in: graph).contains(sha) {
            fail("records", "data/case.jsonld", nil, "has no SHA256 hash equal to the media SHA-256")
        }
        if !CaseGraph.exhibitNumbers(in: graph).contains(record.exhibitId) {
            fail("records", "data/case.jsonld", nil, "names no provenance record for exhibit \(record.exhibitId)")
        }
    }

    /// A phone bundle's inventory: its SHA-256 as recorded, every line's digest as in the payload
    /// manifest (whose fixity was checked above), and every extracted file listed.
    func checkPhone(_ phone: PhoneExtraction) {
        guard let inventory = read(phone.inventory, limit: VerificationLimits.manifest, check: "records") else { return }
        if Digest.sha256(inventory).hex != phone.inventorySHA256 {
            fail("records", phone.inventory, nil, "its SHA-256 differs from acquisition.json's inventorySHA256")
        }
        let parsed = BagIt.parseManifest(String(decoding: inventory, as: UTF8.self))
        for line in parsed.badLines { fail("records", phone.inventory, nil, "line \(line) is not `SHA256  PATH`") }
        var listed: [String: String] = [:]
        for entry in parsed.entries { listed[entry.path] = entry.sha256 }
        for (path, digest) in listed.sorted(by: { $0.key < $1.key }) where manifest[path] != digest {
            fail("records", path, nil, manifest[path] == nil ? "listed in the inventory but not in the bag" : "its SHA-256 at extraction differs from the manifest's")
        }
        for path in listing.files.keys.sorted()
        where (path.hasPrefix("data/files/") || path.hasPrefix("data/phone/commands/")) && listed[path] == nil {
            fail("records", path, nil, "extracted file not listed in the inventory")
        }
    }

    /// The directory's name is the bundle's id as sealed: a bundle copied under another
    /// bundle's name would otherwise be taken for it.
    func checkName(_ record: AcquisitionRecord) {
        let name = URL(fileURLWithPath: tree.path).standardizedFileURL.lastPathComponent
        if name != record.bundleId {
            fail("bundle-name", nil, nil, "the bundle's directory is named \(name), but it was sealed as \(record.bundleId)")
        }
        if let sealed = info[.bundleId], sealed != record.bundleId {
            fail("bundle-name", BagIt.bagInfo, nil, "Exhibit-Bundle-Id is \(sealed), acquisition.json says \(record.bundleId)")
        }
    }
}
