// SPDX-License-Identifier: Apache-2.0
import CEWF
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc
#endif

/// The media stream of an E01, read back through libewf (decompressed, each chunk checked
/// against its Adler-32), for the read-back verification and `exhibit verify`.
///
/// A damaged chunk is an error naming its byte range in the stream: libewf 20140813 fails the
/// read of a compressed chunk that does not inflate and lists an uncompressed chunk whose
/// checksum is wrong as a checksum error (zero-filling it); both are caught here.
public final class E01Reader: StreamSource, @unchecked Sendable {
    public let path: String
    public let size: UInt64
    public let bytesPerSector: UInt32
    public let chunkSize: UInt64
    private var handle: EWFHandle
    private let paths: [String]
    /// Exhibit's account of where each chunk is stored, read before libewf opens the files.
    private let layout: E01Layout
    private let lock = NSLock()
    private var checksumErrorsSeen: UInt32 = 0
    /// Where the handle was last opened: see `reopenInterval`.
    private var openedAt: UInt64 = 0

    /// libewf 20140813 keeps what it learns of each chunk it reads (about 140 bytes a chunk, in
    /// arrays that grow by doubling: 316 MiB after 64 GiB of 32 KiB chunks) until the handle is
    /// closed. Reading a stream front to back, a fresh handle every 1 GiB keeps that bounded.
    static let reopenInterval: UInt64 = 1 << 30

    /// Opens every segment file of the image (`NAME.E01`, `NAME.E02` …, in order).
    public init(paths: [String]) throws(AcquisitionError) {
        guard let first = paths.first else {
            throw AcquisitionError(.invalidRequest, path: "E01", detail: "no segment files to read")
        }
        path = paths.count == 1 ? first : "\(first) … \(paths.last!)"
        self.paths = paths
        // libewf parses only what Exhibit's bounded parser accepted: a carrier's crafted header
        // section, table or volume is refused before libewf allocates for it.
        layout = try E01Layout(paths: paths)
        handle = try Self.open(paths, path: path)
        var mediaSize: UInt64 = 0
        var sectorSize: UInt32 = 0
        var chunk: UInt32 = 0
        try handle.call("libewf_handle_get_media_size", code: .inspectFailed) { libewf_handle_get_media_size($0, &mediaSize, $1) }
        try handle.call("libewf_handle_get_bytes_per_sector", code: .inspectFailed) { libewf_handle_get_bytes_per_sector($0, &sectorSize, $1) }
        try handle.call("libewf_handle_get_chunk_size", code: .inspectFailed) { libewf_handle_get_chunk_size($0, &chunk, $1) }
        guard mediaSize > 0, sectorSize > 0, chunk > 0 else {
            throw AcquisitionError(.inspectFailed, path: path, detail: "the E01 names no media (size \(mediaSize), chunk \(chunk))")
        }
        size = mediaSize
        bytesPerSector = sectorSize
        chunkSize = UInt64(chunk)
    }

    /// libewf keeps every segment file open for the life of a handle: a caller reading an E01 of
    /// many segments needs as many descriptors (`exhibit verify` raises its limit). Capping them
    /// with `libewf_handle_set_maximum_number_of_open_handles` fails in this libewf version's
    /// file pool (`libcdata_list_remove_element: invalid element`, measured on 4 segments).
    private static func open(_ paths: [String], path: String) throws(AcquisitionError) -> EWFHandle {
        let handle = try EWFHandle(path: path)
        try handle.open(paths, flags: Int32(LIBEWF_ACCESS_FLAG_READ.rawValue), code: .openFailed)
        return handle
    }

    public func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
        lock.lock()
        defer { lock.unlock() }
        if offset < openedAt || offset - openedAt >= Self.reopenInterval {
            try handle.close()  // its files first: the new handle opens them again
            handle = try Self.open(paths, path: path)
            // The old handle's many small blocks are free now: give the pages back.
            malloc_trim(0)
            checksumErrorsSeen = 0
            openedAt = offset
        }
        do {
            try read(destination, count: count, at: offset)
        } catch {
            // Which chunk: read the range again chunk by chunk; the first that fails is named.
            try locateDamage(destination, count: count, at: offset, fallback: error)
        }
        try checkChecksumErrors()
        return []
    }

    private func read(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) {
        guard offset + UInt64(count) <= size else {
            throw AcquisitionError(.readFailed, path: path, offset: offset, detail: "past the end of the \(size)-byte media")
        }
        var done = 0
        while done < count {
            let position = offset + UInt64(done)
            let result = try handle.call("libewf_handle_read_random", code: .readFailed, offset: position) {
                libewf_handle_read_random($0, destination + done, count - done, off64_t(position), $1)
            }
            guard result > 0 else {
                throw AcquisitionError(.readFailed, path: path, offset: position, detail: "libewf returned no data")
            }
            done += result
        }
    }

    private func locateDamage(
        _ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64, fallback: AcquisitionError
    ) throws(AcquisitionError) {
        var chunkStart = offset / chunkSize * chunkSize
        while chunkStart < offset + UInt64(count) {
            let from = max(chunkStart, offset), to = min(chunkStart + chunkSize, offset + UInt64(count))
            do {
                try read(destination + Int(from - offset), count: Int(to - from), at: from)
            } catch {
                throw damaged(start: chunkStart, end: min(chunkStart + chunkSize, size), why: error.detail ?? "\(error)")
            }
            chunkStart += chunkSize
        }
        throw fallback
    }

    /// Chunks libewf found with a wrong checksum since the last look, as a damaged byte range.
    private func checkChecksumErrors() throws(AcquisitionError) {
        var count: UInt32 = 0
        try handle.call("libewf_handle_get_number_of_checksum_errors", code: .readFailed) {
            libewf_handle_get_number_of_checksum_errors($0, &count, $1)
        }
        guard count > checksumErrorsSeen else { return }
        var firstSector: UInt64 = 0
        var sectors: UInt64 = 0
        let index = checksumErrorsSeen
        try handle.call("libewf_handle_get_checksum_error", code: .readFailed) {
            libewf_handle_get_checksum_error($0, index, &firstSector, &sectors, $1)
        }
        checksumErrorsSeen = count
        let start = firstSector * UInt64(bytesPerSector)
        throw damaged(start: start, end: min(start + sectors * UInt64(bytesPerSector), size), why: "its checksum does not match")
    }

    /// libewf names no file or stored offset: Exhibit's decoder, reading the same chunk, names the
    /// segment file and where in it the chunk is stored (libewf's account when it finds nothing).
    private func damaged(start: UInt64, end: UInt64, why: String) -> AcquisitionError {
        let count = Int(end - start)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        defer { buffer.deallocate() }
        do throws(AcquisitionError) {
            _ = try E01Decoder(layout: layout, hashes: nil).fill(buffer, count: count, at: start)
        } catch {
            if error.code == .verifyMismatch { return error }
        }
        return damagedChunk(path: path, media: start, count: end - start, storedAt: nil, why: why)
    }

    // MARK: What the image says of itself (for verifiers and tests)

    /// The MD5 and SHA-1 the E01 stores, lower-case hex; nil when absent.
    public func storedDigests() throws(AcquisitionError) -> (md5: String?, sha1: String?) {
        lock.lock()
        defer { lock.unlock() }
        return (try handle.hash("MD5")?.lowercased(), try handle.hash("SHA1")?.lowercased())
    }

    /// The acquisition-error list: unreadable byte ranges as the E01 records them (whole sectors).
    public func acquisitionErrors() throws(AcquisitionError) -> [ByteSpan] {
        lock.lock()
        defer { lock.unlock() }
        do {
            var count: UInt32 = 0
            try handle.call("libewf_handle_get_number_of_acquiry_errors", code: .inspectFailed) {
                libewf_handle_get_number_of_acquiry_errors($0, &count, $1)
            }
            var spans: [ByteSpan] = []
            for index in 0..<count {
                var first: UInt64 = 0
                var sectors: UInt64 = 0
                try handle.call("libewf_handle_get_acquiry_error", code: .inspectFailed) {
                    libewf_handle_get_acquiry_error($0, index, &first, &sectors, $1)
                }
                spans.append(ByteSpan(start: first * UInt64(bytesPerSector), length: sectors * UInt64(bytesPerSector)))
            }
            return spans
        }
    }

    /// A header value (`case_number`, `examiner_name`, `notes` …).
    public func header(_ identifier: String) throws(AcquisitionError) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return try handle.header(identifier)
    }
}
