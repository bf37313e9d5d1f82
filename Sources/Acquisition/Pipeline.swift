// SPDX-License-Identifier: Apache-2.0
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
}

/// Sizes of the pipeline's buffers: memory stays `bufferSize × bufferCount` whatever the source size.
public struct PipelineConfiguration: Sendable {
    public var bufferSize: Int
    public var bufferCount: Int

    public init(bufferSize: Int = 4 << 20, bufferCount: Int = 6) {
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
    public var unreadableSectors: UInt64
    public var elapsed: TimeInterval
}

/// What a finished pipeline run read.
public struct PipelineOutcome: Sendable {
    public var bytesRead: UInt64
    public var unreadable: [UnreadableRange]
    public var elapsed: TimeInterval
}

/// Lets another thread ask a running pipeline to stop at the next buffer.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// Reader → consumers, each on its own thread, joined by FIFOs of page-aligned buffers.
/// The reader never waits for a consumer unless every buffer is in use.
public enum Pipeline {
    final class Buffer: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        var count = 0
        var offset: UInt64 = 0
        let pending = Atomic<Int>(0)

        init(size: Int) {
            var pointer: UnsafeMutableRawPointer? = nil
            guard posix_memalign(&pointer, 4096, size) == 0, let pointer else {
                fatalError("cannot allocate a \(size)-byte pipeline buffer")
            }
            base = pointer
        }

        deinit { free(base) }
    }

    /// What the pipeline's threads share while it runs.
    private final class RunState: Sendable {
        let failure = Mutex<AcquisitionError?>(nil)
        let stop = Atomic<Bool>(false)
        let bytesDone = Atomic<UInt64>(0)
        let unreadableSectors = Atomic<UInt64>(0)
        let unreadable = Mutex<[UnreadableRange]>([])

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
    public static func run(
        _ reader: some StreamSource,
        into consumers: [any StreamConsumer],
        configuration: PipelineConfiguration = PipelineConfiguration(),
        cancellation: CancellationFlag = CancellationFlag(),
        progressInterval: TimeInterval = 0.5,
        progress: (PipelineProgress) -> Void = { _ in }
    ) throws(AcquisitionError) -> PipelineOutcome {
        let started = Date()
        let pool = BlockingQueue<Buffer>()
        for _ in 0..<configuration.bufferCount { pool.push(Buffer(size: configuration.bufferSize)) }
        let queues = consumers.map { _ in BlockingQueue<Message>() }
        let state = RunState()
        let group = DispatchGroup()

        for (consumer, queue) in zip(consumers, queues) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                var failed = false
                while true {
                    switch queue.pop() {
                    case .data(let buffer):
                        if !failed {
                            do throws(AcquisitionError) {
                                try consumer.consume(
                                    UnsafeRawBufferPointer(start: buffer.base, count: buffer.count), at: buffer.offset)
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
            var offset: UInt64 = 0
            while offset < reader.size {
                if state.stop.load(ordering: .relaxed) { return }
                if cancellation.isCancelled {
                    state.record(AcquisitionError(.cancelled, path: reader.path, offset: offset))
                    return
                }
                let buffer = pool.pop()
                let length = Int(min(UInt64(configuration.bufferSize), reader.size - offset))
                do throws(AcquisitionError) {
                    let ranges = try reader.fill(buffer.base, count: length, at: offset)
                    if !ranges.isEmpty {
                        state.unreadable.withLock { $0.append(contentsOf: ranges) }
                        state.unreadableSectors.add(ranges.reduce(0) { $0 + $1.sectorCount }, ordering: .relaxed)
                    }
                } catch {
                    pool.push(buffer)
                    state.record(error)
                    return
                }
                buffer.count = length
                buffer.offset = offset
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
                unreadableSectors: state.unreadableSectors.load(ordering: .relaxed),
                elapsed: Date().timeIntervalSince(started))
        }
        while group.wait(timeout: .now() + progressInterval) == .timedOut {
            progress(snapshot())
        }
        progress(snapshot())
        if let error = state.failure.withLock({ $0 }) { throw error }
        return PipelineOutcome(
            bytesRead: state.bytesDone.load(ordering: .relaxed), unreadable: mergeRanges(state.unreadable.withLock { $0 }),
            elapsed: Date().timeIntervalSince(started))
    }

    /// Joins ranges that touch across buffer boundaries.
    static func mergeRanges(_ ranges: [UnreadableRange]) -> [UnreadableRange] {
        var merged: [UnreadableRange] = []
        for range in ranges.sorted(by: { $0.firstSector < $1.firstSector }) {
            if var last = merged.last, last.lastSector + 1 == range.firstSector, last.errno == range.errno {
                last.sectorCount += range.sectorCount
                last.attemptsPerSector = max(last.attemptsPerSector, range.attemptsPerSector)
                merged[merged.count - 1] = last
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}
