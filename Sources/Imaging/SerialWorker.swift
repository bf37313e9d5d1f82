// SPDX-License-Identifier: Apache-2.0
import Foundation
import Synchronization

/// A thread of its own that does `work` on each submitted item, in order, until `finish()`: the
/// read-backs' thread (a raw image's windows, an E01's closed sections). After the first failure
/// it skips the rest, and `finish()` throws that failure. The thread holds what `work` captures
/// (its owner) until `finish()`, so an owner ends it with `finish()`, never in its deinit.
public final class SerialWorker<Item>: @unchecked Sendable {
    private let queue = BlockingQueue<Item?>()
    private let done = DispatchSemaphore(value: 0)
    private var work: ((Item) throws(AcquisitionError) -> Void)?
    private let failure = Mutex<AcquisitionError?>(nil)
    private var finished = false
    private let cancelled = Atomic<Bool>(false)

    public init(name: String, work: @escaping (Item) throws(AcquisitionError) -> Void) {
        self.work = work
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    public func submit(_ item: Item) { queue.push(item) }

    /// Waits until every submitted item is done (or skipped after a failure); throws the first
    /// failure. Later calls return at once, with the same failure.
    public func finish() throws(AcquisitionError) {
        if !finished {
            finished = true
            queue.push(nil)
            done.wait()
        }
        if let failure = failureSoFar { throw failure }
    }

    /// The first failure so far, from any thread (its owner's, to stop its job early).
    public var failureSoFar: AcquisitionError? { failure.withLock { $0 } }

    /// Ends the thread of an owner that stops before its work is done (a failed or cancelled
    /// job): the items not started are skipped, and `work` may leave the one it is doing at its
    /// next check of `isCancelled`. Waits for the thread; failures are dropped.
    public func cancel() {
        cancelled.store(true, ordering: .relaxed)
        try? finish()
    }

    /// True once `cancel()` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    private func run() {
        defer {
            work = nil
            done.signal()
        }
        while let item = queue.pop() {
            guard failureSoFar == nil, !isCancelled, let work else { continue }
            do throws(AcquisitionError) {
                try work(item)
            } catch {
                failure.withLock { $0 = error }
            }
        }
    }
}
