// SPDX-License-Identifier: Apache-2.0
import ADB
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// The services of the simulated adbd: shell (v1 and v2), `exec:` and `sync:`.
enum DeviceServices {
    static func service(for destination: String, phone: SimulatedPhone) -> (@Sendable (DeviceStream) -> Void)? {
        if destination.hasPrefix("shell:") || destination.hasPrefix("shell,") {
            // shell[,v2][,TERM=…][,raw|pty]:command
            guard let colon = destination.firstIndex(of: ":") else { return nil }
            let options = destination[..<colon].split(separator: ",")
            let command = String(destination[destination.index(after: colon)...])
            guard !command.isEmpty else { return nil }  // interactive shells are not simulated
            let v2 = options.contains("v2") && phone.features.contains("shell_v2")
            return { stream in runShell(command, v2: v2, stream: stream, phone: phone) }
        }
        if destination.hasPrefix("exec:") {
            let command = String(destination.dropFirst("exec:".count))
            return { stream in runExec(command, stream: stream, phone: phone) }
        }
        if destination == "sync:" {
            return { stream in SyncService(phone: phone, stream: stream).run() }
        }
        return nil
    }

    enum CommandResult {
        case output(stdout: [UInt8], stderr: [UInt8], status: UInt8)
        /// The content of a host file (`cat`), streamed.
        case file(String)
    }

    static func runShell(_ command: String, v2: Bool, stream: DeviceStream, phone: SimulatedPhone) {
        let chunk = max(1, stream.connection.maximumPayload - ShellPacket.headerSize)
        func packet(_ kind: ShellPacket.Kind, _ data: [UInt8]) -> Bool {
            var start = 0
            repeat {
                let end = min(data.count, start + chunk)
                guard stream.write(v2 ? ShellPacket(kind, Array(data[start..<end])).encoded : Array(data[start..<end])) else { return false }
                start = end
            } while start < data.count
            return true
        }
        switch interpret(command, phone: phone, asRoot: false) {
        case .output(let stdout, let stderr, let status):
            if !stdout.isEmpty { guard packet(.stdout, stdout) else { return } }
            if !stderr.isEmpty { guard packet(.stderr, stderr) else { return } }
            if v2 { _ = packet(.exit, [status]) }
        case .file(let path):
            let ok = streamFile(path, chunk: chunk) { packet(.stdout, $0) }
            if v2 { _ = packet(.exit, [ok ? 0 : 1]) }
        }
    }

    static func runExec(_ command: String, stream: DeviceStream, phone: SimulatedPhone) {
        switch interpret(command, phone: phone, asRoot: false) {
        case .output(let stdout, let stderr, _):
            // exec: has no stderr channel; adbd sends the command's stdout only.
            _ = stderr
            stream.write(stdout)
        case .file(let path):
            _ = streamFile(path, chunk: stream.connection.maximumPayload) { stream.write($0) }
        }
    }

    /// Reads a host file in chunks; false when it could not be read or the host went away.
    static func streamFile(_ path: String, chunk: Int, _ body: ([UInt8]) -> Bool) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        while true {
            // read(upToCount:) gives nil or empty data at the end of the file.
            guard let data = try? handle.read(upToCount: chunk) ?? Data() else { return false }
            if data.isEmpty { return true }
            guard body([UInt8](data)) else { return false }
        }
    }

    static func text(_ string: String, status: UInt8 = 0) -> CommandResult { .output(stdout: Array(string.utf8), stderr: [], status: status) }
    static func failure(_ string: String, status: UInt8) -> CommandResult { .output(stdout: [], stderr: Array(string.utf8), status: status) }

    /// Splits a command line on spaces, honouring single and double quotes.
    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    static func interpret(_ command: String, phone: SimulatedPhone, asRoot: Bool) -> CommandResult {
        let words = words(command.trimmingCharacters(in: .whitespaces))
        guard let name = words.first else { return text("") }
        let arguments = Array(words.dropFirst())
        switch name {
        case "su":
            guard phone.rooted else { return failure("/system/bin/sh: su: inaccessible or not found\n", status: 127) }
            guard arguments.first == "-c", arguments.count == 2 else { return failure("su: usage: su -c COMMAND\n", status: 1) }
            return interpret(arguments[1], phone: phone, asRoot: true)
        case "getprop":
            if let key = arguments.first { return text((phone.properties[key] ?? "") + "\n") }
            return text(phone.properties.keys.sorted().map { "[\($0)]: [\(phone.properties[$0]!)]\n" }.joined())
        case "id":
            return text(asRoot ? "uid=0(root) gid=0(root) groups=0(root) context=u:r:su:s0\n" : "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log) context=u:r:shell:s0\n")
        case "settings":
            guard arguments.count == 2, arguments[0] == "list", let table = phone.settings[arguments[1]] else {
                return failure("Invalid namespace '\(arguments.last ?? "")'\n", status: 255)
            }
            return text(table.keys.sorted().map { "\($0)=\(table[$0]!)\n" }.joined())
        case "pm":
            guard arguments.starts(with: ["list", "packages"]) else { return failure("pm: unknown command\n", status: 1) }
            let withPath = arguments.contains("-f")
            let withUid = arguments.contains("-U")
            return text(
                phone.packages.map {
                    "package:" + (withPath ? "\($0.path)=" : "") + $0.name + (withUid ? " uid:\($0.uid)" : "") + "\n"
                }.joined())
        case "dumpsys":
            guard let service = arguments.first else { return text("Currently running services:\n  window\n  battery\n") }
            if service == "window" {
                return text("WINDOW MANAGER POLICY STATE (dumpsys window policy)\n    mDreamingLockscreen=\(phone.locked) mShowingDream=false\n")
            }
            return text("DUMP OF SERVICE \(service):\n  simulated \(service) state\n")
        case "logcat":
            return text("--------- beginning of main\n11-23 10:00:00.000  1000  1000 I ActivityManager: simulated boot\n")
        case "date":
            return text((phone.clock ?? "\(Int(Date().timeIntervalSince1970))") + "\n")
        case "ps":
            return text("USER PID PPID VSZ RSS WCHAN ADDR S NAME\nroot 1 0 0 0 0 0 S init\nshell 4242 1 0 0 0 0 R ps\n")
        case "service":
            return text("Found 2 services:\n0\twindow: [android.view.IWindowManager]\n1\tbattery: []\n")
        case "ls":
            guard let path = arguments.last(where: { !$0.hasPrefix("-") }), let host = hostPath(path, phone: phone) else {
                return failure("ls: missing path\n", status: 1)
            }
            if isDenied(path, phone: phone) { return failure("ls: \(path): Permission denied\n", status: 1) }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: host) else {
                return failure("ls: \(path): No such file or directory\n", status: 1)
            }
            return text((arguments.contains("-a") ? [".", ".."] : []).joined(separator: "\n") + names.sorted().map { "\n" + $0 }.joined() + "\n")
        case "echo":
            return text(arguments.joined(separator: " ") + "\n")
        case "blockdev", "cat":
            guard let path = arguments.last, let host = hostPath(path, phone: phone) else {
                return failure("\(name): missing or bad path\n", status: 1)
            }
            if isDenied(path, phone: phone) || (path.hasPrefix("/dev/") && !asRoot) {
                return failure("\(name): \(path): Permission denied\n", status: 1)
            }
            var info = stat()
            guard stat(host, &info) == 0 else { return failure("\(name): \(path): No such file or directory\n", status: 1) }
            if name == "blockdev" {
                guard arguments.first == "--getsize64" else { return failure("blockdev: unknown option\n", status: 1) }
                return text("\(info.st_size)\n")
            }
            return .file(host)
        default:
            return failure("/system/bin/sh: \(name): inaccessible or not found\n", status: 127)
        }
    }

    /// The host path for a device path, nil for anything that would leave the tree.
    static func hostPath(_ path: String, phone: SimulatedPhone) -> String? {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else { return nil }
        return phone.root + path
    }

    static func isDenied(_ path: String, phone: SimulatedPhone) -> Bool {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        return phone.deniedPaths.contains { trimmed == $0 || trimmed.hasPrefix($0 + "/") }
    }
}

/// The sync service: STAT/STA2/LST2, LIST/LIS2, RECV/RCV2, QUIT. SEND is refused: the
/// appliance never writes to a phone, and the simulator holds it to that.
struct SyncService {
    let phone: SimulatedPhone
    let stream: DeviceStream

    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func le64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    func run() {
        while let header = stream.read(exactly: 8) {
            let id = String(decoding: header[0..<4], as: UTF8.self)
            let length = Int(header[4...].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard length <= 1024, let pathBytes = stream.read(exactly: length) else { return }
            let path = String(decoding: pathBytes, as: UTF8.self)
            switch id {
            case "STAT":
                let info = status(path, follow: false)
                let s = info.status
                stream.write(
                    Array("STAT".utf8) + Self.le32(s.map { UInt32($0.st_mode) } ?? 0) + Self.le32(s.map { UInt32(truncatingIfNeeded: $0.st_size) } ?? 0)
                        + Self.le32(s.map { UInt32(truncatingIfNeeded: $0.st_mtim.tv_sec) } ?? 0))
            case "STA2", "LST2":
                let info = status(path, follow: id == "STA2")
                stream.write(Array(id.utf8) + Self.le32(info.errno) + Self.statV2(info.status))
            case "LIST", "LIS2":
                list(path, v2: id == "LIS2")
            case "RECV", "RCV2":
                if id == "RCV2" {
                    guard let setup = stream.read(exactly: 8) else { return }
                    if setup[4..<8] != [0, 0, 0, 0] {
                        fail("compression is not supported by this phone")
                        return
                    }
                }
                guard receive(path) else { return }
            case "QUIT":
                return
            default:
                fail("unsupported sync request \(id)")
                return
            }
            stream.flush()
        }
    }

    func fail(_ message: String) {
        stream.write(Array("FAIL".utf8) + Self.le32(UInt32(message.utf8.count)) + Array(message.utf8))
        stream.flush()
    }

    func status(_ path: String, follow: Bool) -> (status: stat?, errno: UInt32) {
        guard let host = DeviceServices.hostPath(path, phone: phone) else { return (nil, UInt32(ENOENT)) }
        let parent = (path as NSString).deletingLastPathComponent
        if DeviceServices.isDenied(parent, phone: phone) && parent != path { return (nil, UInt32(EACCES)) }
        var info = stat()
        let result = follow ? stat(host, &info) : lstat(host, &info)
        return result == 0 ? (info, 0) : (nil, UInt32(errno))
    }

    static func statV2(_ info: stat?) -> [UInt8] {
        guard let info else { return [UInt8](repeating: 0, count: 64) }
        return le64(UInt64(info.st_dev)) + le64(UInt64(info.st_ino)) + le32(UInt32(info.st_mode)) + le32(UInt32(info.st_nlink))
            + le32(info.st_uid) + le32(info.st_gid) + le64(UInt64(info.st_size)) + le64(UInt64(bitPattern: Int64(info.st_atim.tv_sec)))
            + le64(UInt64(bitPattern: Int64(info.st_mtim.tv_sec))) + le64(UInt64(bitPattern: Int64(info.st_ctim.tv_sec)))
    }

    func list(_ path: String, v2: Bool) {
        var names: [String] = []
        // A tampered adbd lists `…/deeper/deeper` as the directory `…/deeper` stands for.
        let chain = phone.hostileListings ? HostileListing.chain(Self.trimmed(path)) : nil
        let listedPath = chain?.devicePath ?? path
        if !DeviceServices.isDenied(listedPath, phone: phone), let host = DeviceServices.hostPath(listedPath, phone: phone) {
            names = ((try? FileManager.default.contentsOfDirectory(atPath: host)) ?? []).sorted()
        }
        let base = listedPath.hasSuffix("/") ? listedPath : listedPath + "/"
        var entries = names.map { (name: Array($0.utf8), info: status(base + $0, follow: false)) }
        if phone.hostileListings { entries += hostileEntries(Self.trimmed(path)) }
        for (nameBytes, info) in entries {
            if v2 {
                stream.write(Array("DNT2".utf8) + Self.le32(info.errno) + Self.statV2(info.status) + Self.le32(UInt32(nameBytes.count)) + nameBytes)
            } else {
                let s = info.status
                stream.write(
                    Array("DENT".utf8) + Self.le32(s.map { UInt32($0.st_mode) } ?? 0)
                        + Self.le32(s.map { UInt32(truncatingIfNeeded: $0.st_size) } ?? 0)
                        + Self.le32(s.map { UInt32(truncatingIfNeeded: $0.st_mtim.tv_sec) } ?? 0) + Self.le32(UInt32(nameBytes.count))
                        + nameBytes)
            }
        }
        stream.write(Array("DONE".utf8) + [UInt8](repeating: 0, count: v2 ? 72 : 16))
    }

    static func trimmed(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    /// What a tampered adbd adds to the listing of `path` (`HostileListing`): in its directory
    /// the usual `.` and `..` and the forged entries; in a self-listing directory, itself.
    func hostileEntries(_ path: String) -> [(name: [UInt8], info: (status: stat?, errno: UInt32))] {
        if let chain = HostileListing.chain(path) {
            guard var info = status(chain.devicePath, follow: false).status else { return [] }
            if chain.name != HostileListing.selfListing {
                // A new directory at every level: only the walk's bounds can stop it.
                info.st_ino += (chain.name == HostileListing.endlessShort ? 1 << 40 : 1 << 41) + UInt(chain.level + 1)
            }
            return [(Array(chain.name.utf8), (info, 0))]
        }
        guard path == HostileListing.directory, let directory = status(path, follow: false).status,
            let parent = status((path as NSString).deletingLastPathComponent, follow: false).status
        else { return [] }
        var entries: [(name: [UInt8], info: (status: stat?, errno: UInt32))] = [(Array(".".utf8), (directory, 0)), (Array("..".utf8), (parent, 0))]
        for (index, name) in HostileListing.forgedNames.enumerated() {
            var forged = directory
            forged.st_mode = mode_t(0o100644)
            forged.st_nlink = 1
            forged.st_size = HostileListing.forgedContent.count
            forged.st_ino = UInt(900_000 + index)
            entries.append((name, (forged, 0)))
        }
        return entries
    }

    /// False when the service must end (after FAIL, as adbd does, or when the host is gone).
    func receive(_ path: String) -> Bool {
        stream.connection.device.recordReceive(path)
        if phone.hostileListings, HostileListing.forgedName(of: Array(path.utf8)) != nil {
            // A host that follows a forged name gets content for it, and a test sees it.
            return stream.write(Array("DATA".utf8) + Self.le32(UInt32(HostileListing.forgedContent.count)) + HostileListing.forgedContent)
                && stream.write(Array("DONE".utf8) + Self.le32(0))
        }
        guard !DeviceServices.isDenied(path, phone: phone), let host = DeviceServices.hostPath(path, phone: phone) else {
            fail("open failed: Permission denied")
            return false
        }
        guard let handle = FileHandle(forReadingAtPath: host) else {
            fail("open failed: No such file or directory")
            return false
        }
        defer { try? handle.close() }
        while true {
            guard let data = try? handle.read(upToCount: 64 * 1024) ?? Data() else {
                fail("read failed: I/O error")
                return false
            }
            if data.isEmpty { break }
            guard stream.write(Array("DATA".utf8) + Self.le32(UInt32(data.count)) + [UInt8](data)) else { return false }
        }
        return stream.write(Array("DONE".utf8) + Self.le32(0))
    }
}
