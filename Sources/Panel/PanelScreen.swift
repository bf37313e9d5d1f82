// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import StatusAPI

/// How a stretch of text looks. Alerts differ by text as well as colour ("ALERT", "seen"), so a
/// technician who cannot tell red from green, or a monochrome panel, loses nothing.
public enum PanelStyle: Sendable, Equatable {
    case plain, title, alert, seen, warning, good, busy, dim, selected, prompt
}

public struct PanelSpan: Sendable, Equatable {
    public var text: String
    public var style: PanelStyle
}

/// One row of the screen, never wider than the screen.
public struct PanelLine: Sendable, Equatable {
    public var spans: [PanelSpan]

    public init(_ text: String = "", _ style: PanelStyle = .plain) { spans = [PanelSpan(text: text, style: style)] }
    public init(spans: [PanelSpan]) { self.spans = spans }

    public var text: String { spans.map(\.text).joined() }
    public var width: Int { TerminalText.width(text) }
}

/// What the technician is doing at the panel: looking, typing an answer, or reading a slot's details.
public struct PanelUI: Sendable {
    public enum Mode: Sendable, Equatable {
        case main
        case detail(slot: Int)
        case prompt(Prompt)
        case confirm(Confirm)
    }

    public enum Prompt: Sendable, Equatable {
        case exhibit(slot: Int)
        case caseNumber
        case examiner(caseId: String)
    }

    public enum Confirm: Sendable, Equatable {
        case autoAcquire(caseId: String, examiner: String)
        case closeCase(caseId: String)
    }

    /// The answer to the last action, shown for a few seconds.
    public struct Notice: Sendable {
        public var text: String
        public var isError: Bool
        public var until: Date
    }

    public var mode: Mode = .main
    public var input = ""
    public var selectedSlot: Int?
    public var notice: Notice?
    public var language: PanelLanguage

    public init(language: PanelLanguage) { self.language = language }
}

/// Lays the panel out for a screen of `columns` × `rows`: header, case, store, alerts, one card
/// per slot, and the answer and key lines at the bottom. Below 60 columns the short texts and
/// a two-line card without the device's name are used.
public struct PanelScreen {
    public let model: PanelModel
    public let ui: PanelUI
    public let text: MessageCatalog
    public let columns: Int
    public let rows: Int
    public let now: Date
    public let timeZone: TimeZone

    public init(model: PanelModel, ui: PanelUI, text: MessageCatalog, columns: Int, rows: Int, now: Date, timeZone: TimeZone = .current) {
        self.model = model
        self.ui = ui
        self.text = text
        self.columns = max(columns, 1)
        self.rows = max(rows, 1)
        self.now = now
        self.timeZone = timeZone
    }

    var wide: Bool { columns >= 60 }

    public func lines() -> [PanelLine] {
        var top = [header(), caseLine()]
        if rows >= 10 { top += [storeLine(), PanelLine(String(repeating: "─", count: columns), .dim)] }
        let bottom = footer()
        let middle = max(0, rows - top.count - bottom.count)
        let detail: Int? = if case .detail(let slot) = ui.mode { slot } else { nil }
        let needsPerson = model.connection != .connected && model.connection != .connecting
            || model.alerts.contains { $0.acknowledgedBy == nil }
        let alertBudget = detail != nil ? (needsPerson ? min(1, middle) : 0) : wide ? min(6, middle / 3) : max(min(2, middle - 2), 0)
        let alertLines = alerts(budget: alertBudget)
        let rest = middle - alertLines.count
        let body = detail.map { detailLines($0, budget: rest) } ?? slotLines(budget: rest)
        var screen = top + alertLines + body
        screen += Array(repeating: PanelLine(), count: max(0, rows - screen.count - bottom.count)) + bottom
        return screen.prefix(rows).map(fitted)
    }

    /// Cuts a line to the screen's width.
    private func fitted(_ line: PanelLine) -> PanelLine {
        var spans: [PanelSpan] = []
        var used = 0
        for span in line.spans where used < columns {
            let room = columns - used
            let cut = TerminalText.cut(span.text, to: room)
            spans.append(PanelSpan(text: cut, style: span.style))
            used += TerminalText.width(cut)
        }
        // Highlighted rows are painted across the whole width.
        if used < columns, let last = spans.last, [.title, .selected, .alert].contains(last.style) {
            spans.append(PanelSpan(text: String(repeating: " ", count: columns - used), style: last.style))
        }
        return PanelLine(spans: spans)
    }

    /// `left` and `right` on one row, `right` flush with the edge; `left` gives way.
    private func row(_ left: String, _ right: String, _ style: PanelStyle, rightStyle: PanelStyle? = nil) -> PanelLine {
        let rightWidth = TerminalText.width(right)
        let room = max(0, columns - rightWidth - 1)
        let leftText = TerminalText.fit(left, to: room)
        return PanelLine(spans: [
            PanelSpan(text: leftText + " ", style: style), PanelSpan(text: right, style: rightStyle ?? style),
        ])
    }

    // MARK: Top

    private func header() -> PanelLine {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = wide ? "yyyy-MM-dd HH:mm:ss xxx" : "yyyy-MM-dd HH:mm"
        let clock = formatter.string(from: now) + " "
        var title = " " + text(.appTitle)
        if wide, let id = model.daemon?.applianceId { title += " · " + text(.headerAppliance, clean(id)) }
        return row(title, clock, .title)
    }

    private func caseLine() -> PanelLine {
        guard let session = model.session else { return PanelLine(text(wide ? .caseNone : .caseNoneShort), .warning) }
        let caseId = clean(session.caseId)
        if wide {
            let mode = session.auto ? text(.caseAuto, clean(session.nextExhibitId)) : text(.caseManual)
            return PanelLine(text(.caseOpen, caseId, clean(session.examiner)) + " · " + mode)
        }
        let mode = session.auto ? text(.caseAutoShort, clean(session.nextExhibitId)) : text(.caseManualShort)
        return PanelLine(text(.caseOpenShort, caseId) + " · " + mode)
    }

    private func storeLine() -> PanelLine {
        guard let store = model.store else { return PanelLine(text(.storeUnknown), .dim) }
        var line = text(wide ? .storeFree : .storeFreeShort, bytes(store.freeBytes))
        if let fit = store.imagesThatFit {
            if wide, let average = store.averageImageBytes {
                line += " · " + text(.storeFits, text.count(fit), bytes(average))
            } else if !wide {
                line += " · " + text(.storeFitsShort, text.count(fit))
            }
        }
        return PanelLine(line, store.almostFull ? .warning : .plain)
    }

    // MARK: Alerts

    /// Alerts in at most two rows each; when they do not all fit, the last row counts the rest.
    private func alerts(budget: Int) -> [PanelLine] {
        guard budget > 0 else { return [] }
        var entries: [(seen: Bool, message: String)] = []
        if case .unreachable = model.connection { entries.append((false, text(.alertDaemonUnreachable))) }
        entries += model.orderedAlerts.map { ($0.acknowledgedBy != nil, alertText($0)) }
        var lines: [PanelLine] = []
        for (index, entry) in entries.enumerated() {
            let tag = entry.seen ? "(" + text(.alertAcknowledged) + ") " : "[" + text(.alertTag) + "] "
            let style: PanelStyle = entry.seen ? .seen : .alert
            var rows = TerminalText.wrap(tag + entry.message, to: columns)
            if rows.count > 2 { rows = [rows[0], TerminalText.cut(rows[1...].joined(separator: " "), to: columns - 1) + " "] }
            let remaining = entries.count - index - 1
            let room = budget - lines.count - (remaining > 0 ? 1 : 0)
            if rows.count <= room {
                lines += rows.map { PanelLine($0, style) }
                continue
            }
            func more(_ hidden: ArraySlice<(seen: Bool, message: String)>) -> PanelLine {
                PanelLine(text(.alertMore, text.count(hidden.count)), hidden.allSatisfy(\.seen) ? .seen : .alert)
            }
            if room >= 1 {
                lines.append(PanelLine(TerminalText.cut(rows.joined(separator: " "), to: columns), style))
                if remaining > 0 { lines.append(more(entries[(index + 1)...])) }
            } else {
                lines.append(more(entries[index...]))
            }
            return lines
        }
        return lines
    }

    /// What an interrupted job's alert and slot ask the technician to do.
    static func interruptedAlert(_ action: ResumeAction?) -> MessageKey {
        switch action {
        case .freeStoreSpace?: .alertJobInterruptedStoreFull
        case .makeReadOnly?: .alertJobInterruptedWritable
        case .reconnectDevice?, nil: .alertJobInterrupted
        }
    }

    static func interruptedHint(_ action: ResumeAction?) -> MessageKey {
        switch action {
        case .freeStoreSpace?: .slotInterruptedStoreFull
        case .makeReadOnly?: .slotInterruptedWritable
        case .reconnectDevice?, nil: .slotInterruptedHint
        }
    }

    public func alertText(_ alert: AlertStatus) -> String {
        let slot = alert.slot.map(String.init) ?? "-"
        let exhibit = clean(alert.exhibitId ?? "-")
        return switch alert.kind {
        case .sourceRefused: text(.alertSourceRefused, slot, clean(alert.device ?? "-"), clean(alert.fix ?? "-"))
        case .jobFailed: text(.alertJobFailed, slot, exhibit) + reason(alert)
        case .jobInterrupted: text(Self.interruptedAlert(alert.resumeBy), exhibit) + reason(alert)
        case .storeAlmostFull: text(.alertStoreAlmostFull, model.store.map { bytes($0.freeBytes) } ?? "-")
        case .daemonDegraded: text(.alertDaemonDegraded)
        case .phoneUnauthorized: text(.alertPhoneUnauthorized, slot)
        case .phoneLocked: text(.alertPhoneLocked, slot)
        case .phoneNoPermission: text(.alertPhoneNoPermission, slot)
        case .phoneOffline: text(.alertPhoneOffline, slot)
        }
    }

    /// The job's own words on why, after the alert's.
    private func reason(_ alert: AlertStatus) -> String {
        alert.detail.map { " " + text(.slotReason, clean($0)) } ?? ""
    }

    // MARK: Slots

    private func slotLines(budget: Int) -> [PanelLine] {
        guard budget > 0 else { return [] }
        guard !model.slots.isEmpty else { return [PanelLine(text(wide ? .slotsEmpty : .slotsEmptyShort), .dim)] }
        let perCard = 2
        let fitting = max(1, budget / perCard)
        let selectedIndex = model.slots.firstIndex { $0.slot == ui.selectedSlot } ?? 0
        var shown = min(fitting, model.slots.count)
        var first = min(max(0, selectedIndex - shown + 1), model.slots.count - shown)
        var moreLine: PanelLine? = nil
        if model.slots.count > fitting, budget >= 3 {
            // One row tells how many slots are off screen.
            shown = max(1, (budget - 1) / perCard)
            first = min(max(0, selectedIndex - shown + 1), model.slots.count - shown)
            moreLine = PanelLine(text(.slotsMore, text.count(model.slots.count - shown)), .dim)
        }
        var lines: [PanelLine] = []
        for slot in model.slots[first..<first + shown] { lines += card(slot) }
        if let moreLine { lines.append(moreLine) }
        return Array(lines.prefix(budget))
    }

    private func card(_ slot: SlotStatus) -> [PanelLine] {
        let selected = slot.slot == ui.selectedSlot
        let marker = selected ? "▶" : " "
        let state = stateLabel(slot.state) + (slot.exhibitId.map { " " + clean($0) } ?? "")
        let stateStyle = selected ? .selected : style(of: slot.state)
        var first: PanelLine
        if wide {
            let kind = text(slot.kind.isPhone ? .kindPhone : .kindDisk)
            let name = [
                [slot.vendor, slot.model].compactMap { $0.map(clean) }.joined(separator: " "),
                clean(slot.device),
                slot.serial.map { text(.slotSerial, clean($0)) } ?? "",
                slot.sizeBytes > 0 ? bytes(slot.sizeBytes) : "",
            ].filter { !$0.isEmpty }
            let left = "\(marker)\(slot.slot) \(kind) " + name.joined(separator: " · ")
            first = row(left, state, selected ? .selected : .plain, rightStyle: stateStyle)
        } else {
            let progress = isBusy(slot.state) ? " " + percent(slot) : ""
            first = row("\(marker)\(slot.slot) " + state + progress, "", selected ? .selected : stateStyle)
        }
        return [first, PanelLine((wide ? "   " : " ") + cardDetail(slot), detailStyle(slot.state))]
    }

    private func cardDetail(_ slot: SlotStatus) -> String {
        switch slot.state {
        case .acquiring, .recovering, .verifying:
            let barWidth = wide ? 16 : 8
            let fraction = slot.sizeBytes > 0 ? min(1, Double(slot.bytesDone) / Double(slot.sizeBytes)) : 0
            let done = Int((fraction * Double(barWidth)).rounded(.down))
            var parts = ["[" + String(repeating: "█", count: done) + String(repeating: "░", count: barWidth - done) + "]"]
            if wide { parts.append(percent(slot)) }
            if let rate = slot.currentMBPerSecond ?? slot.averageMBPerSecond { parts.append(text(.slotSpeed, text.decimal(rate, places: 0))) }
            if let eta = slot.etaSeconds { parts.append(text(.slotEta, clock(eta))) }
            // Short labels: at 80 columns "Do not unplug" must still fit in every language.
            if slot.unreadableSectors > 0 || wide { parts.append(text(.slotUnreadableShort, text.count(slot.unreadableSectors))) }
            if wide { parts.append(text(.slotDoNotUnplug)) }
            return parts.joined(separator: "  ")
        case .sealing:
            return text(.slotDoNotUnplug)
        case .sealed:
            let digest = slot.digests["sha256"].map { text(.slotSha256, Self.shortDigest($0, tail: wide ? 8 : 4)) } ?? ""
            let unreadable = slot.unreadableSectors > 0 ? " · " + text(.slotUnreadableShort, text.count(slot.unreadableSectors)) : ""
            return wide ? digest + unreadable + " · " + text(.slotSafeToUnplug) : text(.slotSafeToUnplug) + " · " + digest
        case .ready:
            return text(model.session == nil ? .slotReadyNeedCase : .slotReadyPress)
        case .refused:
            let fix = "blockdev --setro \(clean(slot.device))"
            return wide ? text(.slotRefusedFix, fix) : fix
        case .failed:
            return text(.slotReason, clean(slot.detail ?? "-"))
        case .interrupted:
            return text(Self.interruptedHint(slot.resumeBy)) + (wide ? " · " + text(.slotReason, clean(slot.detail ?? "-")) : "")
        case .detected:
            return text(.slotDetected)
        }
    }

    /// `3f9a1c2b…e4d17b2e`: enough to compare at a glance; the detail view has all 64.
    public static func shortDigest(_ hex: String, tail: Int = 8) -> String {
        hex.count > 20 ? String(hex.prefix(8)) + "…" + String(hex.suffix(tail)) : hex
    }

    // MARK: Detail

    private func detailLines(_ number: Int, budget: Int) -> [PanelLine] {
        guard let slot = model.slot(number) else { return [PanelLine(text(.resultNoSlot), .dim)] }
        var lines = [PanelLine(text(.detailTitle, String(number)), .prompt)]
        // Wide: a label column. Narrow: "Label: value" when it fits, else the label over the value.
        func field(_ label: String, _ value: String?) {
            guard let value, !value.isEmpty else { return }
            if wide {
                let labelWidth = 15
                for (index, part) in TerminalText.wrap(value, to: columns - labelWidth).enumerated() {
                    lines.append(PanelLine(TerminalText.fit(index == 0 ? label : "", to: labelWidth) + part))
                }
            } else if label.isEmpty || TerminalText.width(label + ": " + value) <= columns {
                lines.append(PanelLine(label.isEmpty ? value : label + ": " + value))
            } else {
                lines.append(PanelLine(label, .dim))
                for part in TerminalText.wrap(value, to: columns - 1) { lines.append(PanelLine(" " + part)) }
            }
        }
        // The digest first: on a small panel it is what the technician compares.
        field("SHA-256", slot.digests["sha256"])
        field(text(.detailState), stateLabel(slot.state) + ([.sealed].contains(slot.state) ? " · " + text(.slotSafeToUnplug) : ""))
        field(text(.detailExhibit), slot.exhibitId.map { [slot.caseId.map(clean), clean($0)].compactMap { $0 }.joined(separator: " / ") })
        field(text(.detailDevice), clean(slot.device))
        field(text(.detailModel), [slot.vendor, slot.model].compactMap { $0.map(clean) }.joined(separator: " "))
        field(text(.detailSerial), slot.serial.map(clean))
        field(text(.detailCapacity), bytes(slot.sizeBytes) + " (" + text.count(slot.sizeBytes) + " B)")
        field(text(.detailFormat), slot.imageFormat.map(clean))
        field(text(.detailBundle), slot.bundleId.map(clean))
        field("MD5", slot.digests["md5"])
        field("SHA-1", slot.digests["sha1"])
        if slot.unreadableSectors > 0 { field("", text(.slotUnreadable, text.count(slot.unreadableSectors))) }
        if let detail = slot.detail { field("", text(.slotReason, clean(detail))) }
        return Array(lines.prefix(budget))
    }

    // MARK: Bottom

    private func footer() -> [PanelLine] {
        switch ui.mode {
        case .prompt(let prompt):
            let label: String =
                switch prompt {
                case .exhibit(let slot): text(.promptExhibit, String(slot))
                case .caseNumber: text(.promptCase)
                case .examiner: text(.promptExaminer)
                }
            let entry = "> " + ui.input + "▏"
            return [
                PanelLine(label, .prompt),
                wide ? row(entry, text(.promptHint) + " ", .prompt, rightStyle: .dim) : PanelLine(entry, .prompt),
            ]
        case .confirm(let confirm):
            let question: String =
                switch confirm {
                case .autoAcquire: text(.promptAuto)
                case .closeCase(let caseId): text(.promptCloseCase, clean(caseId))
                }
            let wrapped = TerminalText.wrap(question, to: columns)
            return [PanelLine(wrapped.first ?? "", .prompt), PanelLine(wrapped.dropFirst().joined(separator: " "), .prompt)]
        case .detail:
            return [noticeLine(), PanelLine(text(.detailBack), .dim)]
        case .main:
            return [noticeLine(), PanelLine(text(wide ? .keysWide : .keysNarrow), .dim)]
        }
    }

    private func noticeLine() -> PanelLine {
        if let notice = ui.notice, notice.until > now { return PanelLine(notice.text, notice.isError ? .warning : .good) }
        if model.connection == .connecting { return PanelLine(text(.connectionConnecting), .dim) }
        return PanelLine()
    }

    // MARK: Formats

    public func stateLabel(_ state: SlotState) -> String {
        switch state {
        case .detected: text(.stateDetected)
        case .ready: text(.stateReady)
        case .refused: text(.stateRefused)
        case .acquiring: text(.stateAcquiring)
        case .recovering: text(.stateRecovering)
        case .verifying: text(.stateVerifying)
        case .sealing: text(.stateSealing)
        case .sealed: text(.stateSealed)
        case .failed: text(.stateFailed)
        case .interrupted: text(.stateInterrupted)
        }
    }

    private func style(of state: SlotState) -> PanelStyle {
        switch state {
        case .refused, .failed, .interrupted: .alert
        case .sealed: .good
        case .acquiring, .recovering, .verifying, .sealing: .busy
        case .ready: .prompt
        case .detected: .plain
        }
    }

    private func detailStyle(_ state: SlotState) -> PanelStyle {
        switch state {
        case .refused, .failed, .interrupted: .warning
        case .sealed: .good
        default: .plain
        }
    }

    private func isBusy(_ state: SlotState) -> Bool { [.acquiring, .recovering, .verifying].contains(state) }

    private func percent(_ slot: SlotStatus) -> String {
        let fraction = slot.sizeBytes > 0 ? min(1, Double(slot.bytesDone) / Double(slot.sizeBytes)) : 0
        return text.decimal(fraction * 100, places: 1) + "%"
    }

    private func bytes(_ count: UInt64) -> String { text.withDecimalSign(ByteCount.format(count)) }

    private func clean(_ value: String) -> String { TerminalText.sanitize(value) }

    /// `1:05:09`, hours unbounded.
    private func clock(_ seconds: Double) -> String {
        let total = Int(max(0, seconds.rounded()))
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }
}
