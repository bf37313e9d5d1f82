// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// GMAC: AES-128-GCM over additional data only, which leaves a 16-byte tag of the bytes under a
/// key. A MAC at AES-NI and carry-less-multiply speed (here about three times SHA-256's), for
/// checking that a store gave back the bytes written to it: the same key and nonce over the same
/// bytes give the same tag, and nobody without the key can make other bytes give it.
///
/// - Important: one thread at a time.
public final class GMAC: @unchecked Sendable {
    private let context: OpaquePointer

    /// A fresh random key, for one job's checks.
    public static func randomKey() -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&key, Int32(key.count)) == 1 else { fatalError("OpenSSL's random generator failed") }
        return key
    }

    /// A MAC under `key` (16 bytes) with `nonce` (one per message checked: a window's index).
    public init(key: [UInt8], nonce: UInt64) {
        precondition(key.count == 16, "AES-128 takes a 16-byte key")
        guard let context = EVP_CIPHER_CTX_new() else { fatalError("OpenSSL cannot make a cipher context") }
        self.context = context
        var iv = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { iv[4 + index] = UInt8(truncatingIfNeeded: nonce >> (8 * UInt64(7 - index))) }
        guard EVP_EncryptInit_ex(context, EVP_aes_128_gcm(), nil, key, iv) == 1 else { fatalError("OpenSSL cannot start AES-128-GCM") }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty {
            let count = min(rest.count, 1 << 30)
            var written: Int32 = 0
            guard EVP_EncryptUpdate(context, nil, &written, rest.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count)) == 1 else {
                fatalError("OpenSSL's GMAC update failed")
            }
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(count))
        }
    }

    /// The tag. The object must not be updated afterwards.
    public func finalize() -> DigestValue {
        var written: Int32 = 0
        var none = [UInt8](repeating: 0, count: 16)
        var tag = [UInt8](repeating: 0, count: 16)
        guard EVP_EncryptFinal_ex(context, &none, &written) == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1
        else { fatalError("OpenSSL's GMAC tag failed") }
        return DigestValue(bytes: tag)
    }
}
