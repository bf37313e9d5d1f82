// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation

/// The appliance's signing identity: its device certificate and key, and the chain up to
/// (not including) the agency's trust anchor.
public struct SigningIdentity: Sendable {
    public let certificate: Certificate
    public let key: PrivateKey
    public let chain: [Certificate]

    public init(certificate: Certificate, key: PrivateKey, chain: [Certificate]) {
        self.certificate = certificate
        self.key = key
        self.chain = chain
    }

    /// The appliance id: the certificate's CN.
    public var applianceId: String { certificate.subjectCommonName ?? "unknown" }
}

/// Turns a directory whose `data/` is complete into a sealed BagIt bag:
/// manifest → bag-info (with Payload-Oxum) → bagit.txt → tag manifest → `seal.p7s`.
public enum BundleSealer {
    public struct Sealed: Sendable {
        /// SHA-256 of `seal.p7s`, the link the next bundle of this appliance points back to.
        public let sealSHA256: String
        public let payloadOxum: String
    }

    /// - Parameters:
    ///   - knownDigests: SHA-256 values already computed while streaming (the image files), by
    ///     bag-relative path; every other payload file is hashed here.
    ///   - bagInfo: labels in order; `Payload-Oxum` is added.
    public static func seal(
        bag: String, knownDigests: [String: String], bagInfo: BagInfo, identity: SigningIdentity
    ) throws(EvidenceError) -> Sealed {
        let tree = try BundleTree(path: bag)
        let listing = try payloadListing(tree)
        var entries: [(path: String, sha256: String)] = []
        for (path, _) in listing.files.sorted(by: { $0.key < $1.key }) {
            if let known = knownDigests[path] {
                entries.append((path, known))
            } else {
                entries.append((path, try tree.sha256(of: path).hex))
            }
        }
        for directory in Set(entries.map { ($0.path as NSString).deletingLastPathComponent }) {
            try DurableFile.syncDirectory("\(bag)/\(directory)")
        }
        var bagInfo = bagInfo
        let oxum = "\(listing.byteCount).\(listing.files.count)"
        bagInfo.append(.payloadOxum, oxum)
        let manifest = Data(BagIt.manifest(entries).utf8)
        let info = Data(bagInfo.text.utf8)
        let declaration = Data(BagIt.declaration.utf8)
        try DurableFile.create("\(bag)/\(BagIt.payloadManifest)", contents: manifest)
        try DurableFile.create("\(bag)/\(BagIt.bagInfo)", contents: info)
        try DurableFile.create("\(bag)/\(BagIt.declarationFile)", contents: declaration)
        let tagEntries: [(path: String, sha256: String)] = [
            (BagIt.declarationFile, Digest.sha256(declaration).hex),
            (BagIt.bagInfo, Digest.sha256(info).hex),
            (BagIt.payloadManifest, Digest.sha256(manifest).hex),
        ]
        let tagManifest = Data(BagIt.manifest(tagEntries).utf8)
        try DurableFile.create("\(bag)/\(BagIt.tagManifest)", contents: tagManifest)
        let signature: Data
        do throws(CryptographyError) {
            signature = try DetachedSignature.sign(
                tagManifest, certificate: identity.certificate, key: identity.key, chain: identity.chain)
        } catch {
            throw EvidenceError(.sealFailed, path: "\(bag)/\(BagIt.seal)", detail: error.description)
        }
        try DurableFile.create("\(bag)/\(BagIt.seal)", contents: signature)
        try DurableFile.syncDirectory("\(bag)/data")
        try DurableFile.syncDirectory(bag)
        return Sealed(sealSHA256: Digest.sha256(signature).hex, payloadOxum: oxum)
    }

    /// The payload as the verifier will see it: a bag that holds anything but regular files and
    /// directories, or is nested deeper than the verifier walks, is not sealed.
    private static func payloadListing(_ tree: BundleTree) throws(EvidenceError) -> BundleTree.Listing {
        let bag = tree.path
        var listing = tree.walk()
        listing.files = listing.files.filter { $0.key.hasPrefix("data/") }
        if let refusal = listing.refusals.first {
            throw EvidenceError(.sealFailed, path: "\(bag)/\(refusal.path)", detail: refusal.reason)
        }
        if let entry = listing.unreadable.first {
            throw EvidenceError(.readFailed, path: "\(bag)/\(entry.path)", errno: entry.errno)
        }
        return listing
    }
}
