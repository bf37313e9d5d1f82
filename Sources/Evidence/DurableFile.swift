// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// Small files written so that they survive a power cut once the call returns.
public enum DurableFile {
    /// Creates `path` (which must not exist), writes `data`, fsyncs it and sets `mode`.
    public static func create(_ path: String, contents data: Data, mode: mode_t = 0o444) throws(EvidenceError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EvidenceError(.writeFailed, path: path, errno: errno) }
        defer { close(descriptor) }
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let result = write(descriptor, raw.baseAddress! + done, raw.count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += result
            }
        }
        if failure != 0 { throw EvidenceError(.writeFailed, path: path, errno: failure) }
        guard fsync(descriptor) == 0 else { throw EvidenceError(.syncFailed, path: path, errno: errno) }
        _ = fchmod(descriptor, mode)
    }

    /// Writes `data` to `path` through a temporary file and a rename: readers see the old or the new contents.
    public static func replace(_ path: String, contents data: Data, mode: mode_t = 0o644) throws(EvidenceError) {
        let temporary = "\(path).tmp-\(getpid())"
        unlink(temporary)
        try create(temporary, contents: data, mode: mode)
        guard rename(temporary, path) == 0 else { throw EvidenceError(.writeFailed, path: path, errno: errno) }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    public static func syncDirectory(_ path: String) throws(EvidenceError) {
        let descriptor = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw EvidenceError(.syncFailed, path: path, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw EvidenceError(.syncFailed, path: path, errno: errno) }
    }

    public static func read(_ path: String) throws(EvidenceError) -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvidenceError(.readFailed, path: path, errno: ENOENT)
        }
        return data
    }

    /// SHA-256 of a file, streamed in 1 MiB reads.
    public static func sha256(of path: String) throws(EvidenceError) -> DigestValue {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw EvidenceError(.readFailed, path: path, errno: errno) }
        defer { close(descriptor) }
        return try sha256(descriptor: descriptor, path: path)
    }

    /// SHA-256 of what remains to be read from `descriptor`; `path` names it in errors.
    public static func sha256(descriptor: Int32, path: String) throws(EvidenceError) -> DigestValue {
        let digest = Digest(.sha256)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw EvidenceError(.readFailed, path: path, errno: errno)
            }
            digest.update(UnsafeRawBufferPointer(rebasing: buffer.prefix(count)))
        }
        return digest.finalize()
    }

    /// Drops a file's clean pages from the page cache, so that the next read comes from the store.
    public static func dropFromCache(_ path: String) throws(EvidenceError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw EvidenceError(.readFailed, path: path, errno: errno) }
        defer { close(descriptor) }
        StoreWrites.dropFromCache(descriptor: descriptor)
    }

    public static func size(of path: String) -> UInt64? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return UInt64(status.st_size)
    }
}
