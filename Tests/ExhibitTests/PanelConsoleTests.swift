// SPDX-License-Identifier: Apache-2.0
import Foundation
import Panel
import StatusAPI
import Store
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// The panel in real terminals against a live daemon acquiring real loop devices.
@Suite(.serialized, .enabled(if: loopUnavailable == nil, loopSkipComment))
struct PanelConsoleTests {
    @Test(.enabled(if: TmuxSession.unavailableReason == nil && FaultyLoopDevice.unavailableReason == nil, "needs tmux, FUSE and loop devices"))
    func followsALiveAcquisitionTakesKeysAndSurvivesTheDaemon() throws {
        let daemon = try TestDaemon("panel-live")
        let scratch = daemon.store.scratch
        let english = try MessageCatalog.load(.en)
        let panel = try TmuxSession(
            [BuiltProducts.exhibit, "panel", "--socket", daemon.socket, "--lang", "en"], columns: 80, rows: 24, scratch: scratch)
        defer { panel.close() }
        let started = try panel.waitForScreen(timeout: 10) { $0.joined().contains(english(.caseNone)) }
        try #require(started != nil, "the panel did not show the daemon's state: \(panel.text)")

        // A writable disk: refused, and the alert says so in words with the fix.
        let writable = try LoopDevice(backing: try SourceImage.create(at: scratch.file("writable.img"), size: 8 << 20, seed: 41))
        let refusal = try panel.waitForScreen(timeout: 8) { rows in
            let screen = rows.joined(separator: "\n")
            return screen.contains("[ALERT] Slot") && screen.contains("blockdev --setro \(writable.path)") && screen.contains("REFUSED")
        }
        #expect(refusal != nil, "no refusal alert: \(panel.text)")

        // Open a case with the keys, as a technician (or a barcode scanner) types it.
        try panel.press("c")
        try panel.type("CASE-P")
        try panel.press("Enter")
        try panel.type("Insp. Vanna")
        try panel.press("Enter")
        try panel.press("n")
        let opened = try panel.waitForScreen(timeout: 5) { $0.joined().contains("Case CASE-P · Examiner Insp. Vanna") }
        #expect(opened != nil, "case not shown: \(panel.text)")

        // A slow read-only disk (about 10 MB/s), started from the panel with an exhibit number.
        let image = try SourceImage.create(at: scratch.file("slow.img"), size: 48 << 20, seed: 42)
        let slow = try FaultyLoopDevice(backing: image, delayMilliseconds: 100, scratch: scratch, fixture: fixturePath("faultfile.c"))
        let readySlot = try daemon.waitForSlot(slow.loop.path, timeout: 8) { $0.state == .ready }
        let number = try #require(readySlot?.slot, "the read-only disk did not become ready")
        _ = try panel.waitForScreen(timeout: 5) { $0.joined().contains(slow.loop.path) }
        try panel.press(String(number))
        try panel.press("Enter")
        let asked = try panel.waitForScreen(timeout: 5) { $0.joined().contains("Exhibit number for slot \(number):") }
        #expect(asked != nil, "no exhibit prompt: \(panel.text)")
        try panel.type("EX-9")
        try panel.press("Enter")

        // Progress advances on screen until the slot is sealed.
        var percentages: [Double] = []
        var sealedScreen: [String]? = nil
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline, sealedScreen == nil {
            let rows = try panel.screen()
            if let row = rows.first(where: { $0.contains("█") || $0.contains("░") }),
                let match = row.range(of: #"[0-9]+\.[0-9]%"#, options: .regularExpression),
                let value = Double(row[match].dropLast()), value != percentages.last
            {
                percentages.append(value)
            }
            if rows.joined(separator: "\n").contains("Sealed EX-9") { sealedScreen = rows }
            usleep(200_000)
        }
        let sealed = try #require(sealedScreen, "not sealed on screen: \(panel.text)")
        #expect(percentages.count >= 2 && percentages == percentages.sorted(), "progress seen: \(percentages)")
        let slot = try #require(try daemon.slot(for: slow.loop.path))
        let bundle = try #require(slot.bundlePath, "\(slot)")
        let media = try #require(try StockChecks.bagInfo(bundle, "Exhibit-Media-SHA256"))
        #expect(media == (try StockChecks.sum("sha256sum", image)))
        let sealedText = sealed.joined(separator: "\n")
        #expect(sealedText.contains("SHA-256 " + PanelScreen.shortDigest(media)) && sealedText.contains("Safe to unplug"), "\(sealedText)")

        // The whole digest on selection; it is the bundle's.
        try panel.press(String(number))
        try panel.press("Enter")
        let detail = try panel.waitForScreen(timeout: 5) { $0.joined().contains(media) }
        #expect(detail != nil, "full SHA-256 not shown: \(panel.text)")
        try panel.press("Escape")

        // Acknowledging: the alert stays, marked seen.
        try panel.press("a")
        let seen = try panel.waitForScreen(timeout: 5) { $0.joined().contains("(seen) Slot") }
        #expect(seen != nil, "alert not marked seen: \(panel.text)")

        // Through the API: the acknowledged alert is marked for every client; an unknown one is an error.
        let snapshot = try daemon.snapshot()
        let refusedAlert = snapshot.alerts?.first { $0.kind == .sourceRefused && $0.device == writable.path }
        #expect(refusedAlert?.acknowledgedBy == "Insp. Vanna" && refusedAlert?.fix == "blockdev --setro \(writable.path)")
        #expect(snapshot.store.map { $0.freeBytes > 0 && $0.averageImageBytes == 48 << 20 } == true, "\(String(describing: snapshot.store))")
        let unknown = try StatusClient(path: daemon.socket).send(StatusRequest(.acknowledge, alertId: "no-such"))
        #expect(unknown.error?.code == "no-such-alert")

        // Every action went through the daemon into the audit trail, naming the panel.
        let events = try StoreListing.of(daemon.store.root).events
        func client(_ event: Catalog.Event) -> String? { event.fields["client"] }
        for action in ["case-opened", "acquisition-requested", "alert-acknowledged"] {
            #expect(events.contains { $0.action == action && client($0)?.hasPrefix("panel /dev/pts/") == true }, "no \(action) from the panel")
        }
        #expect(events.contains { $0.action == "alert-acknowledged" && $0.actor == "Insp. Vanna" })

        // Waiting costs nothing: no busy loop between the clock's ticks.
        let pid = try #require(panel.panePID)
        let before = try cpuSeconds(pid)
        sleep(5)
        let idle = try cpuSeconds(pid) - before
        #expect(idle < 0.3, "the idle panel used \(idle) s of CPU in 5 s")

        // A small panel: every row fits, the essentials stay.
        try panel.resize(columns: 40, rows: 12)
        let small = try panel.waitForScreen(timeout: 5) { rows in
            rows.count == 12 && rows[0].contains("EXHIBIT") && !rows[0].contains("Appliance") && rows.joined().contains("Sealed EX-9")
        }
        let smallRows = try #require(small, "no 40x12 layout: \(panel.text)")
        for row in smallRows { #expect(TerminalText.width(row) <= 40, "\(row)") }
        #expect(smallRows[11].contains("1-9"), "\(smallRows)")

        // Closing the case asks first.
        try panel.press("c")
        let confirm = try panel.waitForScreen(timeout: 5) { $0.joined().contains("Close case CASE-P? Y = yes, N = no") }
        #expect(confirm != nil, "no close confirmation: \(panel.text)")
        try panel.press("y")
        let closed = try panel.waitForScreen(timeout: 5) { $0.joined().contains(english(.caseNoneShort)) }  // still 40x12
        #expect(closed != nil, "case still shown: \(panel.text)")
        let closeEvents = try StoreListing.of(daemon.store.root).events
        #expect(closeEvents.contains { $0.action == "case-closed" && $0.actor == "Insp. Vanna" && client($0)?.hasPrefix("panel ") == true })

        // Another language on the L key.
        try panel.resize(columns: 80, rows: 24)
        try panel.press("l")
        let thai = try MessageCatalog.load(.th)
        // (The panel sends Thai SARA AM as its two parts; the screen holds those.)
        let inThai = try panel.waitForScreen(timeout: 5) { $0.joined().contains(TerminalText.forTerminal(thai(.stateSealed)) + " EX-9") }
        #expect(inThai != nil, "not in Thai: \(panel.text)")

        // The daemon goes away: an alert, not an exit; it comes back: the panel reconnects.
        #expect(daemon.process.terminate() != nil)
        let unreachable = TerminalText.forTerminal(thai(.alertDaemonUnreachable))
        let lost = try panel.waitForScreen(timeout: 6) { $0.joined().contains(String(unreachable.prefix(12))) }
        #expect(lost != nil, "no unreachable alert: \(panel.text)")
        try daemon.restart()
        let back = try panel.waitForScreen(timeout: 8) { rows in
            !rows.joined().contains(String(unreachable.prefix(12))) && rows.joined().contains(slow.loop.path)
        }
        #expect(back != nil, "did not reconnect: \(panel.text)")
        _ = daemon.process.terminate()
    }

    @Test(.enabled(if: Subprocess.has("systemd-analyze") && Subprocess.has("cage"), "systemd-analyze or cage is not installed (scripts/install-deps)"))
    func panelUnitPassesSystemdAnalyzeVerify() throws {
        let scratch = try ScratchDirectory("panel-unit")
        let unit = try String(contentsOfFile: fixturePath("../../Systemd/exhibit-panel.service"), encoding: .utf8)
        try unit.write(toFile: scratch.file("exhibit-panel.service"), atomically: true, encoding: .utf8)
        let result = try Subprocess.run(["systemd-analyze", "verify", scratch.file("exhibit-panel.service")])
        #expect(result.succeeded && result.stderr.isEmpty, "\(result)")
        // On tty1, after the daemon, restarted; the foot settings it names are the ones the screenshot test renders with.
        #expect(unit.contains("TTYPath=/dev/tty1") && unit.contains("After=exhibitd.service") && unit.contains("Restart=always"))
        #expect(unit.contains("--config=/etc/exhibit/panel-foot.ini") && unit.contains("exhibit panel"))
        let sysusers = try String(contentsOfFile: fixturePath("../../Systemd/exhibit.sysusers"), encoding: .utf8)
        #expect(sysusers.contains("m exhibit-panel exhibit"))
    }

    /// User and system CPU time of a process, from /proc.
    private func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        let ticks = Double(fields[11])! + Double(fields[12])!
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
