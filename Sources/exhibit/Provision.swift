// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Store

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a store and the appliance's signing identity.",
        discussion: """
            Without options: creates the store layout, a device key (mode 0600) and, when the store has no
            device certificate yet, a development agency CA (keys/agency-root.pem) that issues one.
            With --csr: writes a certificate signing request for the device key for a real agency to sign.
            With --import-cert: installs the agency-issued certificate (and --trust, the agency root).
            Running it again changes nothing that exists.
            """)

    @Option(help: "The store directory.") var store: String
    @Option(help: "The appliance id (the certificate CN); default exhibit-HOSTNAME-KEYPREFIX.") var applianceId: String?
    @Option(help: "The agency, for bag-info's Source-Organization and the certificate.") var organization: String?
    @Option(name: .customLong("csr"), help: "Write a certificate signing request to this file.") var csrPath: String?
    @Option(name: .customLong("import-cert"), help: "Import the agency-issued device certificate (PEM, chain after it).")
    var certificatePath: String?
    @Option(name: .customLong("trust"), help: "With --import-cert: the agency root certificate (PEM).") var trustPath: String?
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() throws {
        let provisioning = Provisioning(store: EvidenceStore(root: store))
        let outcome: Provisioning.Outcome
        do {
            if let csrPath {
                outcome = try provisioning.writeRequest(to: csrPath, applianceId: applianceId, organization: organization)
            } else if let certificatePath {
                outcome = try provisioning.importCertificate(from: certificatePath, trustAnchor: trustPath)
            } else {
                outcome = try provisioning.provisionDevelopment(applianceId: applianceId, organization: organization)
            }
        } catch {
            failAndExit("provision", error)
        }
        if json {
            printJSON(outcome)
            return
        }
        print("store        \(outcome.store)")
        print("appliance    \(outcome.applianceId)")
        print("organization \(outcome.organization)")
        if let fingerprint = outcome.deviceCertificateSHA256 { print("certificate  sha256 \(fingerprint)") }
        if let anchor = outcome.trustAnchor { print("trust anchor \(anchor)") }
        if let csrPath { print("request      \(csrPath) (have the agency sign it, then --import-cert)") }
        if outcome.developmentCA {
            print("note         development agency CA: bundles verify only against this store's agency-root.pem")
        }
        print(outcome.created.isEmpty ? "unchanged    everything already existed" : "created      \(outcome.created.count) item(s)")
    }
}
