// SPDX-License-Identifier: Apache-2.0
import ADB
import Foundation
import Imaging

/// A phone named on the command line: `adb:tcp:HOST:PORT`, `adb:usb:SERIAL`, or
/// `adb:usb-port:BUS-PORT` (the port, as the daemon names a phone it found, and for phones that
/// share a serial).
public struct PhoneSource: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: UInt16)
        case usb(serial: String)
        case usbPort(String)
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
        } else if rest.hasPrefix("usb-port:"), case let port = rest.dropFirst(9),
            port.range(of: #"^[0-9]+-[0-9]+(\.[0-9]+)*$"#, options: .regularExpression) != nil
        {
            transport = .usbPort(String(port))
        } else {
            throw AcquisitionError(
                .sourceUnsupported, path: text, detail: "a phone source is adb:usb:SERIAL, adb:usb-port:BUS-PORT or adb:tcp:HOST:PORT")
        }
    }

    public var description: String {
        switch transport {
        case .tcp(let host, let port): "adb:tcp:\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .usb(let serial): "adb:usb:\(serial)"
        case .usbPort(let port): "adb:usb-port:\(port)"
        }
    }

    /// Opens the transport.
    public func openTransport(timeouts: ADBTimeouts) throws(ADBError) -> any ADBTransport {
        switch transport {
        case .tcp(let host, let port):
            try TCPTransport(host: host, port: port, connectTimeout: timeouts.handshake, writeTimeout: timeouts.idle)
        case .usb(let serial):
            try USBTransport(.serial(serial), writeTimeout: timeouts.idle)
        case .usbPort(let port):
            try USBTransport(.port(port), writeTimeout: timeouts.idle)
        }
    }
}
