// SPDX-License-Identifier: Apache-2.0
import Foundation
import Panel
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc

#endif

/// The panel drawn by its real renderer (cage + foot with the appliance's font settings, on a
/// headless output) in every language; a character the fonts lack shows as a hollow box the
/// size of the font's .notdef glyph, which the test looks for in the screenshot.
@Suite(.serialized, .enabled(if: loopUnavailable == nil, loopSkipComment))
struct PanelScreenshotTests {
    static let footConfig = fixturePath("../../Systemd/exhibit-panel-foot.ini")
    /// Kept for people to look at: .build/test-artifacts/panel/.
    static let artifacts = fixturePath("../../.build/test-artifacts/panel")

    @Test(.enabled(if: HeadlessKiosk.unavailableReason == nil, "the panel's renderer (cage, foot, grim) cannot run here"))
    func everyLanguageRendersWithoutMissingGlyphs() throws {
        let fonts = try Subprocess.run(["fc-list", ":", "family"]).stdout
        for family in ["Noto Sans Mono", "Noto Sans Thai", "Noto Sans Khmer", "Noto Sans Lao"] where !fonts.contains(family) {
            Issue.record("font \(family) is not installed (scripts/install-deps installs fonts-noto-core and fonts-noto-mono)")
            return
        }
        try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)

        // A state with something in every part of the screen: a refused disk (alert), a sealed one.
        let daemon = try TestDaemon("panel-screens")
        let scratch = daemon.store.scratch
        chmod(daemon.socket, 0o666)  // the kiosk runs the panel as an unprivileged user
        let writable = try LoopDevice(backing: try SourceImage.create(at: scratch.file("w.img"), size: 4 << 20, seed: 51))
        #expect(try daemon.cli(["case", "open", "--case", "KH-2026-031", "--examiner", "Chan Dara", "--auto"]).succeeded)
        let evidence = try LoopDevice(backing: try SourceImage.create(at: scratch.file("e.img"), size: 16 << 20, seed: 52), readOnly: true)
        let sealed = try daemon.waitForSlot(evidence.path, timeout: 60) { $0.state == .sealed }
        let refusedState = try daemon.slot(for: writable.path)?.state
        try #require(sealed != nil && refusedState == .refused, "\(daemon.process.log)")

        let notdef = try Self.missingGlyphBox(scratch: scratch)
        for language in PanelLanguage.allCases {
            let (shapes, file) = try Self.render(language, socket: daemon.socket, scratch: scratch)
            let tofu = shapes.filter { $0.resembles(notdef) }
            print("panel \(language.rawValue): \(shapes.count) shapes, \(tofu.count) missing-glyph boxes")
            #expect(tofu.isEmpty, "\(language.rawValue): \(tofu.count) missing glyphs, first at \(tofu.first.map { "x \($0.x) y \($0.y)" } ?? "-") in \(file)")
            #expect(shapes.count > 300, "\(language.rawValue): only \(shapes.count) shapes drawn in \(file)")
        }

        // The check can fail: with only DejaVu Sans Mono (no Khmer), the Khmer panel shows boxes.
        let latinFonts = scratch.file("latin-fonts")
        try FileManager.default.createDirectory(atPath: latinFonts, withIntermediateDirectories: true)
        for face in ["DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"] {
            try FileManager.default.createSymbolicLink(atPath: "\(latinFonts)/\(face)", withDestinationPath: "/usr/share/fonts/truetype/dejavu/\(face)")
        }
        let latinOnly = scratch.file("latin-fonts.conf")
        try """
            <?xml version="1.0"?>
            <!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
            <fontconfig><dir>\(latinFonts)</dir><cachedir>\(scratch.file("fc-cache"))</cachedir></fontconfig>
            """.write(toFile: latinOnly, atomically: true, encoding: .utf8)
        chmod(scratch.path, 0o777)
        let environment = ["FONTCONFIG_FILE": latinOnly]
        let latinNotdef = try Self.missingGlyphBox(scratch: scratch, environment: environment)
        let (khmer, file) = try Self.render(.km, socket: daemon.socket, scratch: scratch, environment: environment, suffix: "-without-khmer-fonts")
        let boxes = khmer.filter { $0.resembles(latinNotdef) }.count
        print("panel km without Khmer fonts: \(khmer.count) shapes, \(boxes) missing-glyph boxes")
        #expect(boxes > 20, "boxes not found in \(file)")
        _ = daemon.process.terminate()
    }

    /// The shape foot draws for a character no font has: two private-use characters, cursor hidden.
    static func missingGlyphBox(scratch: ScratchDirectory, environment: [String: String] = [:]) throws -> ScreenRaster.Shape {
        let kiosk = try HeadlessKiosk(
            ["sh", "-c", "printf '\\033[?25l\\356\\200\\200 \\356\\200\\201'; sleep 60"], footConfig: footConfig, scratch: scratch,
            environment: environment)
        defer { kiosk.stop() }
        var shapes: [ScreenRaster.Shape] = []
        for _ in 0..<40 {
            usleep(250_000)
            try kiosk.screenshot(to: scratch.file("notdef.ppm"))
            shapes = try ScreenRaster(ppm: scratch.file("notdef.ppm")).shapes()
            if shapes.count == 2 { break }
        }
        try #require(shapes.count == 2 && shapes[0].resembles(shapes[1], overlap: 0.95), "calibration drew \(shapes.count) shapes")
        return shapes[0]
    }

    /// Runs the panel in the kiosk until its picture stops changing; saves it as PNG.
    static func render(
        _ language: PanelLanguage, socket: String, scratch: ScratchDirectory, environment: [String: String] = [:], suffix: String = ""
    ) throws -> (shapes: [ScreenRaster.Shape], png: String) {
        let kiosk = try HeadlessKiosk(
            [BuiltProducts.exhibit, "panel", "--socket", socket, "--lang", language.rawValue], footConfig: footConfig, scratch: scratch,
            environment: environment)
        defer { kiosk.stop() }
        var shapes: [ScreenRaster.Shape] = []
        var previous = -1
        for _ in 0..<40 {
            usleep(300_000)
            try kiosk.screenshot(to: scratch.file("panel.ppm"))
            shapes = try ScreenRaster(ppm: scratch.file("panel.ppm")).shapes()
            if shapes.count > 300, abs(shapes.count - previous) <= 2 { break }  // only the clock's seconds change
            previous = shapes.count
        }
        let png = "\(artifacts)/panel-\(language.rawValue)\(suffix).png"
        try kiosk.screenshot(to: png)
        print("panel screenshot: \(png)")
        return (shapes, png)
    }
}
