// SPDX-License-Identifier: Apache-2.0
import Devices
import Foundation
import TestSupport
import Testing

@Suite struct DeviceClassificationTests {
    @Test func phonesAreRecognisedByInterfaceNotVendorList() {
        let pixel = USBProductID(vendor: "18D1", product: "4EE7")
        #expect(USBClassifier.phoneKind(product: pixel, interfaces: [.mtp, .adb]) == .androidADB)
        #expect(USBClassifier.phoneKind(product: pixel, interfaces: [.mtp]) == .mtp)
        let iphone = USBProductID(vendor: "05ac", product: "12a8")
        #expect(USBClassifier.phoneKind(product: iphone, interfaces: [USBInterfaceClass(0xFF, 0xFE, 0x02)]) == .apple)
        let appleKeyboard = USBProductID(vendor: "05ac", product: "024f")
        #expect(USBClassifier.phoneKind(product: appleKeyboard, interfaces: [USBInterfaceClass(0x03, 0x01, 0x01)]) == nil)
        let stick = USBProductID(vendor: "0781", product: "5567")
        #expect(USBClassifier.phoneKind(product: stick, interfaces: [USBInterfaceClass(0x08, 0x06, 0x50)]) == nil)
    }

    @Test func writeBlockersByBridgeIdWithConfiguredAdditions() {
        let catalog = WriteBlockerCatalog(extra: [USBProductID(vendor: "1234", product: "ABCD"): "Lab bridge"])
        #expect(catalog.name(of: USBProductID(vendor: "13d7", product: "000C")) == "Tableau T8-R2 forensic bridge")
        #expect(catalog.name(of: USBProductID(vendor: "0e90", product: "0100")) == "WiebeTech Storage Adapter V1")
        #expect(catalog.name(of: USBProductID(vendor: "1234", product: "abcd")) == "Lab bridge")
        #expect(catalog.name(of: USBProductID(vendor: "0781", product: "5567")) == nil)
        #expect(catalog.name(of: nil) == nil)
    }

    static var rootOnABlockDevice: Bool {
        let root = (try? Subprocess.shell("findmnt -no MAJ:MIN /").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "0:"
        return !root.hasPrefix("0:") && (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/dev/block/\(root)")) != nil
    }

    @Test(.enabled(if: rootOnABlockDevice, "/ is not on a block device here"))
    func theDiskHoldingRootIsASystemDisk() throws {
        let root = try Subprocess.shell("findmnt -no MAJ:MIN /").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/sys/dev/block/\(root)")
        var disk = (link as NSString).lastPathComponent
        if FileManager.default.fileExists(atPath: "/sys/dev/block/\(root)/partition") {
            disk = ((link as NSString).deletingLastPathComponent as NSString).lastPathComponent
        }
        let found = SystemDisks.find(storePath: "/tmp", configured: ["nvme9n9"])
        #expect(found[disk]?.contains("holds /") == true, "\(found)")
        #expect(found["nvme9n9"] != nil)
        #expect(!found.keys.contains { $0.hasPrefix("loop") }, "an unmounted loop device is not a system disk: \(found)")
    }
}
