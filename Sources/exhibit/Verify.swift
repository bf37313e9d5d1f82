// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Cryptography
import Evidence
import Foundation
import Store

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a sealed bundle: structure, manifests, seal, custody chain, media hash, records.",
        discussion: "Exit status 0 when the bundle is intact; 1 with every failure named otherwise.")

    @Argument(help: "The bundle directory.") var bundle: String
    @Option(name: .customLong("trust"), help: "The agency root certificate (PEM). Default: the store's, when the bundle lies in a store.")
    var trustPath: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: bundle, isDirectory: &isDirectory), isDirectory.boolValue else {
            failAndExit("verify", "\(bundle): not a bundle directory")
        }
        let anchorPath = trustPath ?? EvidenceStore.containing(bundle: bundle)?.trustAnchorPath
        var anchors: [Certificate] = []
        if let anchorPath {
            do {
                guard let data = FileManager.default.contents(atPath: anchorPath) else {
                    throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: anchorPath])
                }
                anchors = try Certificate.all(pem: data, source: anchorPath)
            } catch {
                failAndExit("verify", "trust anchor \(anchorPath): \(error)")
            }
        }
        let report = BundleVerifier(bundle: bundle, trustAnchors: anchors).verify()
        if json {
            printJSON(report)
        } else {
            print("bundle       \(bundle)")
            if let caseId = report.caseId, let exhibitId = report.exhibitId { print("exhibit      \(exhibitId) of case \(caseId)") }
            if let sha = report.mediaSHA256 { print("media sha256 \(sha)") }
            if let signer = report.signer { print("signed by    \(signer)") }
            for name in ["bagit-declaration", "bag-info", "tag-manifest", "payload-manifest", "payload-oxum", "seal", "custody-chain", "media-sha256", "records"] {
                print("\(report.checks[name] == "passed" ? "ok  " : "FAIL") \(name)")
            }
            for finding in report.findings { print("  - \(finding)") }
            print(report.intact ? "INTACT" : "NOT INTACT: \(report.findings.count) problem(s)")
        }
        if !report.intact { throw ExitCode(1) }
    }
}

extension String: @retroactive Error {}
