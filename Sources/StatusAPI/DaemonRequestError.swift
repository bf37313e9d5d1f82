// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A status request the daemon could not carry out.
public struct DaemonRequestError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case invalidRequest = "invalid-request"
        case noCase = "no-case"
        case caseOpen = "case-open"
        case noSuchSlot = "no-such-slot"
        case noSuchAlert = "no-such-alert"
        case slotNotReady = "slot-not-ready"
        case stopping
        case failed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
