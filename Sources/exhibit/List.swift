// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import HumanText
import StatusAPI
import Store

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the store's acquisitions and bundles from its catalog.")

    @Option(help: "The store directory.") var store: String
    @Flag(help: "Print the catalog as JSON (entries and audit events).") var json = false

    struct Listing: Encodable {
        var store: String
        var entries: [CatalogEntry]
        var events: [Catalog.Event]
    }

    func run() throws {
        let evidenceStore = EvidenceStore(root: store)
        let listing: Listing
        do {
            _ = try evidenceStore.settings()
            let catalog = try evidenceStore.catalog()
            // Listing is reading: a store that cannot be written (full, read-only) still lists.
            do { try evidenceStore.reconcile(catalog: catalog) } catch {
                FileHandle.standardError.write(Data("exhibit: list: the catalog could not be brought up to date (\(error)); listing it as recorded\n".utf8))
            }
            listing = Listing(store: evidenceStore.root, entries: try catalog.entries(), events: try catalog.events())
        } catch {
            failAndExit("list", error)
        }
        if json {
            printJSON(listing)
            return
        }
        if listing.entries.isEmpty { print("no acquisitions in \(evidenceStore.root)") }
        for entry in listing.entries {
            print("\(entry.caseId)/\(entry.exhibitId)  \(entry.state)  \(entry.startedAt)  \(entry.sourcePath)  \(ByteCount.format(entry.sizeBytes))")
            if let bundle = entry.bundleId { print("    bundle \(bundle)") }
            if let sha = entry.mediaSHA256 { print("    sha256 \(sha)  verification \(entry.verification ?? "-")  unreadable \(entry.unreadableSectors ?? 0)") }
            if let error = entry.error { print("    error  \(error)") }
        }
    }
}
