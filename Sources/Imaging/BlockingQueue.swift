// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A FIFO between threads (the pipeline's, a `SerialWorker`'s). Capacity is bounded by what feeds it,
/// not by the queue itself.
final class BlockingQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element?] = []
    private var head = 0

    func push(_ element: Element) {
        condition.lock()
        items.append(element)
        condition.unlock()
        condition.signal()
    }

    func pop() -> Element {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count { condition.wait() }
        let element = items[head]!
        items[head] = nil
        head += 1
        if head > 64, head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }
}
