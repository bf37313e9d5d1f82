// SPDX-License-Identifier: Apache-2.0
import COpenSSL
import Foundation

/// Scoped access to OpenSSL memory BIOs; the BIO never outlives the closure.
enum MemoryBIO {
    /// A read-only BIO over `data`, valid only inside `body`.
    static func reading<T>(_ data: Data, _ body: (OpaquePointer) throws -> T) rethrows -> T {
        try data.withUnsafeBytes { raw in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))!
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }

    /// A writable BIO; returns what `body` wrote to it.
    static func writing(_ body: (OpaquePointer) throws -> Void) rethrows -> Data {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        try body(bio)
        var pointer: UnsafeMutablePointer<CChar>? = nil
        let length = exhibit_bio_mem_data(bio, &pointer)
        guard let pointer, length > 0 else { return Data() }
        return Data(bytes: pointer, count: length)
    }
}
