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

/// The E01 writer and reader, judged by libewf's own tools (ewfverify, ewfinfo, ewfexport) and
/// The Sleuth Kit, on sources made for each test.
@Suite(.serialized, .enabled(if: E01Judges.ewfTools, "needs ewf-tools (ewfverify, ewfinfo, ewfexport): scripts/install-deps"))
struct E01Tests {
    static let metadata = E01Metadata(
        caseNumber: "KH-2026-0113", evidenceNumber: "E7", examiner: "Sok Dara", description: "Seized laptop disk",
        notes: "Behind a Tableau T8", acquisitionDate: Date(timeIntervalSince1970: 1_795_000_000), software: "Exhibit 0.1.0",
        model: "TEST DISK", serialNumber: "SN-0042")

    @Test(
        "half random, half zero, not a whole number of chunks: ewfverify, ewfinfo and ewfexport agree with the source",
        arguments: [(UInt32(512), E01Compression.fast), (4096, .best), (512, .none)])
    func halfRandomHalfZero(sectorSize: UInt32, compression: E01Compression) throws {
        let scratch = try ScratchDirectory("e01-half")
        // 24 MiB and three 4 KiB sectors: whole sectors of either size, not whole 32 KiB chunks.
        let size = (24 << 20) + 3 * 4096
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: size, seed: "half-\(sectorSize)")
        let sector = UInt64(sectorSize)
        let unreadable = [
            UnreadableRange(firstSector: 100, sectorCount: 3, errno: EIO, attemptsPerSector: 3, sectorSize: sectorSize),
            UnreadableRange(firstSector: UInt64(size) / sector - 1, sectorCount: 1, errno: EIO, attemptsPerSector: 3, sectorSize: sectorSize),
        ]
        let started = Date()
        let image = E01Image(metadata: Self.metadata, compression: compression, bytesPerSector: sectorSize)
        let run = try E01Judges.write(source: source, image: image, directory: scratch.path, name: "E7", unreadable: unreadable)
        #expect(run.writer.fileNames == ["E7.E01"])
        #expect(!FileManager.default.fileExists(atPath: scratch.file("E7.E01-staging")))
        let e01 = scratch.file("E7.E01")

        let verify = try Subprocess.run(["ewfverify", "-q", "-d", "sha1", e01])
        #expect(verify.succeeded, "ewfverify: \(verify)")
        #expect(verify.stdout.contains("MD5 hash stored in file:\t\t\(run.digests[.md5]!.hex)"))
        #expect(verify.stdout.contains("SHA1 hash stored in file:\t\t\(run.digests[.sha1]!.hex)"))

        let info = try E01Judges.ewfinfo(e01)
        #expect(info["Case number"] == "KH-2026-0113")
        #expect(info["Evidence number"] == "E7")
        #expect(info["Examiner name"] == "Sok Dara")
        #expect(info["Description"] == "Seized laptop disk")
        #expect(info["Notes"] == "Behind a Tableau T8 | Acquisition started 2026-11-18T11:06:40Z")
        #expect(info["Software version used"] == "Exhibit 0.1.0")
        #expect(info["Model"] == "TEST DISK")
        #expect(info["Serial number"] == "SN-0042")
        #expect(info["File format"] == "EnCase 6")
        #expect(info["Bytes per sector"] == "\(sectorSize)")
        #expect(info["Sectors per chunk"] == "\(32768 / sectorSize)")
        #expect(info["Media size"]?.hasSuffix("(\(size) bytes)") == true)
        #expect(info["MD5"] == run.digests[.md5]!.hex)
        #expect(info["SHA1"] == run.digests[.sha1]!.hex)
        // libewf dates the header itself when the first chunk is written.
        let date = try #require(info["Acquisition date"].flatMap(E01Judges.ctimeDate))
        #expect(abs(date.timeIntervalSince(started)) < 600, "acquisition date \(info["Acquisition date"] ?? "")")
        #expect(info.raw.contains("at sector(s): 100 - 102 number: 3"))
        #expect(info.raw.contains("at sector(s): \(UInt64(size) / sector - 1) - \(UInt64(size) / sector - 1) number: 1"))

        let sourceSHA256 = try StockChecks.sum("sha256sum", source)
        #expect(run.digests[.sha256]!.hex == sourceSHA256)
        #expect(try E01Judges.exportSHA256(e01, scratch: scratch) == sourceSHA256)
        #expect(try E01Judges.readerSHA256([e01]) == sourceSHA256)
        let stored = try E01Reader(paths: [e01])
        #expect(try stored.acquisitionErrors() == unreadable.map { ByteSpan(start: $0.byteOffset, length: $0.byteLength) })
        #expect(try stored.storedDigests() == (run.digests[.md5]!.hex, run.digests[.sha1]!.hex))
        // Backwards reads (a fresh libewf handle each time) give the source's bytes.
        let original = try Data(contentsOf: URL(fileURLWithPath: source))
        for offset in [size - 4096, 1 << 20, 5] {
            var bytes = [UInt8](repeating: 0xEE, count: 4091)
            _ = try bytes.withUnsafeMutableBytes { try stored.fill($0.baseAddress!, count: min(4091, size - offset), at: UInt64(offset)) }
            #expect(bytes.prefix(min(4091, size - offset)).elementsEqual(original[offset..<min(offset + 4091, size)]))
        }

        let bytes = try #require(FileManager.default.attributesOfItem(atPath: e01)[.size] as? UInt64)
        if compression == .none {
            #expect(bytes > UInt64(size), "stored uncompressed: \(bytes) bytes")
        } else {
            // The zero half costs a few dozen bytes per chunk.
            #expect(bytes < UInt64(size) / 2 + UInt64(size) / 50, "\(bytes) bytes for \(size)")
        }
    }

    @Test("unreadable sectors past sector 2^32 (a disk over 2 TiB): the E01 lists what its 32-bit entries hold, the record warns of the rest")
    func acquisitionErrorsPastThirtyTwoBitSectors() throws {
        let scratch = try ScratchDirectory("e01-errors-2tib")
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: 1 << 20, seed: "2tib")
        let limit = UInt64(UInt32.max) + 1
        // Two that touch (sectors that failed one by one, then the rest given up when the area's
        // time ran out), one crossing sector 2^32, one wholly past it.
        let unreadable = [
            UnreadableRange(firstSector: 7, sectorCount: 2, errno: EIO, attemptsPerSector: 3, sectorSize: 512),
            UnreadableRange(firstSector: 9, sectorCount: 3, errno: ETIME, attemptsPerSector: 1, sectorSize: 512, timeLimited: true),
            UnreadableRange(firstSector: limit - 8, sectorCount: 16, errno: EIO, attemptsPerSector: 3, sectorSize: 512),
            UnreadableRange(firstSector: limit + 2048, sectorCount: 1, errno: EIO, attemptsPerSector: 3, sectorSize: 512),
        ]
        let image = E01Image(metadata: Self.metadata, compression: .fast)
        let run = try E01Judges.write(source: source, image: image, directory: scratch.path, name: "E7", unreadable: unreadable)
        // libewf truncates to 32 bits: unclipped, the last would be listed at sector 2048. It merges what touches.
        let listed = try E01Reader(paths: run.writer.paths).acquisitionErrors()
        #expect(listed == [ByteSpan(start: 7 * 512, length: 5 * 512), ByteSpan(start: (limit - 8) * 512, length: 8 * 512)])
        // What exhibit verify expects from the record is what libewf made.
        #expect(E01Image.acquisitionErrorList(unreadable, bytesPerSector: 512) == listed)
        let warnings = image.warnings(unreadable: unreadable)
        #expect(warnings.count == 1 && warnings[0].contains("2 unreadable range(s) from 512-byte sector \(limit - 8)"), "\(warnings)")
        #expect(image.warnings(unreadable: Array(unreadable.prefix(2))).isEmpty)
        // In an E01 of 4096-byte sectors the same bytes are sectors 2^29 - 1 and 2^29: they fit.
        #expect(E01Image(metadata: Self.metadata, bytesPerSector: 4096).warnings(unreadable: [unreadable[2]]).isEmpty)
    }

    @Test(
        "a partitioned disk with an ext4 file system: img_stat, mmls, fls and icat read the E01",
        .enabled(if: E01Judges.sleuthKit, "needs sleuthkit, sfdisk, mkfs.ext4 and debugfs: scripts/install-deps"))
    func sleuthKitReadsTheImage() throws {
        let scratch = try ScratchDirectory("e01-tsk")
        let fileSystem = scratch.file("fs.img"), disk = scratch.file("disk.img"), note = scratch.file("note.txt")
        let content = "Exhibit E7, seized 2026-11-18.\n" + String(repeating: "evidence line\n", count: 500)
        try content.write(toFile: note, atomically: true, encoding: .utf8)
        let build = try Subprocess.shell(
            """
            set -e
            truncate -s 24M '\(fileSystem)'
            mkfs.ext4 -q -F -L EVIDENCE '\(fileSystem)'
            debugfs -w -R "write \(note) note.txt" '\(fileSystem)'
            truncate -s 32M '\(disk)'
            printf 'label: dos\\nstart=2048, size=49152, type=83\\n' | sfdisk -q '\(disk)'
            dd if='\(fileSystem)' of='\(disk)' bs=512 seek=2048 conv=notrunc status=none
            """)
        try #require(build.succeeded, "making the disk: \(build)")
        let image = E01Image(metadata: Self.metadata, compression: .fast)
        _ = try E01Judges.write(source: disk, image: image, directory: scratch.path, name: "E7")
        let e01 = scratch.file("E7.E01")

        let stat = try Subprocess.run(["img_stat", e01])
        #expect(stat.succeeded, "img_stat: \(stat)")
        #expect(stat.stdout.contains("ewf"), "img_stat: \(stat.stdout)")
        #expect(stat.stdout.contains("\(32 << 20)"), "img_stat: \(stat.stdout)")
        let mmls = try Subprocess.run(["mmls", e01])
        #expect(mmls.succeeded, "mmls: \(mmls)")
        #expect(mmls.stdout.contains("0000002048   0000051199   0000049152   Linux (0x83)"), "mmls: \(mmls.stdout)")
        let fls = try Subprocess.run(["fls", "-o", "2048", e01])
        #expect(fls.succeeded, "fls: \(fls)")
        let line = try #require(fls.stdout.split(separator: "\n").first { $0.hasSuffix("\tnote.txt") }, "fls: \(fls.stdout)")
        let inode = try #require(line.split(separator: " ").last?.split(separator: ":").first.map(String.init))
        let icat = try Subprocess.run(["icat", "-o", "2048", e01, inode])
        #expect(icat.stdout == content)
    }

    @Test("segments beyond E99 are named as libewf names them (EAA …) and read back as one stream")
    func segmentNames() throws {
        let scratch = try ScratchDirectory("e01-segments")
        // Incompressible and stored as is, in 1 MiB segments: more than 99 of them.
        let size = 108 << 20
        let source = try E01Judges.random(at: scratch.file("source.img"), size: size, seed: "segments")
        let image = E01Image(metadata: Self.metadata, compression: .none, segmentSize: 1 << 20)
        let run = try E01Judges.write(source: source, image: image, directory: scratch.path, name: "E7")
        let predicted = image.fileNames(baseName: "E7", totalSize: UInt64(size))
        let written = run.writer.fileNames
        #expect(written.count > 100)
        #expect(written.count <= predicted.count)
        #expect(Array(predicted.prefix(written.count)) == written)
        #expect(written[98] == "E7.E99" && written[99] == "E7.EAA" && written[100] == "E7.EAB")
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("E7.E") }.sorted()
        #expect(onDisk == written.sorted())
        for path in run.writer.paths {
            let bytes = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
            #expect(bytes <= 1 << 20, "\(path): \(bytes) bytes")
        }
        #expect(image.fileNames(baseName: "E7", totalSize: 1 << 30).count > 1000)
        #expect(E01Image(metadata: Self.metadata).fileNames(baseName: "E7", totalSize: 1 << 40) == ["E7.E01"])

        let verify = try Subprocess.run(["ewfverify", "-q", scratch.file("E7.E01")])
        #expect(verify.succeeded, "ewfverify: \(verify)")
        let sourceSHA256 = try StockChecks.sum("sha256sum", source)
        #expect(try E01Judges.exportSHA256(scratch.file("E7.E01"), scratch: scratch) == sourceSHA256)
        #expect(try E01Judges.readerSHA256(run.writer.paths) == sourceSHA256)
    }

    @Test("damaged media: skipped areas staged, patched by the second pass, completed; the errors are listed", arguments: [UInt32(512), 4096])
    func damagedMedia(sectorSize: UInt32) throws {
        let scratch = try ScratchDirectory("e01-damaged")
        let size = 12 << 20
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: size, seed: "damaged-\(sectorSize)")
        let sector = UInt64(sectorSize)
        // The first pass skips two areas; the second recovers all but 4 sectors of the first.
        let skips = [ByteSpan(start: (3 << 20) + 4096, length: 65536), ByteSpan(start: 9 << 20, length: 8192)]
        let lost = UnreadableRange(
            firstSector: ((3 << 20) + 8192) / sector, sectorCount: 4, errno: EIO, attemptsPerSector: 3, sectorSize: sectorSize)
        let image = E01Image(metadata: Self.metadata, compression: .fast, segmentSize: 4 << 20, bytesPerSector: sectorSize)
        let run = try E01Judges.write(
            source: source, image: image, directory: scratch.path, name: "E7", skips: skips, unreadable: [lost])
        #expect(run.stagedFrom == (3 << 20))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("E7.E01-staging")))

        var expected = try Data(contentsOf: URL(fileURLWithPath: source))
        expected.replaceSubrange(Int(lost.byteOffset)..<Int(lost.byteOffset + lost.byteLength), with: Data(count: Int(lost.byteLength)))
        let expectedSHA256 = expected.withUnsafeBytes { bytes in
            let digest = Digest(.sha256)
            digest.update(bytes)
            return digest.finalize().hex
        }
        #expect(run.digests[.sha256]!.hex == expectedSHA256)
        let e01 = scratch.file("E7.E01")
        let verify = try Subprocess.run(["ewfverify", "-q", e01])
        #expect(verify.succeeded, "ewfverify: \(verify)")
        #expect(try E01Judges.exportSHA256(e01, scratch: scratch) == expectedSHA256)
        #expect(try E01Judges.readerSHA256(run.writer.paths) == expectedSHA256)
        let info = try E01Judges.ewfinfo(e01)
        #expect(info.raw.contains("at sector(s): \(lost.firstSector) - \(lost.lastSector) number: 4"), "ewfinfo: \(info.raw)")
        #expect(try E01Reader(paths: run.writer.paths).acquisitionErrors() == [ByteSpan(start: lost.byteOffset, length: lost.byteLength)])
    }

    @Test("a flipped byte inside a compressed chunk: ewfverify fails and the reader names the chunk's byte range")
    func flippedByte() throws {
        let scratch = try ScratchDirectory("e01-flip")
        // Text: every chunk compresses.
        var text = ""
        var line = 0
        while text.utf8.count < 4 << 20 {
            text += "\(line): the quick brown fox \(line * 7919 % 104_729) jumps over the lazy dog \(line % 97)\n"
            line += 1
        }
        let source = scratch.file("source.img")
        try Data(text.utf8.prefix(4 << 20)).write(to: URL(fileURLWithPath: source))
        let image = E01Image(metadata: Self.metadata, compression: .fast)
        let run = try E01Judges.write(source: source, image: image, directory: scratch.path, name: "E7")
        let e01 = scratch.file("E7.E01")
        #expect(try Subprocess.run(["ewfverify", "-q", e01]).succeeded)

        // Every chunk is compressed and they lie back to back after the header sections: the
        // middle of the file is inside one.
        let bytes = try #require(FileManager.default.attributesOfItem(atPath: e01)[.size] as? Int)
        let file = try FileHandle(forUpdating: URL(fileURLWithPath: e01))
        try file.seek(toOffset: UInt64(bytes / 2))
        let original = try #require(try file.read(upToCount: 1)?.first)
        try file.seek(toOffset: UInt64(bytes / 2))
        try file.write(contentsOf: [original ^ 0x5A])
        try file.close()

        let verify = try Subprocess.run(["ewfverify", "-q", e01])
        #expect(!verify.succeeded, "ewfverify passed a damaged image: \(verify)")
        let reported = try #require(E01Judges.damagedSectors(verify.stdout), "ewfverify: \(verify.stdout)")
        let chunkStart = reported.first * 512
        #expect(chunkStart % 32768 == 0)

        do {
            _ = try Pipeline.run(try image.reader(paths: run.writer.paths), into: [StreamDigester(.sha256)])
            Issue.record("the reader passed a damaged image")
        } catch {
            #expect(error.code == .verifyMismatch)
            #expect(
                error.detail?.contains("media bytes \(chunkStart) to \(chunkStart + 32767), is damaged") == true,
                "\(error) (ewfverify: sectors \(reported.first) - \(reported.last))")
        }
    }

    @Test("refusals: partial sectors, tiny segments, an existing image, patches outside the staging area, other digests")
    func refusals() throws {
        let scratch = try ScratchDirectory("e01-refusals")
        func code(_ body: () throws -> Void) -> AcquisitionError.Code? {
            do {
                try body()
                return nil
            } catch { return (error as? AcquisitionError)?.code }
        }
        let image = E01Image(metadata: Self.metadata)
        #expect(code { _ = try image.writer(directory: scratch.path, baseName: "odd", totalSize: 1_000_001) } == .invalidRequest)
        let tiny = E01Image(metadata: Self.metadata, segmentSize: 4096)
        #expect(code { _ = try tiny.writer(directory: scratch.path, baseName: "tiny", totalSize: 1 << 20) } == .invalidRequest)

        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: 4 << 20, seed: "refusals")
        let run = try E01Judges.write(source: source, image: image, directory: scratch.path, name: "E7")
        #expect(code { _ = try image.writer(directory: scratch.path, baseName: "E7", totalSize: 4 << 20) } == .destinationExists)
        // Written chunks take no patch.
        #expect(code { try run.writer.patch(UnsafeRawBufferPointer(start: nil, count: 0), at: 0) } == .invalidRequest)
        // Completing again with the same digests does nothing; with others it is refused.
        try run.writer.complete(run.completion)
        var other = run.completion
        other.digests[.md5] = DigestValue(bytes: Array(repeating: 0, count: 16))
        #expect(code { try run.writer.complete(other) } == .invalidRequest)
        // A job that stopped after finalizing but before its journal said so: the image is found complete.
        let again = try image.writer(directory: scratch.path, baseName: "E7", totalSize: 4 << 20, keepFree: 0, resumingAt: 4 << 20, frontier: nil)
        #expect(again.restartOffset == 4 << 20)
        #expect(code { try again.complete(other) } == .verifyMismatch)
        try again.complete(run.completion)
        try again.makeReadOnly()
        #expect(again.fileNames == ["E7.E01"])
    }

    /// What power lost after the journal's last checkpoint leaves besides the segment files
    /// synced then (a file system with delayed allocation keeps a new file's name, not its bytes).
    enum LostWrites: Sendable, CustomTestStringConvertible {
        case none
        /// The last segment file, begun after the checkpoint, cut to this many bytes.
        case newSegmentCut(to: Int)
        /// A staging file whose header never reached the disk.
        case blankStagingFile
        var testDescription: String {
            switch self {
            case .none: "nothing else"
            case .newSegmentCut(let bytes): "a new segment file of \(bytes) bytes"
            case .blankStagingFile: "a blank staging file"
            }
        }
    }

    @Test(
        "a writer dropped mid-stream (libewf then finalizes what it has) is resumed from its journal's offset, whatever power lost after it",
        arguments: [
            (UInt64?.none, LostWrites.none), (4 << 20, .none), (1 << 20, .newSegmentCut(to: 0)), (1 << 20, .newSegmentCut(to: 40)),
            (1 << 20, .newSegmentCut(to: 1000)), (4 << 20, .blankStagingFile),
        ])
    func droppedAndResumed(segmentSize: UInt64?, lost: LostWrites) throws {
        let scratch = try ScratchDirectory("e01-dropped")
        let size = 24 << 20
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: size, seed: "dropped")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let image = E01Image(metadata: Self.metadata, compression: .fast, segmentSize: segmentSize)
        func feed(_ writer: any ImageWriter, from start: UInt64, to end: UInt64) throws {
            try data.withUnsafeBytes { bytes in
                var offset = start
                while offset < end {
                    let count = Int(min(2 << 20, end - offset))
                    try writer.consume(UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset) + count]), at: offset)
                    offset += UInt64(count)
                }
            }
        }
        func segments() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("E7.E0") }.sorted() }
        // The journal names 14 MiB durable; the writer is dropped after 16 (a failed job).
        let saved: UInt64 = 14 << 20
        var synced = 0
        do {
            let first = try image.writer(directory: scratch.path, baseName: "E7", totalSize: UInt64(size))
            try feed(first, from: 0, to: saved)
            _ = try first.checkpoint()
            synced = try segments().count
            try feed(first, from: saved, to: 16 << 20)
        }
        switch lost {
        case .none: break
        case .newSegmentCut(let bytes):
            let last = try #require(try segments().last)
            try #require(try segments().count > synced, "a segment file begun after the checkpoint")
            try #require(truncate(scratch.file(last), off_t(bytes)) == 0)
        case .blankStagingFile:
            try #require(FileManager.default.createFile(atPath: scratch.file("E7.E01-staging"), contents: Data(count: 100)))
        }
        let resumed = try image.writer(
            directory: scratch.path, baseName: "E7", totalSize: UInt64(size), keepFree: 0, resumingAt: saved, frontier: nil)
        #expect(resumed.restartOffset <= saved)
        if segmentSize != nil { #expect(resumed.restartOffset > 0, "small segments close sections before \(saved)") }
        try feed(resumed, from: resumed.restartOffset, to: UInt64(size))
        try resumed.finish()
        let digests = E01Judges.md5AndSHA1(of: data)
        try resumed.complete(ImageCompletion(digests: digests, unreadable: []))
        let verify = try Subprocess.run(["ewfverify", "-q", scratch.file("E7.E01")])
        #expect(verify.succeeded, "ewfverify: \(verify)")
        #expect(try E01Judges.exportSHA256(scratch.file("E7.E01"), scratch: scratch) == (try StockChecks.sum("sha256sum", source)))
    }

    @Test("killed after libewf finalized the E01 but before its staging file was removed: the resumed completion keeps that E01")
    func killedBetweenFinalizingAndRemovingTheStagingFile() throws {
        let scratch = try ScratchDirectory("e01-finalized")
        // Not whole 32 KiB chunks, as most disks: a finalized E01 resumed through libewf would
        // hold its last chunk whole, more than the media.
        let size = (8 << 20) + 512
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: size, seed: "finalized")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let image = E01Image(metadata: Self.metadata, compression: .fast)
        let digests = E01Judges.md5AndSHA1(of: data)
        let completion = ImageCompletion(digests: digests, unreadable: [])
        let staging = scratch.file("E7.E01-staging")
        do {
            let writer = try image.writer(directory: scratch.path, baseName: "E7", totalSize: UInt64(size))
            try data.withUnsafeBytes { try writer.consume($0, at: 0) }
            try writer.finish()
            try #require(try Subprocess.run(["cp", staging, "\(staging).kept"]).succeeded)
            try writer.complete(completion)
        }
        // The kill landed after libewf's finalize, before the staging file went.
        try #require(rename("\(staging).kept", staging) == 0)
        let resumed = try image.writer(
            directory: scratch.path, baseName: "E7", totalSize: UInt64(size), keepFree: 0, resumingAt: UInt64(size), frontier: nil)
        try resumed.complete(completion)
        #expect(!FileManager.default.fileExists(atPath: staging))
        let verify = try Subprocess.run(["ewfverify", "-q", scratch.file("E7.E01")])
        #expect(verify.succeeded, "ewfverify: \(verify)")
        #expect(try E01Judges.exportSHA256(scratch.file("E7.E01"), scratch: scratch) == (try StockChecks.sum("sha256sum", source)))
    }

    @Test("SIGKILL, then resume: the E01 holds the same stream as an uninterrupted run", arguments: [false, true])
    func killedAndResumed(withSkip: Bool) throws {
        let scratch = try ScratchDirectory("e01-kill")
        let size = 160 << 20
        let source = try E01Judges.halfRandomHalfZero(at: scratch.file("source.img"), size: size, seed: "kill")
        let journal = scratch.file("journal.json")
        var arguments = [
            E01Judges.probe, "write", source, "--dir", scratch.path, "--name", "E7", "--segment-size", "\(8 << 20)",
            "--journal", journal, "--checkpoint-seconds", "0.05",
        ]
        // A skip at 40 MiB: the rest is staged when the child dies.
        if withSkip { arguments += ["--skip", "\((40 << 20) + 512)+4096", "--unreadable", "\((40 << 20) + 1024)+512"] }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: arguments[0])
        child.arguments = Array(arguments.dropFirst()) + ["--stall-at", "\(120 << 20)"]
        child.standardOutput = FileHandle.nullDevice
        try child.run()
        var saved: UInt64 = 0
        let deadline = Date().addingTimeInterval(120)
        while saved < 64 << 20, Date() < deadline, child.isRunning {
            usleep(50_000)
            saved = E01Judges.journalOffset(journal) ?? 0
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        try #require(saved >= 64 << 20, "the child's journal reached only \(saved) bytes")
        saved = E01Judges.journalOffset(journal) ?? 0
        #expect(FileManager.default.fileExists(atPath: scratch.file("E7.E01-staging")) == withSkip)

        let resumed = try Subprocess.run(arguments + ["--resume"])
        try #require(resumed.succeeded, "resume: \(resumed)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any])
        let restart = try #require((report["restartOffset"] as? NSNumber)?.uint64Value)
        // libewf continues from its last complete chunks section: a segment end here.
        #expect(restart <= saved)
        #expect(restart > 0 || withSkip, "8 MiB segments close sections long before \(saved)")
        if withSkip { #expect(restart <= 40 << 20) }

        let e01 = scratch.file("E7.E01")
        let verify = try Subprocess.run(["ewfverify", "-q", e01])
        #expect(verify.succeeded, "ewfverify: \(verify)")
        var expected = try Data(contentsOf: URL(fileURLWithPath: source))
        if withSkip { expected.replaceSubrange(((40 << 20) + 1024)..<((40 << 20) + 1536), with: Data(count: 512)) }
        let expectedSHA256 = expected.withUnsafeBytes { bytes in
            let digest = Digest(.sha256)
            digest.update(bytes)
            return digest.finalize().hex
        }
        #expect(report["sha256"] as? String == expectedSHA256)
        #expect(try E01Judges.exportSHA256(e01, scratch: scratch) == expectedSHA256)
        let names = try #require(report["files"] as? [String])
        #expect(try E01Judges.readerSHA256(names.map { scratch.file($0) }) == expectedSHA256)
        #expect(try E01Reader(paths: names.map { scratch.file($0) }).storedDigests().md5 == report["md5"] as? String)
    }
}

/// Writing through the pipeline as a job does, and the stock tools' views of the result.
enum E01Judges {
    static let ewfTools = ["ewfverify", "ewfinfo", "ewfexport"].allSatisfy(Subprocess.has)
    static let sleuthKit = ["img_stat", "mmls", "fls", "icat", "sfdisk", "mkfs.ext4", "debugfs"].allSatisfy(Subprocess.has)
    static var probe: String { "\(BuiltProducts.directory)/e01-probe" }

    struct Run {
        let writer: any ImageWriter
        let digests: [DigestAlgorithm: DigestValue]
        let completion: ImageCompletion
        let stagedFrom: UInt64?
    }

    /// The first pass (skipping `skips`), the second (recovering them from the source, but for
    /// `unreadable`), the digests finished over the staged stream, then `complete`.
    static func write(
        source path: String, image: E01Image, directory: String, name: String, skips: [ByteSpan] = [],
        unreadable: [UnreadableRange] = []
    ) throws -> Run {
        let frontier = SkipFrontier()
        let source = try SkippingFile(path: path, skips: skips, frontier: frontier)
        let writer = try image.writer(
            directory: directory, baseName: name, totalSize: source.size, keepFree: 0, resumingAt: nil, frontier: frontier)
        let digesters = [DigestAlgorithm.md5, .sha1, .sha256].map { StreamDigester($0, stoppingAt: frontier) }
        let outcome = try Pipeline.run(source, into: digesters + [writer])
        var final = digesters
        var stagedFrom: UInt64?
        if let first = outcome.skipped.first {
            for span in outcome.skipped {
                var bytes = try source.read(span)
                for range in unreadable where range.byteOffset < span.end && range.byteOffset + range.byteLength > span.start {
                    let from = max(range.byteOffset, span.start), to = min(range.byteOffset + range.byteLength, span.end)
                    bytes.replaceSubrange(Int(from - span.start)..<Int(to - span.start), with: Data(count: Int(to - from)))
                }
                try bytes.withUnsafeBytes { try writer.patch($0, at: span.start) }
            }
            let staged = try #require(try writer.pendingStream())
            stagedFrom = first.start / UInt64(image.chunkSize) * UInt64(image.chunkSize)
            final = digesters.map { StreamDigester($0.algorithm, restoring: $0.savedState)! }
            _ = try Pipeline.run(staged, into: final.map { ConsumerFromOffset($0, from: first.start) }, startingAt: first.start)
        }
        var digests: [DigestAlgorithm: DigestValue] = [:]
        for digester in final {
            let value = try #require(digester.result, "\(digester.name) did not finish")
            digests[digester.algorithm] = value
        }
        let completion = ImageCompletion(digests: digests, unreadable: unreadable)
        try writer.complete(completion)
        return Run(writer: writer, digests: digests, completion: completion, stagedFrom: stagedFrom)
    }

    /// `ewfexport -f raw` into a file, and its SHA-256. (To stdout, ewfexport 20140813 appends
    /// "ewfexport: SUCCESS" to the stream even with -q.)
    /// The digests an E01's completion stores, over the whole media.
    static func md5AndSHA1(of data: Data) -> [DigestAlgorithm: DigestValue] {
        var digests: [DigestAlgorithm: DigestValue] = [:]
        for algorithm in [DigestAlgorithm.md5, .sha1] {
            digests[algorithm] = data.withUnsafeBytes { bytes in
                let digest = Digest(algorithm)
                digest.update(bytes)
                return digest.finalize()
            }
        }
        return digests
    }

    static func exportSHA256(_ e01: String, scratch: ScratchDirectory) throws -> String {
        let target = scratch.file("export-\(UUID().uuidString.prefix(6))")
        let export = try Subprocess.run(["ewfexport", "-q", "-u", "-f", "raw", "-t", target, e01])
        try #require(export.succeeded, "ewfexport: \(export)")
        defer { unlink("\(target).raw") }
        return try StockChecks.sum("sha256sum", "\(target).raw")
    }

    /// The media stream's SHA-256 as libewf reads it (`E01Reader`, what `exhibit verify` uses),
    /// required equal to what Exhibit's own decoder (the job's read-back) makes of the same files.
    static func readerSHA256(_ paths: [String]) throws -> String {
        let digest = StreamDigester(.sha256)
        _ = try Pipeline.run(try E01Reader(paths: paths), into: [digest])
        let libewf = try #require(digest.result).hex
        try #require(try decoderSHA256(paths) == libewf, "libewf and E01Decoder read different streams")
        return libewf
    }

    static func decoderSHA256(_ paths: [String]) throws -> String {
        let digest = StreamDigester(.sha256)
        _ = try Pipeline.run(try E01Decoder(paths: paths), into: [digest])
        return try #require(digest.result).hex
    }

    struct Info {
        let raw: String
        let values: [String: String]
        subscript(label: String) -> String? { values[label] }
    }

    /// ewfinfo's "Label:\t\tvalue" lines.
    static func ewfinfo(_ e01: String) throws -> Info {
        let result = try Subprocess.run(["ewfinfo", e01])
        try #require(result.succeeded, "ewfinfo: \(result)")
        var values: [String: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let label = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if values[label] == nil, !value.isEmpty { values[label] = value }
        }
        return Info(raw: result.stdout, values: values)
    }

    /// ewfinfo's dates: ctime's "Mon Nov 30 11:46:18 2026", in local time.
    static func ctimeDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = "EEE MMM d HH:mm:ss yyyy"
        return formatter.date(from: text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
    }

    /// The sector range ewfverify names as damaged ("at sector(s): A - B …").
    static func damagedSectors(_ output: String) -> (first: UInt64, last: UInt64)? {
        guard let range = output.range(of: #"at sector\(s\): (\d+) - (\d+)"#, options: .regularExpression) else { return nil }
        let numbers = output[range].split(whereSeparator: { !$0.isNumber }).compactMap { UInt64($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }

    static func journalOffset(_ path: String) -> UInt64? {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return (object["offset"] as? NSNumber)?.uint64Value
    }

    /// Pseudo-random bytes from OpenSSL's AES-CTR keystream (fast, deterministic per seed).
    static func random(at path: String, size: Int, seed: String) throws -> String {
        let result = try Subprocess.shell(
            "openssl enc -aes-128-ctr -pass pass:\(seed) -nosalt -pbkdf2 -in /dev/zero 2>/dev/null | head -c \(size) > '\(path)'")
        let written = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        try #require(written == size, "making \(path): \(result)")
        return path
    }

    /// Random and zero mebibytes in turn.
    static func halfRandomHalfZero(at path: String, size: Int, seed: String) throws -> String {
        _ = try random(at: path, size: size, seed: seed)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data.withUnsafeMutableBytes { bytes in
            var offset = 1 << 20
            while offset < size {
                memset(bytes.baseAddress! + offset, 0, min(1 << 20, size - offset))
                offset += 2 << 20
            }
        }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }
}
