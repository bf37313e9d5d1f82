// SPDX-License-Identifier: Apache-2.0
import Foundation
import StatusAPI
import Synchronization

/// Fans status messages out to subscribed clients. Each subscriber has its own bounded queue,
/// so a stalled client never stalls a job; one that falls too far behind is dropped.
public final class StatusHub: Sendable {
    public final class Subscription: Sendable {
        fileprivate let queue = Mutex<(lines: [Data], closed: Bool)>(([], false))
        fileprivate let available = DispatchSemaphore(value: 0)

        /// The next line, or nil once the subscription was closed.
        public func next() -> Data? {
            while true {
                available.wait()
                let (line, closed): (Data?, Bool) = queue.withLock { state in
                    state.lines.isEmpty ? (nil, state.closed) : (state.lines.removeFirst(), false)
                }
                if let line { return line }
                if closed { return nil }
            }
        }

        fileprivate func offer(_ line: Data, limit: Int) -> Bool {
            let accepted = queue.withLock { state -> Bool in
                guard !state.closed else { return false }
                if state.lines.count >= limit {
                    state.closed = true
                    return false
                }
                state.lines.append(line)
                return true
            }
            available.signal()
            return accepted
        }

        public func close() {
            queue.withLock { $0.closed = true }
            available.signal()
        }
    }

    private let subscribers = Mutex<[ObjectIdentifier: Subscription]>([:])
    /// Messages a client may lag behind before it is dropped.
    private let limit: Int

    public init(limit: Int = 4096) { self.limit = limit }

    public func subscribe() -> Subscription {
        let subscription = Subscription()
        subscribers.withLock { $0[ObjectIdentifier(subscription)] = subscription }
        return subscription
    }

    public func unsubscribe(_ subscription: Subscription) {
        subscription.close()
        subscribers.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(subscription)) }
    }

    public func publish(_ message: StatusMessage) {
        let line = StatusCoding.line(message)
        let current = subscribers.withLock { Array($0.values) }
        for subscription in current where !subscription.offer(line, limit: limit) {
            unsubscribe(subscription)
        }
    }

    public func closeAll() {
        let current = subscribers.withLock { state -> [Subscription] in
            defer { state.removeAll() }
            return Array(state.values)
        }
        for subscription in current { subscription.close() }
    }
}
