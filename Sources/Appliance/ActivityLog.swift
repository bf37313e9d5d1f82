// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Logging

/// The human-readable `acquisition.log` of one job, mirrored to the injected logger.
final class ActivityLog: @unchecked Sendable {
    private var lines: [String] = []
    private let lock = NSLock()
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func note(_ message: String, level: Logger.Level = .info) {
        lock.withLock { lines.append("\(UTCTimestamp.string(Date()))  \(message)") }
        logger.log(level: level, "\(message)")
    }

    var data: Data { lock.withLock { Data(lines.map { $0 + "\n" }.joined().utf8) } }
}
