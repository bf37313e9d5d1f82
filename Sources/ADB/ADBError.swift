// SPDX-License-Identifier: Apache-2.0

/// A failure of an operation with a phone: what was being done, with which device, how far
/// it got, and a code the daemon maps to what the technician must do.
public struct ADBError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// The transport could not be opened (TCP refused, USB node missing).
        case connectFailed = "connect-failed"
        /// The USB node exists but this process may not open it.
        case noPermission = "no-permission"
        /// The phone answered nothing in time while connecting: USB debugging off, or hung.
        case offline
        /// The phone did not accept the appliance's key: "Allow USB debugging?" was not tapped.
        case unauthorized
        /// The phone went silent during an operation.
        case timeout
        /// The connection ended (unplugged, adbd restarted).
        case disconnected
        /// The phone sent something that is not ADB, or not what the protocol allows here.
        case protocolViolation = "protocol-violation"
        /// The phone refused to open a service (CLSE in answer to OPEN).
        case refused
        /// A sync request failed on the phone (FAIL or an errno): permission denied, no such file.
        case remoteFailure = "remote-failure"
        /// The phone asks for something Exhibit does not do (TLS pairing).
        case unsupported
    }

    public let code: Code
    /// What was being done: `connect`, `OPEN shell,v2,raw:getprop`, `RCV2 /sdcard/DCIM/a.jpg`.
    public let operation: String
    /// The transport's name: `tcp:127.0.0.1:5556`, `usb:1-2 (serial R58M…)`.
    public let device: String
    /// Bytes of the operation's stream (or file) received before the failure, when it matters.
    public let offset: UInt64?
    public let message: String

    public init(_ code: Code, operation: String, device: String, offset: UInt64? = nil, _ message: String) {
        self.code = code
        self.operation = operation
        self.device = device
        self.offset = offset
        self.message = message
    }

    public var description: String {
        "\(operation) on \(device)" + (offset.map { " at byte \($0)" } ?? "") + ": \(message) [\(code.rawValue)]"
    }

    /// The same failure, seen from an enclosing operation.
    func during(_ operation: String, offset: UInt64? = nil) -> ADBError {
        ADBError(code, operation: operation, device: device, offset: offset ?? self.offset, message)
    }
}
