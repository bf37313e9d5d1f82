// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Logging

@main
struct Exhibit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exhibit",
        abstract: "Acquire evidence into sealed bundles, and verify them.",
        discussion: """
            A store is a directory that holds the appliance's keys, its catalog and its sealed bundles.
            Start with `exhibit provision --store DIR`, then `exhibit acquire SOURCE --store DIR ...`.
            At the hub: `exhibit verify BUNDLE --trust agency-root.pem`.
            """,
        subcommands: [Provision.self, Acquire.self, Verify.self, List.self, Case.self, Status.self, PanelCommand.self])

    /// ArgumentParser's own `main`, but options it refuses are also a JSON `{"error": …}` on
    /// stdout with `--json`: a script reads every failure of `acquire --json` the same way.
    static func main() {
        let arguments = Acquire.expandingBarePhysical(Array(CommandLine.arguments.dropFirst()))
        var command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            if arguments.contains("--json"), exitCode(for: error) != .success {
                printJSON(AcquisitionFailure(error: .init(stage: "options", message: message(for: error))))
            }
            exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// Prints a one-line reason on stderr and exits non-zero: the CLI's single way of failing.
func failAndExit(_ operation: String, _ error: any Error, code: Int32 = 1) -> Never {
    failAndExit(operation, "\(error)", code: code)
}

func failAndExit(_ operation: String, _ error: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("exhibit: \(operation) failed: \(error)\n".utf8))
    Foundation.exit(code)
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

/// stderr logging for the command line; `--verbose` shows the job's own log lines.
func makeLogger(verbose: Bool) -> Logger {
    var logger = Logger(label: "exhibit") { label in StreamLogHandler.standardError(label: label) }
    logger.logLevel = verbose ? .info : .warning
    return logger
}
