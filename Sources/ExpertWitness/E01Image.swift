// SPDX-License-Identifier: Apache-2.0
import CEWF
import Cryptography
import Foundation
import HumanText
import Imaging

/// How the chunks of an E01 are compressed: the choice the command line and the daemon name
/// (`ImageFormatChoice.Compression`). `fast` is ISA-L's level 2, the counterpart of
/// `ewfacquire -c fast` (zlib level 1): smaller output at 5.5× the speed per core. `best` is
/// libdeflate's level 9, the counterpart of `ewfacquire -c best`: smaller output at 2.3× its
/// speed (level 12 saves 2% more for 2.3× the time). Measured in `ChunkDeflater`. `none` stores
/// every chunk as it is (EWF allows it; the file is the media size plus 0.04%).
public typealias E01Compression = ImageFormatChoice.Compression

extension E01Compression {
    /// The record's words for it: what compressed the chunks (`ChunkDeflater`).
    var recordDescription: String {
        switch self {
        case .none: "none (every chunk stored as read, with its Adler-32)"
        case .fast: "fast (zlib streams from ISA-L level 2)"
        case .best: "best (zlib streams from libdeflate level 9)"
        }
    }

    /// What the E01 header records (ewfinfo's "Compression level").
    var libewfLevel: Int8 {
        switch self {
        case .none: Int8(LIBEWF_COMPRESSION_NONE.rawValue)
        case .fast: Int8(LIBEWF_COMPRESSION_FAST.rawValue)
        case .best: Int8(LIBEWF_COMPRESSION_BEST.rawValue)
        }
    }
}

/// What an E01's header says of the acquisition, set before the first chunk is written.
public struct E01Metadata: Sendable, Equatable {
    public enum MediaType: Sendable, Equatable {
        case fixed, removable, optical, memory

        var libewfValue: UInt8 {
            switch self {
            case .fixed: UInt8(LIBEWF_MEDIA_TYPE_FIXED.rawValue)
            case .removable: UInt8(LIBEWF_MEDIA_TYPE_REMOVABLE.rawValue)
            case .optical: UInt8(LIBEWF_MEDIA_TYPE_OPTICAL.rawValue)
            case .memory: UInt8(LIBEWF_MEDIA_TYPE_MEMORY.rawValue)
            }
        }
    }

    /// A hardware write blocker EWF has a media flag for.
    public enum WriteBlocker: Sendable, Equatable { case fastbloc, tableau }

    public var caseNumber: String
    public var evidenceNumber: String
    public var examiner: String
    public var description: String
    public var notes: String
    /// When the acquisition started. libewf 20140813 writes the header's date itself, from the
    /// clock when the first chunk is written (a value set by hand would be copied verbatim into
    /// both the `header` and the `header2` section, which want different formats), so this is
    /// recorded in `notes` as ISO 8601 UTC, which every reader shows as it is.
    public var acquisitionDate: Date
    /// `acquiry_software_version` (EWF keeps no separate software name): "Exhibit 0.1.0".
    public var software: String
    public var model: String?
    public var serialNumber: String?
    public var mediaType: MediaType
    /// A physical device, not a partition or a logical volume.
    public var isPhysical: Bool
    public var writeBlocker: WriteBlocker?

    public init(
        caseNumber: String, evidenceNumber: String, examiner: String, description: String = "", notes: String = "",
        acquisitionDate: Date, software: String, model: String? = nil, serialNumber: String? = nil,
        mediaType: MediaType = .fixed, isPhysical: Bool = true, writeBlocker: WriteBlocker? = nil
    ) {
        self.caseNumber = caseNumber
        self.evidenceNumber = evidenceNumber
        self.examiner = examiner
        self.description = description
        self.notes = notes
        self.acquisitionDate = acquisitionDate
        self.software = software
        self.model = model
        self.serialNumber = serialNumber
        self.mediaType = mediaType
        self.isPhysical = isPhysical
        self.writeBlocker = writeBlocker
    }

    var mediaFlags: UInt8 {
        var flags: UInt8 = isPhysical ? UInt8(LIBEWF_MEDIA_FLAG_PHYSICAL.rawValue) : 0
        switch writeBlocker {
        case .fastbloc: flags |= UInt8(LIBEWF_MEDIA_FLAG_FASTBLOC.rawValue)
        case .tableau: flags |= UInt8(LIBEWF_MEDIA_FLAG_TABLEAU.rawValue)
        case nil: break
        }
        return flags
    }

    /// The notes as stored: the caller's, then the acquisition start in UTC.
    var storedNotes: String {
        let started = "Acquisition started \(UTCTimestamp.seconds(acquisitionDate))"
        return notes.isEmpty ? started : "\(notes) | \(started)"
    }
}

/// The Expert Witness (E01) image, EnCase 6 format, written and read through libewf: segment
/// files `NAME.E01`, `NAME.E02` … `NAME.E99`, `NAME.EAA` …, each at most `segmentSize` bytes.
/// A stored chunk that does not give back its media bytes, as both E01 readers report it (the
/// decoder with where the chunk is stored): the byte range a hub analyst compares with ewfverify's.
func damagedChunk(path: String, media start: UInt64, count: UInt64, storedAt: UInt64?, why: String) -> AcquisitionError {
    AcquisitionError(
        .verifyMismatch, path: path, offset: storedAt,
        detail: "the E01 chunk \(storedAt == nil ? "" : "stored there, ")holding media bytes \(start) to \(start + count - 1), is damaged: \(why)")
}

public struct E01Image: ImageFormat {
    public let segmentSize: UInt64?
    public let compression: E01Compression
    /// The media's logical sector size: 512 or 4096 (the E01 counts sectors in it).
    public let bytesPerSector: UInt32
    /// 32 KiB, EnCase's chunk (64 sectors of 512 bytes, 8 of 4096).
    public let chunkSize: UInt32
    public let metadata: E01Metadata

    public var name: String { "e01" }
    /// Recovered bytes cannot go into a written chunk; a writer given the skip frontier keeps the
    /// stream from there on in a staging file that `patch` writes to.
    public var patchableInPlace: Bool { false }
    public var storedDigests: [DigestAlgorithm] { [.md5, .sha1] }
    public var recordDetail: String? {
        "EnCase 6 (EWF-E01) written through libewf 20140813; compression \(compression.recordDescription), a chunk kept "
            + "uncompressed when that is not smaller; \(chunkSize)-byte chunks of \(bytesPerSector)-byte sectors"
    }

    public init(
        metadata: E01Metadata, compression: E01Compression = .fast, segmentSize: UInt64? = nil, bytesPerSector: UInt32 = 512,
        chunkSize: UInt32 = 32 << 10
    ) {
        self.metadata = metadata
        self.compression = compression
        self.segmentSize = segmentSize
        self.bytesPerSector = bytesPerSector
        self.chunkSize = chunkSize
    }

    var sectorsPerChunk: UInt32 { chunkSize / bytesPerSector }

    /// The most segment files a stream of `totalSize` bytes can fill: every chunk stored
    /// uncompressed with its checksum and two 4-byte table entries, each segment holding what
    /// fits in its size less one chunk and 64 KiB (libewf keeps a chunk's room free at the end
    /// of a segment, and headers, volume, hash, digest and error sections take a few KiB).
    func largestSegmentCount(totalSize: UInt64) -> UInt64 {
        guard let segmentSize else { return 1 }
        let room = segmentSize > segmentReserve ? segmentSize - segmentReserve : 0
        return max(1, ImageSegmentation.pieces(chunkCount(totalSize), of: max(1, room / largestStoredChunk)))
    }

    /// The most segment files written, and the smallest segment size that keeps an incompressible
    /// stream of `totalSize` bytes within them (the inverse of `largestSegmentCount`).
    static let mostFiles = min(ImageSegmentation.maximumSegments, UInt64(maximumSegments))
    func smallestSegmentSize(totalSize: UInt64) -> UInt64 {
        let perSegment = ImageSegmentation.pieces(chunkCount(totalSize), of: Self.mostFiles)
        return max(ImageSegmentation.minimumSegmentSize, perSegment * largestStoredChunk + segmentReserve)
    }

    // The segment model both read: a chunk at its largest (uncompressed, its checksum, two table
    // entries), and what a segment keeps besides chunks (one chunk's room and 64 KiB of sections).
    private var largestStoredChunk: UInt64 { UInt64(chunkSize) + 12 }
    private var segmentReserve: UInt64 { UInt64(chunkSize) + 64 << 10 }
    private func chunkCount(_ totalSize: UInt64) -> UInt64 { ImageSegmentation.pieces(totalSize, of: UInt64(chunkSize)) }

    /// The stream an interrupted E01's closed chunk sections hold, decoded by Exhibit's parser,
    /// but for the last of them (nil when that leaves none): libewf resumes after its last
    /// complete section, and drops that one too when its file ends with its table (measured by
    /// a review: a resume offset of 33292288 where the walk had 37453824), so what is returned
    /// lies before where a resumed writer continues and is left as it is. Nothing here was
    /// synced after the journal's checkpoint: the caller proves every byte it takes by a digest.
    public func closedPrefix(directory: String, baseName: String) throws(AcquisitionError) -> (any StreamSource)? {
        let path = { (index: Int) in "\(directory)/\(Self.segmentName(baseName: baseName, number: index + 1))" }
        var walk = E01Layout.Walk()
        var current: SegmentFile?
        walk.advance(through: path, file: &current)
        walk.dropLastTable()
        guard let last = walk.tables.last?.segment else { return nil }
        var files: [SegmentFile] = []
        for index in 0...last {
            let file = try SegmentFile(path: path(index))
            file.release()  // opened again when its chunks are read
            files.append(file)
        }
        return try E01Decoder(layout: E01Layout(closedPartOf: walk, files: files), hashes: nil)
    }

    /// Refuses what an E01 cannot hold, naming `source`: a partial last sector, too many segments.
    public func check(totalSize: UInt64, source: String) throws(AcquisitionError) {
        guard [512, 4096].contains(bytesPerSector), chunkSize % bytesPerSector == 0, chunkSize >= bytesPerSector, chunkSize <= 1 << 20
        else {
            throw AcquisitionError(
                .invalidRequest, path: source,
                detail: "\(chunkSize)-byte chunks of \(bytesPerSector)-byte sectors: EWF wants 512 or 4096-byte "
                    + "sectors and a whole number of them per chunk (up to 1 MiB)")
        }
        guard totalSize > 0 else { throw AcquisitionError(.sourceEmpty, path: source) }
        // EWF's volume section counts whole sectors: libewf 20140813 (and ewfacquire, measured)
        // would drop a partial last sector without a word.
        guard totalSize % UInt64(bytesPerSector) == 0 else {
            throw AcquisitionError(
                .invalidRequest, path: source,
                detail: "\(totalSize) bytes is not a whole number of \(bytesPerSector)-byte sectors, and an E01 holds "
                    + "whole sectors only: its last \(totalSize % UInt64(bytesPerSector)) bytes would be lost; "
                    + "acquire this source as a raw image")
        }
        // Not ImageSegmentation's count: an E01 segment holds less than its size of the stream.
        try ImageSegmentation.checkBounds(segmentSize: segmentSize, source: source)
        let most = largestSegmentCount(totalSize: totalSize)
        guard most <= Self.mostFiles else {
            throw AcquisitionError(
                .invalidRequest, path: source,
                detail: "segments of \(segmentSize ?? 0) bytes could take \(most) E01 files for \(totalSize) bytes; at most "
                    + "\(Self.mostFiles) are written (use at least \(smallestSegmentSize(totalSize: totalSize)) bytes)")
        }
    }

    /// One file without a segment size (libewf's EnCase 6 limit is 2^63 - 1 bytes). With one, the
    /// count depends on how well the media compresses, which nothing knows before writing: this
    /// is the most files an incompressible stream fills, and the writer's `fileNames` after
    /// `complete` are the real list.
    public func fileNames(baseName: String, totalSize: UInt64) -> [String] {
        let count = Int(min(largestSegmentCount(totalSize: totalSize), UInt64(Self.maximumSegments)))
        return (1...count).map { Self.segmentName(baseName: baseName, number: $0) }
    }

    /// libewf's naming for EnCase segment files: E01 … E99, then EAA … EZZ, FAA … ZZZ.
    static func segmentName(baseName: String, number: Int) -> String {
        precondition(number >= 1 && number <= maximumSegments)
        if number <= 99 { return "\(baseName).E\(number < 10 ? "0" : "")\(number)" }
        var rest = number - 100
        let third = rest % 26
        rest /= 26
        let second = rest % 26
        rest /= 26
        let letters = [UInt8(ascii: "E") + UInt8(rest), UInt8(ascii: "A") + UInt8(second), UInt8(ascii: "A") + UInt8(third)]
        return "\(baseName).\(String(decoding: letters, as: UTF8.self))"
    }

    /// E01 … E99 and EAA … ZZZ.
    static let maximumSegments = 99 + 22 * 26 * 26

    /// The part of an unreadable range the E01's acquisition-error list can hold, in its sectors:
    /// EnCase 6's error2 entries number sectors in 32 bits, and libewf 20140813 truncates a larger
    /// number without a word (sector 2^32 + 2048 would be listed as 2048: past 2 TiB of 512-byte
    /// sectors, a false location). Sectors from 2^32 on are left out, and the record says so.
    func acquisitionErrorEntry(_ range: UnreadableRange) -> (firstSector: UInt64, sectorCount: UInt64)? {
        Self.acquisitionErrorEntry(range, bytesPerSector: bytesPerSector)
    }

    static func acquisitionErrorEntry(_ range: UnreadableRange, bytesPerSector: UInt32) -> (firstSector: UInt64, sectorCount: UInt64)? {
        let sector = UInt64(bytesPerSector)
        let first = range.byteOffset / sector
        let end = min((range.byteOffset + range.byteLength) / sector, UInt64(UInt32.max) + 1)
        return first < end ? (first, end - first) : nil
    }

    /// The acquisition-error list an E01 of `bytesPerSector`-byte sectors holds for the record's
    /// `unreadable` ranges, as bytes: what each entry can hold (`acquisitionErrorEntry`), and
    /// entries that touch as one, since libewf merges them (EnCase's list has no errno or reason,
    /// which acquisition.json keeps apart: sectors that failed one by one, then the rest of the
    /// area given up when its time ran out, are two ranges there and one run here).
    public static func acquisitionErrorList(_ unreadable: [UnreadableRange], bytesPerSector: UInt32) -> [ByteSpan] {
        let sector = UInt64(bytesPerSector)
        var runs: [ByteSpan] = []
        let entries = unreadable.compactMap { acquisitionErrorEntry($0, bytesPerSector: bytesPerSector) }.sorted { $0.firstSector < $1.firstSector }
        for entry in entries {
            let span = ByteSpan(start: entry.firstSector * sector, length: entry.sectorCount * sector)
            if let last = runs.last, last.end >= span.start {
                runs[runs.count - 1] = ByteSpan(start: last.start, length: max(last.end, span.end) - last.start)
            } else {
                runs.append(span)
            }
        }
        return runs
    }

    public func warnings(unreadable: [UnreadableRange]) -> [String] {
        let sector = UInt64(bytesPerSector)
        let left = unreadable.filter { range in acquisitionErrorEntry(range)?.sectorCount != range.byteLength / sector }
        guard let first = left.first else { return [] }
        return [
            "The E01's acquisition-error list numbers sectors in 32 bits (EnCase 6): \(left.count) unreadable range(s) from "
                + "\(bytesPerSector)-byte sector \(first.byteOffset / sector) on lie wholly or partly past sector 4294967295 "
                + "and are listed only in unreadableRanges here."
        ]
    }

    public func writer(
        directory: String, baseName: String, totalSize: UInt64, keepFree: UInt64, resumingAt offset: UInt64?,
        frontier: SkipFrontier?
    ) throws(AcquisitionError) -> any ImageWriter {
        try E01Writer(
            image: self, directory: directory, baseName: baseName, totalSize: totalSize, keepFree: keepFree,
            resumingAt: offset, frontier: frontier)
    }

    /// The job's read-back decodes the E01 with Exhibit's own parser; `exhibit verify` reads it
    /// through libewf (`E01Reader`).
    public func reader(paths: [String], hashingFiles: Bool) throws(AcquisitionError) -> any StreamSource {
        try E01Decoder(paths: paths, hashingFiles: hashingFiles)
    }
}
