// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import TestSupport
import Testing

/// The ADB host key, judged by Debian's `adb` (its public-key file) and by `openssl pkeyutl`
/// (the AUTH signature).
@Suite struct AndroidDebugKeyTests {
    @Test(.enabled(if: Subprocess.has("adb"), "Debian's adb is not installed (scripts/install-deps)"))
    func publicKeyLineIsWhatAdbWritesForTheSameKey() throws {
        let scratch = try ScratchDirectory("adbkey")
        let keygen = try Subprocess.run(["env", "HOME=\(scratch.path)", "adb", "keygen", scratch.file("adbkey")])
        #expect(keygen.succeeded, "\(keygen)")
        let pem = try #require(FileManager.default.contents(atPath: scratch.file("adbkey")))
        let adbLine = try String(contentsOfFile: scratch.file("adbkey.pub"), encoding: .utf8)
        let key = try AndroidDebugKey(pem: pem, source: "adbkey")
        let ours = try key.publicKeyLine(name: "exhibit@test")
        #expect(ours.split(separator: " ").first == adbLine.split(separator: " ").first, "ours: \(ours.prefix(40))… adb: \(adbLine.prefix(40))…")
    }

    @Test func structureHoldsModulusMontgomeryConstantsAndExponent() throws {
        let key = try AndroidDebugKey.generate()
        let structure = try key.androidPublicKey()
        #expect(structure.count == AndroidDebugKey.publicKeySize)
        func word(_ offset: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(structure[offset + $1]) << (8 * $1) } }
        #expect(word(0) == 64)
        #expect(word(4) &* word(8) == 0xFFFF_FFFF, "n0inv · n[0] ≡ −1 (mod 2³²)")
        #expect(word(520) == 65537)
        // The modulus, little-endian, is OpenSSL's (big-endian hex) reversed.
        let scratch = try ScratchDirectory("adbkey-modulus")
        try key.pem().write(to: URL(fileURLWithPath: scratch.file("key.pem")))
        let modulus = try Subprocess.run(["openssl", "rsa", "-in", scratch.file("key.pem"), "-noout", "-modulus"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Modulus=", with: "")
        let ourHex = structure[8..<264].reversed().map { String(format: "%02X", $0) }.joined()
        #expect(ourHex == modulus)
    }

    @Test func tokenSignatureVerifiesAsPKCS1WithSHA1OverTheRawToken() throws {
        let scratch = try ScratchDirectory("adb-auth")
        let key = try AndroidDebugKey.generate()
        try key.pem().write(to: URL(fileURLWithPath: scratch.file("key.pem")))
        #expect(try Subprocess.run(["openssl", "pkey", "-in", scratch.file("key.pem"), "-pubout", "-out", scratch.file("pub.pem")]).succeeded)
        let token = (0..<20).map { UInt8($0 * 13 + 1) }
        let signature = try key.signToken(token)
        #expect(signature.count == 256)
        try Data(token).write(to: URL(fileURLWithPath: scratch.file("token")))
        try Data(signature).write(to: URL(fileURLWithPath: scratch.file("sig")))
        let verify = [
            "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", scratch.file("pub.pem"), "-pkeyopt", "digest:sha1",
            "-sigfile", scratch.file("sig"), "-in",
        ]
        let good = try Subprocess.run(verify + [scratch.file("token")])
        #expect(good.succeeded && good.stdout.contains("Signature Verified Successfully"), "\(good)")
        try Data(token.reversed()).write(to: URL(fileURLWithPath: scratch.file("other")))
        #expect(!(try Subprocess.run(verify + [scratch.file("other")])).succeeded, "another token must not verify")
        #expect(throws: CryptographyError.self) { try key.signToken([1, 2, 3]) }
    }
}
