// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation

/// One digest over the whole stream, on its own pipeline thread.
///
/// With a frontier it hashes only the bytes before it: past the first skipped area the stream is
/// provisional (zeros where sectors may still be recovered), so the digest stops there and is
/// finished later from the store.
public final class StreamDigester: StreamConsumer, @unchecked Sendable {
    public let algorithm: DigestAlgorithm
    private let digest: Digest
    private let frontier: SkipFrontier?
    private var value: DigestValue?
    /// With a window size (SHA-256, set before the pipeline runs): the digest's intermediate hash
    /// value (FIPS 180-4, 6.2) at every window boundary is kept in `chainingValues`. Two digests of
    /// one stream agree on them up to the first window that differs, which they thus locate.
    public var chainEvery: UInt64?
    public private(set) var chainingValues: [DigestValue] = []

    public init(_ algorithm: DigestAlgorithm, stoppingAt frontier: SkipFrontier? = nil) {
        self.algorithm = algorithm
        self.digest = Digest(algorithm)
        self.frontier = frontier
    }

    /// Continues from a state saved by `checkpoint()`; nil when the state is not one of `algorithm`.
    public init?(_ algorithm: DigestAlgorithm, restoring saved: Data, stoppingAt frontier: SkipFrontier? = nil) {
        guard let digest = Digest(algorithm, savedState: saved) else { return nil }
        self.algorithm = algorithm
        self.digest = digest
        self.frontier = frontier
    }

    public var name: String { algorithm.displayName }
    public var sequentialDigest: DigestAlgorithm? { algorithm }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        let limit = frontier?.offset ?? .max
        guard offset < limit else { return }
        let count = Int(min(UInt64(bytes.count), limit - offset))
        guard let window = chainEvery else { return digest.update(UnsafeRawBufferPointer(rebasing: bytes.prefix(count))) }
        var rest = UnsafeRawBufferPointer(rebasing: bytes.prefix(count))
        var position = offset
        while !rest.isEmpty {
            let boundary = (position / window + 1) * window
            let take = Int(min(UInt64(rest.count), boundary - position))
            digest.update(UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            position += UInt64(take)
            if position == boundary, let value = digest.chainingValue { chainingValues.append(value) }
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
        }
    }

    /// Finishes the digest, unless it stopped at a frontier: then its state waits to be continued.
    public func finish() throws(AcquisitionError) {
        if (frontier?.offset ?? .max) == .max { value = digest.finalize() }
    }

    public func checkpoint() throws(AcquisitionError) -> Data? { digest.savedState }

    /// The running state, to continue after the pipeline (a digest stopped at its frontier).
    public var savedState: Data { digest.savedState }

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
    private let frontier: SkipFrontier?

    /// Ranges of the given sizes, in order; bytes past their sum are ignored, and with a frontier
    /// so are the bytes from it on (see `StreamDigester`).
    public init(rangeSizes: [UInt64], label: String, stoppingAt frontier: SkipFrontier? = nil) {
        self.sizes = rangeSizes
        self.label = label
        self.frontier = frontier
    }

    /// Ranges of `rangeSize` bytes (the last one shorter) covering `totalSize` bytes.
    public convenience init(rangeSize: UInt64, totalSize: UInt64, label: String, stoppingAt frontier: SkipFrontier? = nil) {
        precondition(rangeSize > 0)
        var sizes: [UInt64] = []
        var left = totalSize
        while left > 0 {
            sizes.append(min(rangeSize, left))
            left -= sizes[sizes.count - 1]
        }
        self.init(rangeSizes: sizes, label: label, stoppingAt: frontier)
    }

    public var name: String { label }

    private struct SavedState: Codable {
        var index: Int
        var inRange: UInt64
        var values: [String]
        var digest: Data
    }

    public func checkpoint() throws(AcquisitionError) -> Data? {
        try? JSONEncoder().encode(
            SavedState(index: index, inRange: inRange, values: values.map(\.hex), digest: digest.savedState))
    }

    /// Continues from a state saved by `checkpoint()`; false when `saved` is not such a state.
    public func restore(_ saved: Data) -> Bool {
        guard let state = try? JSONDecoder().decode(SavedState.self, from: saved),
            let digest = Digest(.sha256, savedState: state.digest)
        else { return false }
        let values = state.values.compactMap(DigestValue.init(hex:))
        guard values.count == state.values.count, state.index <= sizes.count else { return false }
        self.index = state.index
        self.inRange = state.inRange
        self.values = values
        self.digest = digest
        return true
    }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        let limit = frontier?.offset ?? .max
        guard offset < limit else { return }
        var rest = UnsafeRawBufferPointer(rebasing: bytes.prefix(Int(min(UInt64(bytes.count), limit - offset))))
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
        if inRange > 0, (frontier?.offset ?? .max) == .max { values.append(digest.finalize()) }
    }

    /// One digest per range, in order.
    public var results: [DigestValue] { values }
}

/// How big the verification windows are for a stream: at least 64 MiB, and never more than 4096
/// windows, so the record stays small for any source size. Always a power of two, hence a whole
/// number of sectors of any size.
public enum VerificationWindows {
    public static let smallest: UInt64 = 64 << 20
    public static let mostWindows: UInt64 = 4096

    public static func size(for streamSize: UInt64) -> UInt64 {
        var size = smallest
        while streamSize / size >= mostWindows { size *= 2 }
        return size
    }
}
