// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import GRDB
import HumanText
import StatusAPI

/// The store's SQLite catalog (`STORE/catalog.sqlite`): cases, exhibits, jobs, bundles with their
/// digests and states, and an audit of events. The sealed bundles are the evidence; the catalog is
/// the index over them and the record of what happened on this appliance.
public final class Catalog: Sendable {
    private let database: DatabaseQueue
    public let path: String

    public init(path: String) throws(StoreError) {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw StoreError(.catalog, path: path, detail: "cannot open: \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cases (
                        id TEXT PRIMARY KEY, examiner TEXT NOT NULL, opened_at TEXT NOT NULL, closed_at TEXT);
                    CREATE TABLE exhibits (
                        case_id TEXT NOT NULL REFERENCES cases(id), exhibit_id TEXT NOT NULL, created_at TEXT NOT NULL,
                        PRIMARY KEY (case_id, exhibit_id));
                    CREATE TABLE jobs (
                        id TEXT PRIMARY KEY, case_id TEXT NOT NULL, exhibit_id TEXT NOT NULL, examiner TEXT NOT NULL,
                        source_path TEXT NOT NULL, source_model TEXT, source_serial TEXT, size_bytes INTEGER NOT NULL,
                        state TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, error TEXT, pid INTEGER,
                        FOREIGN KEY (case_id, exhibit_id) REFERENCES exhibits(case_id, exhibit_id));
                    CREATE TABLE bundles (
                        id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), path TEXT NOT NULL,
                        media_sha256 TEXT NOT NULL, md5 TEXT, sha1 TEXT, size_bytes INTEGER NOT NULL,
                        unreadable_sectors INTEGER NOT NULL, verification TEXT NOT NULL, sealed_at TEXT NOT NULL,
                        seal_sha256 TEXT NOT NULL, previous_seal_sha256 TEXT NOT NULL, appliance_id TEXT NOT NULL);
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, actor TEXT NOT NULL,
                        action TEXT NOT NULL, object TEXT NOT NULL, details TEXT NOT NULL);
                    """)
        }
        migrator.registerMigration("v2: case sessions") { db in
            // A case session is the daemon's open case: new read-only disks become its exhibits.
            try db.execute(
                sql: """
                    ALTER TABLE cases ADD COLUMN session_opened_at TEXT;
                    ALTER TABLE cases ADD COLUMN auto_acquire INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        return migrator
    }

    private func write(_ what: String, _ body: @escaping (Database) throws -> Void) throws(StoreError) {
        do {
            try database.write { try body($0) }
        } catch {
            throw Self.storeError(what, error, path: path)
        }
    }

    /// A full file system is named as such (SQLite says only "database or disk is full", code 13),
    /// so that the job counts as stopped by a full store, not as failed.
    static func storeError(_ what: String, _ error: any Error, path: String) -> StoreError {
        if let database = error as? DatabaseError, database.resultCode == .SQLITE_FULL {
            return StoreError(.storeFull, path: path, errno: ENOSPC, detail: "\(what): no space left to record it; free space in the store, then run again")
        }
        return StoreError(.catalog, path: path, detail: "\(what): \(error)")
    }

    private func read<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try database.read { try body($0) }
        } catch {
            throw Self.storeError(what, error, path: path)
        }
    }

    public func audit(actor: String, action: CustodyAction, object: String, details: [String: String] = [:]) throws(StoreError) {
        // JSONEncoder, not JSONSerialization: its sorted keys need no locale (JSONTree says why).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: (try? encoder.encode(details)) ?? Data("{}".utf8), as: UTF8.self)
        try write("recording event \(action.rawValue)") { db in
            try db.execute(
                sql: "INSERT INTO events (time, actor, action, object, details) VALUES (?, ?, ?, ?, ?)",
                arguments: [Self.now(), actor, action.rawValue, object, json])
        }
    }

    /// Starts a job: records the case and exhibit when new, and the job as `acquiring`.
    public func beginJob(
        id: String, caseId: String, exhibitId: String, examiner: String, sourcePath: String, sourceModel: String?,
        sourceSerial: String?, sizeBytes: UInt64
    ) throws(StoreError) {
        let now = Self.now()
        try write("starting job \(id)") { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO cases (id, examiner, opened_at) VALUES (?, ?, ?)",
                arguments: [caseId, examiner, now])
            try db.execute(
                sql: "INSERT OR IGNORE INTO exhibits (case_id, exhibit_id, created_at) VALUES (?, ?, ?)",
                arguments: [caseId, exhibitId, now])
            try db.execute(
                sql: """
                    INSERT INTO jobs (id, case_id, exhibit_id, examiner, source_path, source_model, source_serial,
                                      size_bytes, state, started_at, pid)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'acquiring', ?, ?)
                    """,
                arguments: [
                    id, caseId, exhibitId, examiner, sourcePath, sourceModel, sourceSerial, Int64(sizeBytes), now,
                    Int(getpid()),
                ])
        }
    }

    /// The daemon's open case, if any.
    public struct CaseSessionRecord: Codable, Sendable, Equatable {
        public var caseId: String
        public var examiner: String
        public var autoAcquire: Bool
        public var openedAt: String
    }

    /// Opens a case session (one at a time); the case is created when new.
    public func openCaseSession(caseId: String, examiner: String, autoAcquire: Bool) throws(StoreError) -> CaseSessionRecord {
        let now = Self.now()
        try write("opening case \(caseId)") { db in
            if let open = try String.fetchOne(db, sql: "SELECT id FROM cases WHERE session_opened_at IS NOT NULL"), open != caseId {
                throw StoreError(.catalog, path: self.path, detail: "case \(open) is open; close it first")
            }
            try db.execute(
                sql: "INSERT OR IGNORE INTO cases (id, examiner, opened_at) VALUES (?, ?, ?)", arguments: [caseId, examiner, now])
            try db.execute(
                sql: "UPDATE cases SET session_opened_at = ?, auto_acquire = ?, examiner = ?, closed_at = NULL WHERE id = ?",
                arguments: [now, autoAcquire, examiner, caseId])
        }
        return CaseSessionRecord(caseId: caseId, examiner: examiner, autoAcquire: autoAcquire, openedAt: now)
    }

    /// Closes the open case session; returns its case number, or nil when none was open.
    public func closeCaseSession() throws(StoreError) -> String? {
        guard let open = try openCaseSession() else { return nil }
        try write("closing case \(open.caseId)") { db in
            try db.execute(
                sql: "UPDATE cases SET session_opened_at = NULL, closed_at = ? WHERE id = ?", arguments: [Self.now(), open.caseId])
        }
        return open.caseId
    }

    public func openCaseSession() throws(StoreError) -> CaseSessionRecord? {
        try read("reading the open case") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM cases WHERE session_opened_at IS NOT NULL").map {
                CaseSessionRecord(
                    caseId: $0["id"], examiner: $0["examiner"], autoAcquire: $0["auto_acquire"], openedAt: $0["session_opened_at"])
            }
        }
    }

    /// The exhibit numbers already used in a case.
    public func exhibitIds(caseId: String) throws(StoreError) -> [String] {
        try read("listing exhibits of \(caseId)") { db in
            try String.fetchAll(db, sql: "SELECT exhibit_id FROM exhibits WHERE case_id = ?", arguments: [caseId])
        }
    }

    /// A sealed job stays sealed: an error after its bundle was recorded does not undo the record.
    public func setJobState(_ id: String, state: JobState, error: String? = nil) throws(StoreError) {
        let finished = state.hasStopped ? Self.now() : nil
        try write("updating job \(id)") { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET state = ?, error = COALESCE(?, error), finished_at = COALESCE(?, finished_at)
                    WHERE id = ? AND state != 'sealed'
                    """,
                arguments: [state.rawValue, error, finished, id])
        }
    }

    public struct SealedBundle: Sendable {
        public var id: String
        public var jobId: String
        public var path: String
        public var mediaSHA256: String
        public var md5: String?
        public var sha1: String?
        public var sizeBytes: UInt64
        public var unreadableSectors: UInt64
        public var verification: String
        public var sealSHA256: String
        public var previousSealSHA256: String
        public var applianceId: String

        public init(
            id: String, jobId: String, path: String, mediaSHA256: String, md5: String?, sha1: String?,
            sizeBytes: UInt64, unreadableSectors: UInt64, verification: String, sealSHA256: String,
            previousSealSHA256: String, applianceId: String
        ) {
            self.id = id
            self.jobId = jobId
            self.path = path
            self.mediaSHA256 = mediaSHA256
            self.md5 = md5
            self.sha1 = sha1
            self.sizeBytes = sizeBytes
            self.unreadableSectors = unreadableSectors
            self.verification = verification
            self.sealSHA256 = sealSHA256
            self.previousSealSHA256 = previousSealSHA256
            self.applianceId = applianceId
        }
    }

    /// Records a published bundle and marks its job sealed, in one transaction.
    public func recordSealed(_ bundle: SealedBundle) throws(StoreError) {
        let now = Self.now()
        try write("recording bundle \(bundle.id)") { db in
            try db.execute(
                sql: """
                    INSERT INTO bundles (id, job_id, path, media_sha256, md5, sha1, size_bytes, unreadable_sectors,
                                         verification, sealed_at, seal_sha256, previous_seal_sha256, appliance_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    bundle.id, bundle.jobId, bundle.path, bundle.mediaSHA256, bundle.md5, bundle.sha1,
                    Int64(bundle.sizeBytes), Int64(bundle.unreadableSectors), bundle.verification, now,
                    bundle.sealSHA256, bundle.previousSealSHA256, bundle.applianceId,
                ])
            // A phone job learns its size as it goes; the sealed media's size is the job's.
            try db.execute(
                sql: "UPDATE jobs SET state = 'sealed', finished_at = ?, size_bytes = ? WHERE id = ?",
                arguments: [now, Int64(bundle.sizeBytes), bundle.jobId])
        }
    }

    /// Takes back a bundle recorded by `recordSealed` that could not be moved into `bundles/`.
    public func forgetSealed(bundleId: String, jobId: String) throws(StoreError) {
        try write("taking back bundle \(bundleId)") { db in
            try db.execute(sql: "DELETE FROM bundles WHERE id = ?", arguments: [bundleId])
            try db.execute(
                sql: "UPDATE jobs SET state = 'sealing', finished_at = NULL WHERE id = ?", arguments: [jobId])
        }
    }

    /// The seal hash of this appliance's most recent bundle (64 zeros before the first).
    public func lastSealSHA256(applianceId: String) throws(StoreError) -> String {
        try read("reading the last seal") { db in
            try String.fetchOne(
                db, sql: "SELECT seal_sha256 FROM bundles WHERE appliance_id = ? ORDER BY rowid DESC LIMIT 1",
                arguments: [applianceId])
        } ?? String(repeating: "0", count: 64)
    }

    /// A job's state (`acquiring` … `sealed`, `failed`, `interrupted`), or nil for no such job.
    public func jobState(_ id: String) throws(StoreError) -> JobState? {
        try read("reading job \(id)") { db in
            try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [id]).flatMap(JobState.init(rawValue:))
        }
    }

    /// Interrupted jobs, newest first, optionally of one exhibit.
    public func interruptedJobs(caseId: String? = nil, exhibitId: String? = nil) throws(StoreError) -> [String] {
        try read("listing interrupted jobs") { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM jobs WHERE state = 'interrupted'
                    AND (? IS NULL OR case_id = ?) AND (? IS NULL OR exhibit_id = ?) ORDER BY started_at DESC
                    """,
                arguments: [caseId, caseId, exhibitId, exhibitId])
        }
    }

    /// An interrupted job runs again, in this process.
    public func resumeJob(_ id: String) throws(StoreError) {
        try write("resuming job \(id)") { db in
            try db.execute(
                sql: "UPDATE jobs SET state = 'acquiring', finished_at = NULL, pid = ? WHERE id = ?",
                arguments: [Int(getpid()), id])
        }
    }

    /// Jobs left `acquiring`/`verifying`/`sealing` by a process that no longer runs become `interrupted`.
    public func markAbandonedJobs(isRunning: (String) -> Bool) throws(StoreError) {
        let active = try read("listing active jobs") { db in
            try String.fetchAll(db, sql: "SELECT id FROM jobs WHERE state IN ('acquiring', 'verifying', 'sealing')")
        }
        for id in active where !isRunning(id) {
            try setJobState(id, state: .interrupted, error: "the acquiring process ended before the bundle was sealed")
        }
    }

    public func entries() throws(StoreError) -> [CatalogEntry] {
        try read("listing") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT j.*, b.id AS bundle_id, b.path AS bundle_path, b.media_sha256, b.md5, b.sha1,
                           b.unreadable_sectors, b.verification, b.seal_sha256
                    FROM jobs j LEFT JOIN bundles b ON b.job_id = j.id ORDER BY j.started_at, j.id
                    """
            ).map { row in
                CatalogEntry(
                    jobId: row["id"], caseId: row["case_id"], exhibitId: row["exhibit_id"], examiner: row["examiner"],
                    sourcePath: row["source_path"], sourceModel: row["source_model"], sourceSerial: row["source_serial"],
                    sizeBytes: UInt64(row["size_bytes"] as Int64), state: JobState(rawValue: row["state"]) ?? .failed, startedAt: row["started_at"],
                    finishedAt: row["finished_at"], error: row["error"], bundleId: row["bundle_id"],
                    bundlePath: row["bundle_path"], mediaSHA256: row["media_sha256"], md5: row["md5"], sha1: row["sha1"],
                    unreadableSectors: (row["unreadable_sectors"] as Int64?).map { UInt64($0) },
                    verification: row["verification"], sealSHA256: row["seal_sha256"])
            }
        }
    }

    public struct Event: Codable, Sendable {
        public var time: String
        public var actor: String
        public var action: String
        public var object: String
        public var details: String
    }

    public func events() throws(StoreError) -> [Event] {
        try read("listing events") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY id").map {
                Event(time: $0["time"], actor: $0["actor"], action: $0["action"], object: $0["object"], details: $0["details"])
            }
        }
    }

    static func now() -> String { UTCTimestamp.string(Date()) }
}
