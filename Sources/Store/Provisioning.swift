// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import Foundation
import HumanText

#if canImport(Glibc)
    import Glibc

#endif

/// Creates a store and the appliance's identity in it. Every step is skipped when its result
/// already exists, so provisioning twice changes nothing.
public struct Provisioning {
    public let store: EvidenceStore

    public init(store: EvidenceStore) { self.store = store }

    public struct Outcome: Codable, Sendable {
        public var store: String
        public var applianceId: String
        public var organization: String
        public var deviceCertificateSHA256: String?
        public var trustAnchor: String?
        /// What this run created (empty when nothing was missing).
        public var created: [String]
        public var developmentCA: Bool
    }

    /// Creates the layout, the settings and the device key.
    public func prepare(applianceId requested: String?, organization: String?) throws(StoreError) -> Outcome {
        var created: [String] = []
        for directory in [store.root, store.keysDirectory, store.workDirectory, store.bundlesDirectory] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else {
                    throw StoreError(.layout, path: directory, detail: "exists and is not a directory")
                }
                continue
            }
            guard mkdir(directory, directory == store.keysDirectory ? 0o700 : 0o750) == 0 else {
                // Only the store's own directory is made: a mistyped path must not grow a tree.
                let error = errno
                throw StoreError(
                    .layout, path: directory, errno: error,
                    detail: error == ENOENT
                        ? "cannot create: the directory it would be in does not exist (create that first, or give another --store)"
                        : "cannot create")
            }
            created.append(directory)
        }
        if !FileManager.default.fileExists(atPath: store.deviceKeyPath) {
            do {
                let key = try PrivateKey.generateP256()
                try DurableFile.create(store.deviceKeyPath, contents: try key.pem(), mode: 0o600)
            } catch let error as CryptographyError {
                throw StoreError(.keys, path: store.deviceKeyPath, detail: error.description)
            } catch {
                throw StoreError(.keys, path: store.deviceKeyPath, detail: "\(error)")
            }
            created.append(store.deviceKeyPath)
        }
        let settings: EvidenceStore.Settings
        if let existing = try? store.settings() {
            if let requested, requested != existing.applianceId {
                throw StoreError(
                    .layout, path: store.settingsPath,
                    detail: "this store belongs to appliance \(existing.applianceId), not \(requested)")
            }
            settings = existing
        } else {
            let key = try store.loadKey(store.deviceKeyPath)
            let fingerprint = (try? Digest.sha256(key.publicKeyDER()).hex.prefix(12)).map(String.init) ?? "000000000000"
            let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "appliance"
            settings = EvidenceStore.Settings(
                organization: organization ?? "Exhibit development agency",
                applianceId: requested ?? "exhibit-\(host)-\(fingerprint)", created: UTCTimestamp.string(Date()))
            let data = try! ExhibitJSON.encoder(pretty: true).encode(settings)
            do { try DurableFile.replace(store.settingsPath, contents: data) } catch {
                throw StoreError(.layout, path: store.settingsPath, detail: error.description)
            }
            created.append(store.settingsPath)
        }
        _ = try store.catalog()
        return Outcome(
            store: store.root, applianceId: settings.applianceId, organization: settings.organization,
            deviceCertificateSHA256: nil, trustAnchor: nil, created: created, developmentCA: false)
    }

    /// Provisions a development identity: a made-up agency CA and a device certificate from it,
    /// unless the store already has a device certificate.
    public func provisionDevelopment(applianceId: String?, organization: String?) throws(StoreError) -> Outcome {
        var outcome = try prepare(applianceId: applianceId, organization: organization)
        if !FileManager.default.fileExists(atPath: store.deviceCertificatePath) {
            let key = try store.loadKey(store.deviceKeyPath)
            do {
                let caKey = try PrivateKey.generateP256()
                let ca = try Certificate.issue(
                    subject: DistinguishedName(commonName: "\(outcome.organization) development root", organization: outcome.organization),
                    publicKeyOf: caKey, profile: .certificateAuthority, validityDays: 3650, issuer: nil)
                let device = try Certificate.issue(
                    subject: DistinguishedName(commonName: outcome.applianceId, organization: outcome.organization),
                    publicKeyOf: key, profile: .deviceSigning, validityDays: 1825, issuer: (ca, caKey))
                try DurableFile.create(store.developmentCAKeyPath, contents: try caKey.pem(), mode: 0o600)
                try DurableFile.replace(store.trustAnchorPath, contents: try ca.pem(), mode: 0o644)
                try DurableFile.replace(store.deviceCertificatePath, contents: try device.pem(), mode: 0o644)
            } catch let error as CryptographyError {
                throw StoreError(.keys, path: store.keysDirectory, detail: error.description)
            } catch {
                throw StoreError(.keys, path: store.keysDirectory, detail: "\(error)")
            }
            outcome.created += [store.developmentCAKeyPath, store.trustAnchorPath, store.deviceCertificatePath]
            try store.catalog().audit(
                actor: "provision", action: .developmentIdentityCreated, object: outcome.applianceId)
        }
        return try describe(outcome)
    }

    /// Writes a PKCS#10 request for the device key, for the agency to sign.
    public func writeRequest(to path: String, applianceId: String?, organization: String?) throws(StoreError) -> Outcome {
        let outcome = try prepare(applianceId: applianceId, organization: organization)
        let key = try store.loadKey(store.deviceKeyPath)
        do {
            let request = try CertificateRequest(
                subject: DistinguishedName(commonName: outcome.applianceId, organization: outcome.organization), key: key)
            try DurableFile.replace(path, contents: try request.pem(), mode: 0o644)
        } catch let error as CryptographyError {
            throw StoreError(.keys, path: path, detail: error.description)
        } catch {
            throw StoreError(.keys, path: path, detail: "\(error)")
        }
        try store.catalog().audit(actor: "provision", action: .certificateRequestWritten, object: path)
        return try describe(outcome)
    }

    /// Imports the agency-issued device certificate (PEM; further certificates in the file are
    /// the chain), after checking it is for the device key and chains to the trust anchor.
    public func importCertificate(from path: String, trustAnchor: String?) throws(StoreError) -> Outcome {
        var outcome = try prepare(applianceId: nil, organization: nil)
        let key = try store.loadKey(store.deviceKeyPath)
        let certificates = try store.loadCertificates(path)
        let device = certificates[0]
        guard device.matches(key) else {
            throw StoreError(.keys, path: path, detail: "the certificate is not for this appliance's device key")
        }
        guard device.subjectCommonName == outcome.applianceId else {
            throw StoreError(
                .keys, path: path,
                detail: "the certificate names \(device.subjectCommonName ?? "no CN"), the appliance is \(outcome.applianceId)")
        }
        let anchors = try store.loadCertificates(trustAnchor ?? store.trustAnchorPath)
        if let problem = device.chainProblem(trustAnchors: anchors, intermediates: Array(certificates.dropFirst())) {
            throw StoreError(.keys, path: path, detail: "does not chain to the agency trust anchor: \(problem)")
        }
        do {
            if let trustAnchor {
                try DurableFile.replace(store.trustAnchorPath, contents: try DurableFile.read(trustAnchor), mode: 0o644)
            }
            try DurableFile.replace(store.deviceCertificatePath, contents: try device.pem(), mode: 0o644)
            var chain = Data()
            for certificate in certificates.dropFirst() { chain += try certificate.pem() }
            try DurableFile.replace(store.chainPath, contents: chain, mode: 0o644)
        } catch let error as CryptographyError {
            throw StoreError(.keys, path: path, detail: error.description)
        } catch {
            throw StoreError(.keys, path: path, detail: "\(error)")
        }
        // An imported identity makes a development CA key meaningless; it must not linger.
        if FileManager.default.fileExists(atPath: store.developmentCAKeyPath) {
            try? FileManager.default.removeItem(atPath: store.developmentCAKeyPath)
        }
        outcome.created.append(store.deviceCertificatePath)
        try store.catalog().audit(
            actor: "provision", action: .deviceCertificateImported, object: device.subject,
            details: ["sha256": device.sha256Fingerprint.hex])
        return try describe(outcome)
    }

    private func describe(_ outcome: Outcome) throws(StoreError) -> Outcome {
        var outcome = outcome
        if let identity = try? store.signingIdentity() {
            outcome.deviceCertificateSHA256 = identity.certificate.sha256Fingerprint.hex
        }
        outcome.trustAnchor = FileManager.default.fileExists(atPath: store.trustAnchorPath) ? store.trustAnchorPath : nil
        outcome.developmentCA = FileManager.default.fileExists(atPath: store.developmentCAKeyPath)
        return outcome
    }
}
