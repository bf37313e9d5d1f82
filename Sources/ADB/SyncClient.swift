// SPDX-License-Identifier: Apache-2.0

/// A file's metadata as the phone reports it. v2 requests give every field with 64-bit sizes
/// and times; v1 gives mode, a 32-bit size and mtime only (the others are nil).
public struct RemoteFileStatus: Sendable, Equatable, Codable {
    public var mode: UInt32
    public var size: UInt64
    public var mtime: Int64
    public var atime: Int64?
    public var ctime: Int64?
    public var uid: UInt32?
    public var gid: UInt32?
    public var inode: UInt64?
    public var device: UInt64?
    public var linkCount: UInt32?

    public init(mode: UInt32, size: UInt64, mtime: Int64) {
        self.mode = mode
        self.size = size
        self.mtime = mtime
    }

    public var type: FileType { FileType(mode: mode) }

    public enum FileType: String, Sendable, Codable {
        case regular, directory, symlink, characterDevice = "character-device", blockDevice = "block-device", fifo, socket,
            unknown

        init(mode: UInt32) {
            switch mode & 0o170000 {
            case 0o100000: self = .regular
            case 0o040000: self = .directory
            case 0o120000: self = .symlink
            case 0o020000: self = .characterDevice
            case 0o060000: self = .blockDevice
            case 0o010000: self = .fifo
            case 0o140000: self = .socket
            default: self = .unknown
            }
        }
    }
}

/// One entry of a directory listing. `name` is the raw bytes the phone sent, unchecked: a
/// tampered adbd may list `.`, `..`, an empty name, or one holding `/` or NUL, and whoever
/// walks the tree decides what such an entry is (Evidence's `DeviceTreePolicy`); one bad name
/// must not end the listing of the rest.
public struct RemoteDirectoryEntry: Sendable, Equatable {
    public var name: [UInt8]
    public var status: RemoteFileStatus
    /// The errno the phone gave for this entry's lstat (v2), when it failed.
    public var errno: UInt32?
}

/// The sync service (`sync:`, AOSP file_sync_protocol.h): requests of a 4-byte id, a 4-byte
/// length and a path; STA2/LST2/LIS2/RCV2 when the phone offers them (64-bit sizes, all times,
/// uid/gid/inode), else STAT/LIST/RECV. adbd ends the service after a failed RECV, so a session
/// reopens itself for the next request.
public final class SyncSession {
    static let maximumPath = 1024
    static let maximumData = 64 * 1024
    static let statV2Size = 72
    static let dentV2Size = 76

    private let connection: ADBConnection
    private var stream: ADBStream?
    public let statV2: Bool
    public let listV2: Bool
    public let receiveV2: Bool

    public init(connection: ADBConnection) {
        self.connection = connection
        statV2 = connection.features.contains("stat_v2")
        listV2 = connection.features.contains("ls_v2")
        receiveV2 = connection.features.contains("sendrecv_v2")
    }

    deinit { close() }

    /// Ends the service politely (QUIT).
    public func close() {
        guard let stream else { return }
        try? stream.write(Self.request("QUIT", []))
        stream.close()
        self.stream = nil
    }

    private var device: String { connection.device }

    private func session() throws(ADBError) -> ADBStream {
        if let stream { return stream }
        let opened = try connection.open("sync:")
        stream = opened
        return opened
    }

    /// Drops the stream after a failure, so that the next request starts a new service.
    private func abandon() {
        stream?.close()
        stream = nil
    }

    static func request(_ id: String, _ path: [UInt8]) -> [UInt8] {
        Array(id.utf8) + le32(UInt32(path.count)) + path
    }

    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
    }

    static func id(_ bytes: [UInt8], _ at: Int = 0) -> String { String(decoding: bytes[at..<(at + 4)], as: UTF8.self) }

    private func checkPath(_ path: [UInt8], _ operation: String) throws(ADBError) {
        guard path.count <= Self.maximumPath else {
            throw ADBError(.unsupported, operation: operation, device: device, "the path is \(path.count) bytes; sync allows \(Self.maximumPath)")
        }
    }

    /// Runs one request, abandoning the session on any failure so that framing is never guessed.
    private func exchange<T>(_ operation: String, _ body: (ADBStream) throws(ADBError) -> T) throws(ADBError) -> T {
        let stream = try session()
        do throws(ADBError) {
            return try body(stream)
        } catch {
            abandon()
            throw error
        }
    }

    /// lstat: a symlink is described itself, not followed. Nil with the errno when it failed.
    public func lstat(_ path: [UInt8]) throws(ADBError) -> (status: RemoteFileStatus?, errno: UInt32?) {
        try status(path, follow: false)
    }

    /// stat: symlinks followed (for the root of a walk such as `/sdcard`).
    public func stat(_ path: [UInt8]) throws(ADBError) -> (status: RemoteFileStatus?, errno: UInt32?) {
        try status(path, follow: true)
    }

    private func status(_ path: [UInt8], follow: Bool) throws(ADBError) -> (status: RemoteFileStatus?, errno: UInt32?) {
        let id = statV2 ? (follow ? "STA2" : "LST2") : "STAT"
        let operation = "\(id) \(String(decoding: path, as: UTF8.self))"
        try checkPath(path, operation)
        return try exchange(operation) { (stream) throws(ADBError) in
            try stream.write(Self.request(id, path))
            if statV2 {
                let reply = try stream.read(exactly: Self.statV2Size, for: operation)
                guard Self.id(reply) == id else { throw unexpected(reply, operation, stream) }
                let error = Self.u32(reply, 4)
                if error != 0 { return (nil, error) }
                return (Self.statusV2(reply, at: 8), nil)
            }
            let reply = try stream.read(exactly: 16, for: operation)
            guard Self.id(reply) == "STAT" else { throw unexpected(reply, operation, stream) }
            let mode = Self.u32(reply, 4)
            // v1 has no errno: all zeros means the path could not be stat'ed.
            if mode == 0 && Self.u32(reply, 8) == 0 && Self.u32(reply, 12) == 0 { return (nil, 2) }
            return (RemoteFileStatus(mode: mode, size: UInt64(Self.u32(reply, 8)), mtime: Int64(Self.u32(reply, 12))), nil)
        }
    }

    /// dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime from `bytes[at...]`.
    static func statusV2(_ bytes: [UInt8], at base: Int) -> RemoteFileStatus {
        var status = RemoteFileStatus(mode: u32(bytes, base + 16), size: u64(bytes, base + 32), mtime: Int64(bitPattern: u64(bytes, base + 48)))
        status.device = u64(bytes, base)
        status.inode = u64(bytes, base + 8)
        status.linkCount = u32(bytes, base + 20)
        status.uid = u32(bytes, base + 24)
        status.gid = u32(bytes, base + 28)
        status.atime = Int64(bitPattern: u64(bytes, base + 40))
        status.ctime = Int64(bitPattern: u64(bytes, base + 56))
        return status
    }

    private func unexpected(_ reply: [UInt8], _ operation: String, _ stream: ADBStream) -> ADBError {
        let shown = reply.prefix(4).map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x\(String($0, radix: 16))" }.joined()
        return ADBError(
            .protocolViolation, operation: operation, device: device, offset: stream.bytesRead,
            "the phone answered \"\(shown)\", not a reply to this request")
    }

    /// The entries of a directory as the phone listed them, `.` and `..` included, names
    /// unchecked (see `RemoteDirectoryEntry`). Only what breaks the framing is an error.
    public func list(_ path: [UInt8]) throws(ADBError) -> [RemoteDirectoryEntry] {
        let id = listV2 ? "LIS2" : "LIST"
        let operation = "\(id) \(String(decoding: path, as: UTF8.self))"
        try checkPath(path, operation)
        return try exchange(operation) { (stream) throws(ADBError) in
            try stream.write(Self.request(id, path))
            var entries: [RemoteDirectoryEntry] = []
            while true {
                let size = listV2 ? Self.dentV2Size : 20
                let header = try stream.read(exactly: size, for: operation)
                let replyId = Self.id(header)
                if replyId == "DONE" { return entries }
                guard replyId == (listV2 ? "DNT2" : "DENT") else { throw unexpected(header, operation, stream) }
                let length = Int(Self.u32(header, size - 4))
                // A name no file system holds is still read, for the walk to refuse; only one
                // longer than any sync message is not trusted to be followed by a next entry.
                guard length <= Self.maximumData else {
                    throw ADBError(
                        .protocolViolation, operation: operation, device: device, offset: stream.bytesRead,
                        "an entry name of \(length) bytes; sync messages carry \(Self.maximumData) at most")
                }
                let name = try stream.read(exactly: length, for: operation)
                if listV2 {
                    let error = Self.u32(header, 4)
                    entries.append(RemoteDirectoryEntry(name: name, status: Self.statusV2(header, at: 8), errno: error == 0 ? nil : error))
                } else {
                    let status = RemoteFileStatus(
                        mode: Self.u32(header, 4), size: UInt64(Self.u32(header, 8)), mtime: Int64(Self.u32(header, 12)))
                    entries.append(RemoteDirectoryEntry(name: name, status: status, errno: nil))
                }
            }
        }
    }

    /// How a RECV ended.
    public enum ReceiveEnd: Sendable, Equatable {
        case complete
        /// The phone sent FAIL (before any data: could not open; after: a read error).
        case failed(String)
    }

    /// Streams a file's content to `sink` as it arrives (chunks of at most 64 KiB). A phone-side
    /// failure is returned, not thrown, with the bytes received before it; transport failures throw.
    public func receive(_ path: [UInt8], into sink: ([UInt8]) throws -> Void) throws -> (bytes: UInt64, end: ReceiveEnd) {
        let id = receiveV2 ? "RCV2" : "RECV"
        let operation = "\(id) \(String(decoding: path, as: UTF8.self))"
        try checkPath(path, operation)
        let stream = try session()
        var received: UInt64 = 0
        do {
            try stream.write(Self.request(id, path) + (receiveV2 ? Array("RCV2".utf8) + Self.le32(0) : []))
            while true {
                let header = try stream.read(exactly: 8, for: operation)
                let length = Int(Self.u32(header, 4))
                switch Self.id(header) {
                case "DATA":
                    guard length <= Self.maximumData else {
                        throw ADBError(
                            .protocolViolation, operation: operation, device: device, offset: received,
                            "a DATA chunk of \(length) bytes; sync allows \(Self.maximumData)")
                    }
                    let data = try stream.read(exactly: length, for: operation)
                    received += UInt64(length)
                    try sink(data)
                case "DONE":
                    return (received, .complete)
                case "FAIL":
                    guard length <= 4096 else { throw unexpected(header, operation, stream) }
                    let message = try stream.read(exactly: length, for: operation)
                    abandon()  // adbd ends the sync service after a failed RECV
                    return (received, .failed(String(decoding: message, as: UTF8.self)))
                default:
                    throw unexpected(header, operation, stream)
                }
            }
        } catch let error as ADBError {
            abandon()
            throw error.during(operation, offset: received)
        } catch {
            abandon()
            throw error
        }
    }
}
