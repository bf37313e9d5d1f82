// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Synchronization

/// A run of bytes of the stream: `[start, start + length)`.
public struct ByteSpan: Codable, Sendable, Equatable, Hashable {
    public var start: UInt64
    public var length: UInt64
    public var end: UInt64 { start + length }

    public init(start: UInt64, length: UInt64) {
        self.start = start
        self.length = length
    }

    /// The parts of this span in none of `areas`.
    public func subtracting(_ areas: [ByteSpan]) -> [ByteSpan] {
        var parts = [self]
        for area in areas {
            parts = parts.flatMap { part -> [ByteSpan] in
                guard area.start < part.end, part.start < area.end else { return [part] }
                return [
                    ByteSpan(start: part.start, length: area.start > part.start ? area.start - part.start : 0),
                    ByteSpan(start: area.end, length: part.end > area.end ? part.end - area.end : 0),
                ].filter { $0.length > 0 }
            }
        }
        return parts
    }

    /// The bytes `spans` cover, counted once per span.
    public static func total(_ spans: [ByteSpan]) -> UInt64 { spans.reduce(0) { $0 + $1.length } }

    /// Sorts spans and joins those that touch or overlap.
    public static func merged(_ spans: [ByteSpan]) -> [ByteSpan] {
        var result: [ByteSpan] = []
        for span in spans.sorted(by: { $0.start < $1.start }) where span.length > 0 {
            if let last = result.last, span.start <= last.end {
                result[result.count - 1].length = max(last.end, span.end) - last.start
            } else {
                result.append(span)
            }
        }
        return result
    }
}

/// A run of unreadable logical sectors, zero-filled in the image at their own offset.
public struct UnreadableRange: Codable, Sendable, Equatable {
    public var firstSector: UInt64
    public var sectorCount: UInt64
    /// The errno of the last failed attempt (5 = EIO).
    public var errno: Int32
    /// Read attempts of each sector of the run, the failed larger reads that covered it included.
    public var attemptsPerSector: Int
    public var sectorSize: UInt32
    /// Set when the sectors were not read one by one because the area's time limit ran out.
    public var timeLimited: Bool?

    public init(
        firstSector: UInt64, sectorCount: UInt64, errno: Int32, attemptsPerSector: Int, sectorSize: UInt32,
        timeLimited: Bool? = nil
    ) {
        self.firstSector = firstSector
        self.sectorCount = sectorCount
        self.errno = errno
        self.attemptsPerSector = attemptsPerSector
        self.sectorSize = sectorSize
        self.timeLimited = timeLimited
    }

    public var lastSector: UInt64 { firstSector + sectorCount - 1 }
    public var byteOffset: UInt64 { firstSector * UInt64(sectorSize) }
    public var byteLength: UInt64 { sectorCount * UInt64(sectorSize) }
    public var errorName: String { String(cString: strerror(errno)) }

    /// Joins ranges that touch and failed the same way.
    public static func merged(_ ranges: [UnreadableRange]) -> [UnreadableRange] {
        var result: [UnreadableRange] = []
        for range in ranges.sorted(by: { $0.firstSector < $1.firstSector }) {
            if var last = result.last, last.lastSector + 1 == range.firstSector, last.errno == range.errno,
                last.timeLimited == range.timeLimited
            {
                last.sectorCount += range.sectorCount
                last.attemptsPerSector = max(last.attemptsPerSector, range.attemptsPerSector)
                result[result.count - 1] = last
            } else {
                result.append(range)
            }
        }
        return result
    }
}

/// Where a pipeline reads its stream from.
public protocol StreamSource: Sendable {
    /// The device or file, for errors.
    var path: String { get }
    var size: UInt64 { get }
    /// Fills `count` bytes at stream `offset`; returns the spans it could not read and zero-filled
    /// instead (to be recovered sector by sector after the first pass).
    func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError)
        -> [ByteSpan]
}

/// A stream read back from an image's files that hashes the files as it reads them: the bundle
/// manifest's SHA-256 of each file from the read-back's own reads, not from a second read.
public protocol FileHashingStreamSource: StreamSource {
    /// Each file's SHA-256, in the order of its paths, once the whole stream has been read; nil
    /// when this reader was not asked to hash them.
    func fileSHA256() throws(AcquisitionError) -> [DigestValue]?
}

/// The offset of the first skipped byte of a first pass, shared by the reader that finds it and
/// the digests that must stop there (the stream's digests are then finished from the store once
/// the skipped areas are recovered).
public final class SkipFrontier: Sendable {
    private let value: Atomic<UInt64>
    public init(_ offset: UInt64 = .max) { value = Atomic(offset) }
    public var offset: UInt64 { value.load(ordering: .acquiring) }
    /// Moves the frontier down to `offset` if it is lower; set before the buffer holding it is handed on.
    public func lower(to offset: UInt64) {
        var current = value.load(ordering: .relaxed)
        while offset < current {
            let (exchanged, original) = value.compareExchange(
                expected: current, desired: offset, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}

/// What the second pass made of one skipped area.
public struct RecoveredArea: Codable, Sendable, Equatable {
    public var span: ByteSpan
    /// The sectors that stayed unreadable (zero-filled in the image).
    public var unreadable: [UnreadableRange]
    /// SHA-256 of the area's final bytes as read from the source (zeros where unreadable), so
    /// that re-reading the area from the store can be checked against what the source gave.
    public var sha256: String
    public var seconds: Double

    public init(
        span: ByteSpan, unreadable: [UnreadableRange], sha256: String, seconds: Double
    ) {
        self.span = span
        self.unreadable = unreadable
        self.sha256 = sha256
        self.seconds = seconds
    }
}
