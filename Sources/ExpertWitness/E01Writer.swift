// SPDX-License-Identifier: Apache-2.0
import CEWF
import Cryptography
import Foundation
import HumanText
import Imaging

#if canImport(Glibc)
    import Glibc
#endif

/// Writes the media stream as an E01 through libewf's chunk API, compressing the chunks of each
/// buffer on every core and handing them to libewf in stream order.
///
/// From the chunk holding the first pass's skip frontier on, the stream goes to a staging file
/// instead (`StagingFile`), where the second pass's `patch` writes; `complete` encodes it into
/// the E01 and sets the digests and the acquisition errors before libewf finalizes. Without a
/// skip nothing is staged. `finish` never finalizes: the digests are not known then.
public final class E01Writer: ImageWriter, @unchecked Sendable {
    public let directory: String
    public let baseName: String
    public let totalSize: UInt64
    let image: E01Image
    let frontier: SkipFrontier?
    let keepFree: UInt64
    let chunkSize: UInt64
    var handle: EWFHandle?
    let encoder: ChunkEncoder
    /// The chunk the stream has only partly delivered (it starts at `written`).
    let pending: UnsafeMutableRawPointer
    var pendingCount = 0
    /// Stream bytes libewf holds: whole chunks, in order.
    var written: UInt64 = 0
    var staging: StagingFile?
    /// Staged bytes before this offset came from an earlier run and are not written again.
    var stagedBefore: UInt64 = 0
    public private(set) var restartOffset: UInt64 = 0
    /// Set once the image is finalized (also when a previous run finalized it).
    var completion: ImageCompletion?
    var finalizedDigests: (md5: String, sha1: String)?
    var reserve: SpaceReserve
    /// Segment files before this index are closed by libewf and already flushed.
    var settledSegments = 0
    /// Reads back the chunk sections libewf closes, while the stream goes on (a new image with a window check).
    var sectionReadBack: E01SectionReadBack?
    public internal(set) var fileNames: [String]

    public var name: String { "image writer" }
    public var paths: [String] { fileNames.map { "\(directory)/\($0)" } }
    var basePath: String { "\(directory)/\(baseName)" }
    var stagingPath: String { "\(directory)/\(baseName).E01-staging" }

    init(
        image: E01Image, directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?,
        frontier: SkipFrontier?
    ) throws(AcquisitionError) {
        self.image = image
        self.directory = directory
        self.baseName = baseName
        self.totalSize = totalSize
        self.keepFree = keepFree
        self.reserve = SpaceReserve(keepFree: keepFree)
        self.frontier = frontier
        chunkSize = UInt64(image.chunkSize)
        try image.check(totalSize: totalSize, source: "\(directory)/\(baseName).E01")
        encoder = ChunkEncoder(chunkSize: Int(image.chunkSize), compression: image.compression)
        pending = UnsafeMutableRawPointer.allocate(byteCount: Int(image.chunkSize), alignment: 64)
        fileNames = [E01Image.segmentName(baseName: baseName, number: 1)]
        switch offset {
        case nil:
            guard existingSegments().isEmpty, !FileManager.default.fileExists(atPath: stagingPath) else {
                throw AcquisitionError(.destinationExists, path: paths[0], detail: "an E01 of this name is already here")
            }
            try openNew()
        case 0?:
            // The job starts its image again: what an earlier run wrote goes.
            for path in existingSegments().map({ "\(directory)/\($0)" }) + [stagingPath] { unlink(path) }
            try openNew()
        case let offset?:
            try resume(at: offset)
        }
    }

    /// A job that fails or is cancelled drops its writer unfinished: its read-back thread ends with it.
    deinit {
        sectionReadBack?.stop()
        pending.deallocate()
    }

    // MARK: Opening

    /// A new image: libewf creates `NAME.E01` when the first chunk is written.
    func openNew() throws(AcquisitionError) {
        let handle = try EWFHandle(path: paths[0])
        try handle.open([basePath], flags: Int32(LIBEWF_ACCESS_FLAG_WRITE.rawValue), code: .openFailed)
        try configure(handle)
        self.handle = handle
        written = 0
        restartOffset = 0
    }

    /// Format, geometry and the header, all of which libewf writes with the first chunk.
    func configure(_ handle: EWFHandle) throws(AcquisitionError) {
        let metadata = image.metadata
        try handle.call("libewf_handle_set_format") { libewf_handle_set_format($0, UInt8(LIBEWF_FORMAT_ENCASE6.rawValue), $1) }
        try handle.call("libewf_handle_set_bytes_per_sector") { libewf_handle_set_bytes_per_sector($0, image.bytesPerSector, $1) }
        try handle.call("libewf_handle_set_sectors_per_chunk") { libewf_handle_set_sectors_per_chunk($0, image.sectorsPerChunk, $1) }
        try handle.call("libewf_handle_set_media_size") { libewf_handle_set_media_size($0, totalSize, $1) }
        // 0: EnCase 6's own limit (2^63 - 1 bytes), one file.
        try handle.call("libewf_handle_set_maximum_segment_size") { libewf_handle_set_maximum_segment_size($0, image.segmentSize ?? 0, $1) }
        try handle.call("libewf_handle_set_compression_values") {
            libewf_handle_set_compression_values($0, image.compression.libewfLevel, 0, $1)
        }
        try handle.call("libewf_handle_set_media_type") { libewf_handle_set_media_type($0, metadata.mediaType.libewfValue, $1) }
        try handle.call("libewf_handle_set_media_flags") { libewf_handle_set_media_flags($0, metadata.mediaFlags, $1) }
        var system = utsname()
        uname(&system)
        let operatingSystem = withUnsafeBytes(of: &system.sysname) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let values: [(String, String?)] = [
            ("case_number", metadata.caseNumber), ("evidence_number", metadata.evidenceNumber),
            ("examiner_name", metadata.examiner), ("description", metadata.description), ("notes", metadata.storedNotes),
            ("acquiry_software_version", metadata.software), ("acquiry_operating_system", operatingSystem),
            ("model", metadata.model), ("serial_number", metadata.serialNumber),
        ]
        // Escaped as bag-info is: the header is tab- and line-separated text, and a tab or line
        // break in a file name or a device's serial would write fields of its own.
        for case let (identifier, value?) in values where !value.isEmpty { try handle.setHeader(identifier, PlainText.escaped(value)) }
    }

    /// Continues an image whose first `offset` bytes a journal named durable.
    func resume(at offset: UInt64) throws(AcquisitionError) {
        var kept = try StagingFile(existing: stagingPath)
        if let staged = kept, staged.start > offset {
            // Staging began after the journal's last checkpoint: the first pass will find the skip again.
            try staged.remove()
            kept = nil
        }
        let segments = try droppingUnwrittenLastSegments(existingSegments())
        if segments.isEmpty {
            guard offset == 0 || kept?.start == 0 else {
                throw AcquisitionError(
                    .journalUnusable, path: paths[0], offset: offset,
                    detail: "the journal says \(offset) bytes were written but there is no E01 segment file")
            }
            try openNew()
        } else if offset == totalSize, let digests = try Self.finalizedDigests(paths: segments.map { "\(directory)/\($0)" }, totalSize: totalSize) {
            // A previous run finalized the image (it stopped before its journal said so, or before
            // removing the staging file: reopened through libewf, a finalized E01 holds its last
            // chunk whole, more bytes than the media, and could never be completed).
            try kept?.remove()
            kept = nil
            finalizedDigests = digests
            fileNames = segments
            written = totalSize
        } else {
            let handle = try EWFHandle(path: "\(directory)/\(segments[0])")
            try handle.open(
                segments.map { "\(directory)/\($0)" }, flags: Int32(LIBEWF_ACCESS_FLAG_WRITE.rawValue | LIBEWF_ACCESS_FLAG_RESUME.rawValue),
                code: .openFailed)
            var resumeOffset: off64_t = 0
            try handle.call("libewf_handle_get_offset", code: .openFailed) { libewf_handle_get_offset($0, &resumeOffset, $1) }
            self.handle = handle
            written = UInt64(resumeOffset)
            fileNames = segments
            settledSegments = segments.count - 1
        }
        if let kept {
            try kept.truncate(to: offset)
            stagedBefore = offset
            staging = kept
        }
        // Bytes libewf lost past its last complete chunks section come from the source again;
        // staged bytes do not.
        if let kept, written >= kept.start {
            restartOffset = offset
        } else {
            restartOffset = min(written, offset)
        }
    }

    /// The segment files without those at the end that do not begin with a whole section: libewf
    /// began them after the journal's last checkpoint (which syncs every segment file) and power
    /// was lost before their first bytes reached the disk (a file system with delayed allocation
    /// keeps the name, not the bytes). They hold nothing the journal counts, and libewf cannot
    /// resume over them ("unable to read file header"): they go, and libewf begins them again.
    func droppingUnwrittenLastSegments(_ segments: [String]) throws(AcquisitionError) -> [String] {
        var segments = segments
        while let last = segments.last, try !Self.beginsWithAWholeSection("\(directory)/\(last)", segment: segments.count - 1) {
            guard unlink("\(directory)/\(last)") == 0 else {
                throw AcquisitionError(.writeFailed, path: "\(directory)/\(last)", errno: errno, detail: "removing an unwritten segment file")
            }
            segments.removeLast()
        }
        return segments
    }

    /// Whether the segment file holds its file header and a whole first section, both checked (a
    /// file that cannot be opened is an error, never taken for unwritten).
    private static func beginsWithAWholeSection(_ path: String, segment: Int) throws(AcquisitionError) -> Bool {
        let file = try SegmentFile(path: path)
        var walk = E01Layout.Walk()
        walk.segment = segment
        return (try? walk.step(file)) != nil && (try? walk.step(file)) != nil
    }

    /// `NAME.E01`, `NAME.E02` … as far as they exist.
    func existingSegments() -> [String] {
        var names: [String] = []
        while names.count < E01Image.maximumSegments {
            let name = E01Image.segmentName(baseName: baseName, number: names.count + 1)
            guard access("\(directory)/\(name)", F_OK) == 0 else { break }
            names.append(name)
        }
        return names
    }

    /// The MD5 and SHA-1 of an image libewf finalized; nil for one still being written. libewf
    /// finalizes only once every chunk of the media is written (`complete`, or closing a writer
    /// dropped after its last chunk, the digests set before it), so such an image is whole;
    /// `complete` still compares these digests with the job's, and a resumed job reads it back whole.
    static func finalizedDigests(paths: [String], totalSize: UInt64) throws(AcquisitionError) -> (md5: String, sha1: String)? {
        guard let handle = try? EWFHandle(path: paths[0]) else { return nil }
        do {
            try handle.open(paths, flags: Int32(LIBEWF_ACCESS_FLAG_READ.rawValue), code: .openFailed)
        } catch {
            return nil
        }
        var mediaSize: UInt64 = 0
        try handle.call("libewf_handle_get_media_size", code: .inspectFailed) { libewf_handle_get_media_size($0, &mediaSize, $1) }
        guard mediaSize == totalSize, let md5 = try handle.hash("MD5"), let sha1 = try handle.hash("SHA1") else { return nil }
        return (md5.lowercased(), sha1.lowercased())
    }

    // MARK: The stream

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        guard completion == nil, finalizedDigests == nil else {
            throw AcquisitionError(.invalidRequest, path: paths[0], offset: offset, detail: "the E01 is already complete")
        }
        var rest = bytes
        var position = offset
        while !rest.isEmpty {
            let count: Int
            if position < written {
                // libewf holds these already (a resumed writer restarted before its own offset).
                count = Int(min(UInt64(rest.count), written - position))
            } else if position < stagedBefore, let staging, position >= staging.start {
                count = Int(min(UInt64(rest.count), stagedBefore - position))
            } else {
                let boundary = try stagingStart(at: position)
                if position >= boundary {
                    count = rest.count
                    try ensureSpace(for: UInt64(count), at: position)
                    try staging!.write(rest, at: position, skipZeros: true)
                } else {
                    count = Int(min(UInt64(rest.count), boundary - position))
                    try encode(UnsafeRawBufferPointer(rebasing: rest.prefix(count)), at: position)
                }
            }
            position += UInt64(count)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(count))
        }
    }

    /// Where the staged part of the stream starts: the chunk holding the skip frontier, or else
    /// the media's last chunk. libewf writes the closing sections (hash, digest, error list)
    /// with the last chunk, so that chunk waits in the staging file until `complete` has set
    /// the digests and the errors. The file is made when the stream reaches that chunk, taking
    /// the chunk assembled so far.
    func stagingStart(at position: UInt64) throws(AcquisitionError) -> UInt64 {
        if let staging { return staging.start }
        var start = (totalSize - 1) / chunkSize * chunkSize
        if let skip = frontier?.offset, skip < totalSize { start = min(start, skip / chunkSize * chunkSize) }
        guard start <= position else { return start }
        guard start == written else {
            throw AcquisitionError(
                .invalidRequest, path: paths[0], offset: start,
                detail: "the skip frontier falls in a chunk libewf already holds (bytes up to \(written))")
        }
        // Held apart at a skip, the stream's end reaches the E01 only once complete, and the job
        // then reads the whole E01 back: sections read now would be read twice.
        if let skip = frontier?.offset, skip < totalSize {
            sectionReadBack?.stop()
            sectionReadBack = nil
        }
        let file = try StagingFile(creating: stagingPath, start: start)
        if pendingCount > 0 {
            try file.write(UnsafeRawBufferPointer(start: pending, count: pendingCount), at: start, skipZeros: true)
            pendingCount = 0
        }
        staging = file
        stagedBefore = start
        return start
    }

    /// Hands whole chunks to libewf, a batch at a time; a partial chunk waits in `pending`
    /// unless it is the media's last.
    func encode(_ bytes: UnsafeRawBufferPointer, at position: UInt64) throws(AcquisitionError) {
        precondition(position == written + UInt64(pendingCount), "E01 chunks are written in stream order")
        var rest = bytes
        if pendingCount > 0 {
            let take = min(Int(chunkSize) - pendingCount, rest.count)
            (pending + pendingCount).copyMemory(from: rest.baseAddress!, byteCount: take)
            pendingCount += take
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
            if pendingCount == Int(chunkSize) || written + UInt64(pendingCount) == totalSize {
                try writeChunks([UnsafeRawBufferPointer(start: pending, count: pendingCount)])
                pendingCount = 0
            }
        }
        while !rest.isEmpty {
            let reachesEnd = written + UInt64(rest.count) == totalSize
            let whole = rest.count / Int(chunkSize)
            let count = min(encoder.capacity, whole + (reachesEnd && rest.count % Int(chunkSize) > 0 ? 1 : 0))
            guard count > 0 else { break }
            let base = rest.baseAddress!, size = Int(chunkSize), available = rest.count
            try writeChunks(
                (0..<count).map { UnsafeRawBufferPointer(start: base + $0 * size, count: min(size, available - $0 * size)) })
            let used = min(count * size, available)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(used))
        }
        if !rest.isEmpty {
            pending.copyMemory(from: rest.baseAddress!, byteCount: rest.count)
            pendingCount = rest.count
        }
    }

    /// Compresses the chunks in parallel, then writes them in order.
    func writeChunks(_ chunks: [UnsafeRawBufferPointer]) throws(AcquisitionError) {
        guard let handle else { throw AcquisitionError(.invalidRequest, path: paths[0], detail: "the E01 is not open for writing") }
        encoder.encode(chunks)
        let stored = encoder.chunks.prefix(chunks.count).reduce(0) { $0 + UInt64($1.storedCount) }
        try ensureSpace(for: stored, at: written)
        for index in 0..<chunks.count {
            let chunk = encoder.chunks[index]
            let slot = encoder.slot(index)
            let result: Int
            do {
                result = try handle.call("libewf_handle_write_chunk", offset: written) { handle, error in
                    libewf_handle_write_chunk(
                        handle, slot.baseAddress, chunk.storedCount, chunk.dataCount, chunk.isCompressed ? 1 : 0,
                        chunk.isCompressed ? nil : encoder.checksumPointer(index), chunk.checksum, chunk.isCompressed ? 0 : 1, error)
                }
            } catch {
                throw storeFullOr(error)
            }
            guard result > 0 else {
                throw AcquisitionError(.writeFailed, path: paths[0], offset: written, detail: "libewf took no more chunks")
            }
            written += UInt64(chunk.dataCount)
        }
        // The batch with the last chunk also ends the image: that is read back once complete.
        if written < totalSize { try sectionReadBack?.collect() }
    }

    public func finish() throws(AcquisitionError) { try sync() }

    /// Reads back each chunk section as libewf closes it; the rest once complete (`readBackRest`).
    /// Only for an image this writer starts: a resumed one is read back whole.
    public func readBackWhileWriting(check: WindowCheck) -> Bool {
        if handle != nil, written == 0, staging == nil {
            sectionReadBack = E01SectionReadBack(directory: directory, baseName: baseName, check: check)
        }
        return false
    }

    public func readBackRest() throws(AcquisitionError) -> ReadBackRest? {
        guard let sectionReadBack else { return nil }
        guard completion != nil else {
            throw AcquisitionError(.invalidRequest, path: paths[0], detail: "the E01 is read back once complete()")
        }
        return try sectionReadBack.rest(paths: paths)
    }

    /// Makes what was written durable (libewf itself never syncs), so a journal may name it.
    public func checkpoint() throws(AcquisitionError) -> Data? {
        try sync()
        return nil
    }

    func sync() throws(AcquisitionError) {
        let segments = existingSegments()
        if !segments.isEmpty {
            fileNames = segments
            for index in min(settledSegments, segments.count - 1)..<segments.count {
                try Self.syncFile("\(directory)/\(segments[index])", dropCache: false)
            }
            settledSegments = segments.count - 1
        }
        try staging?.sync()
        try Self.syncDirectory(directory)
    }

    // MARK: Store space and durability

    /// Bytes written between two looks at the store's free space.

    /// Stops before the store is so full that the records, the journal or the catalog could not be written.
    func ensureSpace(for count: UInt64, at offset: UInt64) throws(AcquisitionError) {
        try reserve.check(count, at: offset, path: paths[0], remaining: totalSize - offset) { freeSpace() }
    }

    func freeSpace() -> UInt64 { StoreWrites.freeBytes(path: directory) ?? .max }

    /// A libewf write that failed on a full store is `store full` (libewf reports only "unable to write").
    func storeFullOr(_ error: AcquisitionError) -> AcquisitionError {
        guard freeSpace() < max(keepFree, 1 << 20) + chunkSize * 4 else { return error }
        return AcquisitionError(
            .storeFull, path: error.path, offset: error.offset,
            detail: "the store has no room left for the E01 (\(error.detail ?? "")); free space and the job resumes")
    }

    /// libewf never syncs: each segment file is flushed by path (Linux flushes a file's pages
    /// whichever descriptor asks); `dropCache` then evicts it, so a read-back reads the store.
    static func syncFile(_ path: String, dropCache: Bool) throws(AcquisitionError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw AcquisitionError(.syncFailed, path: path, errno: errno, detail: "opening an E01 segment file to flush it")
        }
        defer { close(descriptor) }
        guard fdatasync(descriptor) == 0 else {
            let error = errno
            throw AcquisitionError(
                error == ENOSPC || error == EDQUOT ? .storeFull : .syncFailed, path: path, errno: error,
                detail: "fdatasync of an E01 segment file")
        }
        if dropCache { StoreWrites.dropFromCache(descriptor: descriptor) }
    }

    static func syncDirectory(_ path: String) throws(AcquisitionError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw AcquisitionError(.syncFailed, path: path, errno: errno, detail: "opening the image directory to flush it")
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw AcquisitionError(.syncFailed, path: path, errno: errno, detail: "fsync of the image directory")
        }
    }
}
