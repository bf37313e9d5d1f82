// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// The simulated phone on USB, as adbd is on a real phone: a FunctionFS function whose `ep0`
/// takes the interface's descriptors and strings, after which `ep1` (bulk OUT) carries what the
/// host sends and `ep2` (bulk IN) what the phone answers. The gadget around it (configfs, the
/// UDC it is bound to, e.g. dummy_hcd) is the caller's; see `Tests/vm/usb-phone-guest.sh`.
public final class FunctionFSFrontEnd: @unchecked Sendable {
    public let directory: String
    private let device: SimulatedAndroidDevice
    private let control: Int32

    /// The USB packet sizes of the bulk endpoints: full speed, high speed.
    static let packetSizes: (full: UInt16, high: UInt16) = (64, 512)

    /// Writes the descriptors and strings to `DIRECTORY/ep0` and serves the host from then on.
    public init(device: SimulatedAndroidDevice, directory: String) throws {
        self.device = device
        self.directory = directory
        control = open("\(directory)/ep0", O_RDWR | O_CLOEXEC)
        guard control >= 0 else { throw Self.failure("open \(directory)/ep0") }
        for (what, bytes) in [("descriptors", Self.descriptors()), ("strings", Self.strings())] {
            let written = bytes.withUnsafeBytes { Glibc.write(control, $0.baseAddress, $0.count) }
            guard written == bytes.count else {
                let error = Self.failure("write the \(what) to \(directory)/ep0")
                Glibc.close(control)
                throw error
            }
        }
        let events = Thread { [self] in readEvents() }
        events.name = "simulated-adbd.ep0"
        events.start()
        let serving = Thread { [self] in serve() }
        serving.name = "simulated-adbd.usb"
        serving.start()
    }

    /// One connection at a time; a host that resets the device or a function disabled ends it,
    /// and the next enable starts another (the host begins again with CNXN).
    ///
    /// The endpoints are opened non-blocking because FunctionFS makes a read or write issued
    /// while the function is disabled (the cable pulled) wait for the next enable, and then
    /// complete it: a service thread of the old connection would send a WRTE header into the new
    /// connection before its CNXN (seen in CI). Android's kernels fail such writes at once; with
    /// O_NONBLOCK this kernel does too (EAGAIN), and a transfer in flight ends with ESHUTDOWN.
    private func serve() {
        while true {
            let output = open("\(directory)/ep1", O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            let input = open("\(directory)/ep2", O_WRONLY | O_CLOEXEC | O_NONBLOCK)
            if output >= 0, input >= 0 {
                let link = FunctionFSLink(output: output, input: input)
                DeviceConnection(device: device, link: link).run()
                // The old connection's service threads may still send: not on these descriptors.
                link.end()
            }
            if output >= 0 { Glibc.close(output) }
            if input >= 0 { Glibc.close(input) }
            usleep(200_000)
        }
    }

    /// Drains `ep0`'s events (bind, enable, disable, setup: 12 bytes each), which the kernel
    /// queues for the function; the endpoints' reads and writes already tell the rest.
    private func readEvents() {
        var events = [UInt8](repeating: 0, count: 12 * 4)
        while true {
            let count = read(control, &events, events.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
        }
    }

    /// FunctionFS descriptors v2: one vendor interface 0xFF/0x42/0x01 with a bulk OUT endpoint
    /// (ep1) and a bulk IN endpoint (ep2), at full and high speed.
    static func descriptors() -> [UInt8] {
        let interface: [UInt8] = [9, 4, 0, 0, 2, 0xFF, 0x42, 0x01, 1]
        func endpoint(_ address: UInt8, _ size: UInt16) -> [UInt8] { [7, 5, address, 2, UInt8(size & 0xFF), UInt8(size >> 8), 0] }
        let full = interface + endpoint(0x01, packetSizes.full) + endpoint(0x82, packetSizes.full)
        let high = interface + endpoint(0x01, packetSizes.high) + endpoint(0x82, packetSizes.high)
        let hasFullSpeed: UInt32 = 1
        let hasHighSpeed: UInt32 = 2
        let body = le32(hasFullSpeed | hasHighSpeed) + le32(3) + le32(3) + full + high
        let magicV2: UInt32 = 3
        return le32(magicV2) + le32(UInt32(8 + body.count)) + body
    }

    /// One string (the interface's name) in US English.
    static func strings() -> [UInt8] {
        let body = le32(1) + le32(1) + [0x09, 0x04] + Array("ADB Interface".utf8) + [0]
        let magic: UInt32 = 2
        return le32(magic) + le32(UInt32(8 + body.count)) + body
    }

    private static func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    private static func failure(_ operation: String) -> LoopDevice.LoopError {
        LoopDevice.LoopError(message: "simulated device: \(operation): \(String(cString: strerror(errno)))")
    }
}

/// The bulk endpoints of a FunctionFS function: each read returns one transfer from the host;
/// each send is written in pieces of whole packets, so the host, reading exactly the length it
/// expects, sees one transfer. Once ended, it sends nothing more (its descriptors are closed and
/// their numbers may be the next connection's).
final class FunctionFSLink: DeviceLink, @unchecked Sendable {
    let output: Int32
    let input: Int32
    /// Small enough that the kernel's buffer for one request is always to be had.
    static let pieceSize = 16 * 1024
    /// Held over each send, so `end` waits for a send in progress; guards `ended`.
    private let sending = NSLock()
    private var ended = false

    init(output: Int32, input: Int32) {
        self.output = output
        self.input = input
    }

    /// After this, every send fails; a send in progress finishes first.
    func end() {
        sending.lock()
        ended = true
        sending.unlock()
    }

    func receive(into buffer: inout [UInt8]) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, min($0.count, 64 * 1024)) }
            if count < 0, errno == EINTR { continue }
            return count
        }
    }

    func send(_ bytes: [UInt8]) -> Bool {
        sending.lock()
        defer { sending.unlock() }
        if ended { return false }
        var sent = 0
        repeat {
            let piece = min(Self.pieceSize, bytes.count - sent)
            let written = bytes.withUnsafeBytes { write(input, $0.baseAddress! + sent, piece) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 || (written == 0 && piece == 0) else {
                ended = true  // the rest of a message must not follow in a later connection
                return false
            }
            sent += written
        } while sent < bytes.count
        return true
    }

    /// A gadget cannot pull its own cable: a test unbinds the gadget from its UDC instead.
    func hangUp() {}
}
