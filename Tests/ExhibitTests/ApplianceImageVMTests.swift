// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// The directory of the image build (`Image/`) and why this machine cannot run the image's
/// test (printed when it is skipped), or nil.
let applianceImageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Image").path
let applianceImageUnavailable: String? = {
    let reason: String?
    if getuid() != 0 {
        reason = "not root (the image is built and judged with root tools)"
    } else if !Subprocess.has("qemu-system-x86_64") {
        reason = "qemu-system-x86_64 is not installed (scripts/install-deps)"
    } else if !FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE_4M.fd") {
        reason = "no UEFI firmware /usr/share/OVMF/OVMF_CODE_4M.fd (scripts/install-deps installs ovmf)"
    } else if !FileManager.default.fileExists(atPath: "\(applianceImageDirectory)/out/exhibit.img") {
        reason = "no image at Image/out/exhibit.img (make image; make test builds it first)"
    } else {
        reason = nil
    }
    reportSkip(reason, "ApplianceImageVMTests")
    return reason
}()

/// The appliance image end to end: `Image/qemu-test.sh` boots `Image/out/exhibit.img` (built by
/// `make image`, which `make test` runs first) under QEMU with software emulation and UEFI, and
/// drives it over QMP: the panel's keys, hot-plugged USB disks and an MTP phone, a power cut,
/// and the bundles judged on the host by the stock tools from the store partition's bytes.
@Suite(.serialized, .enabled(if: applianceImageUnavailable == nil, "needs root, QEMU, OVMF and a built image; the reason is printed when skipped"))
struct ApplianceImageVMTests {
    @Test func theImageBootsAcquiresSurvivesAPowerCutAndItsBundlesPassTheStockJudges() throws {
        let work = "\(applianceImageDirectory)/out/test"
        // About 10 minutes under emulation; the limit leaves room for a slow CI machine.
        let run = try Subprocess.run(["timeout", "2400", "bash", "\(applianceImageDirectory)/qemu-test.sh", work])
        print(run.stdout)
        let log = run.stdout + run.stderr
        for step in 1...8 {
            #expect(log.contains("image-test: step \(step) ok"), "step \(step) did not pass: \(log.suffix(3000))")
        }
        #expect(run.succeeded && log.contains("image-test: passed"), "\(log.suffix(3000))")
        // The screendumps stay for people to look at (Image/out/test/screen-*.ppm).
        #expect(FileManager.default.fileExists(atPath: "\(work)/screen-ready.ppm"))
    }
}
