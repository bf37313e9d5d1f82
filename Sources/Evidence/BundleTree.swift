// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import HumanText

#if canImport(Glibc)
    import Glibc

#endif

/// A bundle directory read by descriptor, the only way the verifier touches a bundle.
///
/// A carrier may plant anything: a file nested past PATH_MAX (a walk by path gets ENAMETOOLONG
/// and never sees it), a symbolic link to a file or directory outside the bundle, a FIFO that
/// blocks whoever opens it, a link to `/dev/zero`. So every entry is examined with
/// `fstatat(AT_SYMLINK_NOFOLLOW)` from its directory's descriptor, directories are entered with
/// `openat(O_NOFOLLOW | O_DIRECTORY)`, files are opened `O_NOFOLLOW | O_NONBLOCK` and used only
/// if `fstat` says regular, and every read is bounded.
public final class BundleTree {
    public enum EntryKind: String, Sendable {
        case file, directory
        case symbolicLink = "symbolic link"
        case fifo = "FIFO"
        case socket
        case characterDevice = "character device"
        case blockDevice = "block device"
        case unknown = "entry of unknown type"

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .file
            case S_IFDIR: self = .directory
            case S_IFLNK: self = .symbolicLink
            case S_IFIFO: self = .fifo
            case S_IFSOCK: self = .socket
            case S_IFCHR: self = .characterDevice
            case S_IFBLK: self = .blockDevice
            default: self = .unknown
            }
        }
    }

    /// Everything the walk found, by bag-relative path.
    public struct Listing: Sendable {
        /// Regular files and their sizes.
        public var files: [String: UInt64] = [:]
        public var directories: [String] = []
        /// Entries that have no place in a sealed bundle (links, FIFOs, sockets, devices).
        public var foreign: [(path: String, kind: EntryKind)] = []
        /// Directories deeper than the walk goes, reported rather than ignored.
        public var tooDeep: [String] = []
        /// Entries that could not be examined, with errno.
        public var unreadable: [(path: String, errno: Int32)] = []
        /// Entries whose names are not printable UTF-8 (shown escaped); no manifest line can name them.
        public var unprintable: [String] = []

        public var byteCount: UInt64 { files.values.reduce(0, +) }

        /// What keeps this tree from being a sealed bundle, an entry a line: the sealer refuses
        /// to seal it and the verifier reports it, in these words.
        public var refusals: [(path: String, reason: String)] {
            foreign.map { ($0.path, "is a \($0.kind.rawValue); a sealed bundle holds only regular files and directories, and none is followed or opened") }
                + tooDeep.map { ($0, "lies more than \(BundleTree.maximumDepth) directories deep; a sealed bundle never does, and what is below is not examined") }
                + unprintable.map { ($0, "has a name that is not printable UTF-8 (shown escaped); no manifest line names it") }
        }
    }

    /// Deeper than any bundle Exhibit writes (a phone's paths are at most 1024 bytes, so at most
    /// 512 levels, and extraction stops far sooner); each level holds one descriptor.
    public static let maximumDepth = 200

    public let path: String
    private let root: Int32

    /// Opens the bundle directory itself; a symbolic link in its place is refused.
    public init(path: String) throws(EvidenceError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let error = errno
            throw EvidenceError(
                .readFailed, path: path, errno: error,
                detail: error == ELOOP || error == ENOTDIR ? "not a bundle directory (a symbolic link or a file)" : nil)
        }
        root = descriptor
    }

    deinit { close(root) }

    /// Every entry of the bundle, however deep, without following any link.
    public func walk() -> Listing {
        var listing = Listing()
        walk(directory: root, prefix: "", depth: 0, into: &listing)
        listing.directories.sort()
        listing.foreign.sort { $0.path < $1.path }
        return listing
    }

    private func walk(directory: Int32, prefix: String, depth: Int, into listing: inout Listing) {
        for name in entryNames(of: directory, prefix: prefix, into: &listing) {
            let relative = prefix.isEmpty ? name.text : "\(prefix)/\(name.text)"
            if !name.printable { listing.unprintable.append(relative) }
            var status = stat()
            guard fstatat(directory, name.raw, &status, AT_SYMLINK_NOFOLLOW) == 0 else {
                listing.unreadable.append((relative, errno))
                continue
            }
            switch EntryKind(mode: status.st_mode) {
            case .file:
                listing.files[relative] = UInt64(status.st_size)
            case .directory:
                listing.directories.append(relative)
                guard depth + 1 < Self.maximumDepth else {
                    listing.tooDeep.append(relative)
                    continue
                }
                let child = openat(directory, name.raw, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    listing.unreadable.append((relative, errno))
                    continue
                }
                walk(directory: child, prefix: relative, depth: depth + 1, into: &listing)
                close(child)
            case let kind:
                listing.foreign.append((relative, kind))
            }
        }
    }

    /// The names in one directory (without `.` and `..`), as raw bytes and as text: the name
    /// itself when it is printable UTF-8, escaped otherwise.
    private func entryNames(
        of directory: Int32, prefix: String, into listing: inout Listing
    ) -> [(raw: [CChar], text: String, printable: Bool)] {
        // fdopendir takes the descriptor it is given; a duplicate keeps ours for fstatat/openat.
        let duplicate = dup(directory)
        guard duplicate >= 0, let stream = fdopendir(duplicate) else {
            listing.unreadable.append((prefix.isEmpty ? "." : prefix, errno))
            if duplicate >= 0 { close(duplicate) }
            return []
        }
        defer { closedir(stream) }
        var names: [(raw: [CChar], text: String, printable: Bool)] = []
        while let entry = readdir(stream) {
            let raw = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                Array(bytes.bindMemory(to: CChar.self).prefix { $0 != 0 }) + [0]
            }
            let bytes = raw.dropLast().map { UInt8(bitPattern: $0) }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            if let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains(where: PlainText.isForbidden) {
                names.append((raw, text, true))
            } else {
                names.append((raw, PlainText.escaped(bytes: bytes), false))
            }
        }
        return names.sorted { $0.text < $1.text }
    }

    /// The contents of the regular file at `relative`, refused when it is anything else or larger
    /// than `limit` bytes.
    public func contents(of relative: String, limit: Int) throws(EvidenceError) -> Data {
        let file = try openFile(relative)
        defer { close(file.descriptor) }
        guard file.size <= UInt64(limit) else {
            throw EvidenceError(
                .tooLarge, path: relative, detail: "is \(file.size) bytes; at most \(limit) are read from a bundle's \(relative)")
        }
        var data = Data(count: Int(file.size))
        var done = 0
        let failure: Int32 = data.withUnsafeMutableBytes { buffer in
            while done < buffer.count {
                let count = pread(file.descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(done))
                if count < 0, errno == EINTR { continue }
                if count < 0 { return errno }
                if count == 0 { break }
                done += count
            }
            return 0
        }
        guard failure == 0 else { throw EvidenceError(.readFailed, path: relative, errno: failure) }
        return data.prefix(done)
    }

    /// SHA-256 of the regular file at `relative`, streamed in 1 MiB reads.
    public func sha256(of relative: String) throws(EvidenceError) -> DigestValue {
        let file = try openFile(relative)
        defer { close(file.descriptor) }
        return try DurableFile.sha256(descriptor: file.descriptor, path: relative)
    }

    /// Opens the regular file at `relative` for reading; the caller owns the descriptor.
    /// No component may be a link, `..`, or anything but a directory, and the file itself must be
    /// regular: a FIFO is opened non-blocking and refused, never read.
    public func openFile(_ relative: String) throws(EvidenceError) -> (descriptor: Int32, size: UInt64) {
        let components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw EvidenceError(.notRegularFile, path: relative, detail: "is not a plain path inside the bundle")
        }
        var directory = root
        var owned: Int32? = nil
        defer { if let owned { close(owned) } }
        for component in components.dropLast() {
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { throw Self.openError(relative, errno) }
            if let owned { close(owned) }
            owned = next
            directory = next
        }
        // O_PATH opens nothing: a device node's driver is not called (a tape rewinds when closed,
        // a watchdog arms), a FIFO is not joined. Only a regular file is then opened for reading,
        // the same inode, through the descriptor's /proc link (a name looked up again could have
        // been swapped meanwhile).
        let located = openat(directory, components.last!, Self.pathOnly | O_NOFOLLOW | O_CLOEXEC)
        guard located >= 0 else { throw Self.openError(relative, errno) }
        defer { close(located) }
        var status = stat()
        guard fstat(located, &status) == 0 else { throw EvidenceError(.readFailed, path: relative, errno: errno) }
        let kind = EntryKind(mode: status.st_mode)
        guard kind != .symbolicLink else { throw Self.openError(relative, ELOOP) }
        guard kind == .file else { throw EvidenceError(.notRegularFile, path: relative, detail: "is a \(kind.rawValue), not a regular file") }
        let descriptor = open("/proc/self/fd/\(located)", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else { throw EvidenceError(.readFailed, path: relative, errno: errno, detail: "opening it through /proc/self/fd") }
        return (descriptor, UInt64(status.st_size))
    }

    /// O_PATH (Linux), which Glibc declares only under _GNU_SOURCE, as Swift's Glibc is not built.
    private static let pathOnly: Int32 = 0o10000000

    private static func openError(_ relative: String, _ error: Int32) -> EvidenceError {
        switch error {
        case ELOOP: return EvidenceError(.notRegularFile, path: relative, detail: "is a symbolic link or lies behind one")
        case ENOTDIR: return EvidenceError(.notRegularFile, path: relative, detail: "lies behind something that is not a directory")
        case ENOENT: return EvidenceError(.missing, path: relative)
        default: return EvidenceError(.readFailed, path: relative, errno: error)
        }
    }
}
