// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// The bounds on splitting an image into segments: a segment size a user or a configuration
/// gives is refused outside them, before anything is written (one byte per segment would create
/// billions of files).
public enum ImageSegmentation {
    public static let minimumSegmentSize: UInt64 = 1 << 20
    /// A file offset's limit (off_t), and EnCase 6's for a segment file (libewf refuses more).
    public static let maximumSegmentSize = UInt64(Int64.max)
    public static let maximumSegments: UInt64 = 10_000

    /// Why `segmentSize` suits no source, or nil: the command line and the daemon's settings
    /// refuse it before any job.
    public static func problem(segmentSize: UInt64) -> String? {
        if segmentSize < minimumSegmentSize { return "is below the minimum of \(minimumSegmentSize) bytes (1M)" }
        if segmentSize > maximumSegmentSize { return "is above the maximum of \(maximumSegmentSize) bytes (2^63 - 1)" }
        return nil
    }

    /// `problem(segmentSize:)` as the error of a job on `source`.
    public static func checkBounds(segmentSize: UInt64?, source: String) throws(AcquisitionError) {
        guard let segmentSize, let problem = problem(segmentSize: segmentSize) else { return }
        throw AcquisitionError(.invalidRequest, path: source, detail: "segment size \(segmentSize) bytes \(problem)")
    }

    /// The bounds, and at most `maximumSegments` files of the stream cut at `segmentSize`.
    public static func check(segmentSize: UInt64?, totalSize: UInt64, source: String) throws(AcquisitionError) {
        try checkBounds(segmentSize: segmentSize, source: source)
        guard let segmentSize else { return }
        let count = pieces(totalSize, of: segmentSize)
        guard count <= maximumSegments else {
            throw AcquisitionError(
                .invalidRequest, path: source,
                detail: "segment size \(segmentSize) bytes would make \(count) segments of a \(totalSize)-byte source; "
                    + "at most \(maximumSegments) are written (use at least \(pieces(totalSize, of: maximumSegments)) bytes)")
        }
    }

    /// `total` divided by `size`, rounded up, for any sizes (adding `size - 1` first can overflow).
    public static func pieces(_ total: UInt64, of size: UInt64) -> UInt64 {
        total / size + (total % size == 0 ? 0 : 1)
    }
}

/// Writes the media stream into the store as one raw file or fixed-size segments
/// (`NAME.raw`, or `NAME.raw.000`, `.001` … with a width that sorts for `cat`).
///
/// All-zero buffers are not written but left as holes, which read back as zeros: an unused disk
/// costs no store space and a 32 TiB sparse source no memory. Before each write the store must
/// keep `keepFree` bytes free for records, journal and catalog; otherwise the job stops as
/// "store full" while there is still room to say so, and resumes once space is freed.
public final class RawImageWriter: StreamConsumer, @unchecked Sendable {
    public let directory: String
    /// File names relative to `directory`, in stream order.
    public let fileNames: [String]
    public let segmentSize: UInt64?
    public let totalSize: UInt64
    private var reserve: SpaceReserve
    /// The `resumingAt` offset this writer was made with.
    let resumedAt: UInt64?
    private var descriptor: Int32 = -1
    private var fileIndex = -1
    private var writtenInFile: UInt64 = 0
    /// Set by `startReadBack`: each window, once durable, is read back from the store.
    private var readBack: WindowReadBack?
    private var windowSize: UInt64 = 0
    /// Stream bytes handed to the read-back so far.
    private var handedOver: UInt64 = 0

    public var name: String { "image writer" }

    /// A writer for a new image (whose files must not exist yet), or, with `resumingAt`, one that
    /// continues an image whose first `resumingAt` bytes are already written (later bytes and
    /// files are discarded; 0 starts the job's image again).
    public init(
        directory: String, baseName: String, totalSize: UInt64, segmentSize: UInt64?, keepFree: UInt64 = 0,
        resumingAt resumeOffset: UInt64? = nil
    ) throws(AcquisitionError) {
        self.directory = directory
        self.segmentSize = segmentSize
        self.totalSize = totalSize
        self.reserve = SpaceReserve(keepFree: keepFree)
        self.resumedAt = resumeOffset
        self.fileNames = Self.fileNames(baseName: baseName, totalSize: totalSize, segmentSize: segmentSize)
        if let resumeOffset { try reopen(at: resumeOffset) }
    }

    public static func fileNames(baseName: String, totalSize: UInt64, segmentSize: UInt64?) -> [String] {
        guard let segmentSize, segmentSize < totalSize else { return ["\(baseName).raw"] }
        let count = Int(ImageSegmentation.pieces(totalSize, of: segmentSize))
        let width = max(3, String(count - 1).count)
        return (0..<count).map { index in
            let digits = String(index)
            return "\(baseName).raw.\(String(repeating: "0", count: width - digits.count))\(digits)"
        }
    }

    public var paths: [String] { fileNames.map { "\(directory)/\($0)" } }

    private var layout: SegmentLayout { SegmentLayout(paths: paths, segmentSize: fileNames.count > 1 ? segmentSize : nil, totalSize: totalSize) }

    /// The file holding stream byte `offset`, and where in it.
    private func location(of offset: UInt64) -> (index: Int, offset: UInt64) {
        guard let segmentSize, fileNames.count > 1 else { return (0, offset) }
        let index = min(Int(offset / segmentSize), fileNames.count - 1)
        return (index, offset - UInt64(index) * segmentSize)
    }

    /// Reads the image back while it is written (a new image, from byte 0): each window of
    /// `check.windowSize` bytes is made durable and dropped from the page cache as soon as it is
    /// written, then re-read from the store by a thread of its own, which posts it to `check`.
    /// `finish()` returns once every window is read back.
    public func startReadBack(check: WindowCheck) {
        precondition(writtenInFile == 0 && fileIndex <= 0, "the read-back starts with the image")
        readBack = WindowReadBack(layout: layout, check: check)
        windowSize = check.windowSize
    }

    /// Makes the stream up to `end` durable, drops it from the page cache and hands it to the read-back.
    private func handOver(upTo end: UInt64) throws(AcquisitionError) {
        guard let readBack, end > handedOver else { return }
        if descriptor >= 0 {
            try settleCurrent()
            StoreWrites.dropFromCache(descriptor: descriptor)
        }
        readBack.readBack(ByteSpan(start: handedOver, length: end - handedOver))
        handedOver = end
        try readBack.throwIfFailed(path: directory)
    }

    private func reopen(at offset: UInt64) throws(AcquisitionError) {
        let (index, inFile) = location(of: offset)
        for later in paths.dropFirst(index + 1) { unlink(later) }
        let path = paths[index]
        descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, offset: inFile, errno: errno) }
        fileIndex = index
        guard ftruncate(descriptor, off_t(inFile)) == 0 else {
            throw AcquisitionError(.writeFailed, path: path, offset: inFile, errno: errno, detail: "truncating to the journal's offset")
        }
        writtenInFile = inFile
    }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        var rest = bytes
        var position = offset
        while !rest.isEmpty {
            if descriptor < 0 || (segmentSize.map { writtenInFile == $0 } ?? false) {
                try openNext(at: position)
            }
            let room = segmentSize.map { Int(min(UInt64(rest.count), $0 - writtenInFile)) } ?? rest.count
            let chunk = UnsafeRawBufferPointer(rebasing: rest.prefix(room))
            if !StoreWrites.isAllZero(chunk) {
                try ensureSpace(for: UInt64(room), at: position)
                try StoreWrites.writeAll(chunk, to: descriptor, at: writtenInFile, path: paths[fileIndex], streamOffset: position, what: "the image")
            }
            writtenInFile += UInt64(room)
            position += UInt64(room)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(room))
        }
        // Each whole window goes to the read-back as soon as it is written, not at `finish()`.
        if windowSize > 0, position / windowSize * windowSize > handedOver {
            try handOver(upTo: position / windowSize * windowSize)
        }
    }

    /// Stops before the store is so full that the records, the journal or the catalog could not be written.
    private func ensureSpace(for count: UInt64, at offset: UInt64) throws(AcquisitionError) {
        let descriptor = descriptor
        try reserve.check(count, at: offset, path: paths[fileIndex], remaining: totalSize - offset) {
            StoreWrites.freeBytes(descriptor: descriptor)
        }
    }


    /// A job that fails or is cancelled drops its writer without `finish()`; the open segment's
    /// descriptor goes with it (unsynced: the journal never named those bytes durable), and the
    /// read-back thread ends without reading the rest of what it was handed (it holds itself until then).
    deinit {
        if descriptor >= 0 { close(descriptor) }
        readBack?.cancel()
    }

    public func finish() throws(AcquisitionError) {
        try closeCurrent()
        try Self.syncDirectory(directory)
        if let readBack {
            try handOver(upTo: totalSize)
            try readBack.finish()
        }
    }

    /// Makes what was written so far durable, so a journal may name it.
    public func checkpoint() throws(AcquisitionError) -> Data? {
        guard descriptor >= 0 else { return nil }
        try settleCurrent()
        return nil
    }

    /// Writes recovered bytes over the (zero) bytes of a skipped area, after the first pass.
    public func patch(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        var position = offset
        var rest = bytes
        while !rest.isEmpty {
            let (index, inFile) = location(of: position)
            let room = segmentSize.map { Int(min(UInt64(rest.count), $0 - inFile)) } ?? rest.count
            let path = paths[index]
            let file = open(path, O_WRONLY | O_CLOEXEC)
            guard file >= 0 else { throw AcquisitionError(.openFailed, path: path, offset: inFile, errno: errno) }
            defer { close(file) }
            try StoreWrites.writeAll(
                UnsafeRawBufferPointer(rebasing: rest.prefix(room)), to: file, at: inFile, path: path, streamOffset: position,
                what: "the image")
            guard fdatasync(file) == 0 else { throw AcquisitionError(.syncFailed, path: path, errno: errno) }
            position += UInt64(room)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(room))
        }
    }


    /// Makes every image file read-only, once nothing will be written to them any more.
    public func makeReadOnly() throws(AcquisitionError) { try RawImage(segmentSize: segmentSize).makeReadOnly(paths: paths) }

    private func openNext(at offset: UInt64) throws(AcquisitionError) {
        try closeCurrent()
        fileIndex += 1
        let path = paths[fileIndex]
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let error = errno
            throw AcquisitionError(
                error == EEXIST ? .destinationExists : .writeFailed, path: path, offset: offset, errno: error)
        }
        writtenInFile = 0
    }

    /// Gives the file its full length (trailing holes included) and flushes it to stable storage.
    private func settleCurrent() throws(AcquisitionError) {
        let path = paths[fileIndex]
        guard ftruncate(descriptor, off_t(writtenInFile)) == 0 else {
            throw AcquisitionError(.writeFailed, path: path, offset: writtenInFile, errno: errno, detail: "setting the length")
        }
        guard fdatasync(descriptor) == 0 else {
            let error = errno
            throw AcquisitionError(
                error == ENOSPC || error == EDQUOT ? .storeFull : .syncFailed, path: path, errno: error)
        }
    }

    /// Flushes the file and drops it from the page cache, so a read-back really reads the store.
    private func closeCurrent() throws(AcquisitionError) {
        guard descriptor >= 0 else { return }
        defer {
            close(descriptor)
            descriptor = -1
        }
        try settleCurrent()
        StoreWrites.dropFromCache(descriptor: descriptor)
    }

    static func syncDirectory(_ path: String) throws(AcquisitionError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw AcquisitionError(.syncFailed, path: path, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw AcquisitionError(.syncFailed, path: path, errno: errno) }
    }
}

/// The image files of a bundle read back as one stream, to re-hash what the store holds.
public final class ImageFiles: StreamSource, @unchecked Sendable {
    public let path: String
    public let size: UInt64
    private let files: [(path: String, descriptor: Int32, start: UInt64, size: UInt64)]

    public convenience init(paths: [String]) throws(AcquisitionError) {
        var opened: [(path: String, descriptor: Int32)] = []
        for path in paths {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                let error = errno
                for file in opened { close(file.descriptor) }
                throw AcquisitionError(.openFailed, path: path, errno: error)
            }
            opened.append((path, descriptor))
        }
        try self.init(opened: opened)
    }

    /// The image files opened by the caller (a verifier that opens them by descriptor, refusing
    /// links and special files); the descriptors are owned from here on, also when this throws.
    public init(opened: [(path: String, descriptor: Int32)]) throws(AcquisitionError) {
        var files: [(String, Int32, UInt64, UInt64)] = []
        var start: UInt64 = 0
        for (index, file) in opened.enumerated() {
            var status = stat()
            guard fstat(file.descriptor, &status) == 0 else {
                let error = errno
                for other in opened[index...] { close(other.descriptor) }
                for other in files { close(other.1) }
                throw AcquisitionError(.openFailed, path: file.path, errno: error)
            }
            _ = posix_fadvise(file.descriptor, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
            files.append((file.path, file.descriptor, start, UInt64(status.st_size)))
            start += UInt64(status.st_size)
        }
        self.files = files
        self.size = start
        let paths = opened.map(\.path)
        self.path = paths.count == 1 ? paths[0] : "\(paths.first ?? "") … \(paths.last ?? "")"
    }

    deinit { for file in files { close(file.descriptor) } }

    public func fill(
        _ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64
    ) throws(AcquisitionError) -> [ByteSpan] {
        var done = 0
        while done < count {
            let position = offset + UInt64(done)
            guard let file = files.last(where: { $0.start <= position && position < $0.start + $0.size }) else {
                throw AcquisitionError(.readFailed, path: path, offset: position, detail: "past the end of the image")
            }
            let want = Int(min(UInt64(count - done), file.start + file.size - position))
            try StoreWrites.readAll(
                into: destination + done, count: want, from: file.descriptor, at: position - file.start, path: file.path,
                reported: position - file.start)
            done += want
        }
        return []
    }
}
