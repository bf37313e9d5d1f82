// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// The digests Exhibit computes. SHA-256 is always computed; MD5 and SHA-1 exist for legacy
/// tools and on request only.
public enum DigestAlgorithm: String, CaseIterable, Codable, Sendable, Comparable {
    case sha256
    case sha1
    case md5

    /// The name as tools print it (`SHA-256`).
    public var displayName: String {
        switch self {
        case .sha256: "SHA-256"
        case .sha1: "SHA-1"
        case .md5: "MD5"
        }
    }

    /// The name UCO uses for `hashMethod` (a plain string since UCO 1.4).
    public var ucoName: String {
        switch self {
        case .sha256: "SHA256"
        case .sha1: "SHA1"
        case .md5: "MD5"
        }
    }

    public var digestLength: Int {
        switch self {
        case .sha256: 32
        case .sha1: 20
        case .md5: 16
        }
    }

    var evp: OpaquePointer? {
        switch self {
        case .sha256: EVP_sha256()
        case .sha1: EVP_sha1()
        case .md5: EVP_md5()
        }
    }

    public static func < (lhs: DigestAlgorithm, rhs: DigestAlgorithm) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A finished digest value.
public struct DigestValue: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses lowercase or uppercase hex; nil when the text is not hex of even length.
    public init?(hex: String) {
        guard hex.count % 2 == 0, !hex.isEmpty else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.bytes = bytes
    }

    /// Lowercase hex, as sha256sum prints it.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }
}

/// An incremental digest over OpenSSL's EVP interface (SHA-NI where the CPU has it).
///
/// - Important: one thread at a time; the pipeline gives each digest its own thread.
public final class Digest: @unchecked Sendable {
    public let algorithm: DigestAlgorithm
    private let context: OpaquePointer

    public init(_ algorithm: DigestAlgorithm) {
        self.algorithm = algorithm
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, algorithm.evp, nil) == 1 else {
            // Allocation failure or a missing built-in digest leaves nothing sensible to do.
            fatalError("OpenSSL cannot initialise \(algorithm.displayName)")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count > 0 else { return }
        EVP_DigestUpdate(context, buffer.baseAddress, buffer.count)
    }

    public func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    public func update(_ text: String) {
        update(Data(text.utf8))
    }

    /// Finishes the digest. The object must not be updated afterwards.
    public func finalize() -> DigestValue {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &output, &length)
        return DigestValue(bytes: Array(output.prefix(Int(length))))
    }

    /// One-shot digest of bytes in memory.
    public static func compute(_ algorithm: DigestAlgorithm, of data: Data) -> DigestValue {
        let digest = Digest(algorithm)
        digest.update(data)
        return digest.finalize()
    }

    public static func sha256(_ data: Data) -> DigestValue { compute(.sha256, of: data) }
    public static func sha256(_ text: String) -> DigestValue { compute(.sha256, of: Data(text.utf8)) }
}
