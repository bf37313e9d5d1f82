// SPDX-License-Identifier: Apache-2.0
import CUSB
import Foundation
import Synchronization

/// A USB device with an ADB interface: class 0xFF, subclass 0x42, protocol 0x01 and one bulk
/// endpoint each way (the interface AOSP's adb host looks for).
public struct ADBUSBDevice: Sendable, Equatable, CustomStringConvertible {
    public var bus: UInt8
    public var address: UInt8
    /// The port the phone is plugged into, `BUS-PORT[.PORT…]`: the kernel's (sysfs) name for it.
    public var portPath: String
    public var vendor: UInt16
    public var product: UInt16
    /// The USB serial number; nil when the device could not be opened to read it.
    public var serial: String?
    public var interfaceNumber: UInt8
    public var inEndpoint: UInt8
    public var outEndpoint: UInt8
    /// The bulk endpoints' packet size (512 at high speed): a payload of a multiple of it is
    /// ended with a zero-length packet.
    public var maxPacketSize: Int
    /// Why the device could not be opened, when it could not.
    public var openFailure: String?

    public var node: String { String(format: "/dev/bus/usb/%03d/%03d", bus, address) }
    public var description: String { "usb:\(portPath)" }
}

/// Which ADB device to open: by USB serial number (`adb:usb:SERIAL`) or by port, which is what
/// the daemon knows from udev and what tells apart phones that share a serial (cheap phones
/// often report `0123456789ABCDEF`).
public enum ADBUSBSelector: Sendable, Equatable, CustomStringConvertible {
    case serial(String)
    case port(String)

    public var description: String {
        switch self {
        case .serial(let serial): "usb serial \(serial)"
        case .port(let path): "usb port \(path)"
        }
    }
}

/// One libusb context; every libusb object of a transport lives inside it.
final class USBContext: @unchecked Sendable {
    let pointer: OpaquePointer

    init() throws(ADBError) {
        var context: OpaquePointer?
        let status = libusb_init(&context)
        guard status == 0, let context else {
            throw ADBError(.connectFailed, operation: "libusb_init", device: "usb", USBContext.describe(status))
        }
        pointer = context
    }

    deinit { libusb_exit(pointer) }

    static func describe(_ status: Int32) -> String { String(cString: libusb_strerror(status)) }

    /// Calls `body` with the ADB interfaces on every bus and their libusb devices (valid only
    /// inside); each one found is opened briefly to read its serial.
    func withDevices<T>(_ body: ([(description: ADBUSBDevice, device: OpaquePointer)]) throws(ADBError) -> T) throws(ADBError) -> T {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(pointer, &list)
        guard count >= 0, let list else {
            throw ADBError(.connectFailed, operation: "libusb_get_device_list", device: "usb", Self.describe(Int32(count)))
        }
        defer { libusb_free_device_list(list, 1) }
        var found: [(description: ADBUSBDevice, device: OpaquePointer)] = []
        for index in 0..<count {
            guard let device = list[index], var description = Self.adbInterface(of: device) else { continue }
            var handle: OpaquePointer?
            let opened = libusb_open(device, &handle)
            if opened == 0, let handle {
                description.serial = Self.serial(of: device, handle: handle)
                libusb_close(handle)
            } else {
                description.openFailure = Self.describe(opened)
            }
            found.append((description, device))
        }
        return try body(found)
    }

    private static func adbInterface(of device: OpaquePointer) -> ADBUSBDevice? {
        var descriptor = libusb_device_descriptor()
        guard libusb_get_device_descriptor(device, &descriptor) == 0 else { return nil }
        var configuration: UnsafeMutablePointer<libusb_config_descriptor>?
        guard libusb_get_active_config_descriptor(device, &configuration) == 0, let configuration else { return nil }
        defer { libusb_free_config_descriptor(configuration) }
        var ports = [UInt8](repeating: 0, count: 8)
        let depth = Int(libusb_get_port_numbers(device, &ports, Int32(ports.count)))
        let bus = libusb_get_bus_number(device)
        let portPath = "\(bus)-" + ports.prefix(max(depth, 0)).map(String.init).joined(separator: ".")
        for interfaceIndex in 0..<Int(configuration.pointee.bNumInterfaces) {
            let interface = configuration.pointee.interface[interfaceIndex]
            for settingIndex in 0..<Int(interface.num_altsetting) {
                let setting = interface.altsetting[settingIndex]
                guard setting.bInterfaceClass == 0xFF, setting.bInterfaceSubClass == 0x42, setting.bInterfaceProtocol == 0x01 else {
                    continue
                }
                var input: (address: UInt8, size: Int)?
                var output: (address: UInt8, size: Int)?
                for endpointIndex in 0..<Int(setting.bNumEndpoints) {
                    let endpoint = setting.endpoint[endpointIndex]
                    guard endpoint.bmAttributes & 0x03 == UInt8(LIBUSB_TRANSFER_TYPE_BULK.rawValue) else { continue }
                    let entry = (endpoint.bEndpointAddress, Int(endpoint.wMaxPacketSize))
                    if endpoint.bEndpointAddress & 0x80 != 0 { input = input ?? entry } else { output = output ?? entry }
                }
                guard let input, let output else { continue }
                return ADBUSBDevice(
                    bus: bus, address: libusb_get_device_address(device), portPath: portPath, vendor: descriptor.idVendor,
                    product: descriptor.idProduct, serial: nil, interfaceNumber: setting.bInterfaceNumber,
                    inEndpoint: input.address, outEndpoint: output.address, maxPacketSize: max(min(input.size, output.size), 8),
                    openFailure: nil)
            }
        }
        return nil
    }

    private static func serial(of device: OpaquePointer, handle: OpaquePointer) -> String? {
        var descriptor = libusb_device_descriptor()
        guard libusb_get_device_descriptor(device, &descriptor) == 0, descriptor.iSerialNumber != 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = libusb_get_string_descriptor_ascii(handle, descriptor.iSerialNumber, &buffer, Int32(buffer.count))
        guard length > 0 else { return nil }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}

/// ADB over USB through libusb: each message is its 24-byte header in one bulk transfer and its
/// payload in the next; a payload that fills its last packet is followed by a zero-length
/// packet, so a phone reading in larger units sees where it ends.
public final class USBTransport: ADBTransport, @unchecked Sendable {
    public let name: String
    public let kind = "adb-usb"
    public let device: ADBUSBDevice
    private let context: USBContext
    private let handle: OpaquePointer
    private let writeLock = NSLock()
    private let writeTimeout: Duration
    private let closed = Atomic(false)
    /// Bytes read so far, the offset that protocol errors name.
    private var received: UInt64 = 0
    /// Whether this connection has had its first header (the phone's answer, or one its own check
    /// refuses), and the bytes of an earlier stream's packets set aside before it.
    private var handshakeSeen = false
    public private(set) var bytesSetAside = 0
    /// How long one wait for a header lasts before `close()` is looked at again.
    private static let headerSlice: Duration = .milliseconds(250)

    /// Opens the phone's ADB interface and claims it.
    public init(_ selector: ADBUSBSelector, writeTimeout: Duration = .seconds(30)) throws(ADBError) {
        self.writeTimeout = writeTimeout
        let context = try USBContext()
        self.context = context
        let opened: (ADBUSBDevice, OpaquePointer) = try context.withDevices { candidates throws(ADBError) in
            let matching = candidates.filter {
                switch selector {
                case .serial(let serial): $0.description.serial == serial
                case .port(let path): $0.description.portPath == path
                }
            }
            guard let chosen = matching.first else {
                let unreadable = candidates.filter { $0.description.openFailure != nil }.map(\.description)
                if case .serial = selector, let first = unreadable.first {
                    throw ADBError(
                        .noPermission, operation: "open", device: "usb", Self.permissionAdvice(first.node, first.openFailure ?? ""))
                }
                let seen = candidates.map { "\($0.description) serial \($0.description.serial ?? "unknown")" }
                throw ADBError(
                    .connectFailed, operation: "find", device: "usb",
                    "no ADB device with \(selector) is on USB"
                        + (seen.isEmpty ? " (none at all: is USB debugging on, and does the cable carry data?)" : " (found: \(seen.joined(separator: ", ")))"))
            }
            if matching.count > 1, case .serial(let serial) = selector {
                throw ADBError(
                    .refused, operation: "find", device: "usb",
                    "\(matching.count) phones report serial \(serial) (\(matching.map(\.description.portPath).joined(separator: ", "))): "
                        + "name one by its port, adb:usb-port:PORT")
            }
            var handle: OpaquePointer?
            let status = libusb_open(chosen.device, &handle)
            guard status == 0, let handle else {
                if status == LIBUSB_ERROR_ACCESS.rawValue {
                    throw ADBError(.noPermission, operation: "open", device: chosen.description.description, Self.permissionAdvice(chosen.description.node, USBContext.describe(status)))
                }
                throw Self.error(status, operation: "open \(chosen.description.node)", device: chosen.description.description, offset: nil)
            }
            return (chosen.description, handle)
        }
        device = opened.0
        handle = opened.1
        name = device.description
        _ = libusb_set_auto_detach_kernel_driver(handle, 1)
        let claimed = libusb_claim_interface(handle, Int32(device.interfaceNumber))
        guard claimed == 0 else {
            libusb_close(handle)
            if claimed == LIBUSB_ERROR_BUSY.rawValue {
                throw ADBError(
                    .connectFailed, operation: "claim interface \(device.interfaceNumber)", device: name,
                    "another program holds the phone's ADB interface (an adb server on the appliance? stop it with `adb kill-server`)")
            }
            throw Self.error(claimed, operation: "claim interface \(device.interfaceNumber)", device: name, offset: nil)
        }
    }

    deinit {
        libusb_release_interface(handle, Int32(device.interfaceNumber))
        libusb_close(handle)
    }

    static func permissionAdvice(_ node: String, _ detail: String) -> String {
        "cannot open \(node) (\(detail)): the appliance's udev rule (Udev/70-exhibit-usb.rules) gives the exhibit group "
            + "access to ADB devices; install it, and run exhibit as a member of that group or as root"
    }

    public func close() {
        // A reader waiting for a header sees this within one slice; the handle is released by
        // deinit, its only owner, once no thread can be using it.
        closed.store(true, ordering: .releasing)
    }

    public func write(_ message: ADBMessage, checksum: ADBChecksum) throws(ADBError) {
        let header = message.header(checksum: checksum)
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !closed.load(ordering: .acquiring) else {
            throw ADBError(.disconnected, operation: "send \(message.command)", device: name, "the connection was closed")
        }
        try send(header, operation: "send \(message.command)")
        guard !message.payload.isEmpty else { return }
        try send(message.payload, operation: "send \(message.command)")
        if message.payload.count % device.maxPacketSize == 0 { try send([], operation: "send \(message.command) (zero-length packet)") }
    }

    private func send(_ bytes: [UInt8], operation: String) throws(ADBError) {
        var bytes = bytes
        var sent = 0
        repeat {
            var transferred: Int32 = 0
            let status = bytes.withUnsafeMutableBytes { buffer in
                libusb_bulk_transfer(
                    handle, device.outEndpoint, buffer.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + sent },
                    Int32(buffer.count - sent), &transferred, Self.milliseconds(writeTimeout))
            }
            sent += Int(transferred)
            if status == LIBUSB_ERROR_TIMEOUT.rawValue, transferred == 0 {
                throw ADBError(.timeout, operation: operation, device: name, "the phone took nothing for \(writeTimeout)")
            }
            if status != 0, status != LIBUSB_ERROR_TIMEOUT.rawValue {
                throw Self.error(status, operation: operation, device: name, offset: nil)
            }
        } while sent < bytes.count
    }

    public func read(maximumPayload: Int, checksum: ADBChecksum, timeout: Duration?) throws(ADBError) -> ADBMessage {
        let offset = received
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let header = try receiveHeader(deadline: deadline)
        return try ADBMessageHeader.assemble(
            header, offset: offset, maximumPayload: maximumPayload, checksum: checksum, device: name
        ) { (length, command) throws(ADBError) in
            var payload = [UInt8](repeating: 0, count: length)
            // Once a header has arrived, its payload follows at once; a stall here is a broken peer.
            try receivePayload(into: &payload, deadline: deadline ?? ContinuousClock.now + .seconds(30), command: command)
            return payload
        }
    }

    /// A header is one packet of exactly 24 bytes; the read asks for a whole packet so a phone
    /// that sends more is a clear protocol error, not a libusb overflow.
    private func receiveHeader(deadline: ContinuousClock.Instant?) throws(ADBError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max(device.maxPacketSize, ADBProtocol.headerSize))
        while true {
            if closed.load(ordering: .acquiring) {
                throw ADBError(.disconnected, operation: "receive message header", device: name, offset: received, "the connection was closed")
            }
            var slice = Self.headerSlice
            if let deadline {
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero {
                    throw ADBError(.timeout, operation: "receive message header", device: name, offset: received, "the phone sent nothing in time")
                }
                slice = min(slice, remaining)
            }
            var transferred: Int32 = 0
            let status = libusb_bulk_transfer(handle, device.inEndpoint, &buffer, Int32(buffer.count), &transferred, max(Self.milliseconds(slice), 1))
            if status == LIBUSB_ERROR_TIMEOUT.rawValue, transferred == 0 { continue }
            if status != 0, status != LIBUSB_ERROR_TIMEOUT.rawValue {
                throw Self.error(status, operation: "receive message header", device: name, offset: received)
            }
            if transferred == 0 { continue }  // a stray zero-length packet ends nothing
            received += UInt64(transferred)
            let packet = buffer.prefix(Int(transferred))
            if !handshakeSeen {
                switch Self.classify(packet, setAsideBefore: bytesSetAside) {
                case .leftover:
                    bytesSetAside += packet.count
                    continue
                case .tooManyLeftovers:
                    throw ADBError(
                        .protocolViolation, operation: "receive message header", device: name, offset: received - UInt64(transferred),
                        "more than \(SetAsideBytes.named(bytesSetAside)) came before the phone's answer: \(SetAsideBytes.advice)")
                case .header:
                    break
                }
            }
            guard Int(transferred) == ADBProtocol.headerSize else {
                throw ADBError(
                    .protocolViolation, operation: "receive message header", device: name, offset: received - UInt64(transferred),
                    "a message header arrived as a \(transferred)-byte packet (a header is \(ADBProtocol.headerSize) bytes)")
            }
            handshakeSeen = true
            return Array(buffer.prefix(ADBProtocol.headerSize))
        }
    }

    /// What a packet that comes before the phone's first handshake header is.
    enum EarlyPacket: Equatable {
        /// Part of an earlier stream: set aside.
        case leftover
        /// A leftover past the bound: more than a cut transfer leaves.
        case tooManyLeftovers
        /// A header for this connection: the phone's answer, or one that its own check refuses.
        case header
    }

    /// A phone plugged back in can still have packets of the stream the pulled cable cut queued
    /// on its endpoint. Before this connection's first handshake header (CNXN, AUTH, STLS: the
    /// phone's answer to ours) they belong to no message of it and are set aside, up to a bound:
    /// a packet that is not 24 bytes, 24 bytes of a payload (its magic is not its command
    /// inverted: one chance in 2^32 for other bytes), or a whole header of the earlier stream
    /// (WRTE, OKAY …), whose payload packets follow and are set aside in turn however few of them
    /// the phone still held. A header with an unknown command is left to the header's own check.
    static func classify(_ packet: ArraySlice<UInt8>, setAsideBefore: Int) -> EarlyPacket {
        if packet.count == ADBProtocol.headerSize, ADBMessageHeader.hasMagic(packet) {
            let command = ADBMessageHeader.command(of: packet)
            if !ADBCommand.known.contains(command) || ADBCommand.handshake.contains(command) { return .header }
        }
        return setAsideBefore < staleBytesLimit ? .leftover : .tooManyLeftovers
    }

    /// The most of an earlier stream's leftovers set aside before the handshake: more than
    /// the few in-flight packets of one cut transfer, less than a phone could flood.
    static let staleBytesLimit = 4 << 20

    private func receivePayload(into payload: inout [UInt8], deadline: ContinuousClock.Instant, command: ADBCommand) throws(ADBError) {
        var filled = 0
        while filled < payload.count {
            let remaining = deadline - ContinuousClock.now
            var transferred: Int32 = 0
            let status = payload.withUnsafeMutableBytes { buffer in
                libusb_bulk_transfer(
                    handle, device.inEndpoint, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + filled,
                    Int32(buffer.count - filled), &transferred, max(Self.milliseconds(max(remaining, .zero)), 1))
            }
            filled += Int(transferred)
            received += UInt64(transferred)
            if status == LIBUSB_ERROR_TIMEOUT.rawValue {
                throw ADBError(
                    .timeout, operation: "receive \(command) payload", device: name, offset: received,
                    "the phone stopped \(filled) of \(payload.count) bytes into a payload (truncated)")
            }
            if status != 0 {
                throw Self.error(status, operation: "receive \(command) payload", device: name, offset: received)
            }
        }
    }

    static func error(_ status: Int32, operation: String, device: String, offset: UInt64?) -> ADBError {
        let text = USBContext.describe(status)
        switch status {
        case LIBUSB_ERROR_NO_DEVICE.rawValue:
            return ADBError(.disconnected, operation: operation, device: device, offset: offset, "the phone was unplugged or its USB connection was reset (\(text))")
        case LIBUSB_ERROR_TIMEOUT.rawValue:
            return ADBError(.timeout, operation: operation, device: device, offset: offset, text)
        case LIBUSB_ERROR_OVERFLOW.rawValue:
            return ADBError(.protocolViolation, operation: operation, device: device, offset: offset, "the phone sent more than the message said (\(text))")
        case LIBUSB_ERROR_ACCESS.rawValue:
            return ADBError(.noPermission, operation: operation, device: device, offset: offset, text)
        default:
            return ADBError(.disconnected, operation: operation, device: device, offset: offset, "USB transfer failed: \(text)")
        }
    }

    static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        return UInt32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
