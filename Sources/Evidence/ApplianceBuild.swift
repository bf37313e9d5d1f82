// SPDX-License-Identifier: Apache-2.0
import Foundation

/// Which appliance build made a bundle (`appliance.build` in acquisition.json): the image's
/// version, which the image build writes into os-release (`IMAGE_VERSION`), and the dm-verity
/// root hash the running system was booted with (`roothash=` on the kernel command line; the
/// initrd refuses a root file system that does not match it). Together they name the exact,
/// unmodified operating system and Exhibit binaries. Nil where Exhibit does not run from the
/// appliance image (a developer machine, a test), which records nothing rather than a guess.
public struct ApplianceBuild: Codable, Sendable, Equatable {
    /// `IMAGE_ID` from os-release (`exhibit`).
    public var imageId: String
    /// `IMAGE_VERSION` from os-release: the build date and the commit (`20261130.491f4dbe4c2b`).
    public var imageVersion: String
    /// The dm-verity root hash, lowercase hex; nil when the system booted without one.
    public var rootHash: String?
    /// Where the appliance's clock comes from (`hardware clock`): it has no network time.
    public var clock: String

    public init(imageId: String, imageVersion: String, rootHash: String?, clock: String = ApplianceBuild.hardwareClock) {
        self.imageId = imageId
        self.imageVersion = imageVersion
        self.rootHash = rootHash
        self.clock = clock
    }

    public static let hardwareClock = "hardware clock (RTC, UTC); no network time"

    /// This process's build, read once.
    public static let current: ApplianceBuild? = read()

    /// Reads os-release and the kernel command line; nil unless os-release names an image.
    public static func read(osRelease: String = "/etc/os-release", commandLine: String = "/proc/cmdline") -> ApplianceBuild? {
        guard let release = try? String(contentsOfFile: osRelease, encoding: .utf8) else { return nil }
        let cmdline = (try? String(contentsOfFile: commandLine, encoding: .utf8)) ?? ""
        return parse(osRelease: release, commandLine: cmdline)
    }

    static func parse(osRelease: String, commandLine: String) -> ApplianceBuild? {
        var fields: [String: String] = [:]
        for line in osRelease.split(whereSeparator: \.isNewline) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: equals)...]
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
                value = value.dropFirst().dropLast()
            }
            fields[String(line[..<equals])] = String(value)
        }
        guard let version = fields["IMAGE_VERSION"].flatMap(safe), !version.isEmpty else { return nil }
        let rootHash = commandLine.split(whereSeparator: \.isWhitespace).lazy
            .compactMap { $0.hasPrefix("roothash=") ? String($0.dropFirst("roothash=".count)) : nil }
            .first { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }
        return ApplianceBuild(
            imageId: fields["IMAGE_ID"].flatMap(safe) ?? "exhibit", imageVersion: version,
            rootHash: rootHash?.lowercased())
    }

    /// A value is kept only when it is one short line of printable ASCII: it goes into records.
    private static func safe(_ value: String) -> String? {
        value.count <= 128 && value.unicodeScalars.allSatisfy { $0.value >= 0x21 && $0.value < 0x7f } ? value : nil
    }
}
