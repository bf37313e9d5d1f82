// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import HumanText
import StatusAPI

struct Case: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open or close the daemon's case session.",
        subcommands: [Open.self, Close.self])

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a case: sources become its exhibits.",
            discussion: """
                With --auto, every read-only disk attached from now on is acquired as the next exhibit
                number (E1, E2, …). Otherwise disks wait as `ready` until `exhibit acquire --slot N --exhibit ID`.
                """)
        @Option(name: .customLong("case"), help: "The case number.") var caseId: String
        @Option(help: "The examiner's name or id.") var examiner: String
        @Flag(help: "Acquire every new read-only disk automatically.") var auto = false
        @Option(help: "The daemon's status socket.") var socket: String = StatusClient.defaultSocket
        @Flag(help: "Print the daemon's answer as JSON.") var json = false

        func validate() throws {
            for (name, value) in [("--case", caseId), ("--examiner", examiner)] {
                do { try PlainText.validate(value, field: name) } catch { throw ValidationError("\(error)") }
            }
        }

        func run() throws {
            let answer = request(StatusRequest(.openCase, caseId: caseId, examiner: examiner, auto: auto, client: "exhibit case open"), socket: socket, "case open")
            if json { return printJSON(answer) }
            let session = answer.session
            print("case \(caseId) open, examiner \(examiner)" + (auto ? "; new read-only disks are acquired automatically from \(session?.nextExhibitId ?? "E1")" : ""))
        }
    }

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close the open case.")
        @Option(help: "The daemon's status socket.") var socket: String = StatusClient.defaultSocket
        @Flag(help: "Print the daemon's answer as JSON.") var json = false

        func run() throws {
            let answer = request(StatusRequest(.closeCase, client: "exhibit case close"), socket: socket, "case close")
            if json { return printJSON(answer) }
            print("case closed")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the daemon's slots, jobs and case.",
        discussion: "--json prints the daemon's messages as they are (docs/status-api.md); --watch follows changes.")
    @Option(help: "The daemon's status socket.") var socket: String = StatusClient.defaultSocket
    @Flag(help: "Print the status API's JSON lines.") var json = false
    @Flag(help: "Keep printing changes until interrupted.") var watch = false

    func run() throws {
        let client = StatusClient(path: socket)
        do {
            try client.exchange(StatusRequest(watch ? .subscribe : .snapshot)) { message in
                if json {
                    FileHandle.standardOutput.write(StatusCoding.line(message))
                } else {
                    Self.describe(message)
                }
                return watch
            }
        } catch {
            failAndExit("status", error)
        }
    }

    static func describe(_ message: StatusMessage) {
        switch message.type {
        case .snapshot:
            if let daemon = message.daemon {
                print("exhibitd \(daemon.version) pid \(daemon.pid), store \(daemon.store), discovery \(daemon.discovery)")
                if let reason = daemon.degradedReason { print("DEGRADED: \(reason)") }
                if let free = daemon.storeFreeBytes { print("store free: \(ByteCount.format(free))") }
            }
            if let session = message.session {
                print("case \(session.caseId), examiner \(session.examiner)\(session.auto ? ", automatic (next \(session.nextExhibitId))" : "")")
            } else {
                print("no case open")
            }
            let slots = message.slots ?? []
            if slots.isEmpty { print("no sources attached") }
            for slot in slots { print(line(slot)) }
            for alert in message.alerts ?? [] { print(line(alert)) }
        case .slot, .slotRemoved:
            if let slot = message.slot { print((message.type == .slotRemoved ? "removed: " : "") + line(slot)) }
        case .session:
            print(message.session.map { "case \($0.caseId) open" } ?? "case closed")
        case .event:
            if let event = message.event { print("\(message.time) \(event.level): \(event.message)") }
        case .ok, .error:
            print(message.error?.message ?? "ok")
        case .alerts:
            let alerts = message.alerts ?? []
            print(alerts.isEmpty ? "no alerts" : alerts.map(line).joined(separator: "\n"))
        case .store:
            if let store = message.store {
                print("store free: \(ByteCount.format(store.freeBytes))" + (store.almostFull ? " (almost full)" : ""))
            }
        }
    }

    static func line(_ alert: AlertStatus) -> String {
        var text = "alert \(alert.kind.rawValue)"
        if let slot = alert.slot { text += "  slot \(slot)" }
        if let exhibit = alert.exhibitId { text += "  exhibit \(exhibit)" }
        if let detail = alert.detail { text += "  \(detail)" }
        if let fix = alert.fix { text += "  fix: \(fix)" }
        if let by = alert.acknowledgedBy { text += "  (acknowledged by \(by))" }
        return text
    }

    static func line(_ slot: SlotStatus) -> String {
        var text = "slot \(slot.slot)  \(slot.device)  \(slot.state.rawValue)"
        let name = [slot.vendor, slot.model, slot.serial.map { "s/n \($0)" }].compactMap { $0 }.joined(separator: " ")
        if !name.isEmpty { text += "  \(name)" }
        if slot.sizeBytes > 0 { text += "  \(ByteCount.format(slot.sizeBytes))" }
        if let exhibit = slot.exhibitId { text += "  exhibit \(exhibit)" }
        if [.acquiring, .recovering, .verifying].contains(slot.state), slot.sizeBytes > 0 {
            text += String(format: "  %.1f%%", Double(slot.bytesDone) / Double(slot.sizeBytes) * 100)
            if let rate = slot.currentMBPerSecond ?? slot.averageMBPerSecond { text += String(format: "  %.0f MB/s", rate) }
            if let eta = slot.etaSeconds { text += "  ETA \(ProgressLine.clock(eta))" }
        }
        if slot.unreadableSectors > 0 { text += "  unreadable \(slot.unreadableSectors)" }
        if let sha256 = slot.digests["sha256"] { text += "  SHA-256 \(sha256)" }
        if let detail = slot.detail { text += "\n        \(detail)" }
        return text
    }
}

private func request(_ request: StatusRequest, socket: String, _ operation: String) -> StatusMessage {
    do {
        let answer = try StatusClient(path: socket).send(request)
        if let error = answer.error { failAndExit(operation, error.message) }
        return answer
    } catch {
        failAndExit(operation, error)
    }
}
