// SPDX-License-Identifier: Apache-2.0

/// A failure to watch for devices: which operation, on what, and the errno.
public struct DeviceError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String {
            case udevUnavailable = "udev unavailable"
            case monitorFailed = "device monitor failed"
        }
        fileprivate let value: Value
        public var description: String { value.rawValue }

        public static let udevUnavailable = Code(value: .udevUnavailable)
        public static let monitorFailed = Code(value: .monitorFailed)
    }

    public let code: Code
    public let operation: String
    public let errno: Int32?

    public init(_ code: Code, operation: String, errno: Int32? = nil) {
        self.code = code
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        var text = "\(code): \(operation)"
        if let errno, errno != 0 { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
        return text
    }
}

#if canImport(Glibc)
    import Glibc

#endif
