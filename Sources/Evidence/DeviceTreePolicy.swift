// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import HumanText
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// What a seized device's file listing may make Exhibit do, for every platform that walks one
/// (ADB sync, MTP, iOS backups): a name the device lists is data, never a path to follow. A
/// name that cannot be one component (empty, `/`, NUL, or a `.`/`..` that is not the
/// directory itself or its parent), a directory that is one of its own ancestors, and a walk
/// deeper or longer than the bounds are recorded as anomalies and not followed; a name that a
/// log line or a manifest cannot carry is stored under an escaped name. Whatever a device
/// lists, a stored file is created inside `data/files/` only, one checked component at a time.
public enum DeviceTreePolicy {
    /// Levels below a root that are recorded; a directory at this depth is recorded, not listed.
    public static let maximumDepth = 128
    /// The longest device path that is listed or pulled: ADB sync's limit (file_sync_protocol.h).
    public static let maximumPathBytes = 1024
    /// The longest stored component (Linux NAME_MAX); a longer escaped name is shortened.
    public static let maximumStoredComponentBytes = 255
    /// The longest stored path relative to the bag: with the store's own prefix it stays under
    /// PATH_MAX, so that the read-back, `sha256sum -c` and bagit.py can all open it.
    public static let maximumStoredPathBytes = 3072
    /// Where extracted files live in a bag.
    public static let filesDirectory = "data/files"

    /// What the policy makes of one listed name.
    public enum NameVerdict: Equatable, Sendable {
        /// An ordinary name: walked or pulled under its own name.
        case ordinary
        /// The `.` or `..` directory that every listing holds: skipped without a word.
        case selfOrParent
        /// A name that holds control characters or bytes that are not UTF-8: pulled, and stored
        /// under its escaped name.
        case unprintable
        /// A name that is not one component: recorded, never pulled or walked.
        case refused(FileTreeAnomaly.Kind)
    }

    /// Judges a name as the device listed it. `isDirectory`: what the device said it is.
    public static func verdict(forName name: [UInt8], isDirectory: Bool) -> NameVerdict {
        if name.isEmpty { return .refused(.emptyName) }
        if name.contains(0) { return .refused(.nameWithNUL) }
        if name.contains(UInt8(ascii: "/")) { return .refused(.nameWithSlash) }
        if name == [0x2E] || name == [0x2E, 0x2E] {
            // adbd lists the directory itself and its parent; anything else under those names
            // (a "file" called `..`) is a forgery that a path could not reach anyway.
            return isDirectory ? .selfOrParent : .refused(.dotName)
        }
        return isPrintable(name) ? .ordinary : .unprintable
    }

    // MARK: One printable line

    /// The name as one printable line, for logs and records (`PlainText.escaped(bytes:)`).
    public static func printable(_ bytes: some Collection<UInt8>, escapingSlash: Bool = false) -> String {
        PlainText.escaped(bytes: bytes, escapingSlash: escapingSlash)
    }

    static func isPrintable(_ name: [UInt8]) -> Bool {
        PlainText.scalarUnits(name).allSatisfy { if case .scalar(let scalar, _) = $0 { !PlainText.isForbidden(scalar) } else { false } }
    }

    // MARK: Stored names

    /// The bag-relative path where a device path's file is kept: `data/files` and one escaped
    /// component per device component. Each byte a file name, a manifest line or `sha256sum -c`
    /// could not carry is written `#xNN` (and `#`, `%`, `\` too, so the escape is reversible);
    /// a component that would be `.` or `..` has its dots escaped; one longer than NAME_MAX is
    /// cut and ends with a digest of the device's name.
    public static func storedPath(for devicePath: [UInt8]) -> String {
        var result = filesDirectory
        for component in devicePath.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            result += "/" + storedComponent(Array(component))
        }
        return result
    }

    static func storedComponent(_ name: [UInt8]) -> String {
        if name == [0x2E] || name == [0x2E, 0x2E] { return String(repeating: "#x2E", count: name.count) }
        var pieces: [String] = []
        for unit in PlainText.scalarUnits(name) {
            switch unit {
            case .scalar(let scalar, _) where !PlainText.isForbidden(scalar) && !"#%\\".unicodeScalars.contains(scalar):
                pieces.append(String(scalar))
            case .scalar(_, let raw), .invalid(let raw):
                pieces += raw.map { String(format: "#x%02X", $0) }
            }
        }
        let whole = pieces.joined()
        guard whole.utf8.count > maximumStoredComponentBytes else { return whole }
        // Cut between pieces, so that no escape is split, and name the original by its digest.
        let suffix = "#sha256-" + Digest.sha256(Data(name)).hex.prefix(16)
        var cut = ""
        for piece in pieces {
            guard cut.utf8.count + piece.utf8.count + suffix.utf8.count <= maximumStoredComponentBytes - 16 else { break }
            cut += piece
        }
        return cut + suffix
    }

    /// Whether a bag-relative stored path stays in `data/files/`: every component non-empty,
    /// not `.` or `..`, without NUL, and no longer than NAME_MAX.
    public static func isContained(_ storedPath: String) -> Bool {
        let components = storedPath.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count > 2, components[0] == "data", components[1] == "files" else { return false }
        return components.dropFirst(2).allSatisfy {
            !$0.isEmpty && $0 != "." && $0 != ".." && !$0.utf8.contains(0) && $0.utf8.count <= maximumStoredComponentBytes
        }
    }

    /// Creates (or truncates) a stored file for writing, below `bag`, one component at a time:
    /// each directory is made and opened with `O_NOFOLLOW` relative to the one before, and the
    /// file is opened the same way, so neither a name nor a link can lead outside `data/files/`.
    /// Returns the open descriptor.
    public static func createStoredFile(bag: String, storedPath: String, mode: mode_t = 0o644) throws(AcquisitionError) -> Int32 {
        guard isContained(storedPath) else {
            throw AcquisitionError(.writeFailed, path: "\(bag)/\(storedPath)", detail: "refused: the stored path would leave \(filesDirectory)/")
        }
        let components = storedPath.split(separator: "/").map(String.init)
        var directory = open(bag, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw AcquisitionError(.writeFailed, path: bag, errno: errno, detail: "opening the bag") }
        var reached = bag
        for component in components.dropLast() {
            reached += "/" + component
            if mkdirat(directory, component, 0o755) != 0 && errno != EEXIST {
                let failure = errno
                close(directory)
                throw AcquisitionError(failure == ENOSPC ? .storeFull : .writeFailed, path: reached, errno: failure, detail: "creating a directory of extracted files")
            }
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            close(directory)
            guard next >= 0 else {
                throw AcquisitionError(.writeFailed, path: reached, errno: failure, detail: "opening a directory of extracted files (links are not followed)")
            }
            directory = next
        }
        defer { close(directory) }
        let file = openat(directory, components[components.count - 1], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard file >= 0 else {
            throw AcquisitionError(.writeFailed, path: "\(bag)/\(storedPath)", errno: errno, detail: "creating an extracted file (links are not followed)")
        }
        return file
    }
}

/// Something a device's listing held that was not followed as it stood: what, where (the raw
/// path as one printable line), and what Exhibit did instead.
public struct FileTreeAnomaly: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case emptyName = "empty-name"
        case nameWithNUL = "name-with-nul"
        case nameWithSlash = "name-with-slash"
        /// A `.` or `..` that is not a directory.
        case dotName = "dot-name"
        /// Control characters or bytes that are not UTF-8: stored under an escaped name.
        case unprintableName = "unprintable-name"
        /// A directory whose device and inode are those of itself or an ancestor on the path.
        case directoryCycle = "directory-cycle"
        /// A directory at `DeviceTreePolicy.maximumDepth` levels below its root.
        case tooDeep = "too-deep"
        /// A path longer than `DeviceTreePolicy.maximumPathBytes`, or a stored path longer than
        /// `maximumStoredPathBytes`.
        case pathTooLong = "path-too-long"
    }

    public enum Action: String, Codable, Sendable {
        /// Recorded with its metadata; not pulled, not walked.
        case skipped
        /// Pulled (or walked) and kept under an escaped name (`storedAs` for a file).
        case storedUnderSafeName = "stored-under-safe-name"
        /// A directory recorded, its contents not listed.
        case notWalked = "not-walked"
    }

    public var kind: Kind
    /// The device path as one printable line (`DeviceTreePolicy.printable`).
    public var path: String
    /// The listed name as one printable line.
    public var name: String
    public var action: Action
    public var reason: String
    public var storedAs: String?

    /// `devicePath`: the directory's path, a slash and the listed name, as raw bytes; `name`:
    /// the listed name alone, which may itself hold a slash: in `path` that one is `\x2F`.
    public init(kind: Kind, devicePath: [UInt8], name: [UInt8], action: Action, reason: String, storedAs: String? = nil) {
        self.kind = kind
        path = DeviceTreePolicy.printable(devicePath.dropLast(name.count)) + DeviceTreePolicy.printable(name, escapingSlash: true)
        self.name = DeviceTreePolicy.printable(name)
        self.action = action
        self.reason = reason
        self.storedAs = storedAs
    }

    /// One line of acquisition.log.
    public var logLine: String {
        "anomaly \(kind.rawValue): \(path) (\(action.rawValue)\(storedAs.map { " as \($0)" } ?? "")): \(reason)"
    }
}
