// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// The panel's terminal: raw keys in, the alternate screen out, and each frame written as the
/// rows that changed. It borrows standard input and output (the panel's process owns them)
/// and gives the terminal back as it found it.
final class PanelTerminal {
    private let input: Int32 = STDIN_FILENO
    private let output: Int32 = STDOUT_FILENO
    private var saved = termios()
    private var shown: [PanelLine] = []
    private var shownSize = (columns: 0, rows: 0)

    init() throws(PanelError) {
        guard isatty(input) == 1, isatty(output) == 1 else {
            throw PanelError(.notATerminal, "opening the panel: standard input and output must be a terminal (run it on a console, in tmux or a terminal emulator)")
        }
        tcgetattr(input, &saved)
        var raw = saved
        // No echo, no line editing, CR stays CR (scanners end with either); ^C still interrupts.
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN)
        raw.c_iflag &= ~tcflag_t(ICRNL | IXON | INLCR)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        tcsetattr(input, TCSAFLUSH, &raw)
        // Alternate screen, hidden cursor, no auto-wrap (a full last column must not scroll).
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[?7l\u{1B}[2J")
    }

    func restore() {
        write("\u{1B}[0m\u{1B}[?7h\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(input, TCSAFLUSH, &saved)
    }

    var size: (columns: Int, rows: Int) {
        var window = winsize()
        let result = withUnsafeMutablePointer(to: &window) { ioctl(output, UInt(TIOCGWINSZ), $0) }
        guard result == 0, window.ws_col > 0, window.ws_row > 0 else { return (80, 24) }
        return (Int(window.ws_col), Int(window.ws_row))
    }

    /// Reads what keys have arrived; nil when the terminal is gone.
    func readAvailable() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = read(input, &buffer, buffer.count)
        if count < 0 { return errno == EAGAIN || errno == EINTR ? [] : nil }
        return count == 0 ? nil : Array(buffer[0..<count])
    }

    var inputDescriptor: Int32 { input }

    func draw(_ lines: [PanelLine], columns: Int, rows: Int) {
        let full = shownSize != (columns, rows)
        var frame = full ? "\u{1B}[0m\u{1B}[2J" : ""
        for (index, line) in lines.enumerated() where full || index >= shown.count || shown[index] != line {
            // Erase first: with auto-wrap off the cursor stays on a full row's last column, where
            // an erase after the text would remove its last character.
            frame += "\u{1B}[\(index + 1);1H\u{1B}[0m\u{1B}[2K"
            for span in line.spans { frame += Self.sgr(span.style) + TerminalText.forTerminal(span.text) }
            frame += "\u{1B}[0m"
        }
        shown = lines
        shownSize = (columns, rows)
        if !frame.isEmpty { write(frame) }
    }

    static func sgr(_ style: PanelStyle) -> String {
        let codes =
            switch style {
            case .plain: "0"
            case .title: "0;1;7"
            case .alert: "0;1;97;41"
            case .seen: "0;33"
            case .warning: "0;1;33"
            case .good: "0;1;32"
            case .busy: "0;1;94"
            case .dim: "0;2"
            case .selected: "0;7"
            case .prompt: "0;1;36"
            }
        return "\u{1B}[\(codes)m"
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(output, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
