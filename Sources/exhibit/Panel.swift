// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Panel
import StatusAPI

struct PanelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "panel",
        abstract: "The front-panel console: slots, progress, alerts and case controls, full screen.",
        discussion: """
            Keys: ↑ ↓ or 1-9 choose a slot; Enter starts a ready slot's acquisition (type or scan the \
            exhibit number) or shows a slot's details; C opens or closes the case; A acknowledges the \
            alerts; L changes the language. Every action goes through the daemon and into its audit trail.
            """)

    @Option(help: "The daemon's status socket.") var socket: String = StatusClient.defaultSocket
    @Option(help: "The language: en, th, km, lo or vi (default: from EXHIBIT_PANEL_LANG or LANG).") var lang: String?

    func run() throws {
        let chosen = lang ?? ProcessInfo.processInfo.environment["EXHIBIT_PANEL_LANG"]
            ?? String((ProcessInfo.processInfo.environment["LANG"] ?? "en").prefix(2))
        guard let language = PanelLanguage(rawValue: chosen) ?? (lang == nil ? .en : nil) else {
            throw ValidationError("unknown language \(chosen): use one of \(PanelLanguage.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            try PanelApp(socket: socket, language: language).run()
        } catch {
            failAndExit("panel", error)
        }
    }
}
