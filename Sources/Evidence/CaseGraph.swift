// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText

/// `data/case.jsonld`: the CASE 1.5 / UCO graph of an acquisition, for the hub's tools
/// (`case_validate` must report that it conforms).
///
/// Node IRIs end in UUIDs as CASE suggests; `hashMethod` is a plain string as UCO 1.4+ asks.
public enum CaseGraph {
    public static let context: [String: String] = [
        "kb": "urn:exhibit:kb:",
        "case-investigation": "https://ontology.caseontology.org/case/investigation/",
        "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
        "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
        "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
        "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
        "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
        "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
    ]

    public static func build(_ record: AcquisitionRecord) throws -> Data {
        func id(_ kind: String) -> String { "kb:\(kind)-\(UUID().uuidString.lowercased())" }
        func ref(_ id: String) -> [String: Any] { ["@id": id] }
        func dateTime(_ date: Date) -> [String: Any] { ["@type": "xsd:dateTime", "@value": UTCTimestamp.string(date)] }
        func integer(_ value: UInt64) -> [String: Any] { ["@type": "xsd:integer", "@value": String(value)] }
        func hashes(_ digests: [String: String]) -> [[String: Any]] {
            digests.keys.sorted().compactMap { key in
                guard let value = digests[key] else { return nil }
                let method = ["sha256": "SHA256", "sha1": "SHA1", "md5": "MD5"][key] ?? key.uppercased()
                return [
                    "@id": id("hash"), "@type": "uco-types:Hash", "uco-types:hashMethod": method,
                    "uco-types:hashValue": ["@type": "xsd:hexBinary", "@value": value],
                ]
            }
        }

        let investigation = id("investigation")
        let examiner = id("examiner")
        let appliance = id("appliance")
        let tool = id("tool")
        let source = id("source")
        let action = id("acquisition")
        let provenance = id("provenance-record")
        let imageIds = record.image.files.map { _ in id("image") }
        let mediaStream = id("media-stream")

        var sourceFacet: [String: Any] = ["@id": id("source-device-facet"), "@type": "uco-observable:DeviceFacet"]
        if let model = record.source.model { sourceFacet["uco-observable:model"] = model }
        if let serial = record.source.serial { sourceFacet["uco-observable:serialNumber"] = serial }
        sourceFacet["uco-observable:deviceType"] =
            switch record.source.kind {
            case .blockDevice: "block device (\(record.source.transport ?? "unknown transport"))"
            case .regularFile: "image file"
            case .androidDevice: "Android phone (\(record.source.transport ?? "adb"))"
            }
        var sourceDescription =
            "Exhibit \(record.exhibitId): \(record.source.sizeBytes) bytes, "
            + "\(record.source.logicalSectorSize)-byte logical sectors; \(record.source.writeProtection.summary)"
        var streamName = "media stream of exhibit \(record.exhibitId)"
        var streamDescription = "The bytes read from the source, in order; the raw image files concatenated."
        if let phone = record.phone {
            let device = phone.device
            sourceDescription =
                "Exhibit \(record.exhibitId): \(device.manufacturer ?? "unknown maker") \(device.model ?? "phone"), Android "
                + "\(device.androidVersion ?? "?") (security patch \(device.securityPatch ?? "?")), lock state \(device.lockState), "
                + "root \(device.root ? "available" : "not available"); method achieved: \(phone.methodAchieved). "
                + record.source.writeProtection.summary
            if phone.physical == nil {
                streamName = "inventory of the logical extraction of exhibit \(record.exhibitId)"
                streamDescription =
                    "\(PhoneExtraction.inventoryPath): every extracted file with the SHA-256 computed while it streamed from the phone."
            }
        }

        var graph: [[String: Any]] = [
            [
                "@id": investigation, "@type": "case-investigation:Investigation", "uco-core:name": record.caseId,
                "case-investigation:investigationForm": "case", "uco-core:object": [ref(action)],
            ],
            ["@id": examiner, "@type": "uco-identity:Person", "uco-core:name": record.examiner],
            [
                "@id": appliance, "@type": "uco-observable:Device",
                "uco-core:name": record.appliance.id,
                "uco-core:hasFacet": [
                    [
                        "@id": id("appliance-device-facet"), "@type": "uco-observable:DeviceFacet",
                        "uco-observable:deviceType": "forensic acquisition appliance",
                        "uco-observable:serialNumber": record.appliance.id,
                    ]
                ],
            ],
            [
                "@id": tool, "@type": "uco-tool:Tool", "uco-core:name": record.tool.name,
                "uco-tool:version": record.tool.version, "uco-tool:toolType": "acquisition",
            ],
            [
                "@id": source, "@type": "uco-observable:Device",
                "uco-core:name": record.source.path,
                "uco-core:description": sourceDescription,
                "uco-core:hasFacet": [sourceFacet],
            ],
            [
                "@id": mediaStream, "@type": "uco-observable:File",
                "uco-core:name": streamName,
                "uco-core:description": streamDescription,
                "uco-core:hasFacet": [
                    [
                        "@id": id("media-content-facet"), "@type": "uco-observable:ContentDataFacet",
                        "uco-observable:sizeInBytes": integer(record.media.sizeBytes),
                        "uco-observable:hash": hashes(record.media.digests),
                    ]
                ],
            ],
        ]
        for (file, fileId) in zip(record.image.files, imageIds) {
            graph.append([
                "@id": fileId, "@type": "uco-observable:File",
                "uco-core:hasFacet": [
                    [
                        "@id": id("image-file-facet"), "@type": "uco-observable:FileFacet",
                        "uco-observable:fileName": (file.path as NSString).lastPathComponent,
                        "uco-observable:filePath": file.path,
                        "uco-observable:sizeInBytes": integer(file.sizeBytes),
                    ],
                    [
                        "@id": id("image-content-facet"), "@type": "uco-observable:ContentDataFacet",
                        "uco-observable:sizeInBytes": integer(file.sizeBytes),
                        "uco-observable:hash": hashes(["sha256": file.sha256]),
                    ],
                ],
            ])
        }
        graph.append([
            "@id": provenance, "@type": "case-investigation:ProvenanceRecord",
            "case-investigation:exhibitNumber": record.exhibitId,
            "uco-core:description": "Acquired by appliance \(record.appliance.id) for case \(record.caseId)",
            "uco-core:object": [ref(source), ref(mediaStream)] + imageIds.map(ref),
        ])
        var description =
            record.phone.map {
                "\($0.methodAchieved.capitalized) acquisition of phone exhibit \(record.exhibitId) over ADB; verification: \(record.verification.result)."
            } ?? "Bit-for-bit acquisition of exhibit \(record.exhibitId); verification: \(record.verification.result)."
        if record.unreadableRanges.isEmpty {
            description += " No unreadable sectors."
        } else {
            let ranges = record.unreadableRanges.map { "LBA \($0.firstSector)-\($0.lastSector) (\($0.errorName))" }
            description +=
                " \(record.unreadableSectors) unreadable sectors zero-filled at their own offsets: "
                + ranges.joined(separator: ", ")
        }
        graph.append([
            "@id": action, "@type": "case-investigation:InvestigativeAction", "uco-core:name": "acquired",
            "uco-core:description": description,
            "uco-action:startTime": dateTime(record.startedAt), "uco-action:endTime": dateTime(record.finishedAt),
            "uco-action:performer": ref(examiner), "uco-action:instrument": ref(tool),
            "uco-action:environment": ref(appliance), "uco-action:object": [ref(source)],
            "uco-action:result": [ref(mediaStream), ref(provenance)] + imageIds.map(ref),
        ])
        let document: [String: Any] = ["@context": context, "@graph": graph]
        return try JSONTree(document, path: "data/case.jsonld").data()
    }

    /// The SHA-256 values of every `uco-types:Hash` in a graph, for consistency checks.
    public static func sha256Values(in data: Data) -> [String] {
        guard let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
        var values: [String] = []
        func walk(_ node: Any) {
            if let object = node as? [String: Any] {
                if object["@type"] as? String == "uco-types:Hash", object["uco-types:hashMethod"] as? String == "SHA256",
                    let value = (object["uco-types:hashValue"] as? [String: Any])?["@value"] as? String
                {
                    values.append(value.lowercased())
                }
                object.values.forEach(walk)
            } else if let array = node as? [Any] {
                array.forEach(walk)
            }
        }
        walk(document)
        return values
    }

    /// Exhibit numbers named by ProvenanceRecords in a graph.
    public static func exhibitNumbers(in data: Data) -> [String] {
        guard let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let graph = document["@graph"] as? [[String: Any]]
        else { return [] }
        return graph.compactMap { $0["case-investigation:exhibitNumber"] as? String }
    }
}
