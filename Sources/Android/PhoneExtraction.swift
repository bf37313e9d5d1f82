// SPDX-License-Identifier: Apache-2.0
import ADB
import Cryptography
import Evidence
import Foundation
import HumanText
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// One command of a phone acquisition, as `data/phone/commands.jsonl` records it.
public struct CommandRecord: Codable, Sendable {
    public var seq: Int
    public var command: String
    public var service: String?
    public var startedAt: String
    public var durationSeconds: Double
    public var exitStatus: Int?
    public var stdoutFile: String
    public var stdoutBytes: UInt64
    public var stdoutSHA256: String
    public var stderrFile: String?
    public var stderrBytes: UInt64
    public var stderrSHA256: String?
    public var error: String?
    /// Which connection ran it: 1, then one more after each interruption.
    public var session: Int? = nil
}

/// A file being written into the bag while its SHA-256 is computed: the digest is of the bytes
/// as they came from the phone, before they touched the store.
public final class HashingFile {
    public let path: String
    private let descriptor: Int32
    private let digest = Digest(.sha256)
    public private(set) var bytes: UInt64 = 0

    public init(_ path: String) throws(AcquisitionError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "creating an extracted file") }
    }

    /// A file extracted from the device, created below `bag/data/files` one checked component
    /// at a time (`DeviceTreePolicy.createStoredFile`): never outside it, never through a link.
    public init(bag: String, storedPath: String) throws(AcquisitionError) {
        path = "\(bag)/\(storedPath)"
        descriptor = try DeviceTreePolicy.createStoredFile(bag: bag, storedPath: storedPath)
    }

    deinit { close(descriptor) }

    public func write(_ chunk: [UInt8]) throws(AcquisitionError) {
        let result = chunk.withUnsafeBytes { buffer -> AcquisitionError? in
            digest.update(buffer)
            var done = 0
            while done < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    let code: AcquisitionError.Code = errno == ENOSPC ? .storeFull : .writeFailed
                    return AcquisitionError(code, path: path, offset: bytes + UInt64(done), errno: errno)
                }
                done += count
            }
            return nil
        }
        if let result { throw result }
        bytes += UInt64(chunk.count)
    }

    /// The SHA-256 of everything written, once its data is on the disk (the bag is sealed later
    /// and must not hold a file that a power cut could empty).
    public func finish() -> String {
        fdatasync(descriptor)
        return digest.finalize().hex
    }
}

/// Runs the commands of a phone acquisition through the shell (v2 when offered) and keeps
/// each one's stdout and stderr as files in the bag with their SHA-256, exit status and timing.
public final class CommandAudit {
    private let connection: ADBConnection
    private let bag: String
    public private(set) var records: [CommandRecord]
    private let session: Int
    public static let directory = "data/phone/commands"

    /// `earlier`: the records of a resumed job's earlier connections; numbering goes on after them.
    public init(connection: ADBConnection, bag: String, earlier: [CommandRecord] = [], session: Int = 1) throws {
        self.connection = connection
        self.bag = bag
        records = earlier
        self.session = session
        try FileManager.default.createDirectory(atPath: "\(bag)/\(Self.directory)", withIntermediateDirectories: true)
    }

    public var failed: Int { records.filter { $0.error != nil || ($0.exitStatus ?? 0) != 0 }.count }

    /// Runs `command`; returns the first `keep` bytes of its stdout for parsing, and the record.
    /// A phone-side failure (non-zero exit) is recorded, not thrown; a connection failure throws.
    @discardableResult
    public func run(_ command: String, name: String, keep: Int = 1 << 20) throws -> (stdout: [UInt8], record: CommandRecord) {
        let seq = records.count + 1
        let base = "\(Self.directory)/\(String(format: "%02d", seq))-\(name)"
        let out = try HashingFile("\(bag)/\(base).txt")
        var err: HashingFile?
        var kept: [UInt8] = []
        let started = Date()
        var record = CommandRecord(
            seq: seq, command: command, service: nil, startedAt: UTCTimestamp.string(started), durationSeconds: 0,
            exitStatus: nil, stdoutFile: "\(base).txt", stdoutBytes: 0, stdoutSHA256: "", stderrFile: nil, stderrBytes: 0,
            stderrSHA256: nil, error: nil, session: session)
        func finish() {
            record.durationSeconds = Date().timeIntervalSince(started)
            record.stdoutBytes = out.bytes
            record.stdoutSHA256 = out.finish()
            if let err {
                record.stderrFile = "\(base).stderr.txt"
                record.stderrBytes = err.bytes
                record.stderrSHA256 = err.finish()
            }
            records.append(record)
        }
        do {
            let outcome = try connection.shell(
                command,
                stdout: { chunk in
                    if kept.count < keep { kept += chunk.prefix(keep - kept.count) }
                    try out.write(chunk)
                },
                stderr: { chunk in
                    if err == nil { err = try HashingFile("\(bag)/\(base).stderr.txt") }
                    try err?.write(chunk)
                })
            record.service = outcome.service
            record.exitStatus = outcome.exitStatus
        } catch {
            record.error = "\(error)"
            finish()
            throw error
        }
        finish()
        return (kept, record)
    }

    /// `data/phone/commands.jsonl`, one object per line.
    public func log() throws -> Data { try ExhibitJSON.lines(records) }
}

/// One entry of the phone's file tree, as `data/phone/files.jsonl` records it.
public struct FileRecord: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        /// Every byte the phone listed was received and hashed.
        case complete
        /// Some bytes were received before the phone failed or went away; they are kept and hashed.
        case partial
        /// The phone refused to open it (or to list the directory).
        case denied
        /// Directories, symlinks, special files: described, not pulled.
        case notPulled = "not-pulled"
        /// The phone could not describe it (an errno from LIS2).
        case error
        /// The listing's name or path cannot be followed (`anomaly` says why): recorded only.
        case refused
    }

    public var path: String
    /// The device path's bytes in hex, when they are not UTF-8 (then `path` has replacements).
    public var pathHex: String?
    public var storedAs: String?
    public var type: String
    public var mode: String?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var atime: Int64?
    public var mtime: Int64?
    public var ctime: Int64?
    public var inode: UInt64?
    public var status: Status
    public var bytesReceived: UInt64?
    public var sha256: String?
    public var error: String?
    /// What `DeviceTreePolicy` found odd about this entry (a `FileTreeAnomaly.Kind`), and the
    /// listed name as one printable line (a name with a slash makes `path` ambiguous).
    public var anomaly: String? = nil
    public var listedName: String? = nil
}

/// Walks the phone's shared storage with sync (v2 when offered), records every entry, and
/// pulls every regular file into `data/files/<original path>`, hashing it as it streams. The
/// phone's listing is data: `DeviceTreePolicy` decides what of it is followed, and whatever it
/// refuses is recorded (`anomalies`) while the rest of the phone is pulled.
public final class FileExtraction {
    private let connection: ADBConnection
    private let commands: CommandAudit
    private let bag: String
    private let sync: SyncSession
    public private(set) var records: [FileRecord] = []
    /// Entries of the listings not followed as they stood, in walk order.
    public private(set) var anomalies: [FileTreeAnomaly] = []
    private var storedNames: Set<String> = []

    public init(connection: ADBConnection, commands: CommandAudit, bag: String) {
        self.connection = connection
        self.commands = commands
        self.bag = bag
        sync = SyncSession(connection: connection)
    }

    public func close() { sync.close() }

    public struct Listed {
        public var path: [UInt8]
        /// The name as the phone listed it (a root: its path).
        public var name: [UInt8]
        public var status: RemoteFileStatus?
        public var errno: UInt32?
        /// What the policy found; with `.skipped` the entry is recorded and never pulled.
        public var anomaly: FileTreeAnomaly? = nil

        public var isRefused: Bool { anomaly?.action == .skipped }
    }

    /// A directory's device and inode from a v2 stat; nil when the phone gives none (v1, or 0).
    public struct DirectoryIdentity: Hashable {
        public var device: UInt64
        public var inode: UInt64

        public init?(_ status: RemoteFileStatus?) {
            guard let device = status?.device, let inode = status?.inode, inode != 0 else { return nil }
            self.device = device
            self.inode = inode
        }
    }

    /// Lists every entry under `roots` (depth first, names in byte order), at most
    /// `DeviceTreePolicy.maximumDepth` levels deep, never into a directory already on the path.
    public func walk(_ roots: [String]) throws -> [Listed] {
        var listed: [Listed] = []
        for root in roots {
            let rootBytes = Array(root.utf8)
            let top = try sync.stat(rootBytes)
            listed.append(Listed(path: rootBytes, name: rootBytes, status: top.status, errno: top.errno))
            if top.status?.type == .directory {
                let ancestors = Set([DirectoryIdentity(top.status)].compactMap { $0 })
                try walk(directory: rootBytes, depth: 0, ancestors: ancestors, into: &listed)
            }
        }
        return listed
    }

    /// `ancestors`: the identities of the directories from the root down to `directory`.
    private func walk(directory: [UInt8], depth: Int, ancestors: Set<DirectoryIdentity>, into listed: inout [Listed]) throws {
        // A trailing slash lists a symlinked root such as /sdcard the way adbd follows it.
        let entries = try sync.list(directory + [47])
            .filter { DeviceTreePolicy.verdict(forName: $0.name, isDirectory: $0.errno == nil && $0.status.type == .directory) != .selfOrParent }
            .sorted { $0.name.lexicographicallyPrecedes($1.name) }
        if entries.isEmpty, let index = listed.lastIndex(where: { $0.path == directory }) {
            // adbd lists an unreadable directory as empty: ask the shell to tell the two apart.
            let quoted = "'" + String(decoding: directory, as: UTF8.self).replacingOccurrences(of: "'", with: "'\\''") + "'"
            let check = try commands.run("ls -a \(quoted)", name: "ls-empty-directory", keep: 4096)
            if let status = check.record.exitStatus, status != 0 { listed[index].errno = UInt32(EACCES) }
            return
        }
        for entry in entries {
            let (item, walkInto) = judge(entry, in: directory, depth: depth + 1, ancestors: ancestors)
            listed.append(item)
            guard walkInto else { continue }
            let below = ancestors.union([DirectoryIdentity(entry.status)].compactMap { $0 })
            try walk(directory: item.path, depth: depth + 1, ancestors: below, into: &listed)
        }
    }

    /// One listed entry under the policy: refused, recorded without walking into it, or
    /// ordinary; and whether it is a directory to walk into. `depth`: levels below the root.
    private func judge(
        _ entry: RemoteDirectoryEntry, in directory: [UInt8], depth: Int, ancestors: Set<DirectoryIdentity>
    ) -> (Listed, walkInto: Bool) {
        let path = directory + [47] + entry.name
        var item = Listed(path: path, name: entry.name, status: entry.errno == nil ? entry.status : nil, errno: entry.errno)
        let isDirectory = entry.errno == nil && entry.status.type == .directory
        func found(_ kind: FileTreeAnomaly.Kind, _ action: FileTreeAnomaly.Action, _ reason: String) {
            item.anomaly = FileTreeAnomaly(kind: kind, devicePath: path, name: entry.name, action: action, reason: reason)
        }
        switch DeviceTreePolicy.verdict(forName: entry.name, isDirectory: isDirectory) {
        case .refused(let kind):
            found(kind, .skipped, Self.refusalReason(kind))
            return (item, false)
        case .unprintable:
            found(.unprintableName, .storedUnderSafeName, "the name holds control characters or bytes that are not UTF-8")
        case .ordinary, .selfOrParent:
            break
        }
        let limit = DeviceTreePolicy.maximumPathBytes
        if path.count > limit {
            found(.pathTooLong, .skipped, "the path is \(path.count) bytes; sync allows \(limit)")
            return (item, false)
        }
        guard isDirectory else { return (item, false) }
        if let identity = DirectoryIdentity(entry.status), ancestors.contains(identity) {
            found(
                .directoryCycle, .notWalked,
                "device \(identity.device) inode \(identity.inode) is a directory already on this path (a link loop or a tampered listing)")
            return (item, false)
        }
        if depth >= DeviceTreePolicy.maximumDepth {
            found(.tooDeep, .notWalked, "\(depth) levels below the root; \(DeviceTreePolicy.maximumDepth) are walked at most")
            return (item, false)
        }
        if path.count + 1 > limit {
            found(.pathTooLong, .notWalked, "listing it takes a path of \(path.count + 1) bytes; sync allows \(limit)")
            return (item, false)
        }
        return (item, true)
    }

    public static func refusalReason(_ kind: FileTreeAnomaly.Kind) -> String {
        switch kind {
        case .emptyName: "an empty name is no file name"
        case .nameWithNUL: "a name holding NUL is no file name"
        case .nameWithSlash: "a name holding '/' is no file name: it would name another path"
        case .dotName: "'.' and '..' are the directory and its parent, listed here as something else"
        default: kind.rawValue
        }
    }

    /// Where a device path is kept in the bag (`DeviceTreePolicy.storedPath`), made unique
    /// when two device names escape alike.
    public func storedPath(for path: [UInt8]) -> String {
        let result = DeviceTreePolicy.storedPath(for: path)
        var unique = result
        var suffix = 2
        while storedNames.contains(unique) {
            unique = "\(result)#dup\(suffix)"
            suffix += 1
        }
        storedNames.insert(unique)
        return unique
    }

    /// Records every listed entry and pulls the regular files. `previous` holds complete
    /// entries of an interrupted run whose stored copies are reused when the phone still lists
    /// the same size and mtime. `onFile` gets each finished record (for the journal), `progress`
    /// the bytes pulled so far.
    public func extract(
        _ listed: [Listed], previous: [String: FileRecord], onFile: (FileRecord) throws -> Void,
        progress: (UInt64) -> Void
    ) throws {
        var pulled: UInt64 = 0
        for entry in listed {
            var record = Self.describe(entry)
            guard !entry.isRefused, entry.errno == nil, let status = entry.status, status.type == .regular else {
                if let anomaly = entry.anomaly { anomalies.append(anomaly) }
                records.append(record)
                try onFile(record)
                continue
            }
            let stored = storedPath(for: entry.path)
            guard stored.utf8.count <= DeviceTreePolicy.maximumStoredPathBytes else {
                let anomaly = FileTreeAnomaly(
                    kind: .pathTooLong, devicePath: entry.path, name: entry.name, action: .skipped,
                    reason: "stored with its escapes the path would be \(stored.utf8.count) bytes; "
                        + "\(DeviceTreePolicy.maximumStoredPathBytes) are kept at most")
                anomalies.append(anomaly)
                Self.refuse(&record, anomaly)
                records.append(record)
                try onFile(record)
                continue
            }
            // A file's anomaly is noted once its stored name is known.
            if var anomaly = entry.anomaly {
                anomaly.storedAs = stored
                anomalies.append(anomaly)
            }
            record.storedAs = stored
            if let earlier = previous[record.path], earlier.status == .complete, earlier.size == status.size, earlier.mtime == status.mtime,
                earlier.storedAs == stored, DurableFile.size(of: "\(bag)/\(stored)") == earlier.bytesReceived
            {
                // Pulled and hashed before the interruption; the read-back check re-hashes it.
                records.append(earlier)
                pulled += earlier.bytesReceived ?? 0
                progress(pulled)
                continue
            }
            do {
                try pull(entry.path, listedSize: status.size, into: &record, pulled: &pulled, progress: progress)
            } catch {
                records.append(record)
                try? onFile(record)
                throw error
            }
            records.append(record)
            try onFile(record)
        }
    }

    /// An entry's record before anything is pulled: its metadata, the errno the listing gave,
    /// and what the policy found.
    public static func describe(_ entry: Listed) -> FileRecord {
        var record = FileRecord(
            path: String(decoding: entry.path, as: UTF8.self),
            pathHex: String(validating: entry.path, as: UTF8.self) == nil ? entry.path.map { String(format: "%02x", $0) }.joined() : nil,
            storedAs: nil, type: entry.status?.type.rawValue ?? "unknown", status: .notPulled)
        if let status = entry.status {
            record.mode = String(status.mode, radix: 8)
            record.uid = status.uid
            record.gid = status.gid
            record.size = status.size
            record.atime = status.atime
            record.mtime = status.mtime
            record.ctime = status.ctime
            record.inode = status.inode
        }
        if let errno = entry.errno {
            record.status = errno == UInt32(EACCES) ? .denied : .error
            record.error = String(cString: strerror(Int32(errno)))
        }
        if let anomaly = entry.anomaly {
            record.anomaly = anomaly.kind.rawValue
            record.listedName = anomaly.name
            if entry.isRefused { refuse(&record, anomaly) }
        }
        return record
    }

    public static func refuse(_ record: inout FileRecord, _ anomaly: FileTreeAnomaly) {
        record.status = .refused
        record.error = anomaly.reason
        record.anomaly = anomaly.kind.rawValue
        record.listedName = anomaly.name
    }

    /// Streams one file into its stored copy, hashing it; fills the record's status, bytes and
    /// SHA-256. A connection that fails mid-file leaves the record partial and throws.
    private func pull(
        _ path: [UInt8], listedSize: UInt64, into record: inout FileRecord, pulled: inout UInt64, progress: (UInt64) -> Void
    ) throws {
        guard let stored = record.storedAs else { return }
        let file = try HashingFile(bag: bag, storedPath: stored)
        let base = pulled
        do {
            let received = try sync.receive(path) { chunk in
                try file.write(chunk)
                progress(base + file.bytes)
            }
            pulled += received.bytes
            record.bytesReceived = received.bytes
            record.sha256 = file.finish()
            switch received.end {
            case .complete:
                record.status = .complete
                if received.bytes != listedSize {
                    record.error = "the phone listed \(listedSize) bytes and sent \(received.bytes): the file changed while it was read"
                }
            case .failed(let message):
                record.status = received.bytes == 0 && message.contains("open failed") ? .denied : .partial
                record.error = message
                if record.status == .denied {
                    try? FileManager.default.removeItem(atPath: file.path)
                    record.storedAs = nil
                    record.sha256 = nil
                    record.bytesReceived = nil
                }
            }
        } catch {
            // The connection failed mid-file: keep what arrived, marked partial, then stop.
            record.status = .partial
            record.bytesReceived = file.bytes
            record.sha256 = file.finish()
            record.error = "\(error)"
            throw error
        }
    }

    public func log() throws -> Data { try ExhibitJSON.lines(records) }
}

/// A partition streamed from the phone through `exec:` as the pipeline's source: the same
/// readers, digests and image writer as a disk.
public final class PhoneStreamSource: StreamSource, @unchecked Sendable {
    public let path: String
    public let size: UInt64
    private let stream: ADBStream
    private var position: UInt64 = 0

    public init(stream: ADBStream, path: String, size: UInt64) {
        self.stream = stream
        self.path = path
        self.size = size
    }

    public func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
        precondition(offset == position, "the phone's stream is read in order")
        let filled: Int
        do {
            filled = try stream.read(into: destination, count: count)
        } catch {
            throw AcquisitionError(
                error.code == .disconnected ? .sourceVanished : .readFailed, path: path, offset: stream.bytesRead,
                detail: error.description)
        }
        position += UInt64(filled)
        guard filled == count else {
            throw AcquisitionError(
                .sourceChanged, path: path, offset: position,
                detail: "the phone ended the stream after \(position) bytes; blockdev reported \(size)")
        }
        return []
    }

    /// After the last byte the stream must end: more bytes mean the size was wrong.
    public func checkEnd() throws(AcquisitionError) {
        var probe: UInt8 = 0
        let extra: Int
        do { extra = try stream.read(into: &probe, count: 1) } catch {
            throw AcquisitionError(.readFailed, path: path, offset: position, detail: error.description)
        }
        guard extra == 0 else {
            throw AcquisitionError(.sourceChanged, path: path, offset: position, detail: "the phone sent more than the \(size) bytes blockdev reported")
        }
    }
}
