// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// CMS SignedData (RFC 5652), detached, DER: the seal over a bundle's tag manifest.
///
/// Signed with ECDSA P-256 / SHA-256 so that stock `openssl cms -verify` (3.0) checks it;
/// OpenSSL adds the signingTime, content-type and message-digest attributes, and the signer's
/// certificate and any intermediates are embedded.
public enum DetachedSignature {
    public static func sign(
        _ content: Data, certificate: Certificate, key: PrivateKey, chain: [Certificate]
    ) throws(CryptographyError) -> Data {
        let flags = UInt32(CMS_DETACHED | CMS_BINARY | CMS_PARTIAL)
        let extra = exhibit_x509_stack_new()
        defer { exhibit_x509_stack_free_shallow(extra) }
        for certificate in chain { _ = exhibit_x509_stack_push(extra, certificate.pointer) }

        guard let cms = CMS_sign(nil, nil, extra, nil, flags) else {
            throw CryptographyError(.signing, "CMS_sign")
        }
        defer { CMS_ContentInfo_free(cms) }
        guard CMS_add1_signer(cms, certificate.pointer, key.pointer, EVP_sha256(), flags) != nil else {
            throw CryptographyError(.signing, "adding signer \(certificate.subject)")
        }
        let finished = MemoryBIO.reading(content) { CMS_final(cms, $0, nil, flags) }
        guard finished == 1 else { throw CryptographyError(.signing, "CMS_final") }
        var ok: Int32 = 0
        let der = MemoryBIO.writing { ok = i2d_CMS_bio($0, cms) }
        guard ok == 1 else { throw CryptographyError(.signing, "CMS to DER") }
        return der
    }

    /// What a valid signature tells: who signed it and what chain they embedded.
    public struct Verified: Sendable {
        public let signer: Certificate
    }

    /// Verifies `signature` over `content`, building the signer's chain to one of `trustAnchors`.
    /// Any purpose is accepted (as `openssl cms -verify -purpose any`), the chain is not.
    public static func verify(
        _ signature: Data, content: Data, trustAnchors: [Certificate]
    ) throws(CryptographyError) -> Verified {
        _ = CryptographyError.drainErrorQueue()
        // d2i reads one value and ignores what follows; bytes after it would be covered by no
        // signature yet change the seal's SHA-256, which the next bundle links to.
        guard let length = outerDERLength(signature) else {
            throw CryptographyError(.signatureDecoding, "seal is not one DER SEQUENCE of definite length")
        }
        guard length == signature.count else {
            throw CryptographyError(
                .signatureDecoding,
                length > signature.count
                    ? "seal is truncated: its DER value is \(length) bytes, the file \(signature.count)"
                    : "\(signature.count - length) bytes follow the seal's DER value (\(length) bytes)")
        }
        let decoded = MemoryBIO.reading(signature) { d2i_CMS_bio($0, nil) }
        guard let cms = decoded else { throw CryptographyError(.signatureDecoding, "seal is not DER CMS") }
        defer { CMS_ContentInfo_free(cms) }

        guard let store = X509_STORE_new() else { throw CryptographyError(.signatureInvalid, "X509_STORE_new") }
        defer { X509_STORE_free(store) }
        for anchor in trustAnchors { X509_STORE_add_cert(store, anchor.pointer) }
        X509_VERIFY_PARAM_set_purpose(X509_STORE_get0_param(store), X509_PURPOSE_ANY)

        let result = MemoryBIO.reading(content) { CMS_verify(cms, nil, store, $0, nil, UInt32(CMS_BINARY)) }
        guard result == 1 else { throw CryptographyError(.signatureInvalid, "seal does not verify") }
        guard let signers = CMS_get0_signers(cms) else {
            throw CryptographyError(.signatureInvalid, "seal names no signer")
        }
        defer { exhibit_x509_stack_free_shallow(signers) }
        guard exhibit_x509_stack_count(signers) == 1, let signer = exhibit_x509_stack_value(signers, 0) else {
            throw CryptographyError(.signatureInvalid, "seal must have exactly one signer")
        }
        return Verified(signer: Certificate(retaining: signer))
    }

    /// The size of the DER SEQUENCE at the start of `data`: tag, length octets and contents.
    static func outerDERLength(_ data: Data) -> Int? {
        let bytes = [UInt8](data.prefix(6))
        guard bytes.count >= 2, bytes[0] == 0x30 else { return nil }
        if bytes[1] < 0x80 { return 2 + Int(bytes[1]) }
        let octets = Int(bytes[1] & 0x7F)
        guard (1...4).contains(octets), bytes.count >= 2 + octets else { return nil }
        let length = bytes[2..<2 + octets].reduce(0) { $0 << 8 | Int($1) }
        return 2 + octets + length
    }
}
