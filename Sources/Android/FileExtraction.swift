// SPDX-License-Identifier: Apache-2.0
import ADB
import Evidence
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

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
