// SPDX-License-Identifier: Apache-2.0
import ADB
import Cryptography
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// What a simulated phone is: its banner, properties, file system (a host directory standing
/// for the phone's `/`), whether `su` works, how AUTH goes, and which fault to inject.
public struct SimulatedPhone: Sendable {
    public enum Authorization: Sendable, Equatable {
        /// `ro.adb.secure=0` (emulators, userdebug builds): no AUTH at all.
        case off
        /// AUTH on; a key the phone does not know is allowed when offered (the technician taps "Allow").
        case allowWhenAsked
        /// AUTH on; nobody taps "Allow".
        case neverAllowed
    }

    /// Something going wrong once the phone has sent `afterBytes` bytes of service data.
    public enum Fault: Sendable, Equatable {
        /// The connection drops (cable pulled).
        case disconnect(afterBytes: UInt64)
        /// The phone stops sending but keeps the connection open.
        case stall(afterBytes: UInt64)
        /// A message with a broken magic is sent.
        case garbage(afterBytes: UInt64)
        /// WRTEs go on without waiting for the host's OKAY (a phone that floods the host).
        case ignoresFlowControl(afterBytes: UInt64)
    }

    public struct Package: Sendable {
        public var name: String
        public var path: String
        public var uid: Int
        public init(name: String, path: String, uid: Int) {
            self.name = name
            self.path = path
            self.uid = uid
        }
    }

    public var serial: String
    public var features: Set<String>
    /// What `getprop` prints; `ro.product.name/model/device` also go into the banner.
    public var properties: [String: String]
    /// The host directory that is the phone's `/`.
    public var root: String
    public var rooted: Bool
    /// Whether the lock screen is showing (`dumpsys window` says so).
    public var locked: Bool
    public var authorization: Authorization
    /// Seconds between the key's offer and the answer ("Allow" or not).
    public var authorizationDelay: TimeInterval = 0
    /// Android public keys (524-byte structures) the phone already trusts.
    public var knownKeys: [[UInt8]]
    /// Device paths whose open or listing fails with EACCES (root on the host bypasses modes).
    public var deniedPaths: Set<String>
    public var settings: [String: [String: String]]
    public var packages: [Package]
    public var maximumPayload: Int
    public var fault: Fault?
    /// Messages that are no answer, sent before the answer to the host's CNXN.
    public enum StrayMessages: Sendable, Equatable {
        /// What a pulled cable can leave in a phone's USB buffer: a previous session's WRTE (of
        /// the largest size), OKAY and CLSE.
        case previousSessionLeftovers
        /// OKAYs without end and never an answer: a hostile phone holding the host in its handshake.
        case withoutEnd
        /// A previous session's WRTE header announcing the largest payload, and only the first
        /// 5000 bytes of it: all a phone still held when the cable was pulled mid-transfer. Only
        /// USB's packets let a host tell where such a message ends (over TCP a session never
        /// inherits bytes of another).
        case cutPayload
    }

    public var strayMessagesBeforeConnect: StrayMessages?
    /// A tampered adbd: its listings of `HostileListing.directory` hold names no file can have
    /// and directories that list themselves (see `HostileListing`).
    public var hostileListings = false
    /// What `date +%s` prints, as it is (a clock that stands still; a phone's clock can say
    /// anything); nil: the host's time.
    public var clock: String?

    public init(root: String, serial: String = "SIM0123456789") {
        self.root = root
        self.serial = serial
        features = [
            "shell_v2", "cmd", "stat_v2", "ls_v2", "sendrecv_v2", "fixed_push_mkdir", "apex", "abb", "abb_exec",
            "remount_shell", "track_app",
        ]
        properties = [
            "ro.product.name": "simphone", "ro.product.model": "SimPhone", "ro.product.device": "sim",
            "ro.product.manufacturer": "Exhibit Test Devices", "ro.product.brand": "exhibit",
            "ro.serialno": serial, "ro.build.version.release": "13", "ro.build.version.sdk": "33",
            "ro.build.version.security_patch": "2024-05-05", "ro.build.type": "user",
            "ro.build.fingerprint": "exhibit/simphone/sim:13/TQ3A.230901.001/1:user/release-keys",
            "ro.crypto.state": "encrypted", "ro.crypto.type": "file", "persist.sys.timezone": "Asia/Bangkok",
        ]
        rooted = false
        locked = false
        authorization = .off
        knownKeys = []
        deniedPaths = []
        settings = [
            "system": ["screen_off_timeout": "60000", "time_12_24": "24"],
            "secure": ["android_id": "a1b2c3d4e5f60718", "bluetooth_name": "SimPhone"],
            "global": ["adb_enabled": "1", "airplane_mode_on": "0", "device_name": "SimPhone"],
        ]
        packages = [
            Package(name: "com.android.settings", path: "/system/priv-app/Settings/Settings.apk", uid: 1000),
            Package(name: "org.telegram.messenger", path: "/data/app/~~x1/org.telegram.messenger-1/base.apk", uid: 10123),
        ]
        maximumPayload = ADBProtocol.maximumPayload
    }

    var banner: ADBBanner {
        ADBBanner(
            systemType: .device, serial: "",
            properties: properties.filter { ["ro.product.name", "ro.product.model", "ro.product.device"].contains($0.key) },
            features: features)
    }
}

/// A simulated adbd on 127.0.0.1 (an ephemeral port, never 5555, which the adb server probes as
/// an emulator). It speaks the device side of the real protocol: CNXN, AUTH (tokens checked
/// against known keys, a new key allowed or not), shell v1/v2, `exec:`, and sync v1/v2 over
/// the host directory that stands for the phone's `/`. Debian's `adb` is its conformance judge.
public final class SimulatedAndroidDevice: @unchecked Sendable {
    public let port: UInt16
    public let phone: SimulatedPhone
    private let listener: Int32
    private let state = NSLock()
    private var isStopped = false
    private var connections: [Int32] = []
    private var allowedKeys: [[UInt8]]
    /// Keys offered with AUTH(RSAPUBLICKEY), in order, allowed or not.
    public private(set) var offeredKeys: [String] = []
    private var receives: [String] = []

    /// The paths the host asked to RECV, in order (to see what a resumed job pulls again).
    public var receivedPaths: [String] { state.withLock { receives } }

    func recordReceive(_ path: String) { state.withLock { receives.append(path) } }

    public init(_ phone: SimulatedPhone) throws {
        self.phone = phone
        allowedKeys = phone.knownKeys
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard listener >= 0, bound == 0, listen(listener, 8) == 0 else {
            throw LoopDevice.LoopError(message: "simulated device: cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        self.listener = listener
        let thread = Thread { [self] in acceptConnections() }
        thread.name = "simulated-adbd"
        thread.start()
    }

    /// Compatibility with the handshake-only simulator: a phone with this banner and an empty tree.
    public convenience init(banner: ADBBanner) throws {
        var phone = SimulatedPhone(root: "/nonexistent")
        phone.features = banner.features
        for (key, value) in banner.properties { phone.properties[key] = value }
        try self.init(phone)
    }

    deinit { stop() }

    /// Stops listening and drops every connection (as if the phone were unplugged).
    public func stop() {
        let open = state.withLock { () -> [Int32]? in
            defer { isStopped = true }
            return isStopped ? nil : connections
        }
        guard let open else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in open { shutdown(connection, Int32(SHUT_RDWR)) }
    }

    /// Drops the current connections but keeps listening (a cable pulled and plugged back).
    public func dropConnections() {
        for connection in state.withLock({ connections }) { shutdown(connection, Int32(SHUT_RDWR)) }
    }

    private func acceptConnections() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let accepted = state.withLock { () -> Bool in
                if isStopped { return false }
                connections.append(connection)
                return true
            }
            guard accepted else {
                close(connection)
                return
            }
            let session = DeviceConnection(device: self, link: SocketLink(connection))
            let thread = Thread {
                session.run()
                self.state.withLock { self.connections.removeAll { $0 == connection } }
                close(connection)
            }
            thread.name = "simulated-adbd.connection"
            thread.start()
        }
    }

    func isAllowed(signature: [UInt8], token: [UInt8]) -> Bool {
        state.withLock { allowedKeys }.contains { AndroidDebugKey.verifyToken(signature, token: token, androidPublicKey: $0) }
    }

    /// The phone asks "Allow USB debugging?" for `line`; true when the key is now trusted.
    func offer(_ line: String) -> Bool {
        state.withLock {
            offeredKeys.append(line)
            guard phone.authorization == .allowWhenAsked,
                let encoded = line.split(separator: " ").first, let key = Data(base64Encoded: String(encoded)),
                key.count == AndroidDebugKey.publicKeySize
            else { return false }
            allowedKeys.append(Array(key))
            return true
        }
    }
}

/// How bytes reach the host: a TCP socket, or a FunctionFS gadget's bulk endpoints.
protocol DeviceLink: Sendable {
    /// Reads what the host sent (for USB, one transfer); 0 or less when the link is gone.
    func receive(into buffer: inout [UInt8]) -> Int
    /// Sends `bytes` as one unit (for USB, one transfer); false when the link is gone.
    func send(_ bytes: [UInt8]) -> Bool
    /// Ends the link as a pulled cable would.
    func hangUp()
}

/// A TCP connection from the host (the descriptor is owned and closed by the accept loop).
struct SocketLink: DeviceLink {
    let socket: Int32

    init(_ socket: Int32) { self.socket = socket }

    func receive(into buffer: inout [UInt8]) -> Int {
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            return count
        }
    }

    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { return false }
            sent += result
        }
        return true
    }

    func hangUp() { shutdown(socket, Int32(SHUT_RDWR)) }
}

/// One host connection to the simulated adbd.
final class DeviceConnection: @unchecked Sendable {
    let device: SimulatedAndroidDevice
    let link: any DeviceLink
    var phone: SimulatedPhone { device.phone }
    private let sendLock = NSLock()
    let condition = NSCondition()
    private var streams: [UInt32: DeviceStream] = [:]
    private var nextId: UInt32 = 1
    private(set) var checksum = ADBChecksum.byteSum
    private(set) var maximumPayload = ADBProtocol.maximumPayloadV1
    private var online = false
    private var token: [UInt8] = []
    /// Service bytes sent so far, for fault injection.
    private var serviceBytes: UInt64 = 0
    private(set) var broken = false

    init(device: SimulatedAndroidDevice, link: any DeviceLink) {
        self.device = device
        self.link = link
    }

    func run() {
        var decoder = ADBMessageDecoder(checksum: .byteSum)
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        defer {
            condition.lock()
            broken = true
            condition.broadcast()
            condition.unlock()
        }
        while true {
            let count = link.receive(into: &buffer)
            guard count > 0 else { return }
            let messages: [ADBMessage]
            do {
                messages = try decoder.feed(buffer[0..<count])
            } catch {
                return  // a host that does not speak ADB is hung up on
            }
            for message in messages {
                handle(message, decoder: &decoder)
            }
        }
    }

    private func handle(_ message: ADBMessage, decoder: inout ADBMessageDecoder) {
        switch message.command {
        case .connect:
            // A host starting over on a link that stays up (USB: the host closed and reopened
            // the interface) ends the old session, as adbd does.
            condition.lock()
            online = false
            for stream in streams.values { stream.hostClosed = true }
            streams = [:]
            condition.broadcast()
            condition.unlock()
            checksum = ADBChecksum.negotiated(ours: ADBProtocol.versionSkipChecksum, theirs: message.arg0)
            maximumPayload = min(Int(message.arg1), phone.maximumPayload)
            decoder.checksum = checksum
            decoder.maximumPayload = maximumPayload
            switch phone.strayMessagesBeforeConnect {
            case .previousSessionLeftovers?:
                let payload = [UInt8](repeating: 0x5A, count: min(phone.maximumPayload, ADBProtocol.maximumPayload))
                for leftover in [ADBMessage(.write, 7, 3, payload: payload), ADBMessage(.okay, 7, 3), ADBMessage(.close, 7, 3)] {
                    send(leftover)
                }
            case .withoutEnd?:
                sendUntilHungUp(ADBMessage(.okay, 7, 3))
                return
            case .cutPayload?:
                let announced = min(phone.maximumPayload, ADBProtocol.maximumPayload)
                sendRaw(ADBMessage(.write, 7, 3, payload: [UInt8](repeating: 0x5A, count: announced)).header(checksum: checksum))
                sendRaw([UInt8](repeating: 0x5A, count: 5000))
            case nil:
                break
            }
            if phone.authorization == .off {
                sendConnect()
            } else {
                sendToken()
            }
        case .auth where !online:
            switch message.arg0 {
            case 2:
                if device.isAllowed(signature: message.payload, token: token) {
                    sendConnect()
                } else {
                    sendToken()
                }
            case 3:
                var line = message.payload
                if line.last == 0 { line.removeLast() }
                // The technician reading the dialog; the host waits meanwhile.
                if phone.authorizationDelay > 0 { Thread.sleep(forTimeInterval: phone.authorizationDelay) }
                if device.offer(String(decoding: line, as: UTF8.self)) { sendConnect() }
            default:
                break
            }
        case .open where online:
            let destination = String(decoding: message.payload.prefix { $0 != 0 }, as: UTF8.self)
            condition.lock()
            let localId = nextId
            nextId += 1
            let stream = DeviceStream(connection: self, localId: localId, remoteId: message.arg0)
            streams[localId] = stream
            condition.unlock()
            guard let service = DeviceServices.service(for: destination, phone: phone) else {
                forget(stream)
                send(ADBMessage(.close, 0, message.arg0))
                return
            }
            send(ADBMessage(.okay, localId, message.arg0))
            let thread = Thread {
                service(stream)
                stream.close()
            }
            thread.name = "simulated-adbd.service"
            thread.start()
        case .okay where online:
            condition.lock()
            streams[message.arg1]?.mayWrite = true
            condition.broadcast()
            condition.unlock()
        case .write where online:
            condition.lock()
            let stream = streams[message.arg1]
            stream?.inbox.append(contentsOf: message.payload)
            condition.broadcast()
            condition.unlock()
            if stream != nil { send(ADBMessage(.okay, message.arg1, message.arg0)) }
        case .close where online:
            condition.lock()
            if let stream = streams[message.arg1] { stream.hostClosed = true }
            condition.broadcast()
            condition.unlock()
        default:
            break
        }
    }

    private func sendToken() {
        token = (0..<20).map { _ in UInt8.random(in: 0...255) }
        send(ADBMessage(.auth, 1, 0, payload: token))
    }

    private func sendConnect() {
        online = true
        send(ADBMessage(.connect, ADBProtocol.versionSkipChecksum, UInt32(maximumPayload), payload: phone.banner.payload))
    }

    func forget(_ stream: DeviceStream) {
        condition.lock()
        streams[stream.localId] = nil
        condition.unlock()
    }

    /// Whether the phone's fault has it send without waiting for OKAYs by now. Under `condition`.
    var ignoresFlowControl: Bool {
        if case .ignoresFlowControl(let after) = phone.fault { return serviceBytes >= after }
        return false
    }

    /// Counts service bytes and applies the phone's fault; false when nothing more may be sent.
    func admit(_ count: Int) -> Bool {
        condition.lock()
        let before = serviceBytes
        serviceBytes += UInt64(count)
        condition.unlock()
        switch phone.fault {
        case .disconnect(let after) where before + UInt64(count) > after:
            link.hangUp()
            return false
        case .stall(let after) where before + UInt64(count) > after:
            condition.lock()
            while !broken { condition.wait() }
            condition.unlock()
            return false
        case .garbage(let after) where before + UInt64(count) > after:
            var bytes = ADBMessage(.write, 1, 1, payload: Array(repeating: 0x47, count: 16)).encoded(checksum: checksum)
            bytes[20] ^= 0xFF
            sendRaw(bytes)
            return false
        default:
            return true
        }
    }

    /// Header and payload under one lock: service threads and the reader's OKAYs share the link,
    /// and a message cut in two by another one would be garbage to the host.
    func send(_ message: ADBMessage) {
        sendLock.lock()
        defer { sendLock.unlock() }
        sendUnlocked(message.header(checksum: checksum))
        if !message.payload.isEmpty { sendUnlocked(message.payload) }
    }

    private func sendRaw(_ bytes: [UInt8]) {
        sendLock.lock()
        defer { sendLock.unlock() }
        sendUnlocked(bytes)
    }

    private func sendUnlocked(_ bytes: [UInt8]) { _ = link.send(bytes) }

    /// Sends `message` again and again until the host hangs up.
    private func sendUntilHungUp(_ message: ADBMessage) {
        let bytes = message.header(checksum: checksum)
        sendLock.lock()
        defer { sendLock.unlock() }
        while link.send(bytes) {}
    }
}

/// A stream as adbd sees it: data to the host goes in WRTEs of at most the negotiated size,
/// each after the host's OKAY of the one before.
final class DeviceStream: @unchecked Sendable {
    let connection: DeviceConnection
    let localId: UInt32
    let remoteId: UInt32
    // Guarded by connection.condition.
    var mayWrite = true
    var hostClosed = false
    var inbox: [UInt8] = []
    private var outgoing: [UInt8] = []
    private var closed = false

    init(connection: DeviceConnection, localId: UInt32, remoteId: UInt32) {
        self.connection = connection
        self.localId = localId
        self.remoteId = remoteId
    }

    /// Queues bytes and sends whole WRTEs; false once the host is gone or a fault struck.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        outgoing += bytes
        while outgoing.count >= connection.maximumPayload {
            guard flush(limit: connection.maximumPayload) else { return false }
        }
        return true
    }

    /// Sends what is queued.
    @discardableResult
    func flush() -> Bool {
        while !outgoing.isEmpty {
            guard flush(limit: connection.maximumPayload) else { return false }
        }
        return true
    }

    private func flush(limit: Int) -> Bool {
        let condition = connection.condition
        condition.lock()
        while !mayWrite && !hostClosed && !connection.broken && !connection.ignoresFlowControl { condition.wait() }
        let usable = !hostClosed && !connection.broken
        mayWrite = false
        condition.unlock()
        guard usable else { return false }
        let count = min(limit, outgoing.count)
        guard connection.admit(count) else { return false }
        connection.send(ADBMessage(.write, localId, remoteId, payload: Array(outgoing.prefix(count))))
        outgoing.removeFirst(count)
        return true
    }

    /// Exactly `count` bytes from the host, or nil when it closed the stream first.
    func read(exactly count: Int) -> [UInt8]? {
        let condition = connection.condition
        condition.lock()
        defer { condition.unlock() }
        while inbox.count < count {
            if hostClosed || connection.broken { return nil }
            condition.wait()
        }
        let bytes = Array(inbox.prefix(count))
        inbox.removeFirst(count)
        return bytes
    }

    func close() {
        flush()
        let condition = connection.condition
        condition.lock()
        let send = !closed && !hostClosed && !connection.broken
        closed = true
        condition.unlock()
        if send { connection.send(ADBMessage(.close, localId, remoteId)) }
        connection.forget(self)
    }
}

/// A small phone file system in a scratch directory: camera files (one larger than a WRTE),
/// a name with a space and one in Thai, an empty file, a symlink, an app directory the shell
/// user may not read, and a "userdata" partition for physical imaging.
public enum SimulatedPhoneTree {
    public static let deniedDirectory = "/sdcard/Android/data"
    public static let userdata = "/dev/block/by-name/userdata"

    /// Creates the tree under `root` and returns the device paths of its regular files.
    @discardableResult
    public static func create(at root: String, userdataSize: Int = 24 << 20) throws -> [String] {
        let files: [(String, Int)] = [
            ("/sdcard/DCIM/Camera/IMG_20241101_101500.jpg", 300 * 1024 + 17),
            ("/sdcard/DCIM/Camera/VID_20241101_101800.mp4", (5 << 19) + 3),
            ("/sdcard/Download/bank statement.pdf", 40_000),
            ("/sdcard/Download/empty.txt", 0),
            ("/sdcard/Notes/บันทึก.txt", 1234),
            ("/sdcard/Android/data/org.telegram.messenger/cache/secret.bin", 4096),
            (userdata, userdataSize),
        ]
        for (index, (path, size)) in files.enumerated() {
            let host = root + path
            try FileManager.default.createDirectory(
                atPath: (host as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try SourceImage.create(at: host, size: size, seed: 0xA11D + UInt64(index))
        }
        try FileManager.default.createSymbolicLink(atPath: root + "/sdcard/link-to-camera", withDestinationPath: "DCIM/Camera")
        return files.map(\.0)
    }
}

/// What a phone with `hostileListings` lists besides its real files, all in `directory`
/// (created by `create(at:)`): forged entries whose names are no file name, a real file whose
/// name holds a carriage return, a directory that lists itself (same name, device and inode,
/// as a link loop reported as a directory would), and two that list a new directory of the
/// same name with a new inode at every level, without end: one with a short name (the walk's
/// depth bound stops it) and one with a long name (the 1024-byte path bound stops it). The
/// forged entries, if anyone asks for them, are served as `forgedContent`.
public enum HostileListing {
    public static let directory = "/sdcard/Hostile"
    /// Listed as regular files; each would name another path, or none. The last is longer
    /// than any file system's names and than sync's paths.
    public static let forgedNames: [[UInt8]] = [
        Array("../evil".utf8), Array("a/b".utf8), Array("..".utf8), [], Array("nul\u{0}byte".utf8), longForgedName,
    ]
    public static let longForgedName = Array(String(repeating: "N", count: 5000).utf8)
    public static let forgedContent = Array("EVIL: a forged entry was pulled\n".utf8)
    /// A real file; printed raw, its name would forge a line of a log.
    public static let controlCharacterName = "x\rforged"
    public static let selfListing = "self"
    /// A real file inside the self-listing directory: pulled once, at its one real path.
    public static let insideSelfListing = "inside.txt"
    public static let endlessShort = "deeper"
    public static let endlessLong = String(repeating: "L", count: 100)

    /// Creates the directory's real part under `root`; returns the device paths of its files.
    @discardableResult
    public static func create(at root: String) throws -> [String] {
        let files: [(String, Int)] = [
            ("\(directory)/ordinary.txt", 777),
            ("\(directory)/\(controlCharacterName)", 4321),
            ("\(directory)/\(selfListing)/\(insideSelfListing)", 99),
        ]
        for (index, (path, size)) in files.enumerated() {
            let host = root + path
            try FileManager.default.createDirectory(atPath: (host as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try SourceImage.create(at: host, size: size, seed: 0xBAD + UInt64(index))
        }
        for name in [endlessShort, endlessLong] {
            try FileManager.default.createDirectory(atPath: "\(root)\(directory)/\(name)", withIntermediateDirectories: true)
        }
        return files.map(\.0)
    }

    /// A device path inside one of the directories that list themselves, as the host directory
    /// that stands for it and how many levels below that directory it is: `…/deeper/deeper`
    /// is `…/deeper` one level down. Nil for any other path.
    static func chain(_ path: String) -> (devicePath: String, level: Int, name: String)? {
        let prefix = directory + "/"
        guard path.hasPrefix(prefix) else { return nil }
        let components = path.dropFirst(prefix.count).split(separator: "/").map(String.init)
        guard let name = components.first, [selfListing, endlessShort, endlessLong].contains(name),
            components.allSatisfy({ $0 == name })
        else { return nil }
        return (prefix + name, components.count - 1, name)
    }

    /// The forged name a device path asks for, if it is `directory` + "/" + one of them.
    static func forgedName(of path: [UInt8]) -> [UInt8]? {
        let prefix = Array((directory + "/").utf8)
        guard path.starts(with: prefix) else { return nil }
        let rest = Array(path.dropFirst(prefix.count))
        return forgedNames.first { $0 == rest }
    }
}
