// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import EvidenceSources
import Foundation
import Imaging

/// What an interrupted job needs to resume: `STORE/work/<job>/journal.json`, replaced atomically
/// (temporary file, fsync, rename, fsync of the directory) at every checkpoint of the first pass
/// (at most `checkpointSeconds` behind), after every recovered area, and when the image is complete.
///
/// The image's first `copiedBytes` bytes were made durable before the journal named them, and
/// `states` holds every digest's running state at that offset, so a resumed job continues the
/// digests without re-reading or trusting the prefix; its read-back at the end checks it.
struct AcquisitionJournal: Codable, Sendable {
    static let format = "exhibit-journal/1"

    enum Phase: String, Codable, Sendable {
        /// The first pass is under way.
        case copying
        /// The first pass is done; skipped areas are being read again.
        case recovering
        /// Every byte is in the store and the digests are final.
        case imaged
    }

    struct Source: Codable, Sendable, Equatable {
        var path: String
        var serial: String?
        var model: String?
        var sizeBytes: UInt64
        var logicalSectorSize: UInt32
        var fingerprint: String
    }

    struct Interruption: Codable, Sendable {
        var at: String
        var offset: UInt64
        var reason: String
        /// How the resumed job proved that what it already held is still what the source gives.
        var continuityCheck: String? = nil
    }

    var format = Self.format
    var jobId: String
    var bundleId: String
    var startedAt: Date
    var caseId: String
    var exhibitId: String
    var examiner: String
    var extraDigests: [DigestAlgorithm]
    var segmentSize: UInt64?
    /// Nil in journals written before formats could be chosen: raw.
    var imageFormat: ImageFormatChoice? = nil
    /// The format the job writes.
    var imageFormatChoice: ImageFormatChoice { imageFormat ?? .raw }
    var verifyAfterWriting: Bool
    var commandLine: [String]
    var writableOverride: Bool
    var source: Source
    var digestStateFormat = Digest.stateFormat
    var phase = Phase.copying
    var copiedBytes: UInt64 = 0
    /// Consumer states at `copiedBytes`, by consumer name.
    var states: [String: Data] = [:]
    var skipped: [ByteSpan] = []
    var recovered: [RecoveredArea] = []
    var interruptions: [Interruption] = []
    /// The stop the job recorded itself (source vanished, store full …); a job that was killed or
    /// lost power records none, and its resumption says so.
    var stop: Interruption?
    var custody: [String] = []
    /// Final digests by algorithm, once `imaged`.
    var digests: [String: String]?
    var segmentDigests: [String]?
    /// How the store's image was checked when the digests were finished from it.
    var storeCheck: String?
    /// True when the first pass skipped areas and read back the whole image it wrote (zeros where
    /// it skipped) as written: the bytes before the first skipped byte need no other check.
    var checkedBeforeFrontier: Bool?
    /// The verification windows of that check.
    var windowSHA256: [String]?
    /// The image's files once it is complete (a format such as E01 knows them only then).
    var imageFiles: [String]?
    /// The stream's SHA-256 chaining values at the window boundaries, when the image was read back
    /// during the first pass (`WindowChain`).
    var windowChain: [String]?

    /// Bytes the first pass skipped.
    var skippedBytes: UInt64 { ByteSpan.total(skipped) }
    /// Sectors the second pass found unreadable so far.
    var unreadableSectorsSoFar: UInt64 { recovered.reduce(0) { $0 + $1.unreadable.reduce(0) { $0 + $1.sectorCount } } }

    static func path(in workDirectory: String) -> String { "\(workDirectory)/journal.json" }

    static func load(from workDirectory: String) -> AcquisitionJournal? {
        guard let data = FileManager.default.contents(atPath: path(in: workDirectory)),
            let journal = try? ExhibitJSON.decoder().decode(AcquisitionJournal.self, from: data),
            journal.format == format
        else { return nil }
        return journal
    }

    func save(in workDirectory: String) throws(AcquisitionError) {
        do {
            try DurableFile.replace(Self.path(in: workDirectory), contents: ExhibitJSON.encoder(pretty: false).encode(self))
        } catch let error as EvidenceError {
            let full = error.errno == ENOSPC || error.errno == EDQUOT
            throw AcquisitionError(
                full ? .storeFull : .writeFailed, path: Self.path(in: workDirectory), offset: copiedBytes,
                errno: error.errno, detail: "writing the job journal")
        } catch {
            throw AcquisitionError(.writeFailed, path: Self.path(in: workDirectory), offset: copiedBytes, detail: "\(error)")
        }
    }

    /// Why `identity` is not this journal's source, or nil when it is (serial, model, size, sector
    /// size, then the content fingerprint, read only when the rest matches).
    func mismatch(with identity: SourceIdentity, fingerprint: () throws -> String) -> String? {
        if identity.sizeBytes != source.sizeBytes { return "size \(identity.sizeBytes) instead of \(source.sizeBytes)" }
        if identity.logicalSectorSize != source.logicalSectorSize {
            return "logical sector \(identity.logicalSectorSize) instead of \(source.logicalSectorSize)"
        }
        if identity.serial != source.serial { return "serial \(identity.serial ?? "none") instead of \(source.serial ?? "none")" }
        if identity.model != source.model { return "model \(identity.model ?? "none") instead of \(source.model ?? "none")" }
        guard let found = try? fingerprint() else { return "its first and last sectors could not be read" }
        if found != source.fingerprint { return "different content in its first and last MiB" }
        return nil
    }
}

/// The journal of the running job, updated from pipeline threads at checkpoints.
final class JournalKeeper: @unchecked Sendable {
    private let lock = NSLock()
    private var journal: AcquisitionJournal
    let directory: String

    init(_ journal: AcquisitionJournal, directory: String) {
        self.journal = journal
        self.directory = directory
    }

    var current: AcquisitionJournal { lock.withLock { journal } }

    func update(_ change: (inout AcquisitionJournal) -> Void) throws(AcquisitionError) {
        lock.lock()
        defer { lock.unlock() }
        change(&journal)
        try journal.save(in: directory)
    }
}

extension AcquisitionJournal {
    /// A new job's journal, before its first byte: what it was asked and which device it reads.
    init(newJobOf request: AcquisitionRequest, source: OpenedSource) throws {
        let identity = source.identity
        let started = Date()
        self.init(
            jobId: request.jobId,
            bundleId: BundleName.make(caseId: request.caseId, exhibitId: request.exhibitId, at: started, jobId: request.jobId),
            startedAt: started, caseId: request.caseId, exhibitId: request.exhibitId, examiner: request.examiner,
            extraDigests: request.extraDigests, segmentSize: request.segmentSize, imageFormat: request.imageFormat,
            verifyAfterWriting: request.verifyAfterWriting,
            commandLine: request.commandLine, writableOverride: identity.writeProtection.writableOverride,
            source: .init(
                path: identity.path, serial: identity.serial, model: identity.model, sizeBytes: identity.sizeBytes,
                logicalSectorSize: identity.logicalSectorSize, fingerprint: try source.fingerprint()))
    }
}
