// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// Appends JSON lines to a journal file; a line torn by a crash is skipped when read.
final class JournalAppender {
    private let descriptor: Int32
    private let path: String
    private var lastSync = Date()

    init(_ path: String) throws(AcquisitionError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, errno: errno, detail: "the job's file journal") }
    }

    deinit {
        fdatasync(descriptor)
        close(descriptor)
    }

    func append(_ value: some Encodable) throws {
        let line = try ExhibitJSON.lines([value])
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == line.count else { throw AcquisitionError(.writeFailed, path: path, errno: errno, detail: "the job's file journal") }
        if Date().timeIntervalSince(lastSync) > 2 {
            fdatasync(descriptor)
            lastSync = Date()
        }
    }
}
