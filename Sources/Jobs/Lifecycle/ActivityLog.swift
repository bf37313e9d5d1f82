// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import Imaging
import Logging

#if canImport(Glibc)
    import Glibc

#endif

/// The human-readable `acquisition.log` of one job, mirrored to the injected logger. Lines are
/// appended to a file in the job's work directory as they come, so a resumed job continues the
/// log of the run it resumes.
final class ActivityLog: @unchecked Sendable {
    private let lock = NSLock()
    private let logger: Logger
    private let path: String
    private let descriptor: Int32

    init(logger: Logger, path: String) throws(AcquisitionError) {
        self.logger = logger
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AcquisitionError(.openFailed, path: path, errno: errno, detail: "the job's log") }
    }

    deinit { close(descriptor) }

    /// One line per note, whatever the message holds: a name or a phone's file name with a line
    /// break in it cannot forge a line of the log.
    func note(_ message: String, level: Logger.Level = .info) {
        let message = PlainText.oneLine(message)
        let line = Array("\(UTCTimestamp.string(Date()))  \(message)\n".utf8)
        lock.withLock {
            // A log line that cannot be written must not stop the acquisition; the logger still has it.
            _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        }
        logger.log(level: level, "\(message)")
    }

    var data: Data { lock.withLock { FileManager.default.contents(atPath: path) ?? Data() } }
}
