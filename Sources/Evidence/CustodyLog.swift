// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import HumanText

/// One custody event: who did what to which object, and when.
public struct CustodyEvent: Codable, Sendable, Equatable {
    public var seq: Int
    public var time: String
    public var actor: String
    public var action: String
    public var object: String
    public var details: [String: String]
    /// Lowercase hex SHA-256 of the previous line including its `\n` (64 zeros for the first).
    public var prev: String
}

/// A hash-chained JSON Lines log that `jq` and `sha256sum` can check: editing, removing or
/// reordering a line breaks the chain, and the head (SHA-256 of the last line) is sealed in
/// `bag-info.txt`.
public struct CustodyLog: Sendable {
    public static let genesis = String(repeating: "0", count: 64)
    public private(set) var lines: [String] = []
    public private(set) var head: String = CustodyLog.genesis

    public init() {}

    /// Continues a log from its lines (as saved by an interrupted job).
    public init(restoring lines: [String]) {
        self.lines = lines
        self.head = lines.last.map { Digest.sha256($0 + "\n").hex } ?? Self.genesis
    }

    public mutating func append(
        actor: String, action: CustodyAction, object: String, details: [String: String] = [:], time: Date = Date()
    ) {
        let event = CustodyEvent(
            seq: lines.count, time: UTCTimestamp.string(time), actor: actor, action: action.rawValue, object: object,
            details: details, prev: head)
        // Encoding a struct of strings and an int cannot fail.
        let json = try! ExhibitJSON.encoder(pretty: false).encode(event)
        let line = String(decoding: json, as: UTF8.self)
        lines.append(line)
        head = Digest.sha256(line + "\n").hex
    }

    /// Whether an event of `action` was logged (read from the events, not searched for as text).
    public func contains(_ action: CustodyAction) -> Bool {
        lines.contains { (try? ExhibitJSON.decoder().decode(CustodyEvent.self, from: Data($0.utf8)))?.action == action.rawValue }
    }

    public var data: Data { Data(lines.map { $0 + "\n" }.joined().utf8) }

    /// A break in a custody chain, by 1-based line number.
    public struct Break: Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Checks the chain in `data`; returns its head (SHA-256 of the last line) and every break.
    public static func check(_ data: Data) -> (head: String, breaks: [Break]) {
        var breaks: [Break] = []
        var previous = genesis
        guard !data.isEmpty else { return (genesis, [Break(line: 0, reason: "the log is empty")]) }
        if data.last != UInt8(ascii: "\n") { breaks.append(Break(line: 0, reason: "the last line has no newline")) }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let decoder = JSONDecoder()
        for (index, line) in lines.enumerated() where index < lines.count - 1 || !line.isEmpty {
            let number = index + 1
            if let event = try? decoder.decode(CustodyEvent.self, from: Data(line)) {
                if event.prev != previous {
                    breaks.append(Break(line: number, reason: "prev does not match the SHA-256 of the line before it"))
                }
                if event.seq != index {
                    breaks.append(Break(line: number, reason: "seq is \(event.seq), expected \(index)"))
                }
            } else {
                breaks.append(Break(line: number, reason: "not a custody event (JSON object with seq, time, actor, action, object, details, prev)"))
            }
            previous = Digest.sha256(Data(line) + Data([UInt8(ascii: "\n")])).hex
        }
        return (previous, breaks)
    }
}
