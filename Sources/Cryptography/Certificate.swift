// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// An X.509 certificate: the agency trust anchor, an intermediate, or the appliance's device certificate.
public final class Certificate: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) { self.pointer = pointer }

    /// Wraps a certificate OpenSSL still owns elsewhere, taking a reference of our own.
    init(retaining pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.pointer = pointer
    }

    deinit { X509_free(pointer) }

    /// Every certificate in a PEM bundle, in file order.
    public static func all(pem: Data, source: String) throws(CryptographyError) -> [Certificate] {
        _ = CryptographyError.drainErrorQueue()
        var certificates: [Certificate] = []
        MemoryBIO.reading(pem) { bio in
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                certificates.append(Certificate(owning: certificate))
            }
        }
        // Reading stops with a "no start line" error at the end of input; that one is expected.
        _ = CryptographyError.drainErrorQueue()
        guard !certificates.isEmpty else {
            throw CryptographyError(.certificateDecoding, "no PEM certificate in \(source)")
        }
        return certificates
    }

    public convenience init(pem: Data, source: String) throws(CryptographyError) {
        let first = try Self.all(pem: pem, source: source)[0]
        self.init(retaining: first.pointer)
    }

    public func pem() throws(CryptographyError) -> Data {
        var ok: Int32 = 0
        let data = MemoryBIO.writing { ok = PEM_write_bio_X509($0, pointer) }
        guard ok == 1 else { throw CryptographyError(.certificateCreation, "certificate to PEM") }
        return data
    }

    public func der() throws(CryptographyError) -> Data {
        var ok: Int32 = 0
        let data = MemoryBIO.writing { ok = i2d_X509_bio($0, pointer) }
        guard ok == 1 else { throw CryptographyError(.certificateCreation, "certificate to DER") }
        return data
    }

    public var subjectCommonName: String? { Self.commonName(of: X509_get_subject_name(pointer)) }
    public var issuerCommonName: String? { Self.commonName(of: X509_get_issuer_name(pointer)) }

    /// The subject in RFC 2253 form, as `openssl x509 -nameopt RFC2253` prints it.
    public var subject: String { Self.rfc2253(X509_get_subject_name(pointer)) }
    public var issuer: String { Self.rfc2253(X509_get_issuer_name(pointer)) }

    /// SHA-256 of the DER encoding, the fingerprint `openssl x509 -fingerprint -sha256` prints.
    public var sha256Fingerprint: DigestValue {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        X509_digest(pointer, EVP_sha256(), &output, &length)
        return DigestValue(bytes: Array(output.prefix(Int(length))))
    }

    public var serialNumberHex: String {
        guard let bignum = ASN1_INTEGER_to_BN(X509_get0_serialNumber(pointer), nil) else { return "" }
        defer { BN_free(bignum) }
        guard let hex = BN_bn2hex(bignum) else { return "" }
        defer { exhibit_openssl_free(hex) }
        return String(cString: hex).lowercased()
    }

    /// Whether `key` is the private half of this certificate's public key.
    public func matches(_ key: PrivateKey) -> Bool {
        let result = X509_check_private_key(pointer, key.pointer) == 1
        _ = CryptographyError.drainErrorQueue()
        return result
    }

    public var isSelfIssued: Bool { X509_NAME_cmp(X509_get_subject_name(pointer), X509_get_issuer_name(pointer)) == 0 }

    private static func commonName(of name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index),
            let asn1 = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>? = nil
        let length = ASN1_STRING_to_UTF8(&utf8, asn1)
        guard length >= 0, let utf8 else { return nil }
        defer { exhibit_openssl_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    private static func rfc2253(_ name: OpaquePointer?) -> String {
        let data = MemoryBIO.writing { X509_NAME_print_ex($0, name, 0, exhibit_name_flags_rfc2253()) }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A distinguished name as Exhibit uses them: a common name and an organisation.
public struct DistinguishedName: Sendable, Equatable {
    public var commonName: String
    public var organization: String?

    public init(commonName: String, organization: String? = nil) {
        self.commonName = commonName
        self.organization = organization
    }

    func makeName() -> OpaquePointer {
        let name = X509_NAME_new()!
        let utf8 = Int32(MBSTRING_UTF8)
        if let organization {
            X509_NAME_add_entry_by_txt(name, "O", utf8, organization, -1, -1, 0)
        }
        X509_NAME_add_entry_by_txt(name, "CN", utf8, commonName, -1, -1, 0)
        return name
    }
}

/// What a new certificate is for; decides its extensions.
public enum CertificateProfile: Sendable {
    /// An agency root (self-signed, may issue certificates).
    case certificateAuthority
    /// An appliance's signing certificate (digital signature and non-repudiation only).
    case deviceSigning
}

extension Certificate {
    /// Issues a certificate for `subjectKey`'s public half, signed by `issuer` (or self-signed when nil).
    public static func issue(
        subject: DistinguishedName,
        publicKeyOf subjectKey: PrivateKey,
        profile: CertificateProfile,
        validityDays: Int,
        issuer: (certificate: Certificate, key: PrivateKey)?
    ) throws(CryptographyError) -> Certificate {
        try issue(
            subjectName: subject.makeName(), ownsName: true, publicKey: subjectKey.pointer,
            profile: profile, validityDays: validityDays,
            issuerCertificate: issuer?.certificate, signingKey: issuer?.key ?? subjectKey)
    }

    /// Issues a certificate for a certificate signing request (the agency side of the CSR flow,
    /// used by the development CA and by tests).
    public static func issue(
        for request: CertificateRequest,
        profile: CertificateProfile,
        validityDays: Int,
        issuer: (certificate: Certificate, key: PrivateKey)
    ) throws(CryptographyError) -> Certificate {
        guard let publicKey = X509_REQ_get0_pubkey(request.pointer) else {
            throw CryptographyError(.requestDecoding, "request has no public key")
        }
        return try issue(
            subjectName: X509_REQ_get_subject_name(request.pointer), ownsName: false,
            publicKey: publicKey, profile: profile, validityDays: validityDays,
            issuerCertificate: issuer.certificate, signingKey: issuer.key)
    }

    private static func issue(
        subjectName: OpaquePointer?, ownsName: Bool, publicKey: OpaquePointer,
        profile: CertificateProfile, validityDays: Int,
        issuerCertificate: Certificate?, signingKey: PrivateKey
    ) throws(CryptographyError) -> Certificate {
        defer { if ownsName { X509_NAME_free(subjectName) } }
        guard let x509 = X509_new() else { throw CryptographyError(.certificateCreation, "X509_new") }
        let certificate = Certificate(owning: x509)

        var serial = [UInt8](repeating: 0, count: 16)
        RAND_bytes(&serial, Int32(serial.count))
        serial[0] &= 0x7f  // positive INTEGER
        let bignum = BN_bin2bn(serial, Int32(serial.count), nil)
        defer { BN_free(bignum) }

        guard X509_set_version(x509, 2) == 1,
            BN_to_ASN1_INTEGER(bignum, X509_get_serialNumber(x509)) != nil,
            X509_gmtime_adj(X509_getm_notBefore(x509), -300) != nil,
            X509_time_adj_ex(X509_getm_notAfter(x509), Int32(validityDays), 0, nil) != nil,
            X509_set_subject_name(x509, subjectName) == 1,
            X509_set_issuer_name(x509, issuerCertificate.map { X509_get_subject_name($0.pointer) } ?? subjectName) == 1,
            X509_set_pubkey(x509, publicKey) == 1
        else { throw CryptographyError(.certificateCreation, "certificate fields") }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuerCertificate?.pointer ?? x509, x509, nil, nil, 0)
        let extensions: [(Int32, String)] =
            switch profile {
            case .certificateAuthority:
                [
                    (NID_basic_constraints, "critical,CA:TRUE"),
                    (NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"),
                    (NID_subject_key_identifier, "hash"),
                ]
            case .deviceSigning:
                [
                    (NID_basic_constraints, "critical,CA:FALSE"),
                    (NID_key_usage, "critical,digitalSignature,nonRepudiation"),
                    (NID_subject_key_identifier, "hash"),
                    (NID_authority_key_identifier, "keyid:always"),
                ]
            }
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw CryptographyError(.certificateCreation, "extension \(value)")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else {
                throw CryptographyError(.certificateCreation, "extension \(value)")
            }
        }
        guard X509_sign(x509, signingKey.pointer, EVP_sha256()) > 0 else {
            throw CryptographyError(.signing, "certificate for \(certificate.subject)")
        }
        return certificate
    }
}

/// A PKCS#10 certificate signing request for the appliance's device key.
public final class CertificateRequest: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_REQ_free(pointer) }

    public init(subject: DistinguishedName, key: PrivateKey) throws(CryptographyError) {
        guard let request = X509_REQ_new() else { throw CryptographyError(.requestCreation, "X509_REQ_new") }
        pointer = request
        let name = subject.makeName()
        defer { X509_NAME_free(name) }
        guard X509_REQ_set_version(request, 0) == 1,
            X509_REQ_set_subject_name(request, name) == 1,
            X509_REQ_set_pubkey(request, key.pointer) == 1,
            X509_REQ_sign(request, key.pointer, EVP_sha256()) > 0
        else { throw CryptographyError(.requestCreation, "request for \(subject.commonName)") }
    }

    public convenience init(pem: Data, source: String) throws(CryptographyError) {
        let request = MemoryBIO.reading(pem) { PEM_read_bio_X509_REQ($0, nil, nil, nil) }
        guard let request else { throw CryptographyError(.requestDecoding, source) }
        self.init(owning: request)
    }

    public func pem() throws(CryptographyError) -> Data {
        var ok: Int32 = 0
        let data = MemoryBIO.writing { ok = PEM_write_bio_X509_REQ($0, pointer) }
        guard ok == 1 else { throw CryptographyError(.requestCreation, "request to PEM") }
        return data
    }
}

extension Certificate {
    /// Checks that this certificate chains to one of `trustAnchors` through `intermediates`.
    /// Returns nil when it does, or OpenSSL's reason when it does not.
    public func chainProblem(trustAnchors: [Certificate], intermediates: [Certificate]) -> String? {
        guard let store = X509_STORE_new(), let context = X509_STORE_CTX_new() else { return "out of memory" }
        defer {
            X509_STORE_CTX_free(context)
            X509_STORE_free(store)
        }
        for anchor in trustAnchors { X509_STORE_add_cert(store, anchor.pointer) }
        let untrusted = exhibit_x509_stack_new()
        defer { exhibit_x509_stack_free_shallow(untrusted) }
        for certificate in intermediates { _ = exhibit_x509_stack_push(untrusted, certificate.pointer) }
        guard X509_STORE_CTX_init(context, store, pointer, untrusted) == 1 else { return "cannot set up verification" }
        X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(context), X509_PURPOSE_ANY)
        if X509_verify_cert(context) == 1 { return nil }
        let reason = String(cString: X509_verify_cert_error_string(Int(X509_STORE_CTX_get_error(context))))
        _ = CryptographyError.drainErrorQueue()
        return reason
    }
}
