// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import TestSupport
import Testing

/// The appliance build in every record: os-release's IMAGE_VERSION and the kernel's roothash=.
struct ApplianceBuildTests {
    static let hash = "5782de75d60b9bdba398f0ab35c4525452c3e85fc0cc30f6f4faf60033f48dc5"

    @Test func readsTheImageVersionAndTheRootHash() throws {
        let scratch = try ScratchDirectory("appliance-build")
        let release = scratch.file("os-release"), cmdline = scratch.file("cmdline")
        try "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nIMAGE_ID=exhibit\nIMAGE_VERSION=20261130.491f4dbe4c2b\n"
            .write(toFile: release, atomically: true, encoding: .utf8)
        try "root=/dev/mapper/root ro roothash=\(Self.hash) systemd.verity=no quiet\n".write(toFile: cmdline, atomically: true, encoding: .utf8)
        let build = try #require(ApplianceBuild.read(osRelease: release, commandLine: cmdline))
        #expect(build == ApplianceBuild(imageId: "exhibit", imageVersion: "20261130.491f4dbe4c2b", rootHash: Self.hash))
        #expect(build.clock.contains("hardware clock"))

        // Last on the line (newline-terminated) and in upper case is the same hash.
        try "ro roothash=\(Self.hash.uppercased())\n".write(toFile: cmdline, atomically: true, encoding: .utf8)
        #expect(ApplianceBuild.read(osRelease: release, commandLine: cmdline)?.rootHash == Self.hash)
    }

    @Test func recordsNothingOffTheImage() throws {
        let scratch = try ScratchDirectory("appliance-build-off")
        let release = scratch.file("os-release"), cmdline = scratch.file("cmdline")
        try "ID=debian\nVERSION_ID=\"12\"\n".write(toFile: release, atomically: true, encoding: .utf8)
        try "root=/dev/vda1 roothash=nothex\n".write(toFile: cmdline, atomically: true, encoding: .utf8)
        #expect(ApplianceBuild.read(osRelease: release, commandLine: cmdline) == nil)
        #expect(ApplianceBuild.read(osRelease: scratch.file("missing"), commandLine: cmdline) == nil)
        // An image without a root hash on its command line still names its version.
        try "IMAGE_VERSION=\"1.2\"\n".write(toFile: release, atomically: true, encoding: .utf8)
        let build = try #require(ApplianceBuild.read(osRelease: release, commandLine: cmdline))
        #expect(build.imageVersion == "1.2" && build.rootHash == nil)
        // A control character never reaches a record.
        try "IMAGE_VERSION=1.2\u{1b}[31m\n".write(toFile: release, atomically: true, encoding: .utf8)
        #expect(ApplianceBuild.read(osRelease: release, commandLine: cmdline) == nil)
    }
}
