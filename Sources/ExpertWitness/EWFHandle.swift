// SPDX-License-Identifier: Apache-2.0
import CEWF
import Foundation
import Imaging

/// One libewf handle and its only owner: closed (if open) and freed when dropped.
///
/// libewf 20140813 has no locks: a handle is used by one thread at a time. The writer calls it
/// from its pipeline thread only; the compression workers never touch it.
final class EWFHandle {
    private var raw: UnsafeMutablePointer<libewf_handle_t>?
    private(set) var isOpen = false
    /// The image named in errors: the first segment file, or the base name while writing.
    let path: String

    init(path: String) throws(AcquisitionError) {
        self.path = path
        var error: UnsafeMutablePointer<libewf_error_t>?
        guard libewf_handle_initialize(&raw, &error) == 1 else {
            throw Self.failure("libewf_handle_initialize", code: .openFailed, path: path, offset: nil, error: &error)
        }
    }

    deinit {
        // libewf_handle_close (and _free, which calls it) finalizes a write that was not: a
        // writer dropped mid-stream (a failed or cancelled job) gets closing sections where it
        // stopped, without digests and with the media size unchanged, so ewfverify fails it. A
        // resumed job is unaffected: libewf's resume goes back past them to its last complete
        // chunks section (measured with a segmented and an unsegmented image).
        if isOpen { _ = libewf_handle_close(raw, nil) }
        _ = libewf_handle_free(&raw, nil)
    }

    /// Calls libewf; a negative result becomes an error naming the call, the image, the stream
    /// offset and libewf's own account of what failed.
    @discardableResult
    func call<Result: BinaryInteger>(
        _ operation: String, code: AcquisitionError.Code = .writeFailed, offset: UInt64? = nil,
        _ body: (UnsafeMutablePointer<libewf_handle_t>, UnsafeMutablePointer<UnsafeMutablePointer<libewf_error_t>?>) -> Result
    ) throws(AcquisitionError) -> Result {
        var error: UnsafeMutablePointer<libewf_error_t>?
        let result = body(raw!, &error)
        if result < 0 { throw Self.failure(operation, code: code, path: path, offset: offset, error: &error) }
        if error != nil { libewf_error_free(&error) }
        return result
    }

    /// Opens segment files (`names`: the base name to write, or every segment to read or resume).
    func open(_ names: [String], flags: Int32, code: AcquisitionError.Code) throws(AcquisitionError) {
        var arguments = names.map { strdup($0) }
        defer { for argument in arguments { free(argument) } }
        try call("libewf_handle_open", code: code) { handle, error in
            arguments.withUnsafeMutableBufferPointer { pointers in
                libewf_handle_open(handle, pointers.baseAddress, Int32(names.count), flags, error)
            }
        }
        isOpen = true
    }

    /// Closes the segment files (after `write_finalize` when writing); errors are reported.
    func close() throws(AcquisitionError) {
        guard isOpen else { return }
        isOpen = false
        try call("libewf_handle_close") { handle, error in libewf_handle_close(handle, error) }
    }

    /// libewf copies an identifier with its terminating NUL (length + 1 bytes), so keys and
    /// values are passed NUL-terminated, with their lengths without it.
    private static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

    func setHeader(_ identifier: String, _ value: String) throws(AcquisitionError) {
        let key = Self.cString(identifier), text = Self.cString(value)
        try call("libewf_handle_set_utf8_header_value(\(identifier))") { handle, error in
            libewf_handle_set_utf8_header_value(handle, key, key.count - 1, text, text.count - 1, error)
        }
    }

    func header(_ identifier: String) throws(AcquisitionError) -> String? {
        try utf8Value(identifier, getSize: libewf_handle_get_utf8_header_value_size, get: libewf_handle_get_utf8_header_value)
    }

    func setHash(_ identifier: String, _ value: String) throws(AcquisitionError) {
        let key = Self.cString(identifier), text = Self.cString(value)
        try call("libewf_handle_set_utf8_hash_value(\(identifier))") { handle, error in
            libewf_handle_set_utf8_hash_value(handle, key, key.count - 1, text, text.count - 1, error)
        }
    }

    func hash(_ identifier: String) throws(AcquisitionError) -> String? {
        try utf8Value(identifier, getSize: libewf_handle_get_utf8_hash_value_size, get: libewf_handle_get_utf8_hash_value)
    }

    private typealias SizeGetter = (
        UnsafeMutablePointer<libewf_handle_t>?, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?,
        UnsafeMutablePointer<UnsafeMutablePointer<libewf_error_t>?>?
    ) -> Int32
    private typealias ValueGetter = (
        UnsafeMutablePointer<libewf_handle_t>?, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UInt8>?, Int,
        UnsafeMutablePointer<UnsafeMutablePointer<libewf_error_t>?>?
    ) -> Int32

    /// A header or hash value: libewf returns 0 when the image has none.
    private func utf8Value(_ identifier: String, getSize: SizeGetter, get: ValueGetter) throws(AcquisitionError) -> String? {
        let key = Self.cString(identifier)
        var size = 0
        let present = try call("reading the value \(identifier)", code: .readFailed) { handle, error in
            getSize(handle, key, key.count - 1, &size, error)
        }
        guard present == 1, size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        try call("reading the value \(identifier)", code: .readFailed) { handle, error in
            get(handle, key, key.count - 1, &bytes, size, error)
        }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The libewf error as text (its backtrace on one line), freed.
    static func failure(
        _ operation: String, code: AcquisitionError.Code, path: String, offset: UInt64?,
        error: inout UnsafeMutablePointer<libewf_error_t>?
    ) -> AcquisitionError {
        var text = [CChar](repeating: 0, count: 4096)
        cewf_error_take(&error, &text, text.count)
        let message = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(whereSeparator: \.isNewline).joined(separator: "; ")
        return AcquisitionError(code, path: path, offset: offset, detail: "\(operation): \(message.isEmpty ? "failed" : message)")
    }
}
