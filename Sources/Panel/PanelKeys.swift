// SPDX-License-Identifier: Apache-2.0

/// A key the panel understands. A USB barcode scanner is a keyboard: it types characters and Enter.
public enum PanelKey: Equatable, Sendable {
    case up, down, left, right, enter, escape, backspace
    case character(Character)
}

/// Turns the terminal's bytes into keys: UTF-8 text, Enter (CR, LF or CR LF, as scanners
/// differ), Backspace, and the arrow keys' escape sequences. A lone ESC is the Escape key.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []
    private var lastWasReturn = false

    public init() {}

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [PanelKey] {
        pending += bytes
        var keys: [PanelKey] = []
        var index = 0
        while index < pending.count {
            let byte = pending[index]
            let wasReturn = lastWasReturn
            lastWasReturn = false
            switch byte {
            case 0x0D:
                keys.append(.enter)
                lastWasReturn = true
                index += 1
            case 0x0A:
                if !wasReturn { keys.append(.enter) }
                index += 1
            case 0x7F, 0x08:
                keys.append(.backspace)
                index += 1
            case 0x1B:
                guard index + 1 < pending.count else {
                    keys.append(.escape)
                    index += 1
                    continue
                }
                let introducer = pending[index + 1]
                guard introducer == UInt8(ascii: "[") || introducer == UInt8(ascii: "O") else {
                    keys.append(.escape)
                    index += 1
                    continue
                }
                // CSI/SS3: parameters, then one final byte in 0x40...0x7E.
                var end = index + 2
                while end < pending.count, !(0x40...0x7E).contains(pending[end]) { end += 1 }
                guard end < pending.count else {
                    pending.removeFirst(index)
                    return keys  // the rest of the sequence comes with the next read
                }
                switch pending[end] {
                case UInt8(ascii: "A"): keys.append(.up)
                case UInt8(ascii: "B"): keys.append(.down)
                case UInt8(ascii: "C"): keys.append(.right)
                case UInt8(ascii: "D"): keys.append(.left)
                default: break
                }
                index = end + 1
            case 0x00..<0x20:
                index += 1  // other control keys do nothing
            default:
                let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                guard index + length <= pending.count else {
                    pending.removeFirst(index)
                    return keys
                }
                let text = String(decoding: pending[index..<index + length], as: UTF8.self)
                keys += text.map { PanelKey.character($0) }
                index += length
            }
        }
        pending.removeAll()
        return keys
    }
}
