// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// An ECDSA P-256 private key (the appliance's device key, or a development agency CA key).
public final class PrivateKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }

    /// A fresh P-256 key from OpenSSL's CSPRNG.
    public static func generateP256() throws(CryptographyError) -> PrivateKey {
        guard let key = exhibit_generate_p256_key() else {
            throw CryptographyError(.keyGeneration, "P-256 key")
        }
        return PrivateKey(owning: key)
    }

    /// Reads an unencrypted PEM private key.
    public convenience init(pem: Data, source: String) throws(CryptographyError) {
        let key = MemoryBIO.reading(pem) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
        guard let key else { throw CryptographyError(.keyDecoding, source) }
        self.init(owning: key)
    }

    /// The key as unencrypted PKCS#8 PEM. Whoever writes it to disk must restrict the file's mode.
    public func pem() throws(CryptographyError) -> Data {
        var ok: Int32 = 0
        let data = MemoryBIO.writing { ok = PEM_write_bio_PrivateKey($0, pointer, nil, nil, 0, nil, nil) }
        guard ok == 1 else { throw CryptographyError(.keyEncoding, "private key to PEM") }
        return data
    }

    /// The SubjectPublicKeyInfo in DER.
    public func publicKeyDER() throws(CryptographyError) -> Data {
        var ok: Int32 = 0
        let data = MemoryBIO.writing { ok = i2d_PUBKEY_bio($0, pointer) }
        guard ok == 1 else { throw CryptographyError(.keyEncoding, "public key to DER") }
        return data
    }
}
