// SPDX-License-Identifier: Apache-2.0
import CEWF
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc
#endif

/// The media stream from the first skipped chunk on, kept uncompressed beside the E01 until the
/// second pass has written what it recovered: an EWF chunk cannot be rewritten once written.
///
/// A sparse file: a header page saying where it starts, then stream byte `start + n` at file
/// offset `4096 + n`. All-zero pieces of the first pass are left as holes. Everything needed to
/// continue after an interruption is in the file itself.
final class StagingFile {
    let path: String
    /// The stream offset of its first byte: the start of the chunk holding the skip frontier.
    let start: UInt64
    private var descriptor: Int32

    static let headerSize: UInt64 = 4096
    private static let magic = "EXHIBIT E01 STAGING 1\n"

    /// A new staging file for the stream from `start` on (none may exist).
    init(creating path: String, start: UInt64) throws(AcquisitionError) {
        self.path = path
        self.start = start
        descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let error = errno
            throw AcquisitionError(error == EEXIST ? .destinationExists : .writeFailed, path: path, offset: start, errno: error)
        }
        var header = [UInt8](repeating: 0, count: Int(Self.headerSize))
        let text = Array("\(Self.magic)start \(start)\n".utf8)
        header.replaceSubrange(0..<text.count, with: text)
        var failure: AcquisitionError?
        header.withUnsafeBytes { bytes in
            do throws(AcquisitionError) { try writeAll(bytes, atFile: 0, streamOffset: start) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// The staging file a previous run left, or nil when there is none.
    init?(existing path: String) throws(AcquisitionError) {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw AcquisitionError(.openFailed, path: path, errno: errno)
        }
        var header = [UInt8](repeating: 0, count: 128)
        let count = pread(descriptor, &header, header.count, 0)
        guard count >= 0 else {
            let error = errno
            close(descriptor)
            throw AcquisitionError(.readFailed, path: path, errno: error, detail: "reading the staging file's header")
        }
        if header.prefix(count).allSatisfy({ $0 == 0 }) {
            // Created after the journal's last checkpoint and lost with power before its header
            // reached the disk (a checkpoint syncs it): nothing in it is counted, and the first
            // pass finds the skip again.
            close(descriptor)
            guard unlink(path) == 0 else { throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "removing an unwritten staging file") }
            return nil
        }
        let text = String(decoding: header.prefix(count), as: UTF8.self)
        guard text.hasPrefix(Self.magic),
            let line = text.dropFirst(Self.magic.count).split(separator: "\n").first, line.hasPrefix("start "),
            let start = UInt64(line.dropFirst(6))
        else {
            close(descriptor)
            throw AcquisitionError(.journalUnusable, path: path, detail: "not an Exhibit E01 staging file")
        }
        self.path = path
        self.start = start
        self.descriptor = descriptor
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Stream bytes held: from `start` to the end of the file.
    func streamEnd() throws(AcquisitionError) -> UInt64 {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw AcquisitionError(.inspectFailed, path: path, errno: errno) }
        return start + max(0, UInt64(status.st_size) - Self.headerSize)
    }

    /// Writes stream bytes at their offset; `skipZeros` leaves all-zero pieces as holes (the
    /// first pass, over a region never written).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, skipZeros: Bool) throws(AcquisitionError) {
        precondition(offset >= start)
        if skipZeros, StoreWrites.isAllZero(bytes) {
            try extend(to: offset + UInt64(bytes.count))
            return
        }
        try writeAll(bytes, atFile: Self.headerSize + offset - start, streamOffset: offset)
    }

    /// Makes the file hold the stream up to `end` (trailing holes included).
    func extend(to end: UInt64) throws(AcquisitionError) {
        guard try streamEnd() < end else { return }
        try truncate(to: end)
    }

    /// Keeps the stream bytes before `end` only (what a journal named durable).
    func truncate(to end: UInt64) throws(AcquisitionError) {
        guard ftruncate(descriptor, off_t(Self.headerSize + end - start)) == 0 else {
            throw AcquisitionError(.writeFailed, path: path, offset: end, errno: errno, detail: "setting the staging file's length")
        }
    }

    func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) {
        try StoreWrites.readAll(
            into: destination, count: count, from: descriptor, at: Self.headerSize + offset - start, path: path, reported: offset,
            what: "the staging file")
    }

    /// Gives back the store space of stream bytes before `end` that the E01 now holds.
    func release(before end: UInt64) {
        guard end > start else { return }
        _ = cewf_punch_hole(descriptor, off_t(Self.headerSize), off_t(end - start))
    }

    func sync() throws(AcquisitionError) {
        guard fdatasync(descriptor) == 0 else {
            let error = errno
            throw AcquisitionError(error == ENOSPC || error == EDQUOT ? .storeFull : .syncFailed, path: path, errno: error)
        }
    }

    func remove() throws(AcquisitionError) {
        close(descriptor)
        descriptor = -1
        guard unlink(path) == 0 || errno == ENOENT else { throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "removing") }
    }

    var fileDescriptor: Int32 { descriptor }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, atFile position: UInt64, streamOffset: UInt64) throws(AcquisitionError) {
        try StoreWrites.writeAll(
            bytes, to: descriptor, at: position, path: path, streamOffset: streamOffset, what: "the E01's staging file")
    }
}
