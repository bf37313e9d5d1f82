// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Testing

/// The JSON tree CASE graphs are written from, judged by JSONSerialization reading it back.
struct JSONTreeTests {
    @Test func writesStringsArraysAndObjectsWithSortedKeysAndRefusesAnythingElse() throws {
        let document: [String: Any] = [
            "@graph": [["uco-core:name": "acquired", "@id": "kb:a/b"], ["@type": "xsd:integer", "@value": "42"]],
            "@context": ["kb": "urn:exhibit:kb:"],
        ]
        let data = try JSONTree(document, path: "d.json").data()
        let text = String(decoding: data, as: UTF8.self)
        let read = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(try JSONTree(read, path: "d.json") == JSONTree(document, path: "d.json"))
        #expect(text.contains("\"kb:a/b\""), "slashes unescaped: \(text)")
        let keys = ["\"@context\"", "\"@graph\"", "\"@id\"", "\"uco-core:name\""].map { text.range(of: $0)?.lowerBound }
        #expect(keys.allSatisfy { $0 != nil } && keys.map { $0! } == keys.map { $0! }.sorted(), "keys sorted: \(text)")
        let number = #expect(throws: EvidenceError.self) { try JSONTree(["count": 42], path: "d.json") }
        #expect(number?.code == .recordInvalid && number?.path == "d.json", "\(String(describing: number))")
        #expect(throws: EvidenceError.self) { try JSONTree([["ok": "yes"], ["flag": true]], path: "d.json") }
    }
}
