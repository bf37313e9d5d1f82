// SPDX-License-Identifier: Apache-2.0
import CEWF
import Cryptography
import Foundation
import Imaging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The media stream of an E01, decoded by Exhibit's own parser (`E01Layout`) with libdeflate:
/// the job's read-back of the image it just wrote. Every stored chunk is bounded by its table and
/// sectors section before it is read, a compressed chunk must inflate to exactly its media bytes
/// (zlib's Adler-32 checked), an uncompressed one must carry its Adler-32. A damaged chunk is an
/// error naming its media byte range and where it is stored.
///
/// Independent of libewf, which wrote the file (and which `exhibit verify`, `ewfverify` and the
/// hub's tools read it with): two readers agreeing is a check of the writer too. Reads up to 2 MiB
/// of stored chunks with one `pread` and inflates them on every core; memory stays one table's
/// entries, that buffer and a chunk per core. With `hashingFiles`, each segment file's SHA-256 is
/// taken from the same reads (`SegmentHashes`), on one of the cores, beside the inflating.
public final class E01Decoder: FileHashingStreamSource, @unchecked Sendable {
    public let path: String
    public let size: UInt64
    let layout: E01Layout
    private let lock = NSLock()
    private let workers: [Worker]
    private let stored: UnsafeMutableRawPointer
    private var loaded: (table: Int, entries: TableEntries)?
    /// The stream Exhibit's encoder stores for an all-zero chunk, proven at opening to inflate to
    /// zeros: a stored chunk equal to it byte for byte is zeros without inflating it (libdeflate
    /// 1.14 inflates its distance-1 matches a byte at a time, 0.7 GB/s here).
    private let zeroChunk: [UInt8]
    /// Stored bytes read at once: 2 MiB (a pipeline buffer's media at most), or one chunk at its largest.
    private let storedCapacity: Int
    private let hashes: SegmentHashes?

    /// One core's decompressor, and a chunk's room for a chunk the request holds only part of.
    private final class Worker: @unchecked Sendable {
        let decompressor: OpaquePointer
        let scratch: UnsafeMutableRawPointer

        init(chunkSize: Int) throws(AcquisitionError) {
            guard let decompressor = libdeflate_alloc_decompressor() else {
                throw AcquisitionError(.readFailed, path: "E01", detail: "reading an E01: no memory for a decompressor (libdeflate)")
            }
            self.decompressor = decompressor
            scratch = .allocate(byteCount: chunkSize, alignment: 64)
        }

        deinit {
            libdeflate_free_decompressor(decompressor)
            scratch.deallocate()
        }
    }

    /// Where one chunk is stored.
    struct Entry {
        let offset: UInt64
        let storedCount: Int
        let compressed: Bool
    }

    /// A table's entries as the table stores them, 4 bytes a chunk (a table of 65,534 takes
    /// 256 KiB, held while the read-back during the first pass decodes it beside the pass's own
    /// buffers), checked once when loaded.
    struct TableEntries {
        let raw: [UInt32]
        let base: UInt64
        /// Where the last chunk's stored bytes end: its sectors section's end.
        let end: UInt64

        var count: Int { raw.count }

        subscript(index: Int) -> Entry {
            let start = base + UInt64(raw[index] & 0x7FFF_FFFF)
            let next = index + 1 < raw.count ? base + UInt64(raw[index + 1] & 0x7FFF_FFFF) : end
            return Entry(offset: start, storedCount: Int(next - start), compressed: raw[index] & 0x8000_0000 != 0)
        }
    }

    /// Opens every segment file of the image (`NAME.E01`, `NAME.E02` …, in order).
    public convenience init(paths: [String], hashingFiles: Bool = false) throws(AcquisitionError) {
        let layout = try E01Layout(paths: paths)
        try self.init(layout: layout, hashes: hashingFiles ? SegmentHashes(files: layout.files) : nil)
    }

    /// Decodes the chunks `layout` lists, each segment file hashed into `hashes` if given (which
    /// may hold the hashing of an earlier decoder's reads of the same files: it goes on from
    /// there). `readSize`: the stored bytes read at once.
    init(layout: E01Layout, hashes: SegmentHashes?, readSize: Int = 2 << 20) throws(AcquisitionError) {
        self.layout = layout
        self.hashes = hashes
        let paths = layout.files.map(\.path)
        path = paths.count == 1 ? paths[0] : "\(paths[0]) … \(paths[paths.count - 1])"
        size = layout.mediaSize
        var workers: [Worker] = []
        for _ in 0..<max(1, ProcessInfo.processInfo.activeProcessorCount) { workers.append(try Worker(chunkSize: Int(layout.chunkSize))) }
        self.workers = workers
        storedCapacity = max(readSize, Int(layout.chunkSize) + E01Layout.largestExpansion)
        stored = .allocate(byteCount: storedCapacity, alignment: 4096)
        zeroChunk =
            Self.provenZeroChunk(size: Int(layout.chunkSize), decompressor: workers[0].decompressor, scratch: workers[0].scratch) ?? []
    }

    private static func provenZeroChunk(size: Int, decompressor: OpaquePointer, scratch: UnsafeMutableRawPointer) -> [UInt8]? {
        guard let stream = ChunkEncoder.compressedZeroChunk(size: size) else { return nil }
        var produced = 0
        let result = libdeflate_zlib_decompress(decompressor, stream, stream.count, scratch, size, &produced)
        guard result == LIBDEFLATE_SUCCESS, produced == size,
            StoreWrites.isAllZero(UnsafeRawBufferPointer(start: scratch, count: size))
        else { return nil }
        return stream
    }

    deinit { stored.deallocate() }

    /// Each segment file's SHA-256, in order, once the whole stream has been read (with
    /// `hashingFiles`; nil without).
    public func fileSHA256() throws(AcquisitionError) -> [DigestValue]? {
        lock.lock()
        defer { lock.unlock() }
        return try hashes?.finish(through: stored, capacity: storedCapacity)
    }

    public var bytesPerSector: UInt32 { layout.bytesPerSector }
    public var chunkSize: UInt64 { layout.chunkSize }

    public func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
        lock.lock()
        defer { lock.unlock() }
        guard offset <= size, UInt64(count) <= size - offset else {
            throw AcquisitionError(.readFailed, path: path, offset: offset, detail: "past the end of the \(size)-byte media")
        }
        var position = offset
        let end = offset + UInt64(count)
        while position < end {
            position = try decodeRun(from: position, to: end, into: destination, at: offset)
        }
        return []
    }

    /// Decodes the chunks from the one holding `position` on, as many as one table and one read
    /// hold, into `destination` (which holds media bytes from `offset`); returns where it stopped.
    private func decodeRun(
        from position: UInt64, to end: UInt64, into destination: UnsafeMutableRawPointer, at offset: UInt64
    ) throws(AcquisitionError) -> UInt64 {
        let chunkSize = layout.chunkSize
        let tableIndex = layout.table(holding: position / chunkSize)
        let table = layout.tables[tableIndex]
        let entries = try entries(of: tableIndex)
        let first = Int(position / chunkSize - table.firstChunk)
        let lastNeeded = Int(min((end - 1) / chunkSize - table.firstChunk, UInt64(entries.count - 1)))
        var last = first
        while last < lastNeeded, entries[last + 1].offset + UInt64(entries[last + 1].storedCount) - entries[first].offset
            <= UInt64(storedCapacity)
        {
            last += 1
        }
        let readStart = entries[first].offset
        let file = layout.files[table.segment]
        let readCount = Int(entries[last].offset + UInt64(entries[last].storedCount) - readStart)
        try hashes?.catchUp(segment: table.segment, to: readStart, through: stored, capacity: storedCapacity)
        try file.read(into: stored, count: readCount, at: readStart, what: "the stored chunks")
        let run = Run(
            first: first, last: last, firstChunk: table.firstChunk, readStart: readStart, position: position, end: end,
            destination: destination, offset: offset, file: file, entries: entries,
            unhashed: hashes?.claim(segment: table.segment, bytes: stored, count: readCount, at: readStart))
        try decode(run)
        return min((table.firstChunk + UInt64(last) + 1) * chunkSize, end)
    }

    /// The chunks of one read, and where their media bytes go.
    private struct Run: @unchecked Sendable {
        let first: Int, last: Int
        let firstChunk: UInt64
        let readStart: UInt64
        let position: UInt64, end: UInt64
        let destination: UnsafeMutableRawPointer
        let offset: UInt64
        let file: SegmentFile
        let entries: TableEntries
        /// The read's bytes still to hash for the file's SHA-256 (with `hashingFiles`).
        let unhashed: SegmentHashes.PendingBytes?
    }

    /// Decodes a run's chunks on every core, each taking the next chunk in turn (and first, when
    /// hashing the files, the read's bytes to hash); the first damaged chunk in stream order is the error.
    private func decode(_ run: Run) throws(AcquisitionError) {
        let hashing = run.unhashed == nil ? 0 : 1
        let next = Atomic<Int>(run.first - hashing)
        let failure = Mutex<(index: Int, error: AcquisitionError)?>(nil)
        let items = run.last - run.first + 1 + hashing
        DispatchQueue.concurrentPerform(iterations: min(workers.count, items)) { worker in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index <= run.last else { return }
                if index < run.first, let pending = run.unhashed {
                    hashes?.hash(pending)
                    continue
                }
                do throws(AcquisitionError) {
                    try decodeChunk(index, of: run, worker: workers[worker])
                } catch {
                    failure.withLock { if $0 == nil || index < $0!.index { $0 = (index, error) } }
                }
            }
        }
        if let failure = failure.withLock({ $0 }) { throw failure.error }
    }

    private func decodeChunk(_ index: Int, of run: Run, worker: Worker) throws(AcquisitionError) {
        let chunkSize = layout.chunkSize
        let chunkStart = (run.firstChunk + UInt64(index)) * chunkSize
        let dataCount = Int(min(chunkSize, size - chunkStart))
        let source = stored + Int(run.entries[index].offset - run.readStart)
        let whole = chunkStart >= run.position && chunkStart + UInt64(dataCount) <= run.end
        let target = whole ? run.destination + Int(chunkStart - run.offset) : worker.scratch
        try decode(run.entries[index], from: source, into: target, dataCount: dataCount, at: chunkStart, file: run.file, with: worker)
        if !whole {
            let from = max(chunkStart, run.position), to = min(chunkStart + UInt64(dataCount), run.end)
            (run.destination + Int(from - run.offset)).copyMemory(from: worker.scratch + Int(from - chunkStart), byteCount: Int(to - from))
        }
    }

    private func decode(
        _ entry: Entry, from source: UnsafeMutableRawPointer, into target: UnsafeMutableRawPointer, dataCount: Int, at mediaOffset: UInt64,
        file: SegmentFile, with worker: Worker
    ) throws(AcquisitionError) {
        if entry.compressed {
            if entry.storedCount == zeroChunk.count, dataCount == Int(layout.chunkSize),
                zeroChunk.withUnsafeBytes({ memcmp(source, $0.baseAddress!, $0.count) == 0 })
            {
                memset(target, 0, dataCount)
                return
            }
            var produced = 0
            let result = libdeflate_zlib_decompress(worker.decompressor, source, entry.storedCount, target, dataCount, &produced)
            guard result == LIBDEFLATE_SUCCESS, produced == dataCount else {
                throw damaged(mediaOffset, dataCount, entry, file, "it does not inflate to its \(dataCount) bytes")
            }
            return
        }
        guard entry.storedCount == dataCount + 4 else {
            throw damaged(mediaOffset, dataCount, entry, file, "\(entry.storedCount) bytes stored for \(dataCount) and a checksum")
        }
        target.copyMemory(from: source, byteCount: dataCount)
        var checksum: UInt32 = 0
        withUnsafeMutableBytes(of: &checksum) { $0.copyMemory(from: UnsafeRawBufferPointer(start: source + dataCount, count: 4)) }
        guard UInt32(libdeflate_adler32(1, target, dataCount)) == UInt32(littleEndian: checksum) else {
            throw damaged(mediaOffset, dataCount, entry, file, "its checksum does not match")
        }
    }

    private func damaged(_ start: UInt64, _ count: Int, _ entry: Entry, _ file: SegmentFile, _ why: String) -> AcquisitionError {
        damagedChunk(path: file.path, media: start, count: UInt64(count), storedAt: entry.offset, why: why)
    }

    /// A table's entries, read once and checked: the checksum over them, and stored chunks in
    /// order inside the sectors section before the table, none larger than a chunk can be.
    private func entries(of index: Int) throws(AcquisitionError) -> TableEntries {
        if let loaded, loaded.table == index { return loaded.entries }
        let table = layout.tables[index]
        // The stream is read in file order: the file left behind is not read again (but for its tail, hashed at the end).
        if let loaded, layout.tables[loaded.table].segment != table.segment { layout.files[layout.tables[loaded.table].segment].release() }
        let file = layout.files[table.segment]
        let bytes = try file.read(table.count * 4 + 4, at: table.entriesOffset, what: "a table's entries")
        guard E01Layout.adler32(bytes.prefix(table.count * 4)) == E01Layout.littleEndian32(bytes, at: table.count * 4) else {
            throw file.malformed(at: table.entriesOffset, "a table's entries do not match their checksum")
        }
        let entries = TableEntries(
            raw: (0..<table.count).map { E01Layout.littleEndian32(bytes, at: $0 * 4) }, base: table.baseOffset, end: table.sectors.upperBound)
        for position in 0..<entries.count {
            let start = table.baseOffset + UInt64(entries.raw[position] & 0x7FFF_FFFF)
            let end =
                position + 1 < entries.count ? table.baseOffset + UInt64(entries.raw[position + 1] & 0x7FFF_FFFF) : table.sectors.upperBound
            guard start >= table.sectors.lowerBound, start < end, end <= table.sectors.upperBound,
                end - start <= layout.chunkSize + UInt64(E01Layout.largestExpansion)
            else {
                throw file.malformed(
                    at: table.entriesOffset + UInt64(position * 4),
                    "chunk \(table.firstChunk + UInt64(position)) is said to be stored at bytes \(start) to \(end), outside its "
                        + "sectors section (\(table.sectors.lowerBound) to \(table.sectors.upperBound)) or larger than a chunk")
            }
        }
        loaded = (index, entries)
        return entries
    }
}
