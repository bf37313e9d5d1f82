// SPDX-License-Identifier: Apache-2.0
import CEWF
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc
#endif

/// Where the chunks of an E01 (EnCase 6, as libewf writes it) lie in its segment files, found by
/// walking each file's section chain with every field checked before it is used: descriptor and
/// table checksums, offsets inside the file, `next` equal to the section's end (a file whose
/// sizes and offsets disagree could hold two images), chunk counts that add up to the media.
///
/// Exhibit's own parser, so that the read-back need not trust libewf 20140813 with a file read
/// from a store (its `libewf_handle_read_chunk` copies a compressed chunk's stored size into the
/// caller's buffer unchecked), and can decode chunks itself, faster, in bounded memory.
/// Layout facts: the EWF specification of the libewf project (J. Metz, "Expert Witness
/// Compression Format", sections "Section descriptor", "Volume section", "Table section").
final class E01Layout: @unchecked Sendable {
    /// One table section: the entries of `count` chunks from `firstChunk`, whose stored bytes lie
    /// in the sectors section before it (the last chunk ends where that section ends).
    struct Table: Equatable {
        let segment: Int
        let firstChunk: UInt64
        let count: Int
        let entriesOffset: UInt64
        let baseOffset: UInt64
        let sectors: Range<UInt64>
        /// The Adler-32 stored after the entries: two walks that agree on it read the same entries.
        let entriesChecksum: UInt32
    }

    let files: [SegmentFile]
    let mediaSize: UInt64
    let bytesPerSector: UInt32
    let chunkSize: UInt64
    let chunkCount: UInt64
    let tables: [Table]

    static let descriptorSize = 76
    static let fileHeaderSize = 13
    static let signature: [UInt8] = [0x45, 0x56, 0x46, 0x09, 0x0D, 0x0A, 0xFF, 0x00]
    /// The volume section's data in EnCase 5 to 7 files.
    static let volumeSize = 1052
    /// Entries a table may hold (EnCase 6's limit; libewf writes at most 65534).
    static let maximumEntries = 65535
    /// How much larger than its chunk a stored chunk may be: a zlib stream of incompressible data
    /// grows by 5 bytes per 64 KiB block plus 6 (RFC 1950/1951); writers store such chunks raw.
    static let largestExpansion = 1024
    /// The most a header or header2 section may hold, stored or inflated (EnCase 6 and libewf
    /// write a few hundred bytes of case metadata).
    static let maximumHeaderText = 1 << 20
    /// Larger chunks than Exhibit's writer makes (1 MiB) are not read.
    static let maximumChunkSize: UInt64 = 1 << 20

    init(paths: [String]) throws(AcquisitionError) {
        guard !paths.isEmpty else { throw AcquisitionError(.invalidRequest, path: "E01", detail: "no segment files to read") }
        var files: [SegmentFile] = []
        var walk = Walk()
        for (index, path) in paths.enumerated() {
            let file = try SegmentFile(path: path)
            try walk.segment(file, isLast: index == paths.count - 1)
            file.release()  // opened again when its chunks are read
            files.append(file)
        }
        guard let volume = walk.volume else {
            throw AcquisitionError(.inspectFailed, path: paths[0], detail: "the E01 has no volume section")
        }
        let chunkSize = UInt64(volume.sectorsPerChunk) * UInt64(volume.bytesPerSector)
        let (mediaSize, overflow) = volume.sectorCount.multipliedReportingOverflow(by: UInt64(volume.bytesPerSector))
        guard [512, 4096].contains(volume.bytesPerSector), chunkSize > 0, chunkSize <= Self.maximumChunkSize, !overflow,
            mediaSize > 0, volume.chunkCount == mediaSize / chunkSize + (mediaSize % chunkSize == 0 ? 0 : 1),
            walk.chunks == volume.chunkCount
        else {
            throw AcquisitionError(
                .inspectFailed, path: paths[0],
                detail: "the E01's volume section does not add up: \(volume.sectorCount) sectors of \(volume.bytesPerSector) bytes, "
                    + "\(volume.sectorsPerChunk) per chunk, \(volume.chunkCount) chunks, and its tables list \(walk.chunks)")
        }
        self.files = files
        self.mediaSize = mediaSize
        self.bytesPerSector = volume.bytesPerSector
        self.chunkSize = chunkSize
        self.chunkCount = volume.chunkCount
        self.tables = walk.tables
    }

    /// The whole chunks of the sections a walk found closed in files libewf is still writing:
    /// a layout of the stream's first `walk.chunks` chunks only.
    init(closedPartOf walk: Walk, files: [SegmentFile]) throws(AcquisitionError) {
        let path = files.first?.path ?? "E01"
        guard let volume = walk.volume, [512, 4096].contains(volume.bytesPerSector), volume.sectorsPerChunk > 0,
            UInt64(volume.sectorsPerChunk) * UInt64(volume.bytesPerSector) <= Self.maximumChunkSize
        else {
            throw AcquisitionError(
                .inspectFailed, path: path, detail: "the E01 being written has no volume section of 512 or 4096-byte sectors "
                    + "and chunks of at most \(Self.maximumChunkSize) bytes")
        }
        guard walk.chunks < volume.chunkCount else {
            throw AcquisitionError(
                .inspectFailed, path: files.last?.path ?? path,
                detail: "the closed chunk sections of the E01 being written list \(walk.chunks) chunks, and its volume section "
                    + "\(volume.chunkCount) for the whole image")
        }
        self.files = files
        bytesPerSector = volume.bytesPerSector
        chunkSize = UInt64(volume.sectorsPerChunk) * UInt64(volume.bytesPerSector)
        chunkCount = walk.chunks
        mediaSize = walk.chunks * chunkSize
        tables = walk.tables
    }

    /// The table listing chunk `index`.
    func table(holding index: UInt64) -> Int {
        var low = 0, high = tables.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if tables[middle].firstChunk <= index { low = middle } else { high = middle - 1 }
        }
        return low
    }

    struct Volume {
        let chunkCount: UInt64
        let sectorsPerChunk: UInt32
        let bytesPerSector: UInt32
        let sectorCount: UInt64
    }

    /// The sections of the segment files, in order; it can stop anywhere and go on later (the
    /// read-back of a file libewf is still writing, `E01ClosedSections`).
    struct Walk {
        var volume: Volume?
        var tables: [Table] = []
        var chunks: UInt64 = 0
        /// The segment the walk is in, and its next section's offset (0: the file header).
        var segment = 0
        var offset: UInt64 = 0
        /// The sectors section whose table comes next.
        var sectors: Range<UInt64>?

        /// Walks a whole segment file, which must end the image (`isLast`) or not.
        mutating func segment(_ file: SegmentFile, isLast: Bool) throws(AcquisitionError) {
            while true {
                let step = try step(file)
                guard case .ended(let type, let at) = step else { continue }
                guard type == (isLast ? "done" : "next") else {
                    throw file.malformed(at: at, "a \"\(type)\" section ends segment \(segment) of the image")
                }
                return
            }
        }

        enum Step: Equatable {
            /// A section, or the file header, that adds nothing to wait for.
            case complete
            /// A sectors section: its chunks count once the table after it is read.
            case sectors
            /// The segment's last section ("next" or "done") and its offset: the walk is now at the next segment's start.
            case ended(String, at: UInt64)
        }

        /// Reads the one section (or file header) the walk stands at, checked, and moves past it.
        mutating func step(_ file: SegmentFile) throws(AcquisitionError) -> Step {
            guard offset > 0 else {
                try checkHeader(file)
                offset = UInt64(E01Layout.fileHeaderSize)
                return .complete
            }
            let section = try Section(file, at: offset)
            switch section.type {
            case "done", "next":
                segment += 1
                offset = 0
                sectors = nil
                return .ended(section.type, at: section.start)
            case "volume", "disk":
                guard segment == 0, volume == nil else { throw file.malformed(at: offset, "a second volume section") }
                volume = try section.volume(file)
            case "sectors":
                sectors = section.data
                offset = section.next
                return .sectors
            case "table":
                guard let data = sectors else { throw file.malformed(at: offset, "a table section with no sectors section before it") }
                let table = try section.table(file, segment: segment, firstChunk: chunks, sectors: data)
                tables.append(table)
                chunks += UInt64(table.count)
                sectors = nil
            case "header", "header2":
                try section.checkHeaderText(file)
            default:
                break  // table2 (a mirror of table), data, error2, digest, hash, session
            }
            offset = section.next
            return .complete
        }

        /// Walks on through the segment files `path` names (by index) while sections parse, and
        /// stays at the last one libewf has closed (a sectors section counts only with the table
        /// after it: its descriptor is rewritten when it closes). `file`: the one the walk is in,
        /// kept open between calls on a file still being written.
        mutating func advance(through path: (Int) -> String, file: inout SegmentFile?) {
            while segment < E01Image.maximumSegments {
                if file?.path != path(segment) {
                    file = nil
                    guard let opened = try? SegmentFile(path: path(segment)) else { return }
                    file = opened
                }
                var trial = self
                do throws(AcquisitionError) {
                    try file!.refreshSize()
                    while true {
                        let step = try trial.step(file!)
                        if step != .sectors { self = trial }
                        if case .ended = step { break }
                    }
                } catch {
                    return  // the section libewf has open: not written yet
                }
            }
        }

        /// Forgets the last table found, and its chunks.
        mutating func dropLastTable() {
            guard let last = tables.popLast() else { return }
            chunks -= UInt64(last.count)
        }

        private func checkHeader(_ file: SegmentFile) throws(AcquisitionError) {
            let header = try file.read(E01Layout.fileHeaderSize, at: 0, what: "the file header")
            guard Array(header.prefix(8)) == E01Layout.signature, header[8] == 1,
                UInt16(header[9]) | UInt16(header[10]) << 8 == UInt16(truncatingIfNeeded: segment + 1)
            else {
                throw file.malformed(at: 0, "its file header is not that of EWF segment \(segment + 1)")
            }
        }
    }

    /// A section descriptor, checked: its checksum, and a next offset at its own end inside the file.
    private struct Section {
        let type: String
        let start: UInt64
        let next: UInt64
        var data: Range<UInt64> { start + UInt64(E01Layout.descriptorSize)..<next }

        init(_ file: SegmentFile, at offset: UInt64) throws(AcquisitionError) {
            let bytes = try file.read(E01Layout.descriptorSize, at: offset, what: "a section descriptor")
            guard E01Layout.adler32(bytes.prefix(72)) == E01Layout.littleEndian32(bytes, at: 72) else {
                throw file.malformed(at: offset, "a section descriptor's checksum does not match")
            }
            type = String(decoding: bytes.prefix(16).prefix { $0 != 0 }, as: UTF8.self)
            start = offset
            let next = E01Layout.littleEndian64(bytes, at: 16), size = E01Layout.littleEndian64(bytes, at: 24)
            if type == "done" || type == "next" {
                guard next == offset else { throw file.malformed(at: offset, "the \"\(type)\" section does not point to itself") }
                self.next = next
                return
            }
            let (end, overflow) = offset.addingReportingOverflow(size)
            guard size >= UInt64(E01Layout.descriptorSize), !overflow, next == end, end <= file.size else {
                throw file.malformed(
                    at: offset, "the \"\(type)\" section's size (\(size)) and next offset (\(next)) disagree or leave the file")
            }
            self.next = next
        }

        /// header and header2 hold the case metadata as zlib-compressed text of a few hundred
        /// bytes, which libewf inflates whole when it opens the E01 (`exhibit verify`): a crafted
        /// section of one MiB that inflates to a GiB took a GiB. Refused over `maximumHeaderText`,
        /// stored or inflated.
        func checkHeaderText(_ file: SegmentFile) throws(AcquisitionError) {
            let limit = E01Layout.maximumHeaderText
            guard data.count <= limit else {
                throw file.malformed(at: start, "a \"\(type)\" section of \(data.count) bytes (case metadata takes at most \(limit))")
            }
            let stored = try file.read(data.count, at: data.lowerBound, what: "a \(type) section")
            guard let decompressor = libdeflate_alloc_decompressor() else {
                throw AcquisitionError(.readFailed, path: file.path, detail: "reading an E01: no memory for a decompressor (libdeflate)")
            }
            defer { libdeflate_free_decompressor(decompressor) }
            let text = UnsafeMutableRawPointer.allocate(byteCount: limit, alignment: 16)
            defer { text.deallocate() }
            var produced = 0
            let result = stored.withUnsafeBytes { libdeflate_zlib_decompress(decompressor, $0.baseAddress, $0.count, text, limit, &produced) }
            guard result == LIBDEFLATE_SUCCESS else {
                throw file.malformed(at: start, "a \"\(type)\" section that is not a zlib stream of at most \(limit) bytes of text")
            }
        }

        func volume(_ file: SegmentFile) throws(AcquisitionError) -> Volume {
            guard data.count == E01Layout.volumeSize else {
                throw file.malformed(at: start, "a volume section of \(data.count) bytes (EnCase 6 writes \(E01Layout.volumeSize))")
            }
            let bytes = try file.read(E01Layout.volumeSize, at: data.lowerBound, what: "the volume section")
            guard E01Layout.adler32(bytes.prefix(E01Layout.volumeSize - 4)) == E01Layout.littleEndian32(bytes, at: E01Layout.volumeSize - 4)
            else { throw file.malformed(at: start, "the volume section's checksum does not match") }
            return Volume(
                chunkCount: UInt64(E01Layout.littleEndian32(bytes, at: 4)), sectorsPerChunk: E01Layout.littleEndian32(bytes, at: 8),
                bytesPerSector: E01Layout.littleEndian32(bytes, at: 12), sectorCount: E01Layout.littleEndian64(bytes, at: 16))
        }

        func table(_ file: SegmentFile, segment: Int, firstChunk: UInt64, sectors: Range<UInt64>) throws(AcquisitionError) -> Table {
            let header = try file.read(24, at: data.lowerBound, what: "a table header")
            guard E01Layout.adler32(header.prefix(20)) == E01Layout.littleEndian32(header, at: 20) else {
                throw file.malformed(at: start, "a table header's checksum does not match")
            }
            let count = Int(E01Layout.littleEndian32(header, at: 0))
            guard count > 0, count <= E01Layout.maximumEntries, UInt64(24 + count * 4 + 4) <= UInt64(data.count) else {
                throw file.malformed(at: start, "a table of \(count) entries in a section of \(data.count) bytes")
            }
            // Entries are 31-bit offsets from the base: a base past the sectors could only wrap.
            let base = E01Layout.littleEndian64(header, at: 8)
            guard base <= sectors.upperBound else {
                throw file.malformed(at: start, "a table's base offset (\(base)) lies past its sectors section (\(sectors.upperBound))")
            }
            let checksum = try file.read(4, at: data.lowerBound + 24 + UInt64(count * 4), what: "a table's entries checksum")
            return Table(
                segment: segment, firstChunk: firstChunk, count: count, entriesOffset: data.lowerBound + 24, baseOffset: base,
                sectors: sectors, entriesChecksum: E01Layout.littleEndian32(checksum, at: 0))
        }
    }

    static func adler32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(libdeflate_adler32(1, $0.baseAddress, $0.count)) }
    }

    static func littleEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    static func littleEndian64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }
}

/// One segment file, for reading. Its descriptor is closed with it, or earlier by `release()`:
/// an E01 can have hundreds of segment files and a service 1,024 descriptors, so readers keep
/// only the file they are in open. A released file is opened again by its next read, and must
/// still be on the same device and no shorter than it was (not the same inode number: vfat and
/// exFAT stores give a file another one when its inode leaves the cache). Changed bytes are
/// caught by the format's checksums and the window check, as in a file never closed.
final class SegmentFile: @unchecked Sendable {
    let path: String
    /// The file's size when opened, or when last `refreshSize()`d (a file being written).
    private(set) var size: UInt64
    /// -1 while released.
    private var descriptor: Int32
    private let device: UInt64

    init(path: String) throws(AcquisitionError) {
        let (descriptor, status) = try Self.open(path)
        self.path = path
        self.descriptor = descriptor
        self.size = UInt64(status.st_size)
        device = UInt64(status.st_dev)
    }

    deinit { release() }

    /// Closes the descriptor until the next read.
    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    private static func open(_ path: String) throws(AcquisitionError) -> (Int32, stat) {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, errno: errno, detail: "reading the E01") }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let error = errno
            close(descriptor)
            throw AcquisitionError(.inspectFailed, path: path, errno: error, detail: "fstat of an E01 segment file")
        }
        return (descriptor, status)
    }

    /// The open descriptor, opening the file again if it was released.
    private func opened() throws(AcquisitionError) -> Int32 {
        if descriptor >= 0 { return descriptor }
        let (reopened, status) = try Self.open(path)
        guard UInt64(status.st_dev) == device, UInt64(status.st_size) >= size else {
            close(reopened)
            throw AcquisitionError(
                .inspectFailed, path: path, offset: UInt64(status.st_size),
                detail: "reopening an E01 segment file: it is now \(status.st_size) bytes (\(size) when first read), or on another device")
        }
        descriptor = reopened
        return reopened
    }

    func refreshSize() throws(AcquisitionError) {
        var status = stat()
        guard fstat(try opened(), &status) == 0 else {
            throw AcquisitionError(.inspectFailed, path: path, errno: errno, detail: "fstat of an E01 segment file being written")
        }
        size = UInt64(status.st_size)
    }

    /// Exactly `count` bytes at `offset`, which must lie inside the file.
    func read(_ count: Int, at offset: UInt64, what: String) throws(AcquisitionError) -> [UInt8] {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
        defer { buffer.deallocate() }
        try read(into: buffer, count: count, at: offset, what: what)
        return [UInt8](UnsafeRawBufferPointer(start: buffer, count: count))
    }

    func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64, what: String) throws(AcquisitionError) {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw malformed(at: offset, "\(what) (\(count) bytes) would lie past the file's end (\(size) bytes)")
        }
        try StoreWrites.readAll(into: destination, count: count, from: try opened(), at: offset, path: path, reported: offset, what: what)
    }

    func malformed(at offset: UInt64, _ why: String) -> AcquisitionError {
        AcquisitionError(.inspectFailed, path: path, offset: offset, detail: "not a well-formed E01 segment file: \(why)")
    }
}
