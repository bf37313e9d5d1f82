// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// The one policy every phone platform's file walk goes through: what a listed name may make
/// Exhibit do, how it is shown, and where its file may be stored.
struct DeviceTreePolicyTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func namesThatAreNoFileNameAreRefusedAndOddOnesStoredEscaped() {
        #expect(DeviceTreePolicy.verdict(forName: [], isDirectory: false) == .refused(.emptyName))
        #expect(DeviceTreePolicy.verdict(forName: bytes("../evil"), isDirectory: false) == .refused(.nameWithSlash))
        #expect(DeviceTreePolicy.verdict(forName: bytes("a/b"), isDirectory: true) == .refused(.nameWithSlash))
        #expect(DeviceTreePolicy.verdict(forName: bytes("nul\u{0}byte"), isDirectory: false) == .refused(.nameWithNUL))
        #expect(DeviceTreePolicy.verdict(forName: bytes(".."), isDirectory: true) == .selfOrParent)
        #expect(DeviceTreePolicy.verdict(forName: bytes("."), isDirectory: true) == .selfOrParent)
        #expect(DeviceTreePolicy.verdict(forName: bytes(".."), isDirectory: false) == .refused(.dotName))
        #expect(DeviceTreePolicy.verdict(forName: bytes("x\rforged"), isDirectory: false) == .unprintable)
        #expect(DeviceTreePolicy.verdict(forName: [0x61, 0xFF], isDirectory: false) == .unprintable)
        #expect(DeviceTreePolicy.verdict(forName: bytes("evil\u{202E}gpj.exe"), isDirectory: false) == .unprintable)
        #expect(DeviceTreePolicy.verdict(forName: bytes("บันทึก.txt"), isDirectory: false) == .ordinary)
        #expect(DeviceTreePolicy.verdict(forName: bytes("...hidden"), isDirectory: true) == .ordinary)
    }

    @Test func aNameIsShownAsOnePrintableLineAndDistinctNamesStayDistinct() {
        #expect(DeviceTreePolicy.printable(bytes("x\rforged")) == "x\\x0Dforged")
        #expect(DeviceTreePolicy.printable(bytes("two\nlines")) == "two\\x0Alines")
        #expect(DeviceTreePolicy.printable([0x61, 0xFF, 0x62]) == "a\\xFFb")
        #expect(DeviceTreePolicy.printable(bytes("a\\xFFb")) == "a\\\\xFFb")
        #expect(DeviceTreePolicy.printable(bytes("next\u{85}line\u{2028}")) == "next\\xC2\\x85line\\xE2\\x80\\xA8")
        #expect(DeviceTreePolicy.printable(bytes("บันทึก.txt")) == "บันทึก.txt")
        #expect(DeviceTreePolicy.printable(bytes("a/b"), escapingSlash: true) == "a\\x2Fb")
        let anomaly = FileTreeAnomaly(
            kind: .nameWithSlash, devicePath: bytes("/sdcard/x\r/../evil"), name: bytes("../evil"), action: .skipped, reason: "r")
        #expect(anomaly.path == "/sdcard/x\\x0D/..\\x2Fevil" && anomaly.name == "../evil")
        #expect(!anomaly.logLine.contains("\r") && !anomaly.logLine.contains("\n"))
    }

    @Test func storedPathsStayInDataFilesWhateverTheDevicePath() {
        #expect(DeviceTreePolicy.storedPath(for: bytes("/sdcard/DCIM/a.jpg")) == "data/files/sdcard/DCIM/a.jpg")
        #expect(DeviceTreePolicy.storedPath(for: bytes("/sdcard/x\rforged")) == "data/files/sdcard/x#x0Dforged")
        #expect(DeviceTreePolicy.storedPath(for: bytes("/sdcard/../../../../etc/passwd")) == "data/files/sdcard/#x2E#x2E/#x2E#x2E/#x2E#x2E/#x2E#x2E/etc/passwd")
        #expect(DeviceTreePolicy.storedPath(for: bytes("/sdcard/./a")) == "data/files/sdcard/#x2E/a")
        #expect(DeviceTreePolicy.storedPath(for: bytes("/sdcard/50%#off\\")) == "data/files/sdcard/50#x25#x23off#x5C")
        for path in ["/sdcard/../../x", "/./.", "/sdcard/nul\u{0}", "/a\u{202E}b"] {
            #expect(DeviceTreePolicy.isContained(DeviceTreePolicy.storedPath(for: bytes(path))), "\(path)")
        }
        // Names past NAME_MAX once escaped are cut and keep a digest of the whole name.
        let long = [UInt8](repeating: 0x01, count: 200), other = [UInt8](repeating: 0x01, count: 201)
        let stored = DeviceTreePolicy.storedPath(for: bytes("/sdcard/") + long)
        let last = String(stored.split(separator: "/").last ?? "")
        #expect(last.utf8.count <= DeviceTreePolicy.maximumStoredComponentBytes && last.contains("#sha256-"), "\(last)")
        #expect(stored != DeviceTreePolicy.storedPath(for: bytes("/sdcard/") + other))
        #expect(DeviceTreePolicy.isContained(stored))
        #expect(!DeviceTreePolicy.isContained("data/files/../evil") && !DeviceTreePolicy.isContained("data/files//evil"))
        #expect(!DeviceTreePolicy.isContained("data/phone/evil") && !DeviceTreePolicy.isContained("data/files"))
    }

    /// A stored file is created one component at a time and never through a link: a link
    /// planted in `data/files` (or a path that would leave it) is refused, nothing is written.
    @Test func storedFilesAreNeverCreatedOutsideDataFilesOrThroughALink() throws {
        let scratch = try ScratchDirectory("device-tree-policy")
        let bag = scratch.file("bag"), outside = scratch.file("outside")
        try FileManager.default.createDirectory(atPath: "\(bag)/data/files", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(bag)/data/files/sdcard", withDestinationPath: outside)
        #expect(throws: (any Error).self) { try DeviceTreePolicy.createStoredFile(bag: bag, storedPath: "data/files/sdcard/evil") }
        try FileManager.default.createSymbolicLink(atPath: "\(bag)/data/files/link", withDestinationPath: "\(outside)/evil-file")
        #expect(throws: (any Error).self) { try DeviceTreePolicy.createStoredFile(bag: bag, storedPath: "data/files/link") }
        #expect(throws: (any Error).self) { try DeviceTreePolicy.createStoredFile(bag: bag, storedPath: "data/files/../../evil") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("evil")))

        let descriptor = try DeviceTreePolicy.createStoredFile(bag: bag, storedPath: "data/files/phone/DCIM/a.jpg")
        #expect(write(descriptor, "ok", 2) == 2)
        close(descriptor)
        #expect(try String(contentsOfFile: "\(bag)/data/files/phone/DCIM/a.jpg", encoding: .utf8) == "ok")
    }
}
