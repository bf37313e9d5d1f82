// SPDX-License-Identifier: Apache-2.0
import Cryptography
import ExpertWitness
import Foundation
import Imaging
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Exhibit's own E01 parser (the job's read-back), on images libewf wrote (Exhibit's and
/// `ewfacquire`'s), and on images altered the way a hostile carrier would: every checksum made
/// right again, so that only the parser's bounds stand between the file and the reader's memory.
@Suite(.serialized, .enabled(if: E01Judges.ewfTools, "needs ewf-tools (ewfacquire, ewfverify): scripts/install-deps"))
struct E01DecoderTests {
    @Test("ewfacquire's segmented E01 decodes to the source, as libewf reads it")
    func readsWhatEwfacquireWrites() throws {
        let scratch = try ScratchDirectory("e01-decoder-ewfacquire")
        let size = (6 << 20) + 3 * 4096
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: size, seed: "decoder")
        let acquire = try Subprocess.run(["ewfacquire", "-q", "-u", "-c", "fast", "-S", "1048576", "-t", scratch.file("T"), source])
        try #require(acquire.succeeded, "ewfacquire: \(acquire)")
        let paths = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("T.E") }.sorted()
            .map(scratch.file)
        #expect(paths.count > 3)
        #expect(try E01Judges.readerSHA256(paths) == (try StockChecks.sum("sha256sum", source)))
    }

    @Test("a segment file cut short after the layout was read (its descriptor released) is refused when opened again, named")
    func aSegmentFileCutShortAfterOpeningIsRefused() throws {
        let scratch = try ScratchDirectory("e01-decoder-cut")
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: 6 << 20, seed: "cut")
        let acquire = try Subprocess.run(["ewfacquire", "-q", "-u", "-c", "fast", "-S", "1048576", "-t", scratch.file("T"), source])
        try #require(acquire.succeeded, "ewfacquire: \(acquire)")
        let paths = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("T.E") }.sorted()
            .map(scratch.file)
        try #require(paths.count > 3)
        let decoder = try E01Decoder(paths: paths)
        // Its last 100 bytes (the end of its table and its "next" section) gone while no descriptor held it open.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: paths[2])[.size] as? Int)
        try #require(truncate(paths[2], off_t(size - 100)) == 0)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 6 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        #expect {
            _ = try decoder.fill(buffer, count: 6 << 20, at: 0)
        } throws: { error in
            (error as? AcquisitionError)?.path == paths[2] && "\(error)".contains("it is now \(size - 100) bytes (\(size) when first read)")
        }
    }

    @Test(
        "decoding with hashingFiles gives each segment file's SHA-256 as sha256sum does, in whole buffers and in buffers smaller than a chunk",
        arguments: [PipelineConfiguration(), PipelineConfiguration(bufferSize: 3 * 4096, bufferCount: 2)])
    func hashesTheFilesItReads(buffers: PipelineConfiguration) throws {
        let scratch = try ScratchDirectory("e01-decoder-file-hashes")
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: (6 << 20) + 4096, seed: "file-hashes")
        let acquire = try Subprocess.run(["ewfacquire", "-q", "-u", "-c", "fast", "-S", "1048576", "-t", scratch.file("T"), source])
        try #require(acquire.succeeded, "ewfacquire: \(acquire)")
        let paths = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("T.E") }.sorted()
            .map(scratch.file)
        let decoder = try E01Decoder(paths: paths, hashingFiles: true)
        let stream = StreamDigester(.sha256)
        _ = try Pipeline.run(decoder, into: [stream], configuration: buffers)
        #expect(stream.result?.hex == (try StockChecks.sum("sha256sum", source)))
        let hashed = try #require(try decoder.fileSHA256()).map(\.hex)
        #expect(hashed == (try paths.map { try StockChecks.sum("sha256sum", $0) }))
        #expect(try E01Decoder(paths: paths).fileSHA256() == nil, "no hashing unless asked")
    }

    @Test("a stored byte that differs from the stream read is found by the window check once the E01 is complete", arguments: [nil, UInt64(5 << 20) + 77])
    func windowCheckAfterCompletion(flippedAt flipped: UInt64?) throws {
        let scratch = try ScratchDirectory("e01-decoder-windows")
        let size = UInt64(8 << 20)
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: Int(size), seed: "windows")
        let windowSize = UInt64(1 << 20)
        let check = WindowCheck(windowSize: windowSize, totalSize: size)
        let image = E01Image(metadata: E01Tests.metadata, compression: .fast)
        let writer = try image.writer(
            directory: scratch.path, baseName: "E7", totalSize: size, keepFree: 0, resumingAt: nil, frontier: SkipFrontier())
        let stored: any StreamConsumer = flipped.map { ImagingTests.OneByteOff(writer, at: $0) } ?? writer
        _ = try Pipeline.run(try ImageFiles(paths: [source]), into: [WindowTagger(check), stored])
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        try writer.complete(ImageCompletion(digests: E01Judges.md5AndSHA1(of: data), unreadable: []))
        #expect(check.compared == 0)

        _ = try Pipeline.run(try image.reader(paths: writer.paths), into: [WindowTagger(check, side: .stored)])
        #expect(check.compared == check.windowCount && check.windowCount == 8)
        #expect(check.firstMismatch == flipped.map { Int($0 / windowSize) })
    }

    /// How an image is cut for `sectionsAreReadBackWhileWriting`: 32 KiB chunks in 1 MiB segment
    /// files (a section closes with each file), or 512-byte chunks in one file, where libewf
    /// closes a section every 65,534 chunks (32 MiB).
    enum SectionCut: CaseIterable, Sendable { case segments, sectionsInOneFile }

    @Test(
        "chunk sections libewf closes are read back while the stream goes on, the rest once complete; file hashes as sha256sum's",
        arguments: SectionCut.allCases, [false, true])
    func sectionsAreReadBackWhileWriting(cut: SectionCut, flipNearTheEnd: Bool) throws {
        let scratch = try ScratchDirectory("e01-sections")
        let size = UInt64(cut == .segments ? 6 << 20 : 40 << 20)
        // In the section libewf closes only with the last chunk: found once complete (a flip in a
        // section closed during the pass stops the pass, `aMismatchFoundDuringThePassStopsIt`).
        let flipped = flipNearTheEnd ? size - 1000 : nil
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: Int(size), seed: "sections")
        let windowSize = UInt64(1 << 20)
        let check = WindowCheck(windowSize: windowSize, totalSize: size)
        let image =
            cut == .segments
            ? E01Image(metadata: E01Tests.metadata, compression: .fast, segmentSize: 1 << 20)
            : E01Image(metadata: E01Tests.metadata, compression: .fast, chunkSize: 512)
        let writer = try image.writer(
            directory: scratch.path, baseName: "E8", totalSize: size, keepFree: 0, resumingAt: nil, frontier: SkipFrontier())
        #expect(!writer.readBackWhileWriting(check: check), "the section open at the end is read once complete")
        let stored: any StreamConsumer = flipped.map { ImagingTests.OneByteOff(writer, at: $0) } ?? writer
        _ = try Pipeline.run(try ImageFiles(paths: [source]), into: [WindowTagger(check), stored])
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        try writer.complete(ImageCompletion(digests: E01Judges.md5AndSHA1(of: data), unreadable: []))

        let rest = try #require(try writer.readBackRest())
        // Read back before completion: every window inside the closed sections, compared already.
        if cut == .sectionsInOneFile { #expect(rest.start == 65534 * 512) }
        #expect(rest.start >= 3 * windowSize && rest.start < size, "\(rest.start)")
        #expect(check.compared == Int(rest.start / windowSize))
        #expect(check.firstMismatch == nil)
        _ = try Pipeline.run(rest.source, into: [rest.consumer], startingAt: rest.start)
        #expect(check.compared == check.windowCount)
        #expect(check.firstMismatch == flipped.map { Int($0 / windowSize) })
        let hashed = try #require(try (rest.source as? any FileHashingStreamSource)?.fileSHA256()).map(\.hex)
        #expect(hashed == (try writer.paths.map { try StockChecks.sum("sha256sum", $0) }))
        #expect(cut == .sectionsInOneFile ? writer.paths.count == 1 : writer.paths.count > 3)
    }

    @Test("a window of a closed chunk section that the store gives back otherwise stops the pass, named")
    func aMismatchFoundDuringThePassStopsIt() throws {
        let scratch = try ScratchDirectory("e01-sections-early")
        let (source, check, writer) = try Self.segmentedWriter(in: scratch, baseName: "E4", frontier: SkipFrontier())
        // The source holds its last 2 MiB until the read-back has found the flipped byte in window 0.
        let gated = ImagingTests.GatedSource(try ImageFiles(paths: [source]), at: 4 << 20) { check.firstMismatch != nil }
        #expect {
            _ = try Pipeline.run(gated, into: [WindowTagger(check), ImagingTests.OneByteOff(writer, at: 300_001)])
        } throws: { error in
            let error = error as? AcquisitionError
            return error?.code == .verifyMismatch && error?.offset == 0 && error?.detail?.contains("stream bytes 0-1048575") == true
        }
    }

    @Test("a chunk section read back during the pass whose table is changed before the rest is read: refused, naming the table")
    func aTableChangedAfterItsSectionWasReadBackIsRefused() throws {
        let scratch = try ScratchDirectory("e01-sections-changed")
        let size = UInt64(40 << 20)
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: Int(size), seed: "changed")
        let check = WindowCheck(windowSize: 1 << 20, totalSize: size)
        // 512-byte chunks in one file: libewf closes the first section at 65,534 chunks (31 whole windows).
        let image = E01Image(metadata: E01Tests.metadata, compression: .fast, chunkSize: 512)
        let writer = try image.writer(
            directory: scratch.path, baseName: "E7", totalSize: size, keepFree: 0, resumingAt: nil, frontier: SkipFrontier())
        _ = writer.readBackWhileWriting(check: check)
        _ = try Pipeline.run(try ImageFiles(paths: [source]), into: [WindowTagger(check), writer])
        let deadline = Date().addingTimeInterval(30)
        while check.compared < 31, Date() < deadline { usleep(10_000) }
        try #require(check.compared >= 31, "the first section was read back during the pass")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        try writer.complete(ImageCompletion(digests: E01Judges.md5AndSHA1(of: data), unreadable: []))
        // The first table's first entry now says its chunk is stored 16 bytes further on, its checksum made right.
        let e01 = writer.paths[0]
        let table = try #require(try Self.sections(e01).first { $0.type == "table" })
        let entries = table.offset + 76 + 24
        let count = Int(try Self.littleEndian32(e01, at: table.offset + 76))
        try Self.patch(e01, at: entries) { $0[0] &+= 16 }
        try Self.rechecksum(e01, over: entries, count: count * 4)
        #expect {
            _ = try writer.readBackRest()
        } throws: { error in
            let error = error as? AcquisitionError
            return error?.code == .verifyMismatch && error?.offset == UInt64(entries)
                && error?.detail?.contains("chunk section 1 (chunks from 0)") == true && error?.detail?.contains("its table changed since") == true
        }
    }

    @Test(
        "an E01 whose stream is held apart at a skipped area is read back whole once complete, not in sections during the pass",
        arguments: [UInt64(3 << 20), UInt64(6 << 20) - 100])
    func aSkipEndsTheSectionReadBack(skippedAt skip: UInt64) throws {
        let scratch = try ScratchDirectory("e01-sections-skip")
        // As the reader leaves it after skipping an unreadable area there (here nothing is unreadable);
        // the second in the last chunk, which is staged anyway.
        let (source, check, writer) = try Self.segmentedWriter(in: scratch, baseName: "E6", frontier: SkipFrontier(skip))
        _ = try Pipeline.run(try ImageFiles(paths: [source]), into: [WindowTagger(check), writer])
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        try writer.complete(ImageCompletion(digests: E01Judges.md5AndSHA1(of: data), unreadable: []))
        #expect(try writer.readBackRest() == nil, "the job reads the whole E01")
        #expect(try E01Judges.readerSHA256(writer.paths) == (try StockChecks.sum("sha256sum", source)))
    }

    @Test("an E01 writer dropped before completion (a failed or cancelled job) ends its section read-back and closes every file")
    func aWriterDroppedUnfinishedEndsItsSectionReadBack() throws {
        let scratch = try ScratchDirectory("e01-sections-dropped")
        let size = UInt64(6 << 20)
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: Int(size), seed: "dropped")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        do {
            let image = E01Image(metadata: E01Tests.metadata, compression: .fast, segmentSize: 1 << 20)
            let writer = try image.writer(
                directory: scratch.path, baseName: "E9", totalSize: size, keepFree: 0, resumingAt: nil, frontier: SkipFrontier())
            _ = writer.readBackWhileWriting(check: WindowCheck(windowSize: 1 << 20, totalSize: size))
            try data.prefix(4 << 20).withUnsafeBytes { bytes in try writer.consume(bytes, at: 0) }
            #expect(OpenFiles.wait(under: scratch.path) { $0.count > 2 }.count > 2, "libewf's files and the read-back's")
        }
        let left = OpenFiles.wait(under: scratch.path) { $0.isEmpty }
        #expect(left.isEmpty, "still open after the writer was dropped: \(left)")
    }

    @Test("a flipped byte in an uncompressed chunk: the decoder names the chunk ewfverify names")
    func flippedUncompressedChunk() throws {
        let (scratch, e01, _) = try Self.image("e01-decoder-flip", compression: .none)
        let bytes = try #require(FileManager.default.attributesOfItem(atPath: e01)[.size] as? Int)
        try Self.patch(e01, at: bytes / 2) { $0[0] ^= 0x5A }
        let verify = try Subprocess.run(["ewfverify", "-q", e01])
        #expect(!verify.succeeded)
        let reported = try #require(E01Judges.damagedSectors(verify.stdout), "ewfverify: \(verify.stdout)")
        let error = try #require(Self.decodingError([e01]))
        #expect(error.code == .verifyMismatch)
        #expect(
            error.detail?.contains("media bytes \(reported.first * 512) to \(reported.last * 512 + 511), is damaged") == true,
            "\(error); ewfverify: \(reported)")
        #expect(error.detail?.contains("checksum does not match") == true)
        _ = scratch
    }

    @Test("a table entry pointing outside its sectors section, checksum made right: refused before any read there")
    func tableEntryOutsideItsSection() throws {
        let (scratch, e01, _) = try Self.image("e01-decoder-table", compression: .fast)
        let table = try #require(try Self.sections(e01).first { $0.type == "table" })
        let entries = table.offset + 76 + 24
        let count = Int(try Self.littleEndian32(e01, at: table.offset + 76))
        try Self.patch(e01, at: entries, count: 4) { bytes in
            bytes[0] = 0xFF; bytes[1] = 0xFF; bytes[2] = 0xFF; bytes[3] = 0x7F | (bytes[3] & 0x80)
        }
        try Self.rechecksum(e01, over: entries, count: count * 4)
        let error = try #require(Self.decodingError([e01]))
        #expect(error.code == .inspectFailed)
        #expect(error.detail?.contains("chunk 0 is said to be stored at bytes") == true, "\(error)")
        #expect(error.offset == UInt64(entries))
        _ = scratch
    }

    @Test("a section whose size and next offset disagree (two images in one file), checksum made right: refused")
    func sizeAndNextOffsetDisagree() throws {
        let (scratch, e01, _) = try Self.image("e01-decoder-dual", compression: .fast)
        let sectors = try #require(try Self.sections(e01).first { $0.type == "sectors" })
        try Self.patch(e01, at: sectors.offset + 24, count: 8) { $0[0] = $0[0] &- 76 }
        try Self.rechecksum(e01, over: sectors.offset, count: 72)
        let error = try #require(Self.decodingError([e01]))
        #expect(error.code == .inspectFailed)
        #expect(error.detail?.contains("size") == true && error.detail?.contains("disagree") == true, "\(error)")
        #expect(error.offset == UInt64(sectors.offset))
        _ = scratch
    }

    @Test("a volume section that claims one chunk more than its tables hold, checksum made right: refused")
    func volumeThatDoesNotAddUp() throws {
        let (scratch, e01, _) = try Self.image("e01-decoder-volume", compression: .fast)
        let volume = try #require(try Self.sections(e01).first { $0.type == "volume" })
        try Self.patch(e01, at: volume.offset + 76 + 4, count: 4) { $0[0] = $0[0] &+ 1 }
        try Self.rechecksum(e01, over: volume.offset + 76, count: 1048)
        let error = try #require(Self.decodingError([e01]))
        #expect(error.code == .inspectFailed)
        #expect(error.detail?.contains("does not add up") == true, "\(error)")
        _ = scratch
    }

    @Test("numbers made to overflow, checksums made right: a sector count near 2^64, a table base offset near 2^64: refused, no trap")
    func numbersMadeToOverflow() throws {
        let (scratch, e01, _) = try Self.image("e01-decoder-overflow", compression: .fast)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: e01))
        let volume = try #require(try Self.sections(e01).first { $0.type == "volume" })
        try Self.patch(e01, at: volume.offset + 76 + 16, count: 8) { $0 = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] }
        try Self.rechecksum(e01, over: volume.offset + 76, count: 1048)
        let sectors = try #require(Self.decodingError([e01]))
        #expect(sectors.code == .inspectFailed && sectors.detail?.contains("does not add up") == true, "\(sectors)")

        try pristine.write(to: URL(fileURLWithPath: e01))
        let table = try #require(try Self.sections(e01).first { $0.type == "table" })
        try Self.patch(e01, at: table.offset + 76 + 8, count: 8) { $0 = [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] }
        try Self.rechecksum(e01, over: table.offset + 76, count: 20)
        let base = try #require(Self.decodingError([e01]))
        #expect(base.code == .inspectFailed && base.detail?.contains("base offset") == true, "\(base)")
        _ = scratch
    }

    @Test("a truncated segment file and a file that is no E01: clear errors naming the file, no read past its end")
    func truncatedAndForeignFiles() throws {
        let (scratch, e01, _) = try Self.image("e01-decoder-truncated", compression: .fast)
        let bytes = try #require(FileManager.default.attributesOfItem(atPath: e01)[.size] as? Int)
        #expect(truncate(e01, off_t(bytes / 2)) == 0)
        let truncated = try #require(Self.decodingError([e01]))
        #expect(truncated.code == .inspectFailed && truncated.path == e01, "\(truncated)")

        let foreign = try E01Judges.random(at: scratch.file("foreign.E01"), size: 1 << 20, seed: "foreign")
        let error = try #require(Self.decodingError([foreign]))
        #expect(error.code == .inspectFailed && error.path == foreign)
        #expect(error.detail?.contains("file header") == true, "\(error)")
    }

    @Test("a header section that inflates past 1 MiB (case metadata is a few hundred bytes): refused before libewf inflates it")
    func aHeaderSectionInflatingPastItsBoundIsRefused() throws {
        let scratch = try ScratchDirectory("e01-decoder-header")
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: 1 << 20, seed: "header")
        // Notes of 3 MiB: libewf stores them compressed in a few KiB, its header2 (UTF-16) inflates to 6 MiB.
        var metadata = E01Tests.metadata
        metadata.notes = String(repeating: "A", count: 3 << 20)
        let run = try E01Judges.write(source: source, image: E01Image(metadata: metadata), directory: scratch.path, name: "E7")
        #expect {
            _ = try E01Reader(paths: run.writer.paths)
        } throws: { error in
            let error = error as? AcquisitionError
            return error?.code == .inspectFailed && error?.path == run.writer.paths[0]
                && error?.detail?.contains("section that is not a zlib stream of at most 1048576 bytes of text") == true
        }
    }

    // MARK: Helpers

    /// A 6 MiB half-random, half-zero source and a new E01 writer for it in 1 MiB segments, reading
    /// back its sections into a check of 1 MiB windows.
    static func segmentedWriter(
        in scratch: ScratchDirectory, baseName: String, frontier: SkipFrontier
    ) throws -> (source: String, check: WindowCheck, writer: any ImageWriter) {
        let size = UInt64(6 << 20)
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: Int(size), seed: baseName)
        let check = WindowCheck(windowSize: 1 << 20, totalSize: size)
        let image = E01Image(metadata: E01Tests.metadata, compression: .fast, segmentSize: 1 << 20)
        let writer = try image.writer(
            directory: scratch.path, baseName: baseName, totalSize: size, keepFree: 0, resumingAt: nil, frontier: frontier)
        _ = writer.readBackWhileWriting(check: check)
        return (source, check, writer)
    }

    /// A 4 MiB half random, half zero source written as one E01.
    static func image(_ name: String, compression: E01Compression) throws -> (ScratchDirectory, String, String) {
        let scratch = try ScratchDirectory(name)
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: 4 << 20, seed: name)
        let image = E01Image(metadata: E01Tests.metadata, compression: compression)
        _ = try E01Judges.write(source: source, image: image, directory: scratch.path, name: "E7")
        let e01 = scratch.file("E7.E01")
        #expect(try E01Judges.decoderSHA256([e01]) == (try StockChecks.sum("sha256sum", source)), "the untouched image decodes")
        return (scratch, e01, source)
    }

    /// The error opening and decoding the whole stream gives, or nil when it decodes.
    static func decodingError(_ paths: [String]) -> AcquisitionError? {
        do throws(AcquisitionError) {
            let decoder = try E01Decoder(paths: paths)
            _ = try Pipeline.run(decoder, into: [StreamDigester(.sha256)])
            return nil
        } catch {
            return error
        }
    }

    struct Section {
        let type: String
        let offset: Int
    }

    /// The section chain, followed by next offsets as written (no checks: the image is ours).
    static func sections(_ path: String) throws -> [Section] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var offset = 13
        var found: [Section] = []
        while offset + 76 <= data.count {
            let type = String(decoding: data[offset..<offset + 16].prefix { $0 != 0 }, as: UTF8.self)
            found.append(Section(type: type, offset: offset))
            let next = data[offset + 16..<offset + 24].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            if next == offset || type == "done" { break }
            offset = next
        }
        return found
    }

    static func patch(_ path: String, at offset: Int, count: Int = 1, _ change: (inout [UInt8]) -> Void) throws {
        let file = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? file.close() }
        try file.seek(toOffset: UInt64(offset))
        var bytes = [UInt8](try #require(try file.read(upToCount: count)))
        change(&bytes)
        try file.seek(toOffset: UInt64(offset))
        try file.write(contentsOf: bytes)
    }

    /// Writes the Adler-32 of `count` bytes at `offset` right after them, as EWF keeps its checksums.
    static func rechecksum(_ path: String, over offset: Int, count: Int) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var low: UInt32 = 1, high: UInt32 = 0
        for byte in data[offset..<offset + count] {
            low = (low + UInt32(byte)) % 65521
            high = (high + low) % 65521
        }
        let checksum = high << 16 | low
        try patch(path, at: offset + count, count: 4) { bytes in
            for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: checksum >> (8 * index)) }
        }
    }

    static func littleEndian32(_ path: String, at offset: Int) throws -> UInt32 {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data[offset..<offset + 4].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) }
    }
}
