// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation

/// One digest over the whole stream, on its own pipeline thread.
public final class StreamDigester: StreamConsumer, @unchecked Sendable {
    public let algorithm: DigestAlgorithm
    private let digest: Digest
    private var value: DigestValue?

    public init(_ algorithm: DigestAlgorithm) {
        self.algorithm = algorithm
        self.digest = Digest(algorithm)
    }

    public var name: String { algorithm.displayName }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        digest.update(bytes)
    }

    public func finish() throws(AcquisitionError) { value = digest.finalize() }

    /// The digest; nil until the pipeline finished successfully.
    public var result: DigestValue? { value }
}

/// SHA-256 of each consecutive range of the stream: image segments, per-file digests of a
/// read-back, or verification windows that let `exhibit verify` name the byte range a change sits in.
public final class RangeDigester: StreamConsumer, @unchecked Sendable {
    public let label: String
    private let sizes: [UInt64]
    private var index = 0
    private var digest = Digest(.sha256)
    private var inRange: UInt64 = 0
    private var values: [DigestValue] = []

    /// Ranges of the given sizes, in order; bytes past their sum are ignored.
    public init(rangeSizes: [UInt64], label: String) {
        self.sizes = rangeSizes
        self.label = label
    }

    /// Ranges of `rangeSize` bytes (the last one shorter) covering `totalSize` bytes.
    public convenience init(rangeSize: UInt64, totalSize: UInt64, label: String) {
        precondition(rangeSize > 0)
        var sizes: [UInt64] = []
        var left = totalSize
        while left > 0 {
            sizes.append(min(rangeSize, left))
            left -= sizes[sizes.count - 1]
        }
        self.init(rangeSizes: sizes, label: label)
    }

    public var name: String { label }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        var rest = bytes
        while !rest.isEmpty, index < sizes.count {
            let take = Int(min(UInt64(rest.count), sizes[index] - inRange))
            digest.update(UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            inRange += UInt64(take)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
            if inRange == sizes[index] {
                values.append(digest.finalize())
                digest = Digest(.sha256)
                inRange = 0
                index += 1
            }
        }
    }

    public func finish() throws(AcquisitionError) {
        if inRange > 0 { values.append(digest.finalize()) }
    }

    /// One digest per range, in order.
    public var results: [DigestValue] { values }
}

/// How big the verification windows are for a stream: at least 64 MiB, and never more than 4096
/// windows, so the record stays small for any source size. Always a power of two, hence a whole
/// number of sectors of any size.
public enum VerificationWindows {
    public static func size(for streamSize: UInt64) -> UInt64 {
        var size: UInt64 = 64 << 20
        while streamSize / size >= 4096 { size *= 2 }
        return size
    }
}
