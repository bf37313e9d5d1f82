// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Testing

@Suite struct CryptographyTests {
    @Test func digestsMatchKnownVectors() {
        #expect(Digest.sha256("abc").hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.compute(.md5, of: Data("abc".utf8)).hex == "900150983cd24fb0d6963f7d28e17f72")
        #expect(Digest.compute(.sha1, of: Data("abc".utf8)).hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(DigestValue(hex: "00ff10")?.bytes == [0, 255, 16])
        #expect(DigestValue(hex: "0g") == nil)
    }

    @Test func detachedSignatureVerifiesOnlyAgainstItsAnchorAndContent() throws {
        let caKey = try PrivateKey.generateP256()
        let ca = try Certificate.issue(
            subject: DistinguishedName(commonName: "Test root"), publicKeyOf: caKey, profile: .certificateAuthority,
            validityDays: 30, issuer: nil)
        let deviceKey = try PrivateKey.generateP256()
        let device = try Certificate.issue(
            subject: DistinguishedName(commonName: "appliance-1", organization: "Lab"), publicKeyOf: deviceKey,
            profile: .deviceSigning, validityDays: 30, issuer: (ca, caKey))
        #expect(device.matches(deviceKey))
        #expect(!device.matches(caKey))
        #expect(device.chainProblem(trustAnchors: [ca], intermediates: []) == nil)

        let content = Data("manifest\n".utf8)
        let signature = try DetachedSignature.sign(content, certificate: device, key: deviceKey, chain: [])
        let verified = try DetachedSignature.verify(signature, content: content, trustAnchors: [ca])
        #expect(verified.signer.subjectCommonName == "appliance-1")

        #expect(throws: CryptographyError.self) {
            try DetachedSignature.verify(signature, content: Data("manifest!\n".utf8), trustAnchors: [ca])
        }
        let otherKey = try PrivateKey.generateP256()
        let other = try Certificate.issue(
            subject: DistinguishedName(commonName: "Test root"), publicKeyOf: otherKey, profile: .certificateAuthority,
            validityDays: 30, issuer: nil)
        #expect(throws: CryptographyError.self) {
            try DetachedSignature.verify(signature, content: content, trustAnchors: [other])
        }
        #expect(device.chainProblem(trustAnchors: [other], intermediates: []) != nil)
    }

    /// GMAC is AES-128-GCM's tag over additional data: the GCM specification's test case 1 (zero
    /// key, zero IV, nothing) gives 58e2fcce…; the same bytes under the same key and nonce give the
    /// same tag, and one changed bit or another nonce another.
    @Test func gmacIsTheGCMTagOfTheBytes() {
        let zero = [UInt8](repeating: 0, count: 16)
        #expect(GMAC(key: zero, nonce: 0).finalize().hex == "58e2fccefa7e3061367f1d57a4e7455a")
        let key = GMAC.randomKey()
        func tag(_ bytes: [UInt8], nonce: UInt64 = 7) -> DigestValue {
            let mac = GMAC(key: key, nonce: nonce)
            bytes.withUnsafeBytes { mac.update($0) }
            return mac.finalize()
        }
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var changed = data
        changed[54_321] ^= 0x10
        #expect(tag(data) == tag(data))
        #expect(tag(data) != tag(changed))
        #expect(tag(data) != tag(data, nonce: 8))
    }
}
