// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation

/// A written image as the jobs use it: a consumer of the stream that can say where it keeps its
/// files, write recovered bytes over skipped ones, be completed with what is known only at the
/// end, and be sealed read-only.
///
/// The job's order of calls: `writer(…)`, `consume` … (the first pass), `finish()`, `patch` …
/// (the second pass), `complete(_:)` once the media digests are final, then the read-back
/// through the format's `reader(paths:)`, then `makeReadOnly()`.
public protocol ImageWriter: StreamConsumer {
    /// Each file of the image, in stream order, and their full paths. A format whose file count
    /// depends on what it compresses (E01 with segments) knows them all only after `complete`.
    var fileNames: [String] { get }
    var paths: [String] { get }
    /// Where this writer needs the stream from: the `resumingAt` offset it was made with, or
    /// less when its format can only continue from an earlier point (E01: libewf's last complete
    /// chunks section). A resumed job starts its pipeline here and hands its other consumers only
    /// the bytes from its journal's offset on (`ConsumerFromOffset`); the writer itself ignores
    /// bytes it already holds.
    var restartOffset: UInt64 { get }
    /// Writes bytes the second pass recovered over the zeros of a skipped area.
    func patch(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError)
    /// The image's stream from the skip frontier on as it stands before `complete` (E01: its
    /// staging file), for finishing the media digests after the second pass; nil when the
    /// format's `reader(paths:)` reads the files as they are (raw).
    func pendingStream() throws(AcquisitionError) -> (any StreamSource)?
    /// Ends the image once every byte is final: stores what the format keeps of the media (E01:
    /// MD5, SHA-1 and the acquisition errors) and makes it readable by its `reader(paths:)`.
    /// Called once the second pass is over and the digests are known; a second call with the
    /// same completion does nothing.
    func complete(_ completion: ImageCompletion) throws(AcquisitionError)
    func makeReadOnly() throws(AcquisitionError)
    /// Reads the image back while it is written, window by window once durable, posting to
    /// `check`: true when all of it is read back so (raw); false when the job reads back after
    /// the pass what the writer left (`readBackRest`), or the whole image.
    func readBackWhileWriting(check: WindowCheck) -> Bool
    /// Once complete, what is left to read back of an image read back in part while it was
    /// written (E01: the chunk sections libewf had closed); nil when the job reads it back whole.
    func readBackRest() throws(AcquisitionError) -> ReadBackRest?
}

/// The read-back left for after completion by a writer that read part of its image back while
/// writing it: the stream from `start` on, out of the completed image, into `consumer`, which
/// holds the windows read back so far. A `source` whose files are not the stream hashes them
/// (a `FileHashingStreamSource`), going on from the reads made during the pass.
public struct ReadBackRest {
    public let source: any StreamSource
    public let start: UInt64
    public let consumer: any StreamConsumer

    public init(source: any StreamSource, start: UInt64, consumer: any StreamConsumer) {
        self.source = source
        self.start = start
        self.consumer = consumer
    }
}

extension ImageWriter {
    public func pendingStream() throws(AcquisitionError) -> (any StreamSource)? { nil }
    /// A raw image is complete when its bytes are: it keeps no digests or error list.
    public func complete(_ completion: ImageCompletion) throws(AcquisitionError) {}
}

/// What an image is told once the media stream is final.
public struct ImageCompletion: Sendable, Equatable {
    /// The media stream's digests, as the job computed them.
    public var digests: [DigestAlgorithm: DigestValue]
    /// The sectors that stayed unreadable, zero-filled in the image at their own offsets.
    public var unreadable: [UnreadableRange]

    public init(digests: [DigestAlgorithm: DigestValue], unreadable: [UnreadableRange]) {
        self.digests = digests
        self.unreadable = unreadable
    }
}

/// One image format: how its files are named, written and read back, and what the record says of
/// it. A job names its format once and asks it for all of these; a new format (E01) is one more
/// type, not a change to the jobs.
public protocol ImageFormat: Sendable {
    /// `image.format` in the record.
    var name: String { get }
    /// Split into files of this many bytes, or one file.
    var segmentSize: UInt64? { get }
    /// Whether recovered bytes can be written over a written image where they belong (raw: yes;
    /// a compressed format must rewrite the chunk instead: E01 takes them only through a writer
    /// given the job's skip frontier, which keeps the stream from there on uncompressed).
    var patchableInPlace: Bool { get }
    /// The media digests the image itself stores (E01: MD5 and SHA-1), which the job must compute
    /// alongside SHA-256 and hand to `ImageWriter.complete`.
    var storedDigests: [DigestAlgorithm] { get }
    /// Whether the files are the stream itself, cut at the segment size (raw): then a file's
    /// SHA-256 is the digest of its stream range, taken as the stream passes.
    var filesAreTheStream: Bool { get }
    /// What the record says of the format besides its name (E01: the compression).
    var recordDetail: String? { get }
    /// What the record must warn of because the image cannot hold it as the record does (E01:
    /// unreadable sectors past its 32-bit sector numbers); empty when it holds everything.
    func warnings(unreadable: [UnreadableRange]) -> [String]
    /// Refuses, before a job begins, a stream of `totalSize` bytes from `source` that this format
    /// with its settings cannot hold (too many segments; for E01 a partial last sector).
    func check(totalSize: UInt64, source: String) throws(AcquisitionError)

    /// The image's files for a stream of `totalSize` bytes. Exact for raw images and unsegmented
    /// E01; for segmented E01 the most files the writer can make (the count depends on how well
    /// the media compresses): the writer's `fileNames` after `complete` are the real list.
    func fileNames(baseName: String, totalSize: UInt64) -> [String]
    /// A writer for a new image, or (`resumingAt`) one that continues an image whose first bytes
    /// are written. With `frontier` (the first pass's `SkipFrontier`), a format that cannot
    /// rewrite what it wrote keeps the stream from the frontier on where `patch` can reach it.
    func writer(
        directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?,
        frontier: SkipFrontier?
    ) throws(AcquisitionError) -> any ImageWriter
    /// Of an interrupted image whose files are not the stream: its first bytes as the files hold
    /// them, before where continuing the image writes again (E01: its closed chunk sections but
    /// the last); nil when there are none, and for raw, whose files are read as the stream. Not
    /// known to be durable: whoever takes bytes from it proves them.
    func closedPrefix(directory: String, baseName: String) throws(AcquisitionError) -> (any StreamSource)?
    /// The media stream, read back from the image's files; with `hashingFiles`, a format whose
    /// files are not the stream hashes them from the same reads (a `FileHashingStreamSource`).
    func reader(paths: [String], hashingFiles: Bool) throws(AcquisitionError) -> any StreamSource
}

extension ImageWriter {
    public func readBackWhileWriting(check: WindowCheck) -> Bool { false }
    public func readBackRest() throws(AcquisitionError) -> ReadBackRest? { nil }
}

extension ImageFormat {
    public var storedDigests: [DigestAlgorithm] { [] }
    public var filesAreTheStream: Bool { false }
    public var recordDetail: String? { nil }
    public func warnings(unreadable: [UnreadableRange]) -> [String] { [] }
    public func closedPrefix(directory: String, baseName: String) throws(AcquisitionError) -> (any StreamSource)? { nil }

    public func reader(paths: [String]) throws(AcquisitionError) -> any StreamSource {
        try reader(paths: paths, hashingFiles: false)
    }

    public func writer(
        directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?
    ) throws(AcquisitionError) -> any ImageWriter {
        try writer(
            directory: directory, baseName: baseName, totalSize: totalSize, keepFree: keepFree, resumingAt: offset, frontier: nil)
    }

    public func writer(directory: String, baseName: String, totalSize: UInt64) throws(AcquisitionError) -> any ImageWriter {
        try writer(directory: directory, baseName: baseName, totalSize: totalSize, keepFree: 0, resumingAt: nil, frontier: nil)
    }

    /// Makes a finished image's files read-only (0444), whatever wrote them.
    public func makeReadOnly(paths: [String]) throws(AcquisitionError) {
        for path in paths where chmod(path, 0o444) != 0 {
            throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "chmod 0444")
        }
    }

    /// Whether the image is more than one file.
    public func isSegmented(totalSize: UInt64) -> Bool { fileNames(baseName: "x", totalSize: totalSize).count > 1 }
}

/// The raw (dd) image: the media stream byte for byte, in one file or in segments
/// (`E1.raw.000`, `E1.raw.001` …) that concatenate to it.
public struct RawImage: ImageFormat {
    public let segmentSize: UInt64?
    public var name: String { "raw" }
    public var patchableInPlace: Bool { true }
    public var filesAreTheStream: Bool { true }

    public init(segmentSize: UInt64? = nil) { self.segmentSize = segmentSize }

    public func check(totalSize: UInt64, source: String) throws(AcquisitionError) {
        try ImageSegmentation.check(segmentSize: segmentSize, totalSize: totalSize, source: source)
    }

    public func fileNames(baseName: String, totalSize: UInt64) -> [String] {
        RawImageWriter.fileNames(baseName: baseName, totalSize: totalSize, segmentSize: segmentSize)
    }

    /// A raw image takes recovered bytes in place, so it needs no frontier.
    public func writer(
        directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?,
        frontier: SkipFrontier?
    ) throws(AcquisitionError) -> any ImageWriter {
        try RawImageWriter(
            directory: directory, baseName: baseName, totalSize: totalSize, segmentSize: segmentSize, keepFree: keepFree,
            resumingAt: offset)
    }

    /// Raw files are the stream: their digests were taken as it passed, so nothing is hashed here.
    public func reader(paths: [String], hashingFiles: Bool) throws(AcquisitionError) -> any StreamSource {
        try ImageFiles(paths: paths)
    }
}

extension RawImageWriter: ImageWriter {
    public func readBackWhileWriting(check: WindowCheck) -> Bool {
        startReadBack(check: check)
        return true
    }

    /// A raw image continues exactly where its journal says.
    public var restartOffset: UInt64 { resumedAt ?? 0 }
}
