// SPDX-License-Identifier: Apache-2.0
import Foundation
import Imaging

/// Reads an E01 back while libewf writes it, as far as libewf lets it: libewf 20140813 writes a
/// chunk section's table when the section closes (at 65,534 chunks, 2 GiB of media in 32 KiB
/// chunks, or at a segment file's end) and never writes to a closed section again (measured:
/// every closed segment file is byte for byte the same after finalizing). So a closed section can
/// be read back from the store while later ones are written, and only the section open at the
/// end (with the staged last chunk) waits for the E01 to be complete. On a 1 TB disk that is all
/// but the last 2 GiB of a second read of the image.
///
/// After each batch of chunks the writer calls `collect()`: a walk on from the last closed
/// section (two 76-byte reads from the page cache while a section is open). The segment files
/// holding newly closed sections are fsynced and dropped from the page cache, and this class's
/// thread decodes their chunks from the store with `E01Decoder` into the window check's stored
/// side, hashing the files from the same reads. `rest(paths:)` gives the job the remainder, read
/// once the E01 is complete through its full, strict layout, which must list the same tables.
/// Its thread (a `SerialWorker`) holds it until the writer ends it, with `rest` or `stop`.
final class E01SectionReadBack: @unchecked Sendable {
    private let directory: String
    private let baseName: String
    private let tagger: WindowTagger
    private let check: WindowCheck
    // The writer's thread: the walk over what libewf has closed, and the files it reads.
    private var walk = E01Layout.Walk()
    /// The segment file the walk is in (the ones before it are closed and stay as they are).
    private var walkedFile: SegmentFile?
    private var collectedTables = 0
    // The read-back thread (and `rest` after joining it).
    private var worker: SerialWorker<E01Layout.Walk>!
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: readSize, alignment: 4096)
    private var readFiles: [SegmentFile] = []
    private var readTables: [E01Layout.Table] = []
    private var hashes: SegmentHashes?
    private var readThrough: UInt64 = 0
    /// Media bytes decoded at a time (with as many stored bytes): kept small, since this runs
    /// beside the first pass and its buffers (a 4 GiB half-zero E01 took 9.5-10.0 s with half a MiB or one, tmpfs).
    static let readSize = 512 << 10

    init(directory: String, baseName: String, check: WindowCheck) {
        self.directory = directory
        self.baseName = baseName
        tagger = WindowTagger(check, side: .stored)
        self.check = check
        worker = SerialWorker(name: "E01 read-back") { [self] closed throws(AcquisitionError) in try read(closed) }
    }

    deinit { buffer.deallocate() }

    /// Ends the read-back of a job that stops before its image is complete: the thread leaves the
    /// section it is decoding at the next half MiB, and closes the files it read.
    func stop() {
        worker.cancel()
        readFiles = []
        hashes = nil
    }

    private func path(ofSegment index: Int) -> String {
        "\(directory)/\(E01Image.segmentName(baseName: baseName, number: index + 1))"
    }

    // MARK: The writer's side

    /// Takes in the sections libewf closed since the last call: makes them durable and out of the
    /// page cache, and hands them to the read-back thread. Call between libewf's writes.
    func collect() throws(AcquisitionError) {
        // What the read-back found so far stops the job now, not once the image is complete.
        try check.throwFindings(of: worker, path: directory)
        advance()
        guard walk.tables.count > collectedTables else { return }
        let segments = Set(walk.tables[collectedTables...].map(\.segment))
        for segment in segments.sorted() { try E01Writer.syncFile(path(ofSegment: segment), dropCache: true) }
        collectedTables = walk.tables.count
        worker.submit(walk)
    }

    private func advance() {
        walk.advance(through: path(ofSegment:), file: &walkedFile)
    }

    // MARK: The read-back thread

    /// Decodes the chunks of the closed sections not read yet into the window tagger.
    private func read(_ closed: E01Layout.Walk) throws(AcquisitionError) {
        let layout = try E01Layout(closedPartOf: closed, files: try openFiles(through: closed.tables.last!.segment))
        try adopt(layout.files)
        readTables = layout.tables
        let decoder = try E01Decoder(layout: layout, hashes: hashes, readSize: Self.readSize)
        while readThrough < layout.mediaSize, !worker.isCancelled {
            let count = Int(min(UInt64(Self.readSize), layout.mediaSize - readThrough))
            _ = try decoder.fill(buffer, count: count, at: readThrough)
            try tagger.consume(UnsafeRawBufferPointer(start: buffer, count: count), at: readThrough)
            readThrough += UInt64(count)
        }
    }

    /// The segment files up to `last`: those closed before the previous read as they were, the
    /// others opened again (they were still growing), each released until the decoder reaches it
    /// (a read-back behind the writer by hundreds of small segments would hold as many descriptors).
    private func openFiles(through last: Int) throws(AcquisitionError) -> [SegmentFile] {
        let kept = readFiles.isEmpty ? 0 : readFiles.count - 1
        var files = Array(readFiles.prefix(kept))
        for index in kept...last {
            let file = try SegmentFile(path: path(ofSegment: index))
            file.release()
            files.append(file)
        }
        readFiles = files
        return files
    }

    private func adopt(_ files: [SegmentFile]) throws(AcquisitionError) {
        if let hashes { try hashes.adopt(files) } else { hashes = SegmentHashes(files: files) }
    }

    // MARK: Once complete

    /// What is left to read back once the E01 at `paths` is complete, going on with the windows
    /// and the file hashes from where the read-back during the pass stopped. Throws what that
    /// read-back found (a damaged chunk), or a completed E01 that does not list the tables read.
    func rest(paths: [String]) throws(AcquisitionError) -> ReadBackRest {
        try worker.finish()
        let layout = try E01Layout(paths: paths)
        if let differing = readTables.indices.first(where: { $0 >= layout.tables.count || layout.tables[$0] != readTables[$0] }) {
            let table = readTables[differing]
            throw AcquisitionError(
                .verifyMismatch, path: path(ofSegment: table.segment), offset: table.entriesOffset,
                detail: "chunk section \(differing + 1) (chunks from \(table.firstChunk)) of the completed E01 is not the one read back "
                    + "while it was written: its table changed since")
        }
        try adopt(layout.files)
        return ReadBackRest(source: try E01Decoder(layout: layout, hashes: hashes), start: readThrough, consumer: tagger)
    }
}
