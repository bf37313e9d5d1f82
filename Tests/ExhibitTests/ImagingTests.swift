// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Imaging
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// The pipeline, the raw image writer and the image reader, in process: no device, no store.
@Suite struct ImagingTests {
    /// A source of bytes made from their own offsets, so any reordering shows.
    final class CountingSource: StreamSource, @unchecked Sendable {
        let path = "counting source"
        let size: UInt64
        let failAt: UInt64?
        init(size: UInt64, failAt: UInt64? = nil) {
            self.size = size
            self.failAt = failAt
        }
        static func byte(at offset: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: offset &* 2_654_435_761 >> 7) }
        func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
            if let failAt, offset + UInt64(count) > failAt {
                throw AcquisitionError(.readFailed, path: path, offset: failAt, errno: EIO)
            }
            let bytes = destination.assumingMemoryBound(to: UInt8.self)
            for index in 0..<count { bytes[index] = Self.byte(at: offset + UInt64(index)) }
            return []
        }
    }

    /// Records the offsets it sees, and fails at one if asked; it may be slow, to fill the queues.
    final class RecordingConsumer: StreamConsumer, @unchecked Sendable {
        let name: String
        let failAt: UInt64?
        let delay: useconds_t
        private let lock = NSLock()
        private(set) var offsets: [UInt64] = []
        private(set) var mismatch = false
        init(_ name: String, failAt: UInt64? = nil, delay: useconds_t = 0) {
            self.name = name
            self.failAt = failAt
            self.delay = delay
        }
        func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
            if delay > 0 { usleep(delay) }
            if let failAt, offset + UInt64(bytes.count) > failAt {
                throw AcquisitionError(.writeFailed, path: name, offset: failAt, errno: ENOSPC)
            }
            for (index, byte) in bytes.enumerated() where byte != CountingSource.byte(at: offset + UInt64(index)) {
                lock.withLock { mismatch = true }
                break
            }
            lock.withLock { offsets.append(offset) }
        }
        func finish() throws(AcquisitionError) {}
        func checkpoint() throws(AcquisitionError) -> Data? { nil }
    }

    static let small = PipelineConfiguration(bufferSize: 64 << 10, bufferCount: 3)

    @Test func aSpanLessAreasKeepsOnlyWhatLiesOutsideThem() {
        let span = ByteSpan(start: 100, length: 100)
        #expect(span.subtracting([]) == [span])
        #expect(span.subtracting([ByteSpan(start: 0, length: 100), ByteSpan(start: 200, length: 5)]) == [span])
        #expect(span.subtracting([ByteSpan(start: 120, length: 10)]) == [ByteSpan(start: 100, length: 20), ByteSpan(start: 130, length: 70)])
        #expect(span.subtracting([ByteSpan(start: 50, length: 60), ByteSpan(start: 190, length: 50)]) == [ByteSpan(start: 110, length: 80)])
        #expect(span.subtracting([ByteSpan(start: 90, length: 120)]).isEmpty)
    }

    @Test func everyConsumerSeesEveryByteInOrder() throws {
        let size: UInt64 = (1 << 20) + 12_345
        let consumers = (0..<3).map { RecordingConsumer("consumer \($0)", delay: $0 == 1 ? 200 : 0) }
        let outcome = try Pipeline.run(CountingSource(size: size), into: consumers, configuration: Self.small)
        #expect(outcome.bytesRead == size)
        for consumer in consumers {
            #expect(!consumer.mismatch, "\(consumer.name) got wrong bytes")
            #expect(consumer.offsets == Array(stride(from: 0, to: size, by: 64 << 10)), "\(consumer.name) got buffers out of order")
        }
    }

    @Test func theFirstFailureWinsAndStopsTheOthers() throws {
        let size: UInt64 = 4 << 20
        let other = RecordingConsumer("other")
        do {
            _ = try Pipeline.run(CountingSource(size: size), into: [other, RecordingConsumer("failing", failAt: 1 << 20)], configuration: Self.small)
            Issue.record("a failing consumer must fail the run")
        } catch {
            #expect(error.code == .writeFailed && error.offset == 1 << 20, "the consumer's own failure, with its offset: \(error)")
        }
        // The other consumer stopped within the buffers in flight, not at the end of the source.
        #expect((other.offsets.last ?? 0) < (1 << 20) + UInt64(Self.small.bufferCount + 1) * (64 << 10), "\(other.offsets.last ?? 0)")
        do {
            _ = try Pipeline.run(CountingSource(size: size, failAt: 2 << 20), into: [RecordingConsumer("y")], configuration: Self.small)
            Issue.record("a failing reader must fail the run")
        } catch {
            #expect(error.code == .readFailed && error.offset == 2 << 20)
        }
    }

    /// Notes the nice value of the thread it consumes on; may say it is a sequential digest.
    final class PriorityProbe: StreamConsumer, @unchecked Sendable {
        let name: String
        let sequentialDigest: DigestAlgorithm?
        private(set) var niceness: Int32?
        init(_ name: String, digest: DigestAlgorithm? = nil) {
            self.name = name
            sequentialDigest = digest
        }
        func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
            niceness = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        }
        func finish() throws(AcquisitionError) {}
    }

    @Test("the slowest sequential digest runs at the caller's priority, every other stage 5 nice levels lower; none lowered without a digest")
    func theSlowestDigestPacesTheRun() throws {
        let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        try #require(base <= 14, "the test runs at nice \(base): no room to lower")
        let slowest = try #require(DigestAlgorithm.slowest(of: DigestAlgorithm.allCases))
        let others = DigestAlgorithm.allCases.filter { $0 != slowest }
        let probes = [PriorityProbe("pacing", digest: slowest), PriorityProbe("writer")] + others.map { PriorityProbe("\($0)", digest: $0) }
        _ = try Pipeline.run(CountingSource(size: 1 << 20), into: probes, configuration: Self.small)
        #expect(probes[0].niceness == base)
        for probe in probes.dropFirst() { #expect(probe.niceness == base + 5, "\(probe.name)") }

        let alone = [PriorityProbe("writer"), PriorityProbe("window GMAC")]
        _ = try Pipeline.run(CountingSource(size: 1 << 20), into: alone, configuration: Self.small)
        for probe in alone { #expect(probe.niceness == base, "\(probe.name)") }
    }

    @Test func theReaderNeverRunsMoreThanTheBuffersAhead() throws {
        let slow = RecordingConsumer("slow", delay: 2000)
        let source = TrackingSource(size: 2 << 20, ahead: { slow.offsets.count })
        _ = try Pipeline.run(source, into: [slow], configuration: Self.small)
        #expect(source.maximumAhead <= Self.small.bufferCount, "the reader was \(source.maximumAhead) buffers ahead")
    }

    /// How far the reader gets ahead of the slowest consumer, in buffers.
    final class TrackingSource: StreamSource, @unchecked Sendable {
        let path = "tracking source"
        let size: UInt64
        let ahead: () -> Int
        private(set) var maximumAhead = 0
        private var filled = 0
        init(size: UInt64, ahead: @escaping () -> Int) {
            self.size = size
            self.ahead = ahead
        }
        func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
            filled += 1
            maximumAhead = max(maximumAhead, filled - ahead())
            memset(destination, 1, count)
            return []
        }
    }

    @Test func segmentsWrittenAndReadBackAreTheStream() throws {
        let scratch = try ScratchDirectory("imaging")
        let size: UInt64 = (3 << 20) + 777
        let writer = try RawImageWriter(directory: scratch.path, baseName: "E1", totalSize: size, segmentSize: 1 << 20)
        let digest = StreamDigester(.sha256)
        _ = try Pipeline.run(CountingSource(size: size), into: [digest, writer], configuration: Self.small)
        #expect(writer.fileNames == ["E1.raw.000", "E1.raw.001", "E1.raw.002", "E1.raw.003"])
        let readBack = StreamDigester(.sha256)
        let image = try ImageFiles(paths: writer.paths)
        #expect(image.size == size)
        _ = try Pipeline.run(image, into: [readBack], configuration: Self.small)
        #expect(readBack.result == digest.result)
    }

    /// Counts only the files under its own directory: the process's whole count moves with the
    /// tests that run beside it (a read-back thread closing its file, for one).
    @Test func aWriterDroppedWithoutFinishingClosesItsFile() throws {
        let scratch = try ScratchDirectory("imaging-fd")
        do {
            let writer = try RawImageWriter(directory: scratch.path, baseName: "E1", totalSize: 1 << 20, segmentSize: nil)
            let chunk = [UInt8](repeating: 7, count: 4096)
            try chunk.withUnsafeBytes { try writer.consume($0, at: 0) }
            #expect(OpenFiles.under(scratch.path) == ["\(scratch.path)/E1.raw"])
        }
        #expect(OpenFiles.under(scratch.path).isEmpty, "the writer's descriptor leaked")
    }

    /// Hands the image writer a copy of each buffer with one byte changed at `offset`: the store
    /// then holds something else than the digests saw, as a failing disk or cable would make it.
    final class OneByteOff: StreamConsumer, @unchecked Sendable {
        let inner: any StreamConsumer
        let offset: UInt64
        var name: String { inner.name }
        init(_ inner: any StreamConsumer, at offset: UInt64) {
            self.inner = inner
            self.offset = offset
        }
        func consume(_ bytes: UnsafeRawBufferPointer, at start: UInt64) throws(AcquisitionError) {
            guard start <= offset, offset < start + UInt64(bytes.count) else { return try inner.consume(bytes, at: start) }
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4096)
            defer { copy.deallocate() }
            copy.copyMemory(from: bytes)
            copy[Int(offset - start)] ^= 0x01
            try inner.consume(UnsafeRawBufferPointer(copy), at: start)
        }
        func finish() throws(AcquisitionError) { try inner.finish() }
    }

    /// The image read back while it is written: with nothing wrong, every window's GMAC as stored
    /// equals the GMAC of the bytes read; with one byte stored wrong, the window holding it is the
    /// first that differs. The stream digest's chaining values locate the same window later.
    @Test(arguments: [nil, (1 << 20) + 12_345] as [UInt64?])
    func theImageIsReadBackWhileItIsWritten(flippedAt flipped: UInt64?) throws {
        let scratch = try ScratchDirectory("readback")
        let size: UInt64 = (2 << 20) + 100
        let windowSize: UInt64 = 256 << 10
        let check = WindowCheck(windowSize: windowSize, totalSize: size)
        let digest = StreamDigester(.sha256)
        digest.chainEvery = windowSize
        let writer = try RawImageWriter(directory: scratch.path, baseName: "E1", totalSize: size, segmentSize: 768 << 10)
        writer.startReadBack(check: check)
        let stored: any StreamConsumer = flipped.map { OneByteOff(writer, at: $0) } ?? writer
        let run = Result { () throws(AcquisitionError) in
            try Pipeline.run(CountingSource(size: size), into: [digest, WindowTagger(check), stored], configuration: Self.small)
        }
        if let flipped, case .failure(let error) = run {
            // Found during the pass, which stopped there (the writer checks at each window it hands over).
            #expect(error.code == .verifyMismatch && error.offset == flipped / windowSize * windowSize, "\(error)")
            return
        }
        _ = try run.get()
        #expect(check.compared == check.windowCount && check.windowCount == 9)
        #expect(check.firstMismatch == flipped.map { Int($0 / windowSize) })
        #expect(digest.chainingValues.count == 8)

        let again = StreamDigester(.sha256)
        again.chainEvery = windowSize
        _ = try Pipeline.run(try ImageFiles(paths: writer.paths), into: [again], configuration: Self.small)
        let firstDifferent = zip(again.chainingValues, digest.chainingValues).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifferent == flipped.map { Int($0 / windowSize) })
    }

    /// A source that holds the stream from `at` on until `open()` says so (or 30 s have passed):
    /// the stream cannot end before what `open` waits for has happened.
    final class GatedSource: StreamSource, @unchecked Sendable {
        let inner: any StreamSource
        let gate: UInt64
        let open: @Sendable () -> Bool
        var path: String { inner.path }
        var size: UInt64 { inner.size }
        init(_ inner: any StreamSource, at gate: UInt64, until open: @escaping @Sendable () -> Bool) {
            self.inner = inner
            self.gate = gate
            self.open = open
        }
        func fill(_ destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) -> [ByteSpan] {
            if offset + UInt64(count) > gate {
                let deadline = Date().addingTimeInterval(30)
                while !open(), Date() < deadline { usleep(5_000) }
            }
            return try inner.fill(destination, count: count, at: offset)
        }
    }

    /// A window the store gives back otherwise stops the acquisition at the next window the writer
    /// hands over, not at its end: the source waits at 1 MiB until the read-back has found window 0.
    @Test func aMismatchFoundDuringThePassStopsIt() throws {
        let scratch = try ScratchDirectory("readback-early")
        let size: UInt64 = 2 << 20
        let windowSize: UInt64 = 256 << 10
        let check = WindowCheck(windowSize: windowSize, totalSize: size)
        let writer = try RawImageWriter(directory: scratch.path, baseName: "E1", totalSize: size, segmentSize: nil)
        writer.startReadBack(check: check)
        let gated = GatedSource(CountingSource(size: size), at: 1 << 20) { check.firstMismatch != nil }
        #expect {
            _ = try Pipeline.run(gated, into: [WindowTagger(check), OneByteOff(writer, at: 12_345)], configuration: Self.small)
        } throws: { error in
            let error = error as? AcquisitionError
            return error?.code == .verifyMismatch && error?.offset == 0 && error?.path == scratch.path
        }
    }

    /// A read-back thread cancelled by a stopping job does not work through its backlog: the item
    /// it is doing ends, the ones not started are skipped.
    @Test func aCancelledWorkerSkipsWhatItHasNotStarted() {
        let started = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let ran = Mutex<[Int]>([])
        let worker = SerialWorker<Int>(name: "test") { item throws(AcquisitionError) in
            if item == 0 {
                started.signal()
                gate.wait()
            }
            ran.withLock { $0.append(item) }
        }
        for item in 0..<5 { worker.submit(item) }
        started.wait()
        let cancelled = DispatchSemaphore(value: 0)
        Thread {
            worker.cancel()
            cancelled.signal()
        }.start()
        while !worker.isCancelled { usleep(1_000) }  // item 0 waits at the gate while the cancel waits for it
        gate.signal()
        cancelled.wait()
        #expect(ran.withLock { $0 } == [0])
    }

    /// Each window is read back from the store as soon as it is written, before `finish()`; a job
    /// that fails or is cancelled drops its writer without `finish()`: the read-back thread ends
    /// with it and closes the image file (it held itself, and the file, for good before).
    @Test func windowsAreReadBackBeforeFinishAndADroppedWriterEndsItsReadBack() throws {
        let scratch = try ScratchDirectory("readback-dropped")
        let size: UInt64 = 2 << 20
        let check = WindowCheck(windowSize: 256 << 10, totalSize: size)
        do {
            let writer = try RawImageWriter(directory: scratch.path, baseName: "E1", totalSize: size, segmentSize: nil)
            writer.startReadBack(check: check)
            let read = WindowTagger(check)
            try [UInt8](repeating: 7, count: 1 << 20).withUnsafeBytes { bytes in
                try read.consume(bytes, at: 0)
                try writer.consume(bytes, at: 0)
            }
            let deadline = Date().addingTimeInterval(3)
            while check.compared < 4, Date() < deadline { usleep(10_000) }
            #expect(check.compared == 4, "the 4 windows written are read back before finish()")
            let both = OpenFiles.wait(under: scratch.path) { $0.count >= 2 }
            #expect(both.count == 2, "the writer's descriptor and the read-back's: \(both)")
        }
        let left = OpenFiles.wait(under: scratch.path) { $0.isEmpty }
        #expect(left.isEmpty, "still open after the writer was dropped: \(left)")
    }
}
