// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Testing

@Suite struct CustodyLogTests {
    func sample() -> CustodyLog {
        var log = CustodyLog()
        log.append(actor: "examiner", action: .acquisitionStarted, object: "E1", details: ["a": "b"])
        log.append(actor: "appliance", action: .imageWritten, object: "E1")
        log.append(actor: "appliance", action: .bundleSealing, object: "E1")
        return log
    }

    @Test func intactChainChecksAndHeadIsLastLineHash() {
        let log = sample()
        let result = CustodyLog.check(log.data)
        #expect(result.breaks.isEmpty)
        #expect(result.head == log.head)
        #expect(log.lines[0].contains("\"prev\":\"\(CustodyLog.genesis)\""))
    }

    @Test func editRemovalAndReorderBreakTheChain() {
        let lines = sample().lines
        func data(_ lines: [String]) -> Data { Data(lines.map { $0 + "\n" }.joined().utf8) }
        let edited = [lines[0], lines[1].replacingOccurrences(of: "image-written", with: "image-wiped"), lines[2]]
        #expect(CustodyLog.check(data(edited)).breaks.contains { $0.line == 3 })
        let removed = [lines[0], lines[2]]
        #expect(!CustodyLog.check(data(removed)).breaks.isEmpty)
        let reordered = [lines[1], lines[0], lines[2]]
        #expect(CustodyLog.check(data(reordered)).breaks.contains { $0.line == 1 })
        let truncated = Array(lines.prefix(2))
        #expect(CustodyLog.check(data(truncated)).head != sample().head)
    }
}
