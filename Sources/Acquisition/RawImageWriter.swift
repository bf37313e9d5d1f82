// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes the media stream into the store as one raw file or fixed-size segments
/// (`NAME.raw`, or `NAME.raw.000`, `.001` … with a width that sorts for `cat`).
public final class RawImageWriter: StreamConsumer, @unchecked Sendable {
    public let directory: String
    /// File names relative to `directory`, in stream order.
    public let fileNames: [String]
    public let segmentSize: UInt64?
    private var descriptor: Int32 = -1
    private var fileIndex = -1
    private var writtenInFile: UInt64 = 0

    public var name: String { "image writer" }

    public init(directory: String, baseName: String, totalSize: UInt64, segmentSize: UInt64?) {
        self.directory = directory
        self.segmentSize = segmentSize
        self.fileNames = Self.fileNames(baseName: baseName, totalSize: totalSize, segmentSize: segmentSize)
    }

    public static func fileNames(baseName: String, totalSize: UInt64, segmentSize: UInt64?) -> [String] {
        guard let segmentSize, segmentSize < totalSize else { return ["\(baseName).raw"] }
        let count = Int((totalSize + segmentSize - 1) / segmentSize)
        let width = max(3, String(count - 1).count)
        return (0..<count).map { index in
            let digits = String(index)
            return "\(baseName).raw.\(String(repeating: "0", count: width - digits.count))\(digits)"
        }
    }

    public var paths: [String] { fileNames.map { "\(directory)/\($0)" } }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        var rest = bytes
        var position = offset
        while !rest.isEmpty {
            if descriptor < 0 || (segmentSize.map { writtenInFile == $0 } ?? false) {
                try openNext(at: position)
            }
            let room = segmentSize.map { Int(min(UInt64(rest.count), $0 - writtenInFile)) } ?? rest.count
            var done = 0
            while done < room {
                let result = write(descriptor, rest.baseAddress! + done, room - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    let error = errno
                    let full = error == ENOSPC || error == EDQUOT
                    throw AcquisitionError(
                        full ? .storeFull : .writeFailed, path: paths[fileIndex],
                        offset: position + UInt64(done), errno: error,
                        detail: full ? "the store has no room left for the image" : nil)
                }
                done += result
            }
            writtenInFile += UInt64(room)
            position += UInt64(room)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(room))
        }
    }

    public func finish() throws(AcquisitionError) {
        try closeCurrent()
        try Self.syncDirectory(directory)
    }

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

    /// Flushes the file to stable storage, drops it from the page cache (so a read-back really
    /// reads the store) and makes it read-only.
    private func closeCurrent() throws(AcquisitionError) {
        guard descriptor >= 0 else { return }
        let path = paths[fileIndex]
        defer {
            close(descriptor)
            descriptor = -1
        }
        guard fdatasync(descriptor) == 0 else {
            let error = errno
            throw AcquisitionError(
                error == ENOSPC || error == EDQUOT ? .storeFull : .syncFailed, path: path, errno: error)
        }
        _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED))
        _ = fchmod(descriptor, 0o444)
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

    public init(paths: [String]) throws(AcquisitionError) {
        var files: [(String, Int32, UInt64, UInt64)] = []
        var start: UInt64 = 0
        for path in paths {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            var status = stat()
            guard descriptor >= 0, fstat(descriptor, &status) == 0 else {
                let error = errno
                for file in files { close(file.1) }
                if descriptor >= 0 { close(descriptor) }
                throw AcquisitionError(.openFailed, path: path, errno: error)
            }
            _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
            files.append((path, descriptor, start, UInt64(status.st_size)))
            start += UInt64(status.st_size)
        }
        self.files = files
        self.size = start
        self.path = paths.count == 1 ? paths[0] : "\(paths.first ?? "") … \(paths.last ?? "")"
    }

    deinit { for file in files { close(file.descriptor) } }

    public func fill(
        _ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64
    ) throws(AcquisitionError) -> [UnreadableRange] {
        var done = 0
        while done < count {
            let position = offset + UInt64(done)
            guard let file = files.last(where: { $0.start <= position && position < $0.start + $0.size }) else {
                throw AcquisitionError(.readFailed, path: path, offset: position, detail: "past the end of the image")
            }
            let want = Int(min(UInt64(count - done), file.start + file.size - position))
            let result = pread(file.descriptor, destination + done, want, off_t(position - file.start))
            if result > 0 {
                done += result
            } else if result < 0, errno == EINTR {
                continue
            } else {
                throw AcquisitionError(
                    .readFailed, path: file.path, offset: position - file.start, errno: result < 0 ? errno : nil)
            }
        }
        return []
    }
}
