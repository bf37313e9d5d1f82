// SPDX-License-Identifier: Apache-2.0
import ADB
import Android
import ArgumentParser
import Cryptography
import Foundation
import HumanText
import Imaging
import Jobs
import StatusAPI
import Store

struct Acquire: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Acquire a block device or image file into a sealed bundle.",
        discussion: """
            The source must be read-only: a block device whose kernel read-only flag is off is refused
            (fix: `blockdev --setro DEV`, or a hardware write blocker). Exit status 0 only when a bundle
            was sealed into STORE/bundles/.

            An interrupted acquisition (source unplugged, store full, power cut, killed) keeps its work
            and journal; running the same command again with the same device continues it where it
            stopped. A different device (serial, model, size, first and last MiB) starts a new job.

            A phone with USB debugging on is a source too: adb:tcp:HOST:PORT (or adb:usb:SERIAL). The
            appliance's ADB key is offered once; tap "Allow" on the phone. Its identity, settings,
            packages, selected dumpsys output, logcat and the shared storage (--phone-path, /sdcard by
            default) are acquired, every command's output hashed in data/phone/commands.jsonl. With
            --physical[=PARTITION] and root on the phone (su), the partition (default
            /dev/block/by-name/userdata) is imaged too.

            With --slot, the running daemon acquires the source in that slot as --exhibit of the open
            case (`exhibit case open`); the command returns once the job started (follow it with
            `exhibit status --watch`).
            """)

    @Argument(help: "A block device (/dev/sdb), a regular image file, or a phone (adb:tcp:HOST:PORT, adb:usb:SERIAL).")
    var source: String?
    @Option(help: "The store directory.") var store: String?
    @Option(name: .customLong("case"), help: "The case number.") var caseId: String?
    @Option(name: .customLong("exhibit"), help: "The exhibit number.") var exhibitId: String
    @Option(help: "The examiner's name or id.") var examiner: String?
    @Option(help: "Through the daemon: the slot to acquire (see `exhibit status`).") var slot: Int?
    @Option(help: "The daemon's status socket.") var socket: String = StatusClient.defaultSocket
    @Option(help: "Extra digests besides SHA-256: md5, sha1 (comma-separated).") var digest: String?
    @Option(help: "Split the image into segments of this many bytes (K/M/G suffixes allowed): raw segments, or E01 segment files.")
    var segmentSize: String?
    @Option(help: "The image format: raw (dd) or e01 (Expert Witness, EnCase 6, through libewf).") var format: String = "raw"
    @Option(help: "E01 chunk compression: fast (default), best or none.") var compression: String?
    @Flag(help: "Skip reading the image back and re-hashing it before sealing (recorded in the bundle).")
    var noVerify = false
    @Flag(help: "Read a writable block device anyway (tests and validation only; recorded in the bundle).")
    var allowWritableSource = false
    @Flag(help: "Print a JSON summary on stdout.") var json = false
    @Flag(help: "Print progress as JSON lines on stderr, every half second (for scripts and tests).")
    var progressJson = false
    @Option(help: ArgumentHelp("How far the resume journal may lag behind the first pass, in seconds.", visibility: .hidden))
    var checkpointSeconds: Double = 5
    @Option(help: ArgumentHelp("The second pass's time limit per unreadable area, in seconds.", visibility: .hidden))
    var secondsPerArea: Double = 300
    @Flag(help: "Log each step on stderr.") var verbose = false
    @Option(help: ArgumentHelp("Phones: also image this partition through root (bare --physical: \(PhoneAcquisitionRequest.defaultPartition)).", valueName: "PARTITION"))
    var physical: String?
    @Option(name: .customLong("phone-path"), help: "Phones: a directory to pull (repeatable; default /sdcard).")
    var phonePaths: [String] = []
    @Option(help: ArgumentHelp("Phones: seconds a phone may stay silent before the job stops.", visibility: .hidden))
    var adbIdleTimeout: Double = 30
    @Option(help: ArgumentHelp("Phones: seconds to wait for \"Allow\" on the phone.", visibility: .hidden))
    var adbAuthorizationTimeout: Double = 60

    /// `--physical` without a value means the default partition; ArgumentParser has no options
    /// with optional values, so a bare one gets it before parsing (a partition is an absolute path).
    static func expandingBarePhysical(_ arguments: [String]) -> [String] {
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument == "--physical", index + 1 >= arguments.count || !arguments[index + 1].hasPrefix("/") {
                result.append("--physical=\(PhoneAcquisitionRequest.defaultPartition)")
            } else {
                result.append(argument)
            }
        }
        return result
    }

    func validate() throws {
        if slot != nil {
            guard source == nil, store == nil, caseId == nil, examiner == nil else {
                throw ValidationError("with --slot the daemon's open case decides store, case and examiner; give only --exhibit")
            }
        } else {
            guard source != nil else { throw ValidationError("give a SOURCE, or --slot N to acquire through the daemon") }
            guard store != nil, caseId != nil, examiner != nil else {
                throw ValidationError("acquiring a SOURCE directly needs --store, --case and --examiner")
            }
        }
        for (name, value) in [("--case", caseId), ("--exhibit", exhibitId), ("--examiner", examiner)] {
            guard let value else { continue }
            do { try PlainText.validate(value, field: name) } catch { throw ValidationError("\(error)") }
        }
        _ = try parsedDigests()
        _ = try imageFormat()
        if let segmentSize {
            guard let size = ByteSize.parse(segmentSize) else {
                throw ValidationError("--segment-size must be a number of bytes, e.g. 2G (from 1M to 2^63 - 1 bytes)")
            }
            if let problem = ImageSegmentation.problem(segmentSize: size) { throw ValidationError("--segment-size \(size) \(problem)") }
        }
    }

    func imageFormat() throws -> ImageFormatChoice {
        guard let choice = ImageFormatChoice(format: format, compression: compression) else {
            throw ValidationError(
                "--format must be raw or e01, and --compression (e01 only) fast, best or none; got --format \(format)"
                    + (compression.map { " --compression \($0)" } ?? ""))
        }
        return choice
    }

    func parsedDigests() throws -> [DigestAlgorithm] {
        guard let digest else { return [] }
        return try digest.split(separator: ",").map {
            let name = $0.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "-", with: "")
            guard let algorithm = DigestAlgorithm(rawValue: name) else {
                throw ValidationError("unknown digest '\($0)': use md5, sha1 (SHA-256 is always computed)")
            }
            return algorithm
        }
    }

    func run() throws {
        if let slot {
            let answer: StatusMessage
            do {
                answer = try StatusClient(path: socket).send(StatusRequest(.acquire, slot: slot, exhibitId: exhibitId, client: "exhibit acquire --slot"))
            } catch {
                failAndExit("acquire", error)
            }
            if let error = answer.error { failAndExit("acquire slot \(slot)", error.message) }
            if json {
                printJSON(answer)
            } else if let started = answer.slot {
                print("slot \(started.slot): acquiring \(started.device) as exhibit \(started.exhibitId ?? exhibitId) "
                    + "of case \(started.caseId ?? "-"), job \(started.jobId ?? "-")")
            }
            return
        }
        guard let source, let store, let caseId, let examiner else { return }
        let phone: PhoneSource?
        do { phone = try PhoneSource(source) } catch { failAndExit("acquire", error) }
        if let phone {
            return try acquirePhone(phone, store: store, caseId: caseId, examiner: examiner)
        }
        if physical != nil || !phonePaths.isEmpty { throw ValidationError("--physical and --phone-path are for phone sources (adb:…)") }
        var request = AcquisitionRequest(
            sourcePath: source, caseId: caseId, exhibitId: exhibitId, examiner: examiner,
            extraDigests: try parsedDigests(), segmentSize: segmentSize.flatMap(ByteSize.parse),
            verifyAfterWriting: !noVerify, writablePolicy: allowWritableSource ? .allowAndRecord : .refuse)
        request.imageFormat = try imageFormat()
        request.checkpointSeconds = checkpointSeconds
        request.secondsPerArea = secondsPerArea
        let job = Acquisitions(store: EvidenceStore(root: store), logger: makeLogger(verbose: verbose))
        let progressLine = ProgressLine(mode: progressJson ? .json : isatty(STDERR_FILENO) == 1 ? .terminal : .off)
        let stop = OperatorStop()
        let summary: AcquisitionSummary
        do {
            summary = try job.acquireDisk(request, cancellation: stop.cancellation) { progressLine.show($0) }
            progressLine.clear()
        } catch {
            progressLine.clear()
            fail(error, stop: stop)
        }
        report(summary)
    }

    /// The one line (and with --json, the JSON object on stdout) that ends a run without a bundle.
    private func fail(_ error: JobError, stop: OperatorStop) -> Never {
        let stopped = stop.receivedSignal
        let message =
            stopped != nil
            ? "\(stop.cancellation.reason ?? "stopped"); the job is kept as interrupted: run the same command again to resume (\(error))"
            : "\(error)"
        if json {
            printJSON(AcquisitionFailure(error: .init(stage: error.stage, message: message, jobId: error.jobId, interruptedBy: stop.cancellation.reason)))
        }
        failAndExit("acquire", message, code: stopped.map { 128 + $0 } ?? 1)
    }

    func acquirePhone(_ phone: PhoneSource, store: String, caseId: String, examiner: String) throws {
        if segmentSize != nil || allowWritableSource || format != "raw" || compression != nil {
            throw ValidationError("--segment-size, --format, --compression and --allow-writable-source are for disks")
        }
        var request = PhoneAcquisitionRequest(
            source: phone, caseId: caseId, exhibitId: exhibitId, examiner: examiner, physicalPartition: physical,
            extraDigests: try parsedDigests(), verifyAfterWriting: !noVerify,
            timeouts: ADBTimeouts(authorization: .milliseconds(Int(adbAuthorizationTimeout * 1000)), idle: .milliseconds(Int(adbIdleTimeout * 1000))))
        if !phonePaths.isEmpty { request.roots = phonePaths }
        let job = Acquisitions(store: EvidenceStore(root: store), logger: makeLogger(verbose: verbose))
        let progressLine = ProgressLine(mode: progressJson ? .json : isatty(STDERR_FILENO) == 1 ? .terminal : .off)
        let stop = OperatorStop()
        let summary: AcquisitionSummary
        do {
            summary = try job.acquirePhone(request, cancellation: stop.cancellation, progress: { progressLine.show($0) }) { state in
                if state == .locked {
                    FileHandle.standardError.write(Data("exhibit: the phone's screen is locked: unlock it and keep it unlocked\n".utf8))
                }
                if state == .awaitingAuthorization {
                    FileHandle.standardError.write(Data("exhibit: the phone asks \"Allow USB debugging?\": unlock it and tap Allow\n".utf8))
                }
            }
            progressLine.clear()
        } catch {
            progressLine.clear()
            fail(error, stop: stop)
        }
        report(summary)
    }

    private func report(_ summary: AcquisitionSummary) {
        if json {
            printJSON(summary)
            return
        }
        print("sealed       \(summary.bundlePath)")
        print("size         \(summary.sizeBytes) bytes (\(ByteCount.format(summary.sizeBytes)))")
        for key in summary.digests.keys.sorted(by: { $0 == "sha256" || ($1 != "sha256" && $0 < $1) }) {
            print("\(key.padding(toLength: 12, withPad: " ", startingAt: 0)) \(summary.digests[key]!)")
        }
        print("verification \(summary.verification)")
        print("unreadable   \(summary.unreadableSectors) sectors")
        print(String(format: "time         %.2f s (%.1f MB/s)", summary.durationSeconds, summary.averageMBPerSecond))
    }
}

/// What `exhibit acquire --json` prints when no bundle was sealed.
struct AcquisitionFailure: Encodable {
    struct Detail: Encodable {
        var stage: String
        var message: String
        var jobId: String?
        var interruptedBy: String?
    }
    var error: Detail
}

/// `2G`, `512M`, `4096`: sizes on the command line.
enum ByteSize {
    static func parse(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.uppercased()
        if digits.hasSuffix("IB") { digits.removeLast(2) } else if digits.hasSuffix("B") { digits.removeLast() }
        var multiplier: UInt64 = 1
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits.removeLast()
        }
        // Digits only: UInt64("+2") would take a sign.
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }
}

/// A single self-overwriting progress line on a terminal, JSON lines for scripts, or nothing.
final class ProgressLine: @unchecked Sendable {
    enum Mode { case terminal, json, off }
    private let mode: Mode
    private var enabled: Bool { mode != .off }
    private var lastDrawn = Date.distantPast
    private var lastBytes: UInt64 = 0
    private var lastTime = Date()
    private var currentRate = 0.0

    init(mode: Mode) { self.mode = mode }

    /// One `--progress-json` line.
    struct Sample: Encodable {
        var phase: String
        var bytesDone: UInt64
        var totalBytes: UInt64
        var skippedBytes: UInt64
        var unreadableSectors: UInt64
        var averageMBPerSecond: Double
        var etaSeconds: Double?
    }

    func show(_ progress: JobProgress) {
        guard enabled, Date().timeIntervalSince(lastDrawn) >= 0.5 || progress.bytesDone == progress.totalBytes else { return }
        let now = Date()
        let interval = now.timeIntervalSince(lastTime)
        if interval > 0, progress.bytesDone >= lastBytes {
            currentRate = Double(progress.bytesDone - lastBytes) / interval
        }
        lastBytes = progress.bytesDone
        lastTime = now
        lastDrawn = now
        let fraction = progress.totalBytes == 0 ? 1 : Double(progress.bytesDone) / Double(progress.totalBytes)
        let average = Double(progress.bytesDone - min(progress.startBytes, progress.bytesDone)) / max(progress.elapsed, 0.001)
        let remaining = average > 0 ? Double(progress.totalBytes - min(progress.bytesDone, progress.totalBytes)) / average : 0
        if mode == .json {
            let sample = Sample(
                phase: progress.phase.rawValue, bytesDone: progress.bytesDone, totalBytes: progress.totalBytes,
                skippedBytes: progress.skippedBytes, unreadableSectors: progress.unreadableSectors,
                averageMBPerSecond: average / 1e6, etaSeconds: average > 0 ? remaining : nil)
            if let data = try? JSONEncoder().encode(sample) { FileHandle.standardError.write(data + Data("\n".utf8)) }
            return
        }
        let line = String(
            format: "\r%@ %5.1f%%  %@ of %@  %.0f MB/s  ETA %@  unreadable %llu ",
            progress.phase.rawValue, fraction * 100, ByteCount.format(progress.bytesDone),
            ByteCount.format(progress.totalBytes), currentRate / 1e6, Self.clock(remaining), progress.unreadableSectors)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func clear() {
        guard mode == .terminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }
}
