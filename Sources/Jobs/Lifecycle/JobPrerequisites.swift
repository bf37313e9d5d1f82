// SPDX-License-Identifier: Apache-2.0
import Evidence
import Store

/// What every job needs from the store before it starts: its settings, the signing identity,
/// and the catalog reconciled with what dead processes left.
struct JobPrerequisites {
    let settings: EvidenceStore.Settings
    let identity: SigningIdentity
    let catalog: Catalog

    init(of store: EvidenceStore) throws(JobError) {
        settings = try JobError.during("store") { try store.settings() }
        store.ensureSpaceReserve()
        identity = try JobError.during("keys") { try store.signingIdentity() }
        let catalog = try JobError.during("catalog") { try store.catalog() }
        try JobError.during("catalog") { try store.reconcile(catalog: catalog) }
        self.catalog = catalog
    }
}
