// SPDX-License-Identifier: Apache-2.0
import ADB
import Acquisition
import Foundation

/// A phone named on the command line: `adb:tcp:HOST:PORT` or `adb:usb:SERIAL`.
public struct PhoneSource: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: UInt16)
        case usb(serial: String)
    }

    public let transport: Transport

    public init(transport: Transport) { self.transport = transport }

    /// Nil when `text` is not a phone source at all; throws when it is one, badly written.
    public init?(_ text: String) throws(AcquisitionError) {
        guard text.hasPrefix("adb:") else { return nil }
        let rest = text.dropFirst(4)
        if rest.hasPrefix("tcp:") {
            let address = rest.dropFirst(4)
            guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]), port > 0,
                colon > address.startIndex
            else {
                throw AcquisitionError(.sourceUnsupported, path: text, detail: "write a phone over TCP as adb:tcp:HOST:PORT")
            }
            var host = String(address[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            transport = .tcp(host: host, port: port)
        } else if rest.hasPrefix("usb:"), rest.count > 4 {
            transport = .usb(serial: String(rest.dropFirst(4)))
        } else {
            throw AcquisitionError(.sourceUnsupported, path: text, detail: "a phone source is adb:usb:SERIAL or adb:tcp:HOST:PORT")
        }
    }

    public var description: String {
        switch transport {
        case .tcp(let host, let port): "adb:tcp:\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .usb(let serial): "adb:usb:\(serial)"
        }
    }

    /// Opens the transport; USB needs the libusb transport, which this build does not have.
    func openTransport(timeouts: ADBTimeouts) throws -> any ADBTransport {
        switch transport {
        case .tcp(let host, let port):
            return try TCPTransport(host: host, port: port, connectTimeout: timeouts.handshake, writeTimeout: timeouts.idle)
        case .usb:
            throw AcquisitionError(
                .sourceUnsupported, path: description,
                detail: "phones over USB need the libusb ADB transport, which is not built yet; "
                    + "on the phone run `adb tcpip 5555` from another computer or use adb:tcp:HOST:PORT")
        }
    }
}
