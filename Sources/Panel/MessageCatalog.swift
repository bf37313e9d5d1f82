// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The panel's languages; each has a gettext catalogue in `Messages/<code>.po` that a
/// translator edits with any PO editor.
public enum PanelLanguage: String, CaseIterable, Sendable {
    case en, th, km, lo, vi

    public var next: PanelLanguage {
        let all = Self.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }
}

/// Every text the panel shows, by its catalogue key (`msgctxt`).
public enum MessageKey: String, CaseIterable, Sendable {
    case languageName = "language.name"
    case formatDecimal = "format.decimal"
    case formatGroup = "format.group"
    case appTitle = "app.title"
    case headerAppliance = "header.appliance"
    case caseNone = "case.none"
    case caseNoneShort = "case.none.short"
    case caseOpen = "case.open"
    case caseOpenShort = "case.open.short"
    case caseAuto = "case.auto"
    case caseAutoShort = "case.auto.short"
    case caseManual = "case.manual"
    case caseManualShort = "case.manual.short"
    case storeFree = "store.free"
    case storeFreeShort = "store.free.short"
    case storeFits = "store.fits"
    case storeFitsShort = "store.fits.short"
    case storeUnknown = "store.unknown"
    case slotsEmpty = "slots.empty"
    case slotsEmptyShort = "slots.empty.short"
    case slotsMore = "slots.more"
    case kindDisk = "kind.disk"
    case kindPhone = "kind.phone"
    case slotSerial = "slot.serial"
    case stateDetected = "state.detected"
    case stateReady = "state.ready"
    case stateRefused = "state.refused"
    case stateAcquiring = "state.acquiring"
    case stateRecovering = "state.recovering"
    case stateVerifying = "state.verifying"
    case stateSealing = "state.sealing"
    case stateSealed = "state.sealed"
    case stateFailed = "state.failed"
    case stateInterrupted = "state.interrupted"
    case slotExhibit = "slot.exhibit"
    case slotSpeed = "slot.speed"
    case slotEta = "slot.eta"
    case slotUnreadable = "slot.unreadable"
    case slotUnreadableShort = "slot.unreadable.short"
    case slotDoNotUnplug = "slot.doNotUnplug"
    case slotSafeToUnplug = "slot.safeToUnplug"
    case slotSha256 = "slot.sha256"
    case slotReadyPress = "slot.ready.press"
    case slotReadyNeedCase = "slot.ready.needCase"
    case slotDetected = "slot.detected"
    case slotRefusedFix = "slot.refused.fix"
    case slotReason = "slot.reason"
    case slotInterruptedHint = "slot.interrupted.hint"
    case slotInterruptedStoreFull = "slot.interrupted.storeFull"
    case slotInterruptedWritable = "slot.interrupted.writable"
    case detailTitle = "detail.title"
    case detailDevice = "detail.device"
    case detailModel = "detail.model"
    case detailSerial = "detail.serial"
    case detailCapacity = "detail.capacity"
    case detailState = "detail.state"
    case detailExhibit = "detail.exhibit"
    case detailBundle = "detail.bundle"
    case detailFormat = "detail.format"
    case detailBack = "detail.back"
    case alertTag = "alert.tag"
    case alertAcknowledged = "alert.acknowledged"
    case alertMore = "alert.more"
    case alertSourceRefused = "alert.sourceRefused"
    case alertJobFailed = "alert.jobFailed"
    case alertJobInterrupted = "alert.jobInterrupted"
    case alertJobInterruptedStoreFull = "alert.jobInterruptedStoreFull"
    case alertJobInterruptedWritable = "alert.jobInterruptedWritable"
    case alertStoreAlmostFull = "alert.storeAlmostFull"
    case alertDaemonDegraded = "alert.daemonDegraded"
    case alertDaemonUnreachable = "alert.daemonUnreachable"
    case alertPhoneUnauthorized = "alert.phoneUnauthorized"
    case alertPhoneLocked = "alert.phoneLocked"
    case alertPhoneNoPermission = "alert.phoneNoPermission"
    case alertPhoneOffline = "alert.phoneOffline"
    case keysWide = "keys.wide"
    case keysNarrow = "keys.narrow"
    case promptExhibit = "prompt.exhibit"
    case promptCase = "prompt.case"
    case promptExaminer = "prompt.examiner"
    case promptAuto = "prompt.auto"
    case promptCloseCase = "prompt.closeCase"
    case promptHint = "prompt.hint"
    case resultAcquiring = "result.acquiring"
    case resultCaseOpened = "result.caseOpened"
    case resultCaseClosed = "result.caseClosed"
    case resultAcknowledged = "result.acknowledged"
    case resultNothingToAcknowledge = "result.nothingToAcknowledge"
    case resultFailed = "result.failed"
    case resultSlotBusy = "result.slotBusy"
    case resultNoSlot = "result.noSlot"
    case resultLanguage = "result.language"
    case connectionConnecting = "connection.connecting"
}

/// A panel failure: which operation, on which file, and why.
public struct PanelError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case catalogMissing = "catalog-missing"
        case catalogMalformed = "catalog-malformed"
        case notATerminal = "not-a-terminal"
        case systemCall = "system-call"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// One language's texts. Lookups fall back to English for a key the language lacks (the tests
/// make sure none does), so the panel never shows a bare key.
public struct MessageCatalog: Sendable {
    /// One PO entry: the English source, the translation, and the flags (`c-format`).
    public struct Entry: Sendable, Equatable {
        public var source: String
        public var translation: String
        public var flags: [String]
        /// Line of the entry's `msgctxt`.
        public var line: Int
    }

    public let language: PanelLanguage
    private let texts: [String: String]

    public init(language: PanelLanguage, entries: [String: Entry], fallback: [String: Entry] = [:]) {
        self.language = language
        var texts = fallback.mapValues(\.translation)
        for (key, entry) in entries where !entry.translation.isEmpty { texts[key] = entry.translation }
        self.texts = texts
    }

    /// The shipped catalogue of `language`, over English.
    public static func load(_ language: PanelLanguage) throws(PanelError) -> MessageCatalog {
        let english = try entries(of: .en)
        return MessageCatalog(language: language, entries: language == .en ? english : try entries(of: language), fallback: english)
    }

    /// The entries of a shipped catalogue file, by key.
    public static func entries(of language: PanelLanguage) throws(PanelError) -> [String: Entry] {
        let path = try file(of: language)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PanelError(.catalogMissing, "reading message catalogue \(path): cannot read it")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// The catalogue's path: `EXHIBIT_MESSAGES/<code>.po` when set (a translator trying a
    /// change), else the copy installed beside the program.
    public static func file(of language: PanelLanguage) throws(PanelError) -> String {
        if let directory = ProcessInfo.processInfo.environment["EXHIBIT_MESSAGES"], !directory.isEmpty {
            return "\(directory)/\(language.rawValue).po"
        }
        guard let url = Bundle.module.url(forResource: language.rawValue, withExtension: "po", subdirectory: "Messages") else {
            throw PanelError(.catalogMissing, "message catalogue \(language.rawValue).po is not installed beside \(CommandLine.arguments[0])")
        }
        return url.path
    }

    /// The text for `key`, its `%1$s`, `%2$s`, … replaced by `arguments` in order.
    public func callAsFunction(_ key: MessageKey, _ arguments: String...) -> String {
        Self.fill(texts[key.rawValue] ?? key.rawValue, arguments)
    }

    public var decimalSeparator: String { texts[MessageKey.formatDecimal.rawValue] ?? "." }
    public var groupSeparator: String { texts[MessageKey.formatGroup.rawValue] ?? "," }

    /// `12345` → `12,345` (or `12.345` in Vietnamese).
    public func count<T: BinaryInteger>(_ value: T) -> String {
        let digits = Array(String(value))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0, digit != "-" { out += groupSeparator }
            out.append(digit)
        }
        return out
    }

    /// `value` with `places` decimals and this language's separator.
    public func decimal(_ value: Double, places: Int) -> String {
        withDecimalSign(String(format: "%.\(places)f", value))
    }

    /// A number written with `.` (by `String(format:)` or `ByteCount`) in this language's decimal sign.
    public func withDecimalSign(_ text: String) -> String {
        decimalSeparator == "." ? text : text.replacingOccurrences(of: ".", with: decimalSeparator)
    }

    public static func fill(_ template: String, _ arguments: [String]) -> String {
        var out = ""
        var rest = Substring(template)
        while let percent = rest.firstIndex(of: "%") {
            out += rest[rest.startIndex..<percent]
            let after = rest[rest.index(after: percent)...]
            if after.hasPrefix("%") {
                out += "%"
                rest = after.dropFirst()
            } else if let dollar = after.firstIndex(of: "$"), let number = Int(after[after.startIndex..<dollar]),
                after[after.index(after: dollar)...].hasPrefix("s")
            {
                out += number >= 1 && number <= arguments.count ? arguments[number - 1] : ""
                rest = after[after.index(dollar, offsetBy: 2)...]
            } else {
                out += "%"
                rest = after
            }
        }
        return out + rest
    }

    /// The `%N$s` placeholders a text uses, for checking a translation against its source.
    public static func placeholders(_ text: String) -> [String] {
        var found: [String] = []
        var rest = Substring(text)
        while let range = rest.range(of: #"%[0-9]+\$s"#, options: .regularExpression) {
            found.append(String(rest[range]))
            rest = rest[range.upperBound...]
        }
        return found.sorted()
    }

    /// Reads a gettext PO file: `msgctxt` is the key, `msgid` the English source, `msgstr` the text.
    public static func parse(_ text: String, file: String) throws(PanelError) -> [String: Entry] {
        var entries: [String: Entry] = [:]
        var context: String?
        var source: String?
        var translation: String?
        var flags: [String] = []
        var field: String?
        var entryLine = 0

        func finish() throws(PanelError) {
            defer {
                (context, source, translation, flags, field) = (nil, nil, nil, [], nil)
            }
            guard source != nil || context != nil else { return }
            guard let source, let translation else {
                throw PanelError(.catalogMalformed, "reading message catalogue \(file): the entry at line \(entryLine) lacks msgid or msgstr")
            }
            guard let context else {
                if source.isEmpty { return }  // the header
                throw PanelError(.catalogMalformed, "reading message catalogue \(file): the entry at line \(entryLine) has no msgctxt key")
            }
            guard entries[context] == nil else {
                throw PanelError(.catalogMalformed, "reading message catalogue \(file): key \(context) appears twice (line \(entryLine))")
            }
            entries[context] = Entry(source: source, translation: translation, flags: flags, line: entryLine)
        }

        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let number = index + 1
            if line.isEmpty {
                try finish()
                continue
            }
            if line.hasPrefix("#,") {
                if source != nil { try finish() }
                flags += line.dropFirst(2).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                continue
            }
            if line.hasPrefix("#") { continue }
            let keyword = line.prefix { $0 != " " && $0 != "\"" }
            if !keyword.isEmpty {
                let value = try unquote(line.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces), file: file, line: number)
                switch keyword {
                case "msgctxt":
                    if source != nil { try finish() }
                    entryLine = number
                    context = value
                case "msgid":
                    if source != nil { try finish() }
                    if context == nil { entryLine = number }
                    source = value
                case "msgstr":
                    translation = value
                default:
                    throw PanelError(.catalogMalformed, "reading message catalogue \(file): line \(number): unknown keyword \(keyword)")
                }
                field = String(keyword)
                continue
            }
            let value = try unquote(line, file: file, line: number)
            switch field {
            case "msgctxt": context! += value
            case "msgid": source! += value
            case "msgstr": translation! += value
            default: throw PanelError(.catalogMalformed, "reading message catalogue \(file): line \(number): text outside an entry")
            }
        }
        try finish()
        return entries
    }

    private static func unquote(_ quoted: String, file: String, line: Int) throws(PanelError) -> String {
        guard quoted.count >= 2, quoted.hasPrefix("\""), quoted.hasSuffix("\"") else {
            throw PanelError(.catalogMalformed, "reading message catalogue \(file): line \(line): expected a quoted string")
        }
        var out = ""
        var escaped = false
        for character in quoted.dropFirst().dropLast() {
            if escaped {
                switch character {
                case "n": out += "\n"
                case "t": out += "\t"
                default: out.append(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        return out
    }
}

extension MessageCatalog {
    /// Keys whose text is the same in every language: the product name, number separators
    /// that happen to match, and units and labels that are international symbols.
    public static let sameInEveryLanguage: Set<MessageKey> = [.appTitle, .formatDecimal, .formatGroup, .slotSha256, .slotSpeed, .slotSerial]

    /// What is wrong with one language's catalogue, compared with the English one and with the
    /// keys the panel uses: missing, unknown, empty, stale or untranslated entries, placeholders
    /// that differ, and leftover placeholder text.
    public static func problems(
        in entries: [String: Entry], of language: PanelLanguage, english: [String: Entry]
    ) -> [String] {
        var problems: [String] = []
        let name = language.rawValue
        for key in MessageKey.allCases {
            guard let source = english[key.rawValue] else {
                problems.append("en: no entry for \(key.rawValue), which the panel uses")
                continue
            }
            guard let entry = entries[key.rawValue] else {
                problems.append("\(name): no entry for \(key.rawValue)")
                continue
            }
            if entry.translation.trimmingCharacters(in: .whitespaces).isEmpty {
                problems.append("\(name): \(key.rawValue) is empty")
            }
            if entry.source != source.source {
                problems.append("\(name): \(key.rawValue) translates \"\(entry.source)\", the English is now \"\(source.source)\"")
            }
            if placeholders(entry.translation) != placeholders(source.source) {
                problems.append(
                    "\(name): \(key.rawValue) has placeholders \(placeholders(entry.translation)), the English \(placeholders(source.source))")
            }
            if language == .en, entry.translation != entry.source {
                problems.append("en: \(key.rawValue) differs from its msgid")
            }
            if language != .en, entry.translation == source.source, !sameInEveryLanguage.contains(key) {
                problems.append("\(name): \(key.rawValue) is not translated")
            }
            let lowered = entry.translation.lowercased()
            for marker in ["todo", "fixme", "xxx", "translate me", "lorem"] where lowered.contains(marker) {
                problems.append("\(name): \(key.rawValue) contains placeholder text \"\(marker)\"")
            }
        }
        let known = Set(MessageKey.allCases.map(\.rawValue))
        for key in entries.keys.sorted() where !known.contains(key) {
            problems.append("\(name): \(key) is not a key the panel uses")
        }
        return problems
    }
}
