// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Where an acquisition job stands, as the catalog keeps it and `exhibit list` and the status
/// API show it.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case acquiring, verifying, sealing, sealed, interrupted, failed

    /// The job has stopped, for good (sealed, failed) or until it is resumed (interrupted).
    public var hasStopped: Bool { self == .sealed || self == .failed || self == .interrupted }
}
