// SPDX-License-Identifier: Apache-2.0
import Evidence
import EvidenceSources
import Foundation
import Imaging
import TestSupport
import Testing

@testable import Jobs

/// A job's journal and the first pass's skip policy, in process: what a resumed job continues
/// from, and how far an unreadable area is skipped.
@Suite struct JournalResumeTests {
    /// Counting bytes up to `zerosFrom`, zeros after: a disk whose end was never written, which
    /// the writer leaves as holes.
    final class ZeroTailSource: StreamSource, @unchecked Sendable {
        let path = "zero-tail source"
        let size: UInt64
        let zerosFrom: UInt64
        init(size: UInt64, zerosFrom: UInt64) {
            self.size = size
            self.zerosFrom = zerosFrom
        }
        func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
            let bytes = destination.assumingMemoryBound(to: UInt8.self)
            for index in 0..<count {
                let position = offset + UInt64(index)
                bytes[index] = position < zerosFrom ? ImagingTests.CountingSource.byte(at: position) : 0
            }
            return []
        }
    }

    static func journal(size: UInt64, serial: String? = "S1") -> AcquisitionJournal {
        AcquisitionJournal(
            jobId: "job-1", bundleId: "B", startedAt: Date(timeIntervalSince1970: 1_700_000_000), caseId: "C", exhibitId: "E1",
            examiner: "X", extraDigests: [.md5], segmentSize: nil, verifyAfterWriting: true, commandLine: ["exhibit"],
            writableOverride: false,
            source: .init(path: "/dev/sdz", serial: serial, model: "M", sizeBytes: size, logicalSectorSize: 512, fingerprint: "F"))
    }

    /// A first pass stopped after a checkpoint and continued from the journal alone (digest states
    /// restored, the image cut back to the journaled offset) ends with the uninterrupted digests
    /// and image, whatever the first run wrote past the checkpoint (left there, the garbage would
    /// stay under the zeros the writer does not write).
    @Test func aPassResumedFromItsJournalEndsWithTheUninterruptedDigests() throws {
        let scratch = try ScratchDirectory("journal-resume")
        let size: UInt64 = (5 << 20) + 333
        let whole = StreamDigester(.sha256)
        _ = try Pipeline.run(ZeroTailSource(size: size, zerosFrom: 3 << 20), into: [whole], configuration: ImagingTests.small)

        let keeper = JournalKeeper(Self.journal(size: size), directory: scratch.path)
        try keeper.update { _ in }
        let cancellation = CancellationFlag()
        let first = try RawImageWriter(directory: scratch.path, baseName: "E1", totalSize: size, segmentSize: nil)
        #expect(throws: AcquisitionError.self) {
            try Pipeline.run(
                ZeroTailSource(size: size, zerosFrom: 3 << 20), into: [StreamDigester(.sha256), StreamDigester(.md5), first],
                configuration: ImagingTests.small, cancellation: cancellation, checkpointInterval: 0,
                onCheckpoint: { checkpoint in
                    try keeper.update {
                        $0.copiedBytes = checkpoint.offset
                        $0.states = checkpoint.states
                    }
                    if checkpoint.offset >= 2 << 20 { cancellation.cancel(reason: "test stop") }
                })
        }
        let saved = try #require(AcquisitionJournal.load(from: scratch.path))
        #expect(saved.copiedBytes >= 2 << 20 && saved.copiedBytes < 3 << 20)
        #expect(saved.jobId == "job-1" && saved.extraDigests == [.md5])

        let sha256State = try #require(saved.states["SHA-256"])
        let md5State = try #require(saved.states["MD5"])
        let sha256 = try #require(StreamDigester(.sha256, restoring: sha256State))
        let md5 = try #require(StreamDigester(.md5, restoring: md5State))
        // What a killed run may leave past its last checkpoint: bytes the journal does not name.
        let torn = try #require(FileHandle(forWritingAtPath: first.paths[0]))
        try torn.seek(toOffset: saved.copiedBytes)
        try torn.write(contentsOf: Data(repeating: 0xFF, count: Int(size - saved.copiedBytes) + 4096))
        try torn.close()
        let writer = try RawImageWriter(
            directory: scratch.path, baseName: "E1", totalSize: size, segmentSize: nil, resumingAt: saved.copiedBytes)
        _ = try Pipeline.run(
            ZeroTailSource(size: size, zerosFrom: 3 << 20), into: [sha256, md5, writer], startingAt: saved.copiedBytes, configuration: ImagingTests.small)
        #expect(sha256.result == whole.result)
        let readBack = StreamDigester(.sha256)
        _ = try Pipeline.run(try ImageFiles(paths: writer.paths), into: [readBack], configuration: ImagingTests.small)
        #expect(DurableFile.size(of: writer.paths[0]) == size)
        #expect(readBack.result == whole.result, "the resumed image is not the source")
    }

    /// Another device never continues a job: size, sector size, serial and model are compared
    /// first, and the content fingerprint is read only when they all match.
    @Test func aJournalNamesWhyADeviceIsNotItsSource() throws {
        let journal = Self.journal(size: 1 << 30)
        func identity(size: UInt64 = 1 << 30, serial: String? = "S1", model: String? = "M") -> SourceIdentity {
            SourceIdentity(
                path: "/dev/sdz", resolvedPath: "/dev/sdz", kind: .blockDevice, sizeBytes: size, logicalSectorSize: 512,
                physicalSectorSize: 512, model: model, serial: serial,
                writeProtection: .init(openMode: "O_RDONLY", writableOverride: false, summary: "test"))
        }
        var fingerprintReads = 0
        let fingerprint = { () throws -> String in
            fingerprintReads += 1
            return "F"
        }
        #expect(journal.mismatch(with: identity(size: 2 << 30), fingerprint: fingerprint)?.hasPrefix("size") == true)
        #expect(journal.mismatch(with: identity(serial: "S2"), fingerprint: fingerprint) == "serial S2 instead of S1")
        #expect(journal.mismatch(with: identity(model: "N"), fingerprint: fingerprint) == "model N instead of M")
        #expect(fingerprintReads == 0, "the content was read although the device's identity already differed")
        #expect(journal.mismatch(with: identity(), fingerprint: fingerprint) == nil)
        #expect(journal.mismatch(with: identity(), fingerprint: { "G" }) == "different content in its first and last MiB")
        #expect(journal.mismatch(with: identity(), fingerprint: { throw AcquisitionError(.readFailed, path: "/dev/sdz") }) != nil)
    }

    /// A journal of another format is not resumed from (nil), and a missing one neither.
    @Test func aJournalOfAnotherFormatIsNotLoaded() throws {
        let scratch = try ScratchDirectory("journal-format")
        #expect(AcquisitionJournal.load(from: scratch.path) == nil)
        var journal = Self.journal(size: 1 << 20)
        journal.format = "exhibit-journal/0"
        try journal.save(in: scratch.path)
        #expect(AcquisitionJournal.load(from: scratch.path) == nil)
        journal.format = AcquisitionJournal.format
        try journal.save(in: scratch.path)
        #expect(AcquisitionJournal.load(from: scratch.path)?.jobId == "job-1")
    }

    /// The skip after an unreadable area starts at 64 KiB, doubles with each error that follows,
    /// stops at the policy's maximum (1 % of the source, between 64 KiB and 1 GiB), and starts
    /// again after a good read; it ends on a sector boundary inside the source.
    @Test func theSkipGrowsToItsMaximumAndEndsOnASector() {
        #expect(SkipPolicy.standard(forSize: 1 << 20).maximumSkip == 64 << 10)
        #expect(SkipPolicy.standard(forSize: 1 << 40).maximumSkip == 1 << 30)
        let hundredMiB: UInt64 = 100 << 20
        #expect(SkipPolicy.standard(forSize: hundredMiB).maximumSkip == hundredMiB / 100)
        let policy = SkipPolicy(maximumSkip: 1 << 20)
        var skip: UInt64 = 0
        var skips: [UInt64] = []
        for _ in 0..<7 {
            skip = policy.skip(after: skip)
            skips.append(skip)
        }
        let expected: [UInt64] = [64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 1 << 20, 1 << 20]
        #expect(skips == expected)
        #expect(policy.skip(after: 0) == 64 << 10)
        #expect(SkipPolicy.end(ofSkip: 1000, from: 4096, position: 4100, size: 1 << 20, sectorSize: 4096) == 8192)
        let size: UInt64 = (1 << 20) - 7
        #expect(SkipPolicy.end(ofSkip: 64 << 10, from: size - 505, position: size - 505, size: size, sectorSize: 512) == size)
        #expect(SkipPolicy.end(ofSkip: 0, from: 0, position: 10, size: 1 << 20, sectorSize: 512) == 11)
    }
}
