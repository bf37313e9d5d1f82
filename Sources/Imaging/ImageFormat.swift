// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A written image as the jobs use it: a consumer of the stream that can say where it keeps its
/// files, write recovered bytes over skipped ones, and be sealed read-only.
public protocol ImageWriter: StreamConsumer {
    /// Each file of the image, in stream order, and their full paths.
    var fileNames: [String] { get }
    var paths: [String] { get }
    /// Writes bytes the second pass recovered over the zeros of a skipped area.
    func patch(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError)
    func makeReadOnly() throws(AcquisitionError)
    /// Reads the image back while it is written, window by window once durable, posting to
    /// `check`; false when the format cannot (the job then reads back after the pass).
    func readBackWhileWriting(check: WindowCheck) -> Bool
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
    /// a compressed format must rewrite the chunk instead).
    var patchableInPlace: Bool { get }

    func fileNames(baseName: String, totalSize: UInt64) -> [String]
    func writer(
        directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?
    ) throws(AcquisitionError) -> any ImageWriter
    /// The media stream, read back from the image's files.
    func reader(paths: [String]) throws(AcquisitionError) -> any StreamSource
}

extension ImageWriter {
    public func readBackWhileWriting(check: WindowCheck) -> Bool { false }
}

extension ImageFormat {
    public func writer(directory: String, baseName: String, totalSize: UInt64) throws(AcquisitionError) -> any ImageWriter {
        try writer(directory: directory, baseName: baseName, totalSize: totalSize, keepFree: 0, resumingAt: nil)
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

    public init(segmentSize: UInt64? = nil) { self.segmentSize = segmentSize }

    public func fileNames(baseName: String, totalSize: UInt64) -> [String] {
        RawImageWriter.fileNames(baseName: baseName, totalSize: totalSize, segmentSize: segmentSize)
    }

    public func writer(
        directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?
    ) throws(AcquisitionError) -> any ImageWriter {
        try RawImageWriter(
            directory: directory, baseName: baseName, totalSize: totalSize, segmentSize: segmentSize, keepFree: keepFree,
            resumingAt: offset)
    }

    public func reader(paths: [String]) throws(AcquisitionError) -> any StreamSource { try ImageFiles(paths: paths) }
}

extension RawImageWriter: ImageWriter {
    public func readBackWhileWriting(check: WindowCheck) -> Bool {
        startReadBack(check: check)
        return true
    }
}
