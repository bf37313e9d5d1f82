// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The appliance's ADB host key: RSA-2048, e = 65537, as `adb` keeps in `~/.android/adbkey`.
/// A phone that was told "Always allow" remembers its public key, so the key must persist.
public final class AndroidDebugKey: @unchecked Sendable {
    private let pointer: OpaquePointer
    public static let bits = 2048
    /// The Android public-key structure's size for RSA-2048 (AOSP android_pubkey.cpp).
    public static let publicKeySize = 524

    private init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }

    public static func generate() throws(CryptographyError) -> AndroidDebugKey {
        guard let key = exhibit_generate_rsa_key(bits) else { throw CryptographyError(.keyGeneration, "RSA-2048 ADB key") }
        return AndroidDebugKey(owning: key)
    }

    /// Reads a PEM RSA private key (`adbkey`, PKCS#1 or PKCS#8).
    public convenience init(pem: Data, source: String) throws(CryptographyError) {
        let key = MemoryBIO.reading(pem) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
        guard let key else { throw CryptographyError(.keyDecoding, source) }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA, EVP_PKEY_get_bits(key) == Int32(Self.bits) else {
            EVP_PKEY_free(key)
            throw CryptographyError(.keyDecoding, "\(source): not an RSA-\(Self.bits) key")
        }
        self.init(owning: key)
    }

    public func pem() throws(CryptographyError) -> Data {
        var ok: Int32 = 0
        let data = MemoryBIO.writing { ok = PEM_write_bio_PrivateKey($0, pointer, nil, nil, 0, nil, nil) }
        guard ok == 1 else { throw CryptographyError(.keyEncoding, "ADB key to PEM") }
        return data
    }

    /// Android's public-key structure, little-endian: modulus size in 32-bit words (64), n0inv
    /// (−1/n mod 2³²), the modulus, R² mod n (R = 2²⁰⁴⁸, for the phone's Montgomery
    /// arithmetic), the exponent.
    public func androidPublicKey() throws(CryptographyError) -> [UInt8] {
        var modulus: OpaquePointer? = nil
        var exponent: OpaquePointer? = nil
        guard EVP_PKEY_get_bn_param(pointer, OSSL_PKEY_PARAM_RSA_N, &modulus) == 1, let modulus,
            EVP_PKEY_get_bn_param(pointer, OSSL_PKEY_PARAM_RSA_E, &exponent) == 1, let exponent
        else { throw CryptographyError(.keyEncoding, "reading the RSA modulus and exponent") }
        defer {
            BN_free(modulus)
            BN_free(exponent)
        }
        let context = BN_CTX_new()!
        let r = BN_new()!
        let rr = BN_new()!
        defer {
            BN_CTX_free(context)
            BN_free(r)
            BN_free(rr)
        }
        let words = Self.bits / 32
        guard BN_set_bit(r, Int32(Self.bits * 2)) == 1, BN_nnmod(rr, r, modulus, context) == 1 else {
            throw CryptographyError(.keyEncoding, "computing R² mod n")
        }
        var modulusBytes = [UInt8](repeating: 0, count: Self.bits / 8)
        var rrBytes = [UInt8](repeating: 0, count: Self.bits / 8)
        guard BN_bn2lebinpad(modulus, &modulusBytes, Int32(modulusBytes.count)) == Int32(modulusBytes.count),
            BN_bn2lebinpad(rr, &rrBytes, Int32(rrBytes.count)) == Int32(rrBytes.count)
        else { throw CryptographyError(.keyEncoding, "writing the modulus") }
        // n0inv: the inverse of the modulus's lowest word modulo 2³², negated (n is odd, so
        // Newton's iteration x ← x(2 − n·x) doubles the correct low bits each round).
        let n0 = UInt32(modulusBytes[0]) | UInt32(modulusBytes[1]) << 8 | UInt32(modulusBytes[2]) << 16 | UInt32(modulusBytes[3]) << 24
        var inverse: UInt32 = 1
        for _ in 0..<5 { inverse = inverse &* (2 &- n0 &* inverse) }
        let n0inv = 0 &- inverse
        func little(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        let e = UInt32(BN_get_word(exponent))
        return little(UInt32(words)) + little(n0inv) + modulusBytes + rrBytes + little(e)
    }

    /// The line a phone stores and `adb` writes to `adbkey.pub`: base64 of the structure, a
    /// space and a name (`exhibit@<appliance id>`).
    public func publicKeyLine(name: String) throws(CryptographyError) -> String {
        Data(try androidPublicKey()).base64EncodedString() + " " + name
    }

    /// AUTH(SIGNATURE): PKCS#1 v1.5 with a SHA-1 DigestInfo around the phone's raw 20-byte token,
    /// which is not hashed again (what `RSA_sign(NID_sha1, token, 20, …)` makes in adb).
    public func signToken(_ token: [UInt8]) throws(CryptographyError) -> [UInt8] {
        guard token.count == 20 else { throw CryptographyError(.signing, "an ADB token is 20 bytes, not \(token.count)") }
        guard let context = EVP_PKEY_CTX_new(pointer, nil) else { throw CryptographyError(.signing, "ADB token") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_sign_init(context) == 1, EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1,
            EVP_PKEY_CTX_set_signature_md(context, EVP_sha1()) == 1
        else { throw CryptographyError(.signing, "setting up PKCS#1 v1.5 with SHA-1") }
        var length = 0
        guard EVP_PKEY_sign(context, nil, &length, token, token.count) == 1 else { throw CryptographyError(.signing, "ADB token") }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_sign(context, &signature, &length, token, token.count) == 1 else {
            throw CryptographyError(.signing, "ADB token")
        }
        return Array(signature.prefix(length))
    }

    /// The phone's side of AUTH: whether `signature` is this Android public key's PKCS#1 v1.5
    /// SHA-1 signature of the raw `token` (sig^e mod n must equal 00 01 FF… 00 DigestInfo token).
    public static func verifyToken(_ signature: [UInt8], token: [UInt8], androidPublicKey key: [UInt8]) -> Bool {
        guard key.count == publicKeySize, token.count == 20, signature.count == bits / 8 else { return false }
        let modulusBytes = Array(key[8..<(8 + bits / 8)])
        let exponentWord = key[(publicKeySize - 4)...].reversed().reduce(UInt(0)) { $0 << 8 | UInt($1) }
        guard let context = BN_CTX_new(), let modulus = BN_lebin2bn(modulusBytes, Int32(modulusBytes.count), nil),
            let value = BN_bin2bn(signature, Int32(signature.count), nil), let exponent = BN_new(), let result = BN_new()
        else { return false }
        defer {
            BN_CTX_free(context)
            BN_free(modulus)
            BN_free(value)
            BN_free(exponent)
            BN_free(result)
        }
        guard BN_set_word(exponent, exponentWord) == 1, BN_cmp(value, modulus) < 0,
            BN_mod_exp(result, value, exponent, modulus, context) == 1
        else { return false }
        var decrypted = [UInt8](repeating: 0, count: bits / 8)
        guard BN_bn2binpad(result, &decrypted, Int32(decrypted.count)) == Int32(decrypted.count) else { return false }
        let digestInfo: [UInt8] = [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14]
        let tail = [0] + digestInfo + token
        let padding = decrypted.count - 2 - tail.count
        return decrypted == [0, 1] + [UInt8](repeating: 0xFF, count: padding) + tail
    }
}
