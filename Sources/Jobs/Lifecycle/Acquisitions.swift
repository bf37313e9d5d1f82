// SPDX-License-Identifier: Apache-2.0
import Logging
import Store

/// The store's acquisitions, one entry per source kind (`acquireDisk`, `acquirePhone`; MTP and
/// iOS next), each a driver of the one job lifecycle.
public struct Acquisitions: Sendable {
    public let store: EvidenceStore
    public let logger: Logger

    public init(store: EvidenceStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }
}
