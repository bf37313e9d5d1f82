// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A scratch directory removed when the test's scope ends, or when the test process exits for
/// one held by a suite-wide fixture (a `static let` is never deinitialised, and a tamper suite's
/// copies of a bundle are gigabytes).
public final class ScratchDirectory: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "exhibit-test") throws {
        let base = ProcessInfo.processInfo.environment["EXHIBIT_TEST_TMP"] ?? NSTemporaryDirectory()
        path = (base as NSString).appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        LiveScratchDirectories.shared.insert(path)
    }

    deinit {
        Self.remove(path)
        LiveScratchDirectories.shared.remove(path)
    }

    fileprivate static func remove(_ path: String) {
        _ = try? Subprocess.shell("chmod -R u+w '\(path)' 2>/dev/null; rm -rf '\(path)'")
    }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// The scratch directories not yet removed, removed at exit.
private final class LiveScratchDirectories: @unchecked Sendable {
    static let shared = LiveScratchDirectories()

    private let lock = NSLock()
    private var paths: Set<String> = []

    private init() {
        atexit { LiveScratchDirectories.shared.removeAll() }
    }

    func insert(_ path: String) { lock.withLock { _ = paths.insert(path) } }
    func remove(_ path: String) { lock.withLock { _ = paths.remove(path) } }

    private func removeAll() {
        for path in lock.withLock({ paths }) { ScratchDirectory.remove(path) }
    }
}

/// Source images with known content.
public enum SourceImage {
    /// A file of `size` pseudo-random bytes (deterministic for a seed), written with dd-free Swift.
    @discardableResult
    public static func create(at path: String, size: Int, seed: UInt64 = 0x5EED) throws -> String {
        var state = seed | 1
        var data = Data(count: size)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt8.self)
            var index = 0
            while index < size {
                // xorshift64*: fast, and different content at every offset.
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                var value = state &* 0x2545_F491_4F6C_DD1D
                for _ in 0..<8 where index < size {
                    words[index] = UInt8(truncatingIfNeeded: value)
                    value >>= 8
                    index += 1
                }
            }
        }
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return path
    }
}

/// The built executables next to the test bundle.
public enum BuiltProducts {
    public static var directory: String {
        let candidates = [
            ProcessInfo.processInfo.environment["EXHIBIT_BIN_DIR"],
            Bundle.main.bundleURL.deletingLastPathComponent().path(percentEncoded: false),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path(percentEncoded: false),
        ].compactMap { $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: "\($0)/exhibit") } ?? candidates.last!
    }

    public static var exhibit: String { "\(directory)/exhibit" }
}
