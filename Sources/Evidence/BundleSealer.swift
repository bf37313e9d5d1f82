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
        bag: String, knownDigests: [String: String], bagInfo: [(label: String, value: String)],
        identity: SigningIdentity
    ) throws(EvidenceError) -> Sealed {
        let payload = BagIt.files(under: "\(bag)/data", relativeTo: bag)
        var entries: [(path: String, sha256: String)] = []
        var octets: UInt64 = 0
        for path in payload {
            let full = "\(bag)/\(path)"
            octets += DurableFile.size(of: full) ?? 0
            let digest: String
            if let known = knownDigests[path] {
                digest = known
            } else {
                digest = try DurableFile.sha256(of: full).hex
            }
            entries.append((path, digest))
        }
        for directory in Set(payload.map { ($0 as NSString).deletingLastPathComponent }) {
            try DurableFile.syncDirectory("\(bag)/\(directory)")
        }
        let oxum = "\(octets).\(payload.count)"
        let manifest = Data(BagIt.manifest(entries).utf8)
        let info = Data(BagIt.bagInfo(bagInfo + [(label: "Payload-Oxum", value: oxum)]).utf8)
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
}
