// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// `Systemd/exhibitd.service` stays confined: systemd's own score of what the unit leaves open
/// (`systemd-analyze security`, 0 = fully confined, 10 = nothing) is 2.0 or less. The image's
/// QEMU test (ApplianceImageVMTests) runs the daemon under this unit and acquires with it.
struct DaemonUnitExposureTests {
    @Test(.enabled(if: Subprocess.has("systemd-analyze"), "systemd-analyze is not installed (scripts/install-deps installs systemd)"))
    func theDaemonsUnitHasAnExposureOfTwoOrLess() throws {
        let scratch = try ScratchDirectory("unit-exposure")
        let unit = scratch.file("exhibitd.service")
        try String(contentsOfFile: fixturePath("../../Systemd/exhibitd.service"), encoding: .utf8)
            .write(toFile: unit, atomically: true, encoding: .utf8)
        let result = try Subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", unit])
        let line = try #require(
            (result.stdout + result.stderr).split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(result)")
        let score = try #require(line.split(separator: " ").compactMap { Double($0) }.first, "\(line)")
        print("exhibitd.service exposure \(score)")
        #expect(score <= 2.0, "\(line)")
    }
}
