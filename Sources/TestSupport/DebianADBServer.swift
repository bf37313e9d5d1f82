// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// A private Debian `adb` server (own port and HOME, so neither a user's server nor a user's
/// keys are touched), the judge of the simulated phone. The server daemonizes and keeps
/// inherited descriptors open, so it is started with none and found by polling its port.
public final class DebianADBServer: @unchecked Sendable {
    public let port: UInt16
    public let home: String
    private let environment: [String]

    public init(port: UInt16, home: String) throws {
        self.port = port
        self.home = home
        environment = ["HOME=\(home)", "ANDROID_ADB_SERVER_PORT=\(port)"]
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = environment + ["adb", "start-server"]
        server.standardInput = FileHandle.nullDevice
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        let deadline = Date().addingTimeInterval(15)
        while !Self.listening(port), Date() < deadline { usleep(100_000) }
        guard Self.listening(port) else { throw LoopDevice.LoopError(message: "the adb server did not start on port \(port)") }
    }

    deinit { stop() }

    public func stop() { _ = try? adb(["kill-server"]) }

    /// Runs the adb client against this server.
    @discardableResult
    public func adb(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run(["env"] + environment + ["adb"] + arguments)
    }

    /// A shell command line with `adb` meaning this server's client (for redirections).
    @discardableResult
    public func shell(_ commandLine: String) throws -> Subprocess.Result {
        try Subprocess.shell("export \(environment.joined(separator: " ")); \(commandLine)")
    }

    /// `adb connect`, repeated until the device is listed as `device` (the first attempt may
    /// fail to authenticate while the phone considers the offered key).
    public func connect(_ target: String, attempts: Int = 50) throws -> String {
        var listing = ""
        for attempt in 0..<attempts {
            if attempt % 10 == 0 { try adb(["connect", target]) }
            listing = try adb(["devices", "-l"]).stdout
            if listing.split(separator: "\n").contains(where: { $0.hasPrefix(target) && $0.contains(" device ") }) { break }
            usleep(100_000)
        }
        return listing
    }

    public static func listening(_ port: UInt16) -> Bool {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
