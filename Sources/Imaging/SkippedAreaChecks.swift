// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation

/// SHA-256 of each verification window from the first skipped byte on, as the first pass read it
/// (zeros in the skipped areas). When the stream's digests have to be finished from the store
/// after the skipped areas were recovered, these prove that the store still holds what the
/// source gave.
public final class FrontierWindowDigester: StreamConsumer, @unchecked Sendable {
    public let windowSize: UInt64
    public let size: UInt64
    private let frontier: SkipFrontier
    private var values: [UInt64: String] = [:]
    private var current: (index: UInt64, digest: Digest)?

    public var name: String { "frontier windows" }

    public init(frontier: SkipFrontier, windowSize: UInt64, size: UInt64) {
        self.frontier = frontier
        self.windowSize = windowSize
        self.size = size
    }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        let end = offset + UInt64(bytes.count)
        var position = max(offset, frontier.offset)
        while position < end {
            let index = position / windowSize
            let windowEnd = min((index + 1) * windowSize, size)
            if current?.index != index {
                closeCurrent()
                current = (index, Digest(.sha256))
            }
            let length = min(end, windowEnd) - position
            current!.digest.update(
                UnsafeRawBufferPointer(rebasing: bytes[Int(position - offset)..<Int(position - offset + length)]))
            position += length
            if position == windowEnd { closeCurrent() }
        }
    }

    private func closeCurrent() {
        guard let current else { return }
        values[current.index] = current.digest.finalize().hex
        self.current = nil
    }

    public func finish() throws(AcquisitionError) { closeCurrent() }

    /// Window index → SHA-256 (hex) of its bytes from the frontier on.
    public var digests: [UInt64: String] { values }

    private struct SavedState: Codable {
        var values: [String: String]
        var currentIndex: UInt64?
        var currentDigest: Data?
    }

    public func checkpoint() throws(AcquisitionError) -> Data? {
        try? JSONEncoder().encode(
            SavedState(
                values: Dictionary(uniqueKeysWithValues: values.map { (String($0.key), $0.value) }),
                currentIndex: current?.index, currentDigest: current?.digest.savedState))
    }

    /// Continues from a state saved by `checkpoint()`; false when `saved` is not such a state.
    public func restore(_ saved: Data) -> Bool {
        guard let state = try? JSONDecoder().decode(SavedState.self, from: saved) else { return false }
        var values: [UInt64: String] = [:]
        for (key, value) in state.values {
            guard let index = UInt64(key) else { return false }
            values[index] = value
        }
        if let index = state.currentIndex {
            guard let data = state.currentDigest, let digest = Digest(.sha256, savedState: data) else { return false }
            current = (index, digest)
        }
        self.values = values
        return true
    }
}

/// Reads the image back from the frontier on and proves it is what the source gave: each window
/// hashes, with the skipped areas taken as zeros, to what the first pass saw, and each recovered
/// area hashes to what the second pass read. Any difference stops the job and names the bytes.
public final class StoredImageCheck: StreamConsumer, @unchecked Sendable {
    private let path: String
    private let frontier: UInt64
    private let windowSize: UInt64
    private let size: UInt64
    private let windowDigests: [UInt64: String]
    private let skipped: [ByteSpan]
    private let areas: [RecoveredArea]
    private var window: (index: UInt64, digest: Digest)?
    private var area: (index: Int, digest: Digest)?
    private var skipCursor = 0
    private var areaCursor = 0
    // Written once, read-only afterwards.
    nonisolated(unsafe) private static let zeros = UnsafeRawBufferPointer(
        UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 4096).initializeMemory(as: UInt8.self, repeating: 0))

    public var name: String { "store check" }

    public init(
        path: String, frontier: UInt64, windowSize: UInt64, size: UInt64, windowDigests: [UInt64: String],
        skipped: [ByteSpan], areas: [RecoveredArea]
    ) {
        self.path = path
        self.frontier = frontier
        self.windowSize = windowSize
        self.size = size
        self.windowDigests = windowDigests
        self.skipped = ByteSpan.merged(skipped)
        self.areas = areas.sorted { $0.span.start < $1.span.start }
    }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        let end = offset + UInt64(bytes.count)
        var position = max(offset, frontier)
        // Windows, as the first pass saw them.
        while position < end {
            let index = position / windowSize
            let windowEnd = min((index + 1) * windowSize, size)
            if window?.index != index { window = (index, Digest(.sha256)) }
            let pieceEnd = min(end, windowEnd)
            feedWithSkippedAsZeros(bytes, base: offset, from: position, to: pieceEnd, into: window!.digest)
            position = pieceEnd
            if position == windowEnd {
                let found = window!.digest.finalize().hex
                window = nil
                let start = max(index * windowSize, frontier)
                guard found == windowDigests[index] else {
                    throw AcquisitionError(
                        .verifyMismatch, path: path, offset: start,
                        detail: "bytes \(start)-\(windowEnd - 1) of the stored image differ from what the source gave "
                            + "(SHA-256 \(found), read \(windowDigests[index] ?? "never"))")
                }
            }
        }
        // Recovered areas, as the second pass read them.
        while areaCursor < areas.count, areas[areaCursor].span.start < end {
            let span = areas[areaCursor].span
            let from = max(offset, span.start)
            let to = min(end, span.end)
            if from < to {
                if area?.index != areaCursor { area = (areaCursor, Digest(.sha256)) }
                area!.digest.update(UnsafeRawBufferPointer(rebasing: bytes[Int(from - offset)..<Int(to - offset)]))
            }
            guard to == span.end else { break }
            let found = area?.digest.finalize().hex ?? Digest(.sha256).finalize().hex
            area = nil
            guard found == areas[areaCursor].sha256 else {
                throw AcquisitionError(
                    .verifyMismatch, path: path, offset: span.start,
                    detail: "recovered bytes \(span.start)-\(span.end - 1) of the stored image differ from what the source gave")
            }
            areaCursor += 1
        }
    }

    /// Feeds `[from, to)` of the stream to `digest`, with zeros wherever the first pass skipped.
    private func feedWithSkippedAsZeros(
        _ bytes: UnsafeRawBufferPointer, base: UInt64, from: UInt64, to: UInt64, into digest: Digest
    ) {
        var position = from
        while skipCursor < skipped.count, skipped[skipCursor].end <= position { skipCursor += 1 }
        while position < to {
            let next = skipCursor < skipped.count ? skipped[skipCursor] : nil
            if let next, next.start <= position {
                let zeroEnd = min(to, next.end)
                while position < zeroEnd {
                    let length = Int(min(zeroEnd - position, UInt64(Self.zeros.count)))
                    digest.update(UnsafeRawBufferPointer(rebasing: Self.zeros.prefix(length)))
                    position += UInt64(length)
                }
                if position == next.end { skipCursor += 1 }
                continue
            }
            let dataEnd = min(to, next?.start ?? to)
            digest.update(UnsafeRawBufferPointer(rebasing: bytes[Int(position - base)..<Int(dataEnd - base)]))
            position = dataEnd
        }
    }

    public func finish() throws(AcquisitionError) {
        guard areaCursor == areas.count else {
            throw AcquisitionError(
                .verifyMismatch, path: path, offset: areas[areaCursor].span.start, detail: "the stored image ends inside a recovered area")
        }
    }
}
