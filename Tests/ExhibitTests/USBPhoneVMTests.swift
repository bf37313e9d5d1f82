// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// A phone on real USB: in a QEMU guest (virtme-ng, Debian's kernel, software emulation) the
/// simulated phone is a FunctionFS gadget on dummy_hcd, so the guest's kernel, udev and libusb
/// see a USB ADB device. `exhibitd` in the guest finds it and acquires it, through a pulled and
/// replugged cable; then `exhibit acquire adb:usb:SERIAL --physical` images it. The stock tools
/// judge both bundles here on the host (`Tests/vm/usb-phone-guest.sh` is the guest's side).
@Suite(.serialized) struct USBPhoneVMTests {
    static let guestScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("vm/usb-phone-guest.sh").path

    /// The Debian kernel to boot, when it and the tools are here; else why not.
    static func kernel() -> (path: String?, unavailable: String?) {
        for tool in ["vng", "qemu-system-x86_64"] where !Subprocess.has(tool) {
            return (nil, "\(tool) is not installed (scripts/install-deps installs virtme-ng and qemu-system-x86)")
        }
        let images = ((try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }.sorted()
        for image in images.reversed() {
            let release = String(image.dropFirst("vmlinuz-".count))
            if FileManager.default.fileExists(atPath: "/lib/modules/\(release)/kernel/drivers/usb/gadget/udc/dummy_hcd.ko") {
                return ("/boot/\(image)", nil)
            }
        }
        return (nil, "no kernel in /boot with dummy_hcd (scripts/install-deps installs linux-image-amd64)")
    }

    func records(_ bundle: String) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(bundle)/data/acquisition.json")))
                as? [String: Any])
    }

    @Test(.enabled(if: kernel().path != nil, "needs QEMU, vng and a Debian kernel with dummy_hcd (scripts/install-deps)"))
    func theDaemonAndTheCLIAcquireAPhoneOnRealUSBInAGuest() throws {
        let kernel = try #require(Self.kernel().path)
        try StockChecks.requireTools()
        let scratch = try ScratchDirectory("usb-vm")
        let work = scratch.path
        // No KVM: nested KVM is not dependable on CI machines; emulation is slow but sure.
        let guest = try Subprocess.run([
            "timeout", "600", "vng", "--run", kernel, "--user", "root", "--disable-kvm", "--cpus", "2", "--memory", "2G",
            "--rwdir", work, "--exec", "bash \(Self.guestScript) \(BuiltProducts.directory) \(work)",
        ])
        let log = guest.stdout + guest.stderr
        try #require(guest.succeeded && log.contains("guest: done"), "guest: \(log.suffix(4000))")

        // udev announced the phone, the daemon raised "tap Allow" while the phone waited, and
        // no second Allow was needed for the CLI (the phone remembers the store's key).
        let alerts = try String(contentsOfFile: "\(work)/alerts-seen", encoding: .utf8)
        let daemonLog = try String(contentsOfFile: "\(work)/exhibitd.log", encoding: .utf8)
        let phoneLog = (try? String(contentsOfFile: "\(work)/simulated-adbd.out", encoding: .utf8)) ?? ""
        #expect(alerts.contains("phone-unauthorized"), "alerts seen: \(alerts)\nexhibitd: \(daemonLog.suffix(6000))\nphone: \(phoneLog.suffix(2000))")
        // The pulled cable: the job was interrupted with the operation, the phone and the
        // offset, and the daemon resumed it by itself when the phone came back.
        let interruption = try #require(alerts.split(separator: "\n").first { $0.hasPrefix("job-interrupted") }, "alerts seen: \(alerts)")
        #expect(interruption.contains("usb:1-1") && interruption.contains("at byte") && interruption.contains("[disconnected]"))
        #expect(daemonLog.contains("discovery: udev"))
        #expect(daemonLog.contains("Android phone with USB debugging on"))
        let cliErrors = try String(contentsOfFile: "\(work)/acquire.err", encoding: .utf8)
        #expect(!cliErrors.contains("Allow USB debugging"), "\(cliErrors)")

        let store = "\(work)/store"
        let bundles = try FileManager.default.contentsOfDirectory(atPath: "\(store)/bundles").sorted()
        let daemonBundle = "\(store)/bundles/" + (try #require(bundles.first { $0.hasPrefix("CASE-USB-P1-") }))
        let cliBundle = "\(store)/bundles/" + (try #require(bundles.first { $0.hasPrefix("CASE-USB-P2-") }))
        let trust = "\(store)/keys/agency-root.pem"
        for bundle in [daemonBundle, cliBundle] {
            #expect(try StockChecks.bagit(bundle).succeeded, "bagit.py: \(bundle)")
            let seal = try StockChecks.cms(bundle, trust: trust)
            #expect(seal.succeeded && seal.stderr.contains("Verification successful"), "openssl cms: \(seal)")
            let graph = try StockChecks.caseValidate(bundle)
            #expect(graph.succeeded && graph.stdout.contains("Conforms: True"), "case_validate: \(graph)")
            #expect(try StockChecks.custodyChain(bundle))
            let verify = try exhibit(["verify", bundle, "--trust", trust])
            #expect(verify.succeeded && verify.stdout.contains("INTACT"), "exhibit verify: \(verify)")
            let connection = try #require((try records(bundle)["phone"] as? [String: Any])?["connection"] as? [String: Any])
            #expect(connection["transport"] as? String == "adb-usb" && connection["address"] as? String == "usb:1-1")
            // The guest's phone began each connection with an earlier session's WRTE header and
            // 5000 bytes of its payload: set aside, and said so.
            #expect(connection["bytesSetAsideBeforeHandshake"] as? Int == 24 + 5000, "\(connection)")
        }

        // Every file the phone's shell user may read came over USB with the ground truth's SHA-256.
        let phoneRoot = "\(work)/phone"
        let sdcard = "\(phoneRoot)/sdcard"
        let enumerator = try #require(FileManager.default.enumerator(atPath: sdcard))
        var checked = 0
        while let relative = enumerator.nextObject() as? String {
            let path = "/sdcard/\(relative)"
            guard !path.hasPrefix(SimulatedPhoneTree.deniedDirectory),
                (try? FileManager.default.attributesOfItem(atPath: sdcard + "/" + relative)[.type] as? FileAttributeType) == .typeRegular
            else { continue }
            let truth = try StockChecks.sum("sha256sum", phoneRoot + path)
            #expect(try StockChecks.sum("sha256sum", "\(daemonBundle)/data/files\(path)") == truth, "\(path)")
            checked += 1
        }
        #expect(checked >= 4)
        let resumed = try records(daemonBundle)
        #expect((resumed["interruptions"] as? [[String: Any]])?.count == 1)
        let custody = try String(contentsOfFile: "\(daemonBundle)/data/custody.jsonl", encoding: .utf8)
        #expect(custody.contains("\"acquisition-interrupted\"") && custody.contains("\"acquisition-resumed\""))

        // Both physical images (the daemon's, configured, and the CLI's) are the partition.
        let partition = try StockChecks.sum("sha256sum", "\(phoneRoot)/dev/block/by-name/userdata")
        for bundle in [daemonBundle, cliBundle] {
            #expect(try StockChecks.bagInfo(bundle, "Exhibit-Media-SHA256") == partition)
            #expect(try records(bundle)["phone"].flatMap { ($0 as? [String: Any])?["methodAchieved"] as? String } == "physical")
        }
    }
}
