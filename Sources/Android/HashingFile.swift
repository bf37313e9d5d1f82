// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

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
