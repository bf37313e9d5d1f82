// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Cryptography
import Evidence
import Foundation
import HumanText
import Store

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a sealed bundle: entries, structure, manifests, seal, custody chain, media hash, records.",
        discussion: """
            Exit status 0 when the bundle is intact; 1 with every failure named otherwise.
            The seal is checked only against trust anchors the operator names: --trust files, the
            store named with --store (on the appliance), or the file in $\(Self.anchorsVariable)
            (default \(Self.configuredAnchors)). A key or certificate found beside a bundle is never trusted.
            """)

    static let anchorsVariable = "EXHIBIT_TRUST_ANCHORS"
    static let configuredAnchors = "/etc/exhibit/trust-anchors.pem"

    @Argument(help: "The bundle directory.") var bundle: String
    @Option(name: .customLong("trust"), help: "An agency root certificate file (PEM); may be given more than once.")
    var trustPaths: [String] = []
    @Option(help: "Trust the agency root this appliance store was provisioned with (for checks on the appliance).")
    var store: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        raiseDescriptorLimit()
        let anchors = loadAnchors()
        let report = BundleVerifier(bundle: bundle, trustAnchors: anchors).verify()
        if json {
            printJSON(report)
        } else {
            printReport(report)
        }
        if !report.intact { throw ExitCode(1) }
    }

    /// libewf holds every segment file of an E01 open at once (`E01Reader`): a sealed E01 of more
    /// segments than the soft limit (1,024 for a login shell or a service) would fail to verify.
    /// The soft limit goes up to the hard one, which only the administrator sets.
    func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// The anchor files the operator named, in order of precedence; never the bundle's surroundings.
    func anchorFiles() -> [String] {
        if !trustPaths.isEmpty { return trustPaths }
        if let store { return [EvidenceStore(root: store).trustAnchorPath] }
        if let configured = ProcessInfo.processInfo.environment[Self.anchorsVariable], !configured.isEmpty { return [configured] }
        return FileManager.default.fileExists(atPath: Self.configuredAnchors) ? [Self.configuredAnchors] : []
    }

    func loadAnchors() -> [TrustAnchor] {
        var anchors: [TrustAnchor] = []
        for path in anchorFiles() {
            guard let data = FileManager.default.contents(atPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
                failAndExit("verify", "trust anchor \(path): \(reason)")
            }
            do {
                anchors += try Certificate.all(pem: data, source: path).map { TrustAnchor(certificate: $0, source: path) }
            } catch {
                failAndExit("verify", "trust anchor \(path): \(error)")
            }
        }
        return anchors
    }

    func printReport(_ report: VerificationReport) {
        print("bundle       \(PlainText.escaped(bundle))")
        if let caseId = report.caseId, let exhibitId = report.exhibitId {
            print("exhibit      \(PlainText.escaped(exhibitId)) of case \(PlainText.escaped(caseId))")
        }
        if let sha = report.mediaSHA256 { print("media sha256 \(PlainText.escaped(sha))") }
        if let signer = report.signer { print("signed by    \(PlainText.escaped(signer))") }
        if report.trustAnchors.isEmpty {
            print("trust anchor none configured (--trust PEM, --store STORE or \(Self.configuredAnchors))")
        }
        for anchor in report.trustAnchors {
            let used = anchor == report.trustAnchorUsed ? " (the seal's chain ends here)" : ""
            print("trust anchor \(PlainText.escaped(anchor.subject)) sha256 \(anchor.sha256) from \(PlainText.escaped(anchor.source))\(used)")
        }
        for name in VerificationReport.checkNames {
            print("\(report.checks[name] == "passed" ? "ok  " : "FAIL") \(name)")
        }
        for finding in report.findings { print("  - \(finding)") }
        print(report.intact ? "INTACT" : "NOT INTACT: \(report.findings.count) problem(s)")
    }
}
