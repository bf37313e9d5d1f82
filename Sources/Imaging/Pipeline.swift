// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// A stage that receives every byte of the stream, in order, on a thread of its own.
public protocol StreamConsumer: AnyObject, Sendable {
    /// A name for errors and logs (`SHA-256`, `image writer`).
    var name: String { get }
    func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError)
    /// Called once after the last byte, on the consumer's thread.
    func finish() throws(AcquisitionError)
    /// The consumer's state after every byte it has consumed so far, for a job's journal (the
    /// image writer makes its bytes durable first); nil when it keeps none. On its own thread.
    func checkpoint() throws(AcquisitionError) -> Data?
    /// The digest this stage computes over the stream in one sequence, if it is one: the pipeline
    /// runs the slowest of them ahead of the other stages (`Pipeline.run`).
    var sequentialDigest: DigestAlgorithm? { get }
}

extension StreamConsumer {
    public func checkpoint() throws(AcquisitionError) -> Data? { nil }
    public var sequentialDigest: DigestAlgorithm? { nil }
}

/// The state of every stage after the first `offset` bytes: what a journal saves to resume from.
public struct PipelineCheckpoint: Sendable {
    public var offset: UInt64
    /// Each consumer's saved state, by consumer name.
    public var states: [String: Data]
    /// Every span the reader skipped before `offset`.
    public var skipped: [ByteSpan]
}

/// Sizes of the pipeline's buffers: memory stays `bufferSize × bufferCount` whatever the source size.
///
/// The default, 6 × 2 MiB: 8 × 2 MiB was measured as fast as 6 × 4 MiB, 10 × 2 MiB, 16 × 1 MiB and
/// 3 × 8 MiB (2 GiB page-cached file, SHA-256 + MD5 + SHA-1, five runs each; 1 MiB buffers were
/// slower, more hand-offs per byte). From a page-cached file 5 × 2 MiB was as fast again, but
/// from a read-only loop device (4 GiB, SHA-256 with read-back, three runs each) it took
/// 4.0-4.7 s against 3.8-3.9 s for 8; 6 × 2 MiB took 3.8-4.5 s against 3.8-4.7 s, for 4 MiB
/// less peak RSS than 8.
public struct PipelineConfiguration: Sendable {
    public var bufferSize: Int
    public var bufferCount: Int

    public init(bufferSize: Int = 2 << 20, bufferCount: Int = 6) {
        precondition(bufferSize % 4096 == 0 && bufferSize > 0, "buffers are whole pages")
        precondition(bufferCount >= 2, "reading overlaps consuming only with two or more buffers")
        self.bufferSize = bufferSize
        self.bufferCount = bufferCount
    }
}

/// A snapshot of a running pipeline, for progress lines and the status API.
public struct PipelineProgress: Sendable {
    public var bytesDone: UInt64
    public var totalBytes: UInt64
    /// Bytes zero-filled and skipped so far, left for the second pass.
    public var skippedBytes: UInt64
    public var elapsed: TimeInterval
}

/// What a finished pipeline run read.
public struct PipelineOutcome: Sendable {
    public var bytesRead: UInt64
    /// The spans the reader could not read (zero-filled), joined and in order.
    public var skipped: [ByteSpan]
    public var elapsed: TimeInterval
}

/// Lets another thread ask a running pipeline to stop at the next buffer.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let why = Mutex<String?>(nil)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    /// Cancels and says why (an operator's signal, a daemon stopping), for the job's record.
    public func cancel(reason: String) {
        why.withLock { if $0 == nil { $0 = reason } }
        cancel()
    }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    public var reason: String? { why.withLock { $0 } }
}

/// Reader → consumers, each on its own thread, joined by FIFOs of page-aligned buffers.
/// The reader never waits for a consumer unless every buffer is in use.
public enum Pipeline {
    final class Buffer: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        var count = 0
        var offset: UInt64 = 0
        /// Each consumer saves its state after this buffer.
        var isCheckpoint = false
        let pending = Atomic<Int>(0)

        let size: Int

        /// Mapped, not malloc'd: unmapping gives the pages back at once. From the heap, the
        /// read-back pass's buffers came on top of the first pass's (glibc raises its mmap
        /// threshold when a large block is freed), which put 10 MiB more on the peak RSS.
        init(size: Int) {
            let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let pointer, pointer != MAP_FAILED else {
                fatalError("cannot map a \(size)-byte pipeline buffer: \(String(cString: strerror(errno)))")
            }
            base = pointer
            self.size = size
        }

        deinit { munmap(base, size) }
    }

    /// What the pipeline's threads share while it runs.
    private final class RunState: Sendable {
        let failure = Mutex<AcquisitionError?>(nil)
        let stop = Atomic<Bool>(false)
        let bytesDone = Atomic<UInt64>(0)
        let skippedBytes = Atomic<UInt64>(0)
        let skipped = Mutex<[ByteSpan]>([])

        /// Keeps the first failure and stops every stage at its next buffer.
        func record(_ error: AcquisitionError) {
            failure.withLock { if $0 == nil { $0 = error } }
            stop.store(true, ordering: .relaxed)
        }
    }

    private enum Message: @unchecked Sendable {
        case data(Buffer)
        case end
    }

    /// Streams `reader` through every consumer. Throws the first failure of the reader or of any
    /// consumer; the others are stopped at the next buffer.
    ///
    /// The slowest sequential digest paces the whole run (MD5 at 0.76 GB/s where SHA-256 has
    /// SHA-NI): every other consumer's thread runs 5 nice levels lower, so that the scheduler
    /// gives that digest a core whenever it can run and the other stages take what is left. At
    /// equal priority, with every stage ready, it got about two thirds of a core: an E01 of 4 GiB
    /// (half random, half zero; MD5, SHA-1, SHA-256, window GMAC, compression on both cores) took
    /// 8.2-8.4 s in its first pass, against 7.5 s so (and nice 10 or 19 was no faster).
    ///
    /// The stream starts at `start` (a resumed job's consumers were restored to that offset). Every
    /// `checkpointInterval` seconds the next buffer is marked; once every consumer has saved its
    /// state after it, `onCheckpoint` gets them (on a consumer thread, one call at a time, in order).
    public static func run(
        _ reader: some StreamSource,
        into consumers: [any StreamConsumer],
        startingAt start: UInt64 = 0,
        previouslySkipped: [ByteSpan] = [],
        configuration: PipelineConfiguration = PipelineConfiguration(),
        cancellation: CancellationFlag = CancellationFlag(),
        progressInterval: TimeInterval = 0.5,
        progress: (PipelineProgress) -> Void = { _ in },
        checkpointInterval: TimeInterval? = nil,
        onCheckpoint: @escaping @Sendable (PipelineCheckpoint) throws -> Void = { _ in }
    ) throws(AcquisitionError) -> PipelineOutcome {
        let started = Date()
        let pool = BlockingQueue<Buffer>()
        for _ in 0..<configuration.bufferCount { pool.push(Buffer(size: configuration.bufferSize)) }
        let queues = consumers.map { _ in BlockingQueue<Message>() }
        let state = RunState()
        state.skipped.withLock { $0 = previouslySkipped }
        state.bytesDone.store(start, ordering: .relaxed)
        let checkpoints = CheckpointCollector(consumers: consumers.count, onComplete: onCheckpoint)
        let group = DispatchGroup()
        let pacing = DigestAlgorithm.slowest(of: consumers.compactMap(\.sequentialDigest)).flatMap { slowest in
            consumers.firstIndex { $0.sequentialDigest == slowest }
        }

        for (index, (consumer, queue)) in zip(consumers, queues).enumerated() {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                if let pacing, index != pacing { lowerThreadPriority() }
                var failed = false
                while true {
                    switch queue.pop() {
                    case .data(let buffer):
                        if !failed {
                            do throws(AcquisitionError) {
                                try consumer.consume(
                                    UnsafeRawBufferPointer(start: buffer.base, count: buffer.count), at: buffer.offset)
                                if buffer.isCheckpoint {
                                    try checkpoints.deposit(
                                        offset: buffer.offset + UInt64(buffer.count), name: consumer.name,
                                        state: consumer.checkpoint())
                                }
                            } catch {
                                failed = true
                                state.record(error)
                            }
                        }
                        // The last consumer of a buffer gives it back to the reader.
                        if buffer.pending.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                            pool.push(buffer)
                        }
                    case .end:
                        if !failed, !state.stop.load(ordering: .relaxed) {
                            do throws(AcquisitionError) { try consumer.finish() } catch { state.record(error) }
                        }
                        return
                    }
                }
            }
            thread.name = "exhibit.\(consumer.name)"
            thread.start()
        }

        group.enter()
        let readerThread = Thread {
            defer {
                for queue in queues { queue.push(.end) }
                group.leave()
            }
            var offset = start
            var lastCheckpoint = Date()
            while offset < reader.size {
                if state.stop.load(ordering: .relaxed) { return }
                if cancellation.isCancelled {
                    state.record(AcquisitionError(.cancelled, path: reader.path, offset: offset))
                    return
                }
                let buffer = pool.pop()
                let length = Int(min(UInt64(configuration.bufferSize), reader.size - offset))
                do throws(AcquisitionError) {
                    let spans = try reader.fill(buffer.base, count: length, at: offset)
                    if !spans.isEmpty {
                        state.skipped.withLock { $0.append(contentsOf: spans) }
                        state.skippedBytes.add(ByteSpan.total(spans), ordering: .relaxed)
                    }
                } catch {
                    pool.push(buffer)
                    state.record(error)
                    return
                }
                buffer.count = length
                buffer.offset = offset
                buffer.isCheckpoint = false
                if let checkpointInterval, Date().timeIntervalSince(lastCheckpoint) >= checkpointInterval,
                    offset + UInt64(length) < reader.size
                {
                    lastCheckpoint = Date()
                    buffer.isCheckpoint = true
                    let skipped = ByteSpan.merged(state.skipped.withLock { $0 })
                    checkpoints.expect(offset: offset + UInt64(length), skipped: skipped)
                }
                buffer.pending.store(queues.count, ordering: .releasing)
                for queue in queues { queue.push(.data(buffer)) }
                offset += UInt64(length)
                state.bytesDone.store(offset, ordering: .relaxed)
            }
        }
        readerThread.name = "exhibit.reader"
        readerThread.start()

        func snapshot() -> PipelineProgress {
            PipelineProgress(
                bytesDone: state.bytesDone.load(ordering: .relaxed), totalBytes: reader.size,
                skippedBytes: state.skippedBytes.load(ordering: .relaxed),
                elapsed: Date().timeIntervalSince(started))
        }
        while group.wait(timeout: .now() + progressInterval) == .timedOut {
            progress(snapshot())
        }
        progress(snapshot())
        if let error = state.failure.withLock({ $0 }) { throw error }
        return PipelineOutcome(
            bytesRead: state.bytesDone.load(ordering: .relaxed), skipped: ByteSpan.merged(state.skipped.withLock { $0 }),
            elapsed: Date().timeIntervalSince(started))
    }

    /// Gathers the consumers' states for each checkpoint offset and hands complete sets on, in order.
    private final class CheckpointCollector: Sendable {
        private struct Partial {
            var states: [String: Data] = [:]
            var deposits = 0
            var skipped: [ByteSpan] = []
        }
        private let consumers: Int
        private let partials = Mutex<[UInt64: Partial]>([:])
        private let delivered = Mutex<UInt64>(0)
        private let onComplete: @Sendable (PipelineCheckpoint) throws -> Void

        init(consumers: Int, onComplete: @escaping @Sendable (PipelineCheckpoint) throws -> Void) {
            self.consumers = consumers
            self.onComplete = onComplete
        }

        /// The reader marked the buffer ending at `offset`.
        func expect(offset: UInt64, skipped: [ByteSpan]) {
            partials.withLock { $0[offset, default: Partial()].skipped = skipped }
        }

        func deposit(offset: UInt64, name: String, state: Data?) throws(AcquisitionError) {
            let complete: Partial? = partials.withLock { partials in
                var partial = partials[offset, default: Partial()]
                if let state { partial.states[name] = state }
                partial.deposits += 1
                if partial.deposits == consumers {
                    partials[offset] = nil
                    return partial
                }
                partials[offset] = partial
                return nil
            }
            guard let complete else { return }
            let failure: AcquisitionError? = delivered.withLock { last in
                guard offset > last else { return nil }
                do {
                    try onComplete(PipelineCheckpoint(offset: offset, states: complete.states, skipped: complete.skipped))
                    last = offset
                    return nil
                } catch let error as AcquisitionError {
                    return error
                } catch {
                    return AcquisitionError(.writeFailed, path: "journal", offset: offset, detail: "\(error)")
                }
            }
            if let failure { throw failure }
        }
    }
}

/// Lowers the calling thread's priority by 5 nice levels (on Linux a thread has its own nice
/// value; raising it needs no privilege). A thread that cannot is left as it is.
private func lowerThreadPriority() {
    errno = 0
    let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    guard errno == 0 else { return }
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, min(current + 5, 19))
}

/// Hands an inner consumer only the stream's bytes from `start` on: a digest restored at an
/// offset, fed by a stream that begins before it.
public final class ConsumerFromOffset: StreamConsumer, @unchecked Sendable {
    private let inner: any StreamConsumer
    private let start: UInt64

    public init(_ inner: any StreamConsumer, from start: UInt64) {
        self.inner = inner
        self.start = start
    }

    public var name: String { inner.name }
    public var sequentialDigest: DigestAlgorithm? { inner.sequentialDigest }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        let end = offset + UInt64(bytes.count)
        guard end > start else { return }
        let skip = Int(start > offset ? start - offset : 0)
        try inner.consume(UnsafeRawBufferPointer(rebasing: bytes.dropFirst(skip)), at: offset + UInt64(skip))
    }

    public func finish() throws(AcquisitionError) { try inner.finish() }
    public func checkpoint() throws(AcquisitionError) -> Data? { try inner.checkpoint() }
}
