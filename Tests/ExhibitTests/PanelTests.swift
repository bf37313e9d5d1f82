// SPDX-License-Identifier: Apache-2.0
import Foundation
import Panel
import StatusAPI
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

@Suite struct PanelCatalogueTests {
    @Test(arguments: PanelLanguage.allCases)
    func everyKeyIsTranslatedWithItsPlaceholders(_ language: PanelLanguage) throws {
        let english = try MessageCatalog.entries(of: .en)
        let entries = try MessageCatalog.entries(of: language)
        #expect(MessageCatalog.problems(in: entries, of: language, english: english) == [])
        // gettext's own checker is the judge of the file format and of c-format placeholders.
        try #require(Subprocess.has("msgfmt"), "msgfmt (gettext) is installed by scripts/install-deps")
        let check = try Subprocess.run(["msgfmt", "--check", "-o", "/dev/null", try MessageCatalog.file(of: language)])
        #expect(check.succeeded && check.stderr.isEmpty, "\(check)")
    }

    @Test func theCheckFindsAMissingEmptyOrBrokenEntry() throws {
        let english = try MessageCatalog.entries(of: .en)
        var thai = try MessageCatalog.entries(of: .th)
        thai[MessageKey.stateSealed.rawValue] = nil
        thai[MessageKey.slotEta.rawValue]?.translation = ""
        thai[MessageKey.alertJobFailed.rawValue]?.translation = "สล็อต %1$s ล้มเหลว"
        thai[MessageKey.stateReady.rawValue]?.translation = english[MessageKey.stateReady.rawValue]!.source
        thai["state.unheardOf"] = thai[MessageKey.stateFailed.rawValue]
        let problems = MessageCatalog.problems(in: thai, of: .th, english: english)
        #expect(problems.contains("th: no entry for state.sealed"))
        #expect(problems.contains("th: slot.eta is empty"))
        #expect(problems.contains { $0.hasPrefix("th: alert.jobFailed has placeholders") })
        #expect(problems.contains("th: state.ready is not translated"))
        #expect(problems.contains("th: state.unheardOf is not a key the panel uses"))
    }

    @Test func readsGettextEscapesContinuationsAndFillsPlaceholdersInAnyOrder() throws {
        let text = """
            msgid ""
            msgstr "Language: xx\\n"

            #, c-format
            msgctxt "a.key"
            msgid "Slot %1$s: %2$s"
            msgstr ""
            "%2$s \\"quoted\\" "
            "at %1$s"
            """
        let entries = try MessageCatalog.parse(text, file: "inline.po")
        let entry = try #require(entries["a.key"])
        #expect(entry.translation == "%2$s \"quoted\" at %1$s")
        #expect(entry.flags == ["c-format"])
        #expect(MessageCatalog.fill(entry.translation, ["3", "sealed"]) == "sealed \"quoted\" at 3")
        #expect(throws: PanelError.self) { try MessageCatalog.parse("msgctxt \"k\"\nmsgid \"x\"\n", file: "broken.po") }
    }

    @Test func formatsNumbersInTheLanguagesConvention() throws {
        let vietnamese = try MessageCatalog.load(.vi)
        #expect(vietnamese.count(40_000_000) == "40.000.000")
        #expect(vietnamese.decimal(48.25, places: 1) == "48,2" || vietnamese.decimal(48.25, places: 1) == "48,3")
        let english = try MessageCatalog.load(.en)
        #expect(english.count(1234) == "1,234" && english.count(12) == "12")
    }
}

/// The panel's screen for a state built from the status API's JSON, in every language, at the
/// front panel's sizes.
@Suite struct PanelLayoutTests {
    static let sealedDigest = "f661c89d65163cc76c4f4effd3e1394a188055e1a90bdc44b9475554555da5ce"

    static func model() throws -> PanelModel {
        let json = """
            {"type":"snapshot","time":"2026-11-23T07:00:00Z",
             "daemon":{"version":"0.1.0","pid":1,"store":"/srv/evidence","applianceId":"exhibit-lab-07","discovery":"udev",
                       "degraded":false,"startedAt":"2026-11-23T06:00:00Z","systemDisks":{}},
             "session":{"caseId":"TH-2026-0412","examiner":"Sgt. Somchai","auto":false,"openedAt":"2026-11-23T06:10:00Z","nextExhibitId":"E4"},
             "store":{"path":"/srv/evidence","freeBytes":872000000000,"totalBytes":2000000000000,"averageImageBytes":64000000000,
                      "imagesThatFit":13,"almostFull":false},
             "slots":[
              \(slot(1, "/dev/sdb", state: "acquiring", extra: #""exhibitId":"E1","bytesDone":241300000000,"currentMBPerSecond":187.4,"etaSeconds":1330,"unreadableSectors":3,"model":"Samsung SSD 870 EVO","serial":"S6PNNF0R123456""#)),
              \(slot(2, "/dev/sdc", state: "refused", extra: #""detail":"refused: /dev/sdc is writable; run `blockdev --setro /dev/sdc`","model":"DataTraveler 3.0""#)),
              \(slot(3, "/dev/sdd", state: "sealed", extra: #""exhibitId":"E2","caseId":"TH-2026-0412","bytesDone":500107862016,"digests":{"sha256":"\#(sealedDigest)"},"bundleId":"TH-2026-0412-E2""#)),
              \(slot(4, "/dev/sde", state: "ready", extra: #""model":"WD Elements""#))
             ],
             "alerts":[
              {"id":"source-refused:/sys/sdc","kind":"source-refused","slot":2,"device":"/dev/sdc","fix":"blockdev --setro /dev/sdc","raisedAt":"2026-11-23T06:59:00Z"},
              {"id":"job-interrupted:j1","kind":"job-interrupted","exhibitId":"E3","raisedAt":"2026-11-23T06:30:00Z","acknowledgedBy":"Sgt. Somchai","acknowledgedAt":"2026-11-23T06:31:00Z"}
             ]}
            """
        var model = PanelModel()
        model.apply(try StatusCoding.decode(StatusMessage.self, from: json))
        return model
    }

    /// One slot's JSON: the required members, then `extra`'s (which may replace them).
    static func slot(_ number: Int, _ device: String, state: String, extra: String) -> String {
        let base = """
            {"slot":\(number),"kind":"disk","device":"\(device)","syspath":"/sys/\(device)","sizeBytes":500107862016,"partitions":[],
             "state":"\(state)","bytesDone":0,"unreadableSectors":0,"digests":{},"updatedAt":"2026-11-23T07:00:00Z"}
            """
        var members = try! JSONSerialization.jsonObject(with: Data(base.utf8)) as! [String: Any]
        let more = try! JSONSerialization.jsonObject(with: Data("{\(extra)}".utf8)) as! [String: Any]
        members.merge(more) { _, new in new }
        return String(decoding: try! JSONSerialization.data(withJSONObject: members), as: UTF8.self)
    }

    /// An interrupted job says what resumes it, in every language: a full store asks for space
    /// (the device is still attached), a device that became writable asks for its flag back, a
    /// device gone asks for it to be reconnected.
    @Test(arguments: PanelLanguage.allCases, [
        (ResumeAction.freeStoreSpace, MessageKey.slotInterruptedStoreFull, MessageKey.alertJobInterruptedStoreFull),
        (.makeReadOnly, .slotInterruptedWritable, .alertJobInterruptedWritable),
        (.reconnectDevice, .slotInterruptedHint, .alertJobInterrupted),
    ])
    func anInterruptedJobSaysWhatResumesIt(language: PanelLanguage, expected: (ResumeAction, MessageKey, MessageKey)) throws {
        let (action, hint, alertKey) = expected
        var model = try Self.model()
        model.apply(
            try StatusCoding.decode(
                StatusMessage.self,
                from: #"{"type":"slot","time":"2026-11-23T07:01:00Z","slot":"# + Self.slot(
                    4, "/dev/sde", state: "interrupted",
                    extra: #""exhibitId":"E5","jobId":"j5","detail":"stopped","resumeBy":"\#(action.rawValue)""#) + "}"))
        let text = try MessageCatalog.load(language)
        let screen = PanelScreen(
            model: model, ui: PanelUI(language: language), text: text, columns: 80, rows: 24, now: Date(timeIntervalSince1970: 1_795_000_000),
            timeZone: TimeZone(identifier: "Asia/Bangkok")!)
        let slotLines = screen.lines().map(\.text).drop { !$0.contains("/dev/sde") }.prefix(2).joined(separator: "\n")
        #expect(slotLines.contains(text(hint)), "\(slotLines)")
        var alert = AlertStatus(id: "job-interrupted:j5", kind: .jobInterrupted, raisedAt: "2026-11-23T07:01:00Z")
        alert.exhibitId = "E5"
        alert.resumeBy = action
        #expect(screen.alertText(alert).hasPrefix(text(alertKey, "E5")))
    }

    static func render(_ language: PanelLanguage, columns: Int, rows: Int, ui change: (inout PanelUI) -> Void = { _ in }) throws
        -> (lines: [PanelLine], text: MessageCatalog)
    {
        let text = try MessageCatalog.load(language)
        var ui = PanelUI(language: language)
        ui.selectedSlot = 3
        change(&ui)
        let screen = PanelScreen(
            model: try model(), ui: ui, text: text, columns: columns, rows: rows, now: Date(timeIntervalSince1970: 1_795_000_000),
            timeZone: TimeZone(identifier: "Asia/Bangkok")!)
        return (screen.lines(), text)
    }

    @Test(arguments: PanelLanguage.allCases, [(80, 24), (40, 12)])
    func everyRowFitsAndTheEssentialsShow(_ language: PanelLanguage, _ size: (Int, Int)) throws {
        let (columns, rows) = size
        let (lines, text) = try Self.render(language, columns: columns, rows: rows)
        #expect(lines.count == rows)
        for line in lines { #expect(line.width <= columns, "\(line.width) columns: \(line.text)") }
        let screen = lines.map(\.text).joined(separator: "\n")
        // The title and clock, the case, an alert marked in words, the selected sealed slot with
        // its short digest and the all-clear, and the key help on the last row.
        #expect(lines[0].text.contains(text(.appTitle)) && lines[0].text.contains("2026-11-18 "))
        #expect(screen.contains("TH-2026-0412"))
        #expect(screen.contains("[" + text(.alertTag) + "]"), "no alert tag:\n\(screen)")
        #expect(lines.contains { $0.spans.contains { $0.style == .alert } })
        #expect(screen.contains(text(.stateSealed)))
        #expect(screen.contains("f661c89d…"), "no short digest:\n\(screen)")
        #expect(screen.contains(text(.slotSafeToUnplug)))
        #expect(lines[rows - 1].text == text(columns >= 60 ? .keysWide : .keysNarrow) || lines[rows - 1].text.hasSuffix("…"))
        if columns >= 60 {
            // Room for all four slots: progress with the language's decimal sign, the refusal's fix.
            #expect(screen.contains(text.decimal(48.25, places: 1) + "%"), "\(screen)")
            #expect(screen.contains("blockdev --setro /dev/sdc"))
            #expect(screen.contains(text(.slotDoNotUnplug)), "the acquiring slot's warning was cut:\n\(screen)")
            #expect(screen.contains(text(.stateRefused)) && screen.contains(text(.stateAcquiring)) && screen.contains(text(.stateReady)))
            #expect(screen.contains("(" + text(.alertAcknowledged) + ")"))
        }
    }

    @Test(arguments: PanelLanguage.allCases, [(80, 24), (40, 12)])
    func detailShowsTheWholeDigestAndPromptsShowWhatIsTyped(_ language: PanelLanguage, _ size: (Int, Int)) throws {
        let (columns, rows) = size
        let (detail, _) = try Self.render(language, columns: columns, rows: rows) { $0.mode = .detail(slot: 3) }
        #expect(detail.count == rows)
        for line in detail { #expect(line.width <= columns, "\(line.text)") }
        let hex = detail.map { $0.text.filter(\.isHexDigit) }.joined()
        #expect(hex.contains(Self.sealedDigest), "full SHA-256 not on the detail screen")

        let (prompt, text) = try Self.render(language, columns: columns, rows: rows) {
            $0.mode = .prompt(.exhibit(slot: 4))
            $0.input = "EX-2026/77"
        }
        for line in prompt { #expect(line.width <= columns, "\(line.text)") }
        #expect(prompt[rows - 2].text.hasPrefix(String(text(.promptExhibit, "4").prefix(4))))
        #expect(prompt[rows - 1].text.contains("> EX-2026/77"))
    }

    @Test func theStoreIsAlmostFullUnderAFractionOrTwoAverageImages() {
        #expect(StoreStatus(path: "/s", freeBytes: 4_000, totalBytes: 100_000, averageImageBytes: nil).almostFull)
        #expect(StoreStatus(path: "/s", freeBytes: 50_000, totalBytes: 100_000, averageImageBytes: 30_000).almostFull)
        let roomy = StoreStatus(path: "/s", freeBytes: 50_000, totalBytes: 100_000, averageImageBytes: 20_000)
        #expect(!roomy.almostFull && roomy.imagesThatFit == 2)
        #expect(!StoreStatus(path: "/s", freeBytes: 50_000, totalBytes: 100_000, averageImageBytes: nil).almostFull)
    }

    @Test func deviceTextCannotReachTheTerminalAsControlSequences() {
        let hostile = "Evil\u{1B}[2J\u{1B}]0;owned\u{07}\u{202E}disk"
        let clean = TerminalText.sanitize(hostile)
        #expect(!clean.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x202E })
        #expect(clean.hasPrefix("Evil?[2J?]0;owned??disk"))
    }

    @Test func widthsAreTheTerminalsAndCutsKeepWholeCharacters() {
        // Thai tone and vowel marks and the Khmer sign COENG take no column.
        #expect(TerminalText.width("ที่เหลือ") == 5)
        #expect(TerminalText.width("ស្រង់") == 3)
        #expect(TerminalText.width("Đang sao chép") == 13)
        let cut = TerminalText.cut("กำลังทำสำเนาข้อมูล", to: 6)
        #expect(TerminalText.width(cut) <= 6 && cut.hasSuffix("…") && cut.hasPrefix("กำลั"))
        #expect(TerminalText.forTerminal("กำ") == "ก\u{0E4D}\u{0E32}")
        #expect(TerminalText.width(TerminalText.forTerminal("กำลัง")) == TerminalText.width("กำลัง"))
    }

    @Test func scannerInputArrivesAsTextAndOneEnter() {
        var decoder = KeyDecoder()
        #expect(decoder.feed(Array("EX-1\r\n".utf8)) == "EX-1".map { PanelKey.character($0) } + [.enter])
        #expect(decoder.feed([0x1B, 0x5B]) == [])
        #expect(decoder.feed([0x41, 0x1B]) == [.up, .escape])
        #expect(decoder.feed(Array("ก".utf8).prefix(2)) == [])
        #expect(decoder.feed(Array("ก".utf8).suffix(1) + [0x7F]) == [.character("ก"), .backspace])
    }
}
