// SPDX-License-Identifier: Apache-2.0
import Foundation
import HumanText
import StatusAPI

/// What the panel's keys do. Every action is a request to the daemon (which records it in the
/// audit trail with `client`); the controller only keeps what is being typed and selected.
public struct PanelController {
    public var ui: PanelUI
    public private(set) var text: MessageCatalog
    /// Names the panel in the audit trail: `panel /dev/tty1`.
    public let client: String
    private let send: (StatusRequest) -> Result<StatusMessage, DaemonRequestError>
    static let noticeSeconds: TimeInterval = 8
    static let maximumInput = 64

    public init(
        language: PanelLanguage, text: MessageCatalog, client: String,
        send: @escaping (StatusRequest) -> Result<StatusMessage, DaemonRequestError>
    ) {
        ui = PanelUI(language: language)
        self.text = text
        self.client = client
        self.send = send
    }

    /// Keeps the selection on a slot that exists.
    public mutating func follow(_ model: PanelModel) {
        if model.slot(ui.selectedSlot) == nil { ui.selectedSlot = model.slots.first?.slot }
        if case .detail(let slot) = ui.mode, model.slot(slot) == nil { ui.mode = .main }
    }

    public mutating func handle(_ key: PanelKey, model: PanelModel, now: Date = Date()) {
        follow(model)
        switch ui.mode {
        case .main: handleMain(key, model: model, now: now)
        case .detail(let slot): handleDetail(key, slot: slot, model: model)
        case .prompt(let prompt): handlePrompt(key, prompt: prompt, now: now)
        case .confirm(let confirm): handleConfirm(key, confirm: confirm, model: model, now: now)
        }
    }

    private mutating func handleMain(_ key: PanelKey, model: PanelModel, now: Date) {
        switch key {
        case .up: move(-1, model)
        case .down: move(1, model)
        case .enter:
            guard let slot = model.slot(ui.selectedSlot) else { return notify(text(.resultNoSlot), error: true, now) }
            if slot.state == .ready, slot.jobId == nil {
                guard model.session != nil else { return notify(text(.slotReadyNeedCase), error: true, now) }
                begin(.prompt(.exhibit(slot: slot.slot)))
            } else {
                ui.mode = .detail(slot: slot.slot)
            }
        case .character(let character):
            if let digit = character.wholeNumberValue, character.isASCII, model.slot(digit) != nil {
                ui.selectedSlot = digit
                return
            }
            switch character.lowercased() {
            case "c":
                if let session = model.session {
                    ui.mode = .confirm(.closeCase(caseId: session.caseId))
                } else {
                    begin(.prompt(.caseNumber))
                }
            case "a": acknowledgeAll(model, now: now)
            case "l": switchLanguage(now: now)
            default: break
            }
        default: break
        }
    }

    private mutating func handleDetail(_ key: PanelKey, slot: Int, model: PanelModel) {
        switch key {
        case .enter, .escape, .left: ui.mode = .main
        case .up, .down:
            move(key == .up ? -1 : 1, model)
            if let selected = ui.selectedSlot { ui.mode = .detail(slot: selected) }
        default: break
        }
    }

    private mutating func handlePrompt(_ key: PanelKey, prompt: PanelUI.Prompt, now: Date) {
        switch key {
        case .escape: ui.mode = .main
        case .backspace: if !ui.input.isEmpty { ui.input.removeLast() }
        case .character(let character):
            // A scanner or keyboard can send C1 controls and separators the key decoder passes on;
            // the daemon would refuse such a name, so they are never typed in.
            if ui.input.count < Self.maximumInput, !character.unicodeScalars.contains(where: PlainText.isForbidden) {
                ui.input.append(character)
            }
        case .enter:
            let answer = ui.input.trimmingCharacters(in: .whitespaces)
            guard !answer.isEmpty else { return }
            switch prompt {
            case .exhibit(let slot):
                ui.mode = .main
                let result = send(StatusRequest(.acquire, slot: slot, exhibitId: answer, client: client))
                report(result, success: text(.resultAcquiring, String(slot), answer), now: now)
            case .caseNumber:
                begin(.prompt(.examiner(caseId: answer)))
            case .examiner(let caseId):
                ui.mode = .confirm(.autoAcquire(caseId: caseId, examiner: answer))
            }
        default: break
        }
    }

    private mutating func handleConfirm(_ key: PanelKey, confirm: PanelUI.Confirm, model: PanelModel, now: Date) {
        let answer: Bool
        switch key {
        case .escape:
            ui.mode = .main
            return
        case .character(let character) where character.lowercased() == "y": answer = true
        case .character(let character) where character.lowercased() == "n": answer = false
        default: return
        }
        ui.mode = .main
        switch confirm {
        case .autoAcquire(let caseId, let examiner):
            let result = send(StatusRequest(.openCase, caseId: caseId, examiner: examiner, auto: answer, actor: examiner, client: client))
            report(result, success: text(.resultCaseOpened, caseId), now: now)
        case .closeCase:
            guard answer else { return }
            let result = send(StatusRequest(.closeCase, actor: model.session?.examiner, client: client))
            report(result, success: text(.resultCaseClosed), now: now)
        }
    }

    private mutating func acknowledgeAll(_ model: PanelModel, now: Date) {
        let open = model.alerts.filter { $0.acknowledgedBy == nil }
        guard !open.isEmpty else { return notify(text(.resultNothingToAcknowledge), error: false, now) }
        var done = 0
        for alert in open {
            switch send(StatusRequest(.acknowledge, alertId: alert.id, client: client)) {
            case .success(let answer) where answer.error == nil: done += 1
            case .success(let answer): return notify(text(.resultFailed, answer.error?.message ?? "-"), error: true, now)
            case .failure(let error): return notify(text(.resultFailed, error.message), error: true, now)
            }
        }
        notify(text(.resultAcknowledged, text.count(done)), error: false, now)
    }

    private mutating func switchLanguage(now: Date) {
        let next = ui.language.next
        guard let catalog = try? MessageCatalog.load(next) else { return }
        ui.language = next
        text = catalog
        notify(text(.resultLanguage, text(.languageName)), error: false, now)
    }

    private mutating func move(_ step: Int, _ model: PanelModel) {
        guard !model.slots.isEmpty else { return }
        let index = model.slots.firstIndex { $0.slot == ui.selectedSlot } ?? 0
        ui.selectedSlot = model.slots[min(max(0, index + step), model.slots.count - 1)].slot
    }

    private mutating func begin(_ mode: PanelUI.Mode) {
        ui.input = ""
        ui.mode = mode
    }

    private mutating func report(_ result: Result<StatusMessage, DaemonRequestError>, success: String, now: Date) {
        switch result {
        case .success(let answer):
            if let error = answer.error {
                notify(text(.resultFailed, error.message), error: true, now)
            } else {
                notify(success, error: false, now)
            }
        case .failure(let error):
            notify(text(.resultFailed, error.message), error: true, now)
        }
    }

    private mutating func notify(_ message: String, error: Bool, _ now: Date) {
        ui.notice = PanelUI.Notice(text: message, isError: error, until: now.addingTimeInterval(Self.noticeSeconds))
    }
}
