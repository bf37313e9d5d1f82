// SPDX-License-Identifier: Apache-2.0
// Drives the E01 writer the way an acquisition job does, on an image file: the benchmark probe
// (bench/e01-probe.sh) and the child process the SIGKILL test kills and resumes. Not installed.
//
//   e01-probe write SOURCE --dir DIR --name NAME [--compression fast|best|none] [--segment-size BYTES]
//             [--sector-size 512|4096] [--skip START+LENGTH]… [--unreadable START+LENGTH]…
//             [--journal FILE [--resume]] [--checkpoint-seconds S] [--stall-at OFFSET]
//   e01-probe read SEGMENT…        the media stream's SHA-256 through the job's read-back (E01Decoder)
//   e01-probe read-libewf SEGMENT… the same through libewf (E01Reader, as `exhibit verify` reads)
//
// `--skip` spans read as zeros in the first pass and are "recovered" from the source by patches
// afterwards, except those also given as `--unreadable`, which stay zero and are listed in the
// E01. With `--journal` the state after each checkpoint is saved; `--resume` continues from it.
import Cryptography
import ExpertWitness
import Foundation
import Imaging
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

struct Options {
    var command = ""
    var inputs: [String] = []
    var directory = "."
    var name = "image"
    var compression = E01Compression.fast
    var segmentSize: UInt64?
    var sectorSize: UInt32 = 512
    var skips: [ByteSpan] = []
    var unreadable: [ByteSpan] = []
    var journal: String?
    var resume = false
    var checkpointSeconds: Double = 1
    var stallAt: UInt64?

    init(_ arguments: [String]) {
        var rest = arguments[...]
        command = rest.popFirst() ?? ""
        func span(_ text: String) -> ByteSpan {
            let parts = text.split(separator: "+").compactMap { UInt64($0) }
            guard parts.count == 2 else { fail("a span is START+LENGTH: \(text)") }
            return ByteSpan(start: parts[0], length: parts[1])
        }
        while let argument = rest.popFirst() {
            func value() -> String {
                guard let next = rest.popFirst() else { fail("\(argument) needs a value") }
                return next
            }
            switch argument {
            case "--dir": directory = value()
            case "--name": name = value()
            case "--compression": compression = E01Compression(rawValue: value()) ?? { fail("compression: none, fast or best") }()
            case "--segment-size": segmentSize = UInt64(value())
            case "--sector-size": sectorSize = UInt32(value()) ?? 512
            case "--skip": skips.append(span(value()))
            case "--unreadable": unreadable.append(span(value()))
            case "--journal": journal = value()
            case "--resume": resume = true
            case "--checkpoint-seconds": checkpointSeconds = Double(value()) ?? 1
            case "--stall-at": stallAt = UInt64(value())
            default: inputs.append(argument)
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("e01-probe: \(message)\n".utf8))
    exit(2)
}

/// Stops the pipeline's progress for good once the stream passes `offset` (the test kills it then).
/// Stops the stream at `offset` for a kill to land there. Over the last 64 MiB before it each
/// buffer is held 20 ms, so the pipeline's time-based checkpoints keep marking buffers and the
/// journal gets close to the stall point however fast the rest ran (a test decides from it).
final class Staller: StreamConsumer, @unchecked Sendable {
    let offset: UInt64
    init(_ offset: UInt64) { self.offset = offset }
    var name: String { "staller" }
    func consume(_ bytes: UnsafeRawBufferPointer, at position: UInt64) throws(AcquisitionError) {
        if position + UInt64(bytes.count) > offset { while true { sleep(60) } }
        if position + (64 << 20) > offset { usleep(20_000) }
    }
    func finish() throws(AcquisitionError) {}
}

struct Journal: Codable {
    var offset: UInt64
    var states: [String: Data]
    var skipped: [ByteSpan]
}

func digesters(restoring journal: Journal?, frontier: SkipFrontier) -> [StreamDigester] {
    [DigestAlgorithm.md5, .sha1, .sha256].map { algorithm in
        if let saved = journal?.states[algorithm.displayName] {
            return StreamDigester(algorithm, restoring: saved, stoppingAt: frontier) ?? { fail("journal: bad state") }()
        }
        return StreamDigester(algorithm, stoppingAt: frontier)
    }
}

func write(_ options: Options) throws(AcquisitionError) {
    guard let sourcePath = options.inputs.first else { fail("write needs a source") }
    var journal: Journal?
    if options.resume, let path = options.journal, let data = FileManager.default.contents(atPath: path) {
        journal = try? JSONDecoder().decode(Journal.self, from: data)
    }
    let frontier = SkipFrontier(journal?.skipped.first?.start ?? .max)
    let source: SkippingFile
    do { source = try SkippingFile(path: sourcePath, skips: options.skips, frontier: frontier) } catch { fail("cannot open \(sourcePath): \(error)") }
    let metadata = E01Metadata(
        caseNumber: "PROBE-1", evidenceNumber: options.name, examiner: "e01-probe", description: "e01-probe of \(sourcePath)",
        acquisitionDate: Date(), software: "Exhibit e01-probe")
    let image = E01Image(
        metadata: metadata, compression: options.compression, segmentSize: options.segmentSize, bytesPerSector: options.sectorSize)
    let started = Date()
    let writer = try image.writer(
        directory: options.directory, baseName: options.name, totalSize: source.size, keepFree: 0, resumingAt: journal?.offset,
        frontier: frontier)
    let resumeOffset = journal?.offset ?? 0
    let digests = digesters(restoring: journal, frontier: frontier)
    // What a resumed job does: the writer may need the stream from before the journal's offset;
    // every other consumer gets only the bytes from that offset on.
    var consumers: [any StreamConsumer] = digests.map { ConsumerFromOffset($0, from: resumeOffset) }
    consumers.append(writer)
    if let stall = options.stallAt { consumers.append(Staller(stall)) }
    let journalPath = options.journal
    let outcome = try Pipeline.run(
        source, into: consumers, startingAt: writer.restartOffset, previouslySkipped: journal?.skipped ?? [],
        checkpointInterval: journalPath == nil ? nil : options.checkpointSeconds,
        onCheckpoint: { checkpoint in
            // A checkpoint before the journal's offset would pair re-fed image bytes with digests
            // that have not moved: only later ones are saved.
            guard let journalPath, checkpoint.offset > resumeOffset else { return }
            let data = try JSONEncoder().encode(Journal(offset: checkpoint.offset, states: checkpoint.states, skipped: checkpoint.skipped))
            try data.write(to: URL(fileURLWithPath: journalPath), options: .atomic)
        })
    let firstPass = Date().timeIntervalSince(started)

    // Second pass: the skipped areas from the source again (the unreadable ones stay zero),
    // then the digests finished over the staged stream from the frontier on.
    var final = digests
    if !outcome.skipped.isEmpty {
        let stillUnreadable = options.unreadable
        for span in outcome.skipped {
            var bytes: [UInt8]
            do { bytes = [UInt8](try source.read(span)) } catch { fail("reading \(sourcePath) at \(span.start): \(error)") }
            for lost in stillUnreadable where lost.start < span.end && lost.end > span.start {
                let from = max(lost.start, span.start), to = min(lost.end, span.end)
                for index in Int(from - span.start)..<Int(to - span.start) { bytes[index] = 0 }
            }
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
            defer { pointer.deallocate() }
            pointer.copyMemory(from: bytes, byteCount: bytes.count)
            try writer.patch(UnsafeRawBufferPointer(start: pointer, count: bytes.count), at: span.start)
        }
        let start = outcome.skipped[0].start
        final = digests.map { StreamDigester($0.algorithm, restoring: $0.savedState)! }
        guard let staged = try writer.pendingStream() else { fail("skips but nothing staged") }
        _ = try Pipeline.run(staged, into: final.map { ConsumerFromOffset($0, from: start) }, startingAt: start)
    }
    var values: [DigestAlgorithm: DigestValue] = [:]
    for digest in final { values[digest.algorithm] = digest.result }
    let unreadable = options.unreadable.map {
        UnreadableRange(
            firstSector: $0.start / UInt64(options.sectorSize), sectorCount: $0.length / UInt64(options.sectorSize), errno: EIO,
            attemptsPerSector: 1, sectorSize: options.sectorSize)
    }
    try writer.complete(ImageCompletion(digests: values, unreadable: unreadable))
    try writer.makeReadOnly()
    let seconds = Date().timeIntervalSince(started)
    let sizes = writer.paths.map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? UInt64) ?? 0 }
    let report: [String: Any] = [
        "md5": values[.md5]!.hex, "sha1": values[.sha1]!.hex, "sha256": values[.sha256]!.hex,
        "seconds": seconds, "firstPassSeconds": firstPass, "restartOffset": writer.restartOffset,
        "files": writer.fileNames, "bytes": sizes.reduce(0, +), "mediaBytes": source.size,
    ]
    let json = try! JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
}

func read(_ options: Options, throughLibewf: Bool) throws(AcquisitionError) {
    let started = Date()
    let reader: any StreamSource =
        throughLibewf
        ? try E01Reader(paths: options.inputs)
        : try E01Image(metadata: E01Metadata(caseNumber: "", evidenceNumber: "", examiner: "", acquisitionDate: Date(), software: ""))
            .reader(paths: options.inputs)
    let digest = StreamDigester(.sha256)
    _ = try Pipeline.run(reader, into: [digest])
    print("\(digest.result!.hex) \(reader.size) \(String(format: "%.2f", Date().timeIntervalSince(started)))")
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
do {
    switch options.command {
    case "write": try write(options)
    case "read": try read(options, throughLibewf: false)
    case "read-libewf": try read(options, throughLibewf: true)
    default: fail("usage: e01-probe write SOURCE --dir DIR --name NAME … | e01-probe read[-libewf] SEGMENT…")
    }
} catch {
    FileHandle.standardError.write(Data("e01-probe: \(error)\n".utf8))
    exit(1)
}
