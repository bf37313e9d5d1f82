// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The front panel's real renderer without a display: cage (a Wayland kiosk) on wlroots'
/// headless backend with the pixman software renderer, running foot with the appliance's
/// configuration; grim takes the screenshots. cage refuses to run as root, so it runs as `user`.
public final class HeadlessKiosk: @unchecked Sendable {
    private let process: Process
    private let runtime: String
    private let user: String

    public static var unavailableReason: String? {
        for tool in ["cage", "foot", "grim", "runuser"] where !Subprocess.has(tool) {
            return "\(tool) is not installed (scripts/install-deps installs cage, foot, grim and the Noto fonts)"
        }
        if getuid() != 0 { return "running the kiosk as an unprivileged user needs root (runuser)" }
        return nil
    }

    /// `environment` goes to cage and so to foot and the command (e.g. FONTCONFIG_FILE).
    public init(
        _ command: [String], footConfig: String, scratch: ScratchDirectory, user: String = "nobody",
        environment: [String: String] = [:]
    ) throws {
        self.user = user
        runtime = scratch.file("kiosk-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
        _ = try Subprocess.run(["chown", user, runtime])
        chmod(runtime, 0o700)
        let log = scratch.file("\((runtime as NSString).lastPathComponent).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let settings = [
            "XDG_RUNTIME_DIR=\(runtime)", "HOME=\(runtime)", "WLR_BACKENDS=headless", "WLR_RENDERER=pixman",
            "WLR_LIBINPUT_NO_DEVICES=1", "LANG=C.UTF-8",
        ] + environment.map { "\($0.key)=\($0.value)" }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = ["-u", user, "--", "env"] + settings + ["cage", "--", "foot", "--config=\(footConfig)"] + command
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while !FileManager.default.fileExists(atPath: "\(runtime)/wayland-0"), process.isRunning, Date() < deadline {
            usleep(100_000)
        }
        guard FileManager.default.fileExists(atPath: "\(runtime)/wayland-0") else {
            stop()
            throw LoopDevice.LoopError(message: "cage did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }

    deinit { stop() }

    /// Writes the screen to `path` as PNG, or as binary PPM when the name ends in `.ppm`.
    public func screenshot(to path: String) throws {
        let format = path.hasSuffix(".ppm") ? "ppm" : "png"
        let temporary = "\(runtime)/shot.\(format)"
        let result = try Subprocess.run(
            ["runuser", "-u", user, "--", "env", "XDG_RUNTIME_DIR=\(runtime)", "WAYLAND_DISPLAY=wayland-0", "grim", "-t", format, temporary])
        guard result.succeeded else { throw LoopDevice.LoopError(message: "grim: \(result)") }
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }

    public func stop() {
        if process.isRunning {
            _ = try? Subprocess.run(["pkill", "-TERM", "-u", user, "-f", "^cage"])
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            if process.isRunning { process.terminate() }
        }
    }
}

/// A screenshot's pixels as brightness, and the connected shapes of lit pixels in it: enough to
/// find the hollow boxes ("tofu") a terminal draws for characters its fonts lack.
public struct ScreenRaster: Sendable {
    public let width: Int
    public let height: Int
    public let luma: [UInt8]

    /// A binary PPM (P6, maxval 255), as grim writes.
    public init(ppm path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoopDevice.LoopError(message: "cannot read \(path)")
        }
        let bytes = [UInt8](data)
        var fields: [String] = []
        var index = 0
        while fields.count < 4, index < bytes.count {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
            var field = ""
            while index < bytes.count, ![0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) {
                field.append(Character(UnicodeScalar(bytes[index])))
                index += 1
            }
            fields.append(field)
        }
        index += 1
        guard fields.count == 4, fields[0] == "P6", let width = Int(fields[1]), let height = Int(fields[2]), fields[3] == "255",
            bytes.count - index >= width * height * 3
        else { throw LoopDevice.LoopError(message: "\(path) is not a binary 8-bit PPM") }
        self.width = width
        self.height = height
        var luma = [UInt8](repeating: 0, count: width * height)
        for pixel in 0..<(width * height) {
            let offset = index + pixel * 3
            let red = Int(bytes[offset]) * 299
            let green = Int(bytes[offset + 1]) * 587
            let blue = Int(bytes[offset + 2]) * 114
            luma[pixel] = UInt8((red + green + blue) / 1000)
        }
        self.luma = luma
    }

    /// One connected shape of lit pixels (8-neighbourhood), with its mask inside its bounding box.
    public struct Shape: Sendable {
        public var x: Int
        public var y: Int
        public var width: Int
        public var height: Int
        public var mask: [Bool]

        /// Same size (±1 pixel) and at least `overlap` of their lit pixels in common.
        public func resembles(_ other: Shape, overlap: Double = 0.8) -> Bool {
            guard abs(width - other.width) <= 1, abs(height - other.height) <= 1 else { return false }
            var both = 0
            var either = 0
            for row in 0..<max(height, other.height) {
                for column in 0..<max(width, other.width) {
                    let a = row < height && column < width && mask[row * width + column]
                    let b = row < other.height && column < other.width && other.mask[row * other.width + column]
                    if a && b { both += 1 }
                    if a || b { either += 1 }
                }
            }
            return either > 0 && Double(both) / Double(either) >= overlap
        }
    }

    /// Lit shapes: pixels differing by more than `threshold` from their pixel row's most common
    /// brightness, so text on a highlighted band (title, alert, selection) counts as text.
    public func shapes(threshold: Int = 60) -> [Shape] {
        var rowBackground = [Int](repeating: 0, count: height)
        for y in 0..<height {
            var histogram = [Int](repeating: 0, count: 256)
            for x in 0..<width { histogram[Int(luma[y * width + x])] += 1 }
            rowBackground[y] = histogram.indices.max { histogram[$0] < histogram[$1] }!
        }
        func lit(_ pixel: Int) -> Bool { abs(Int(luma[pixel]) - rowBackground[pixel / width]) > threshold }
        var seen = [Bool](repeating: false, count: luma.count)
        var shapes: [Shape] = []
        var stack: [Int] = []
        for start in 0..<luma.count where !seen[start] && lit(start) {
            var members: [Int] = []
            stack.append(start)
            seen[start] = true
            while let pixel = stack.popLast() {
                members.append(pixel)
                let x = pixel % width
                let y = pixel / width
                for dy in -1...1 {
                    for dx in -1...1 where dx != 0 || dy != 0 {
                        let nx = x + dx
                        let ny = y + dy
                        guard nx >= 0, ny >= 0, nx < width, ny < height else { continue }
                        let neighbour = ny * width + nx
                        if !seen[neighbour] && lit(neighbour) {
                            seen[neighbour] = true
                            stack.append(neighbour)
                        }
                    }
                }
            }
            let xs = members.map { $0 % width }
            let ys = members.map { $0 / width }
            let minX = xs.min()!
            let minY = ys.min()!
            let shapeWidth = xs.max()! - minX + 1
            let shapeHeight = ys.max()! - minY + 1
            var mask = [Bool](repeating: false, count: shapeWidth * shapeHeight)
            for pixel in members { mask[(pixel / width - minY) * shapeWidth + pixel % width - minX] = true }
            shapes.append(Shape(x: minX, y: minY, width: shapeWidth, height: shapeHeight, mask: mask))
        }
        return shapes
    }
}
