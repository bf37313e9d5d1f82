// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation
import Synchronization

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

    /// The algorithm's number in the C shim's `exhibit_digest_state`.
    var shimIdentifier: Int32 {
        switch self {
        case .sha256: 0
        case .sha1: 1
        case .md5: 2
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

/// An incremental digest over OpenSSL's MD5/SHA block functions (SHA-NI where the CPU has it),
/// whose running state can be saved and restored, so a journal can carry a half-done digest.
///
/// - Important: one thread at a time; the pipeline gives each digest its own thread.
public final class Digest: @unchecked Sendable {
    public let algorithm: DigestAlgorithm
    private let state: UnsafeMutablePointer<exhibit_digest_state>

    public init(_ algorithm: DigestAlgorithm) {
        self.algorithm = algorithm
        state = .allocate(capacity: 1)
        guard exhibit_digest_init(state, algorithm.shimIdentifier) == 1 else {
            fatalError("OpenSSL cannot initialise \(algorithm.displayName)")
        }
    }

    /// A digest that continues from `savedState` (from `savedState` of the same algorithm).
    public convenience init?(_ algorithm: DigestAlgorithm, savedState: Data) {
        guard savedState.count == Self.stateSize else { return nil }
        self.init(algorithm)
        _ = savedState.withUnsafeBytes { memcpy(state, $0.baseAddress!, Self.stateSize) }
        guard state.pointee.algorithm == algorithm.shimIdentifier else { return nil }
    }

    deinit { state.deallocate() }

    /// Names the layout of `savedState`, so a journal written by another build is not misread.
    public static var stateFormat: String { "openssl-\(OPENSSL_VERSION_MAJOR)-ctx-\(stateSize)" }
    private static let stateSize = MemoryLayout<exhibit_digest_state>.size

    /// The running state: everything needed to continue the digest later.
    public var savedState: Data { Data(bytes: state, count: Self.stateSize) }

    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count > 0 else { return }
        exhibit_digest_update(state, buffer.baseAddress, buffer.count)
    }

    public func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    public func update(_ text: String) {
        update(Data(text.utf8))
    }

    /// SHA-256's intermediate hash value after the bytes so far (FIPS 180-4, 6.2), when they are a
    /// whole number of 64-byte blocks; nil otherwise or for another algorithm. Two digests of the
    /// same stream agree on it at every such offset, and differ from the first block that differs.
    public var chainingValue: DigestValue? {
        var output = [UInt8](repeating: 0, count: 32)
        guard exhibit_digest_chain(state, &output) == 1 else { return nil }
        return DigestValue(bytes: output)
    }

    /// Finishes the digest. The object must not be updated afterwards.
    public func finalize() -> DigestValue {
        var output = [UInt8](repeating: 0, count: algorithm.digestLength)
        exhibit_digest_final(state, &output)
        return DigestValue(bytes: output)
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

extension DigestAlgorithm {
    /// The slowest of `algorithms` on this machine: the one stage of an acquisition that no
    /// number of cores speeds up. Which it is depends on the CPU: where SHA-1 and SHA-256 have
    /// instructions of their own (x86 SHA-NI, ARMv8) OpenSSL does them at 1.8-1.9 GB/s and MD5 at
    /// 0.76 GB/s (this machine, `openssl speed`); without them SHA-256 is the slowest. So it is
    /// timed, once per process: 1 MiB each (a 64 KiB block 16 times: a freed block of 1 MiB would
    /// raise glibc's mmap threshold and so the peak memory of everything after), on the thread's
    /// CPU clock, the best of two tries.
    public static func slowest(of algorithms: some Collection<DigestAlgorithm>) -> DigestAlgorithm? {
        algorithms.max { secondsPerMebibyte($0) < secondsPerMebibyte($1) }
    }

    private static let timings = Mutex<[DigestAlgorithm: Double]>([:])

    private static func secondsPerMebibyte(_ algorithm: DigestAlgorithm) -> Double {
        if let known = timings.withLock({ $0[algorithm] }) { return known }
        let block = [UInt8](repeating: 0, count: 64 << 10)
        let seconds = block.withUnsafeBytes { block in
            (0..<2).map { _ in
                let started = threadCPUSeconds()
                let digest = Digest(algorithm)
                for _ in 0..<16 { digest.update(block) }
                _ = digest.finalize()
                return threadCPUSeconds() - started
            }.min()!
        }
        timings.withLock { $0[algorithm] = seconds }
        return seconds
    }

    private static func threadCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
