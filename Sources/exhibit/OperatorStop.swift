// SPDX-License-Identifier: Apache-2.0
import Dispatch
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// SIGINT (Ctrl-C) and SIGTERM during `exhibit acquire`: the job is cancelled at its next buffer,
/// its journal and work are kept, and its record says an operator stopped it (not that it
/// crashed); the command prints one line and exits 128 + the signal.
final class OperatorStop: @unchecked Sendable {
    let cancellation = CancellationFlag()
    private let lock = NSLock()
    private var received: Int32?
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                lock.withLock { if received == nil { received = number } }
                cancellation.cancel(reason: "stopped by the operator (\(name))")
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The signal that stopped the job, if one did.
    var receivedSignal: Int32? { lock.withLock { received } }
}
