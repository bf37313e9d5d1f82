// SPDX-License-Identifier: Apache-2.0
import Cryptography
import ExpertWitness
import Foundation
import HumanText
import Imaging

/// The media stream of a bundle checked against its seal: the image files against the manifest,
/// the stream (raw files concatenated, or an E01 decoded through libewf) against
/// `Exhibit-Media-SHA256`, and a change located by the window digests or chaining values.
extension VerificationRun {
    func checkMedia(_ record: AcquisitionRecord) {
        let files = record.image.files
        if files.isEmpty, let phone = record.phone {
            // A logical phone extraction: the media stream is the inventory of extracted files.
            guard let inventory = read(phone.inventory, limit: VerificationLimits.manifest, check: "media-sha256") else { return }
            let digest = Digest.sha256(inventory).hex
            if let sealed = info[.mediaSHA256], sealed != digest {
                fail("media-sha256", phone.inventory, nil, "the inventory hashes to \(digest), bag-info says \(sealed)")
            }
            return
        }
        for file in files where manifest[file.path] == nil {
            fail("payload-manifest", file.path, nil, "image file recorded in acquisition.json is not in the manifest")
        }
        guard !payloadUnbounded else {
            return fail("media-sha256", nil, nil, "not checked: data/ holds more bytes than Payload-Oxum declares")
        }
        if record.image.format != RawImage().name { return checkEncodedMedia(record) }
        guard let image = openImage(record) else { return }
        let sizes = image.sizes
        let stream = StreamDigester(.sha256)
        let perFile = RangeDigester(rangeSizes: sizes, label: "per-file SHA-256")
        do {
            _ = try Pipeline.run(image.files, into: files.count > 1 ? [stream, perFile] : [stream])
        } catch {
            fail("media-sha256", nil, nil, "the image cannot be read: \(error)")
            return
        }
        guard let streamDigest = stream.result?.hex else { return }
        let fileDigests = files.count > 1 ? perFile.results.map(\.hex) : [streamDigest]
        var changed = false
        for (file, digest) in zip(files, fileDigests) where manifest[file.path] != nil && manifest[file.path] != digest {
            changed = true
            fail("payload-manifest", file.path, nil, "SHA-256 differs from the manifest: the image file was changed")
        }
        if let sealed = info[.mediaSHA256], sealed != streamDigest {
            changed = true
            fail("media-sha256", nil, nil, "the image files hash to \(streamDigest), bag-info says \(sealed)")
        }
        if changed { locateChanges(record) }
    }

    /// An image whose files encode the stream (E01): each file against the manifest, then the
    /// media stream decoded through the format's reader (libewf: every chunk inflated and checked
    /// against its checksum) against the sealed SHA-256. A damaged chunk is named by its stream range.
    func checkEncodedMedia(_ record: AcquisitionRecord) {
        guard record.image.format == "e01" else {
            return fail("media-sha256", "data/acquisition.json", nil, "image format \(record.image.format) is not one this verifier reads")
        }
        var paths: [String] = []
        for file in record.image.files {
            do {
                let handle = try tree.openFile(file.path)
                defer { close(handle.descriptor) }
                let digest = try DurableFile.sha256(descriptor: handle.descriptor, path: file.path).hex
                if let expected = manifest[file.path], expected != digest {
                    fail("payload-manifest", file.path, nil, "SHA-256 differs from the manifest: the image file was changed")
                }
                paths.append("\(tree.path)/\(file.path)")
            } catch {
                return fail("media-sha256", file.path, nil, "\(error)")
            }
        }
        let stream = StreamDigester(.sha256)
        let windowSize = usableWindowSize(record)
        // Chaining values cost nothing: a changed stream is located by them without decoding it again.
        if record.verification.windowChainSHA256 != nil { stream.chainEvery = windowSize }
        var windows: RangeDigester?
        do {
            let reader = try E01Reader(paths: paths)
            if reader.size != record.media.sizeBytes {
                fail("media-sha256", record.image.files.first?.path, nil, "the E01 holds \(reader.size) bytes of media; \(record.media.sizeBytes) were acquired")
            }
            checkAcquisitionErrors(reader, record)
            windows = windowSize.map { RangeDigester(rangeSize: $0, totalSize: record.media.sizeBytes, label: "window SHA-256") }
            _ = try Pipeline.run(reader, into: [stream] + (windows.map { [$0] } ?? []))
        } catch {
            return fail("media-sha256", record.image.files.first?.path, nil, "the E01 cannot be read: \(error)")
        }
        guard let digest = stream.result?.hex, let sealed = info[.mediaSHA256], sealed != digest else { return }
        fail("media-sha256", nil, nil, "the E01's media stream hashes to \(digest), bag-info says \(sealed)")
        if let chained = record.verification.windowChainSHA256, let size = windowSize {
            // A chunk changed with its checksum made right: libewf reads it, the stream differs.
            let total = record.media.sizeBytes
            guard let window = Self.firstChangedWindow(found: stream.chainingValues.map(\.hex), recorded: chained) else {
                return fail("media-sha256", nil, nil, "the change lies in the stream's last \(total % size == 0 ? size : total % size) bytes (after the last window boundary)")
            }
            let first = UInt64(window) * size
            return fail("media-sha256", nil, nil, "stream bytes \(first)-\(min(first + size, total) - 1) hold the first change from what was acquired; later windows cannot be told apart (chained values)")
        }
        guard let windows, let expected = record.verification.windowSHA256, let size = windowSize else { return }
        for (index, value) in windows.results.enumerated() where index >= expected.count || expected[index] != value.hex {
            let first = UInt64(index) * size
            fail("media-sha256", nil, nil, "stream bytes \(first)-\(min(first + size, record.media.sizeBytes) - 1) differ from what was acquired")
        }
    }

    /// The E01's acquisition-error list against acquisition.json's unreadable ranges, as the E01
    /// holds them (`E01Image.acquisitionErrorList`): the two records of the sectors that were
    /// lost must agree, since a hub's tools read one and the bundle's reader the other.
    func checkAcquisitionErrors(_ reader: E01Reader, _ record: AcquisitionRecord) {
        let expected = E01Image.acquisitionErrorList(record.unreadableRanges, bytesPerSector: reader.bytesPerSector)
        let listed: [ByteSpan]
        do { listed = try reader.acquisitionErrors() } catch {
            return fail("records", record.image.files.first?.path, nil, "the E01's acquisition-error list cannot be read: \(error)")
        }
        guard listed != expected else { return }
        func text(_ spans: [ByteSpan]) -> String {
            spans.isEmpty ? "none" : spans.map { "bytes \($0.start)-\($0.end - 1)" }.joined(separator: ", ")
        }
        fail("records", record.image.files.first?.path, nil, "the E01 lists unreadable \(text(listed)); acquisition.json \(text(expected))")
    }

    /// The record's window size, if it is one Exhibit writes (`VerificationWindows`: a power of two
    /// of at least 64 MiB, 4,096 windows at most): a carrier's forged size must neither trap the
    /// verifier (zero) nor make it allocate a digest slot for each of billions of windows.
    func usableWindowSize(_ record: AcquisitionRecord) -> UInt64? {
        guard let size = record.verification.windowSize else { return nil }
        let (smallest, most) = (VerificationWindows.smallest, VerificationWindows.mostWindows)
        guard size >= smallest, size & (size - 1) == 0, record.media.sizeBytes / size < most else {
            fail("records", "data/acquisition.json", nil, "verification.windowSize \(size) is not one Exhibit writes (a power of two of at least \(smallest >> 20) MiB, fewer than \(most) windows over \(record.media.sizeBytes) bytes); the windows are not used")
            return nil
        }
        return size
    }

    /// The recorded image files, opened by descriptor (regular files only), with their sizes.
    func openImage(_ record: AcquisitionRecord) -> (files: ImageFiles, sizes: [UInt64])? {
        var opened: [(path: String, descriptor: Int32)] = []
        var sizes: [UInt64] = []
        var usable = true
        for file in record.image.files {
            do {
                let handle = try tree.openFile(file.path)
                opened.append((file.path, handle.descriptor))
                sizes.append(handle.size)
                if handle.size != file.sizeBytes {
                    fail("media-sha256", file.path, nil, "is \(handle.size) bytes; \(file.sizeBytes) were written")
                }
            } catch {
                fail("media-sha256", file.path, nil, error.code == .missing ? "image file is missing" : "\(error)")
                usable = false
            }
        }
        guard usable else {
            for file in opened { close(file.descriptor) }
            return nil
        }
        do { return (try ImageFiles(opened: opened), sizes) } catch {
            fail("media-sha256", nil, nil, "the image cannot be read: \(error)")
            return nil
        }
    }

    /// Re-reads the image against the window digests recorded at read-back, and names each
    /// changed window as a byte range of the file it lies in.
    func locateChanges(_ record: AcquisitionRecord) {
        let windowSize = usableWindowSize(record)
        if record.verification.windowSHA256 == nil, let chained = record.verification.windowChainSHA256, let windowSize {
            return locateFirstChange(record, chained: chained, windowSize: windowSize)
        }
        guard let windowSize, let expected = record.verification.windowSHA256 else {
            fail("media-sha256", nil, nil, "no window digests were recorded (acquired with --no-verify): the change cannot be located more precisely than the file")
            return
        }
        guard let image = openImage(record) else { return }
        let total = image.sizes.reduce(0, +)
        let windows = RangeDigester(rangeSize: windowSize, totalSize: total, label: "window SHA-256")
        guard (try? Pipeline.run(image.files, into: [windows])) != nil else { return }
        for (index, digest) in windows.results.enumerated() where index >= expected.count || expected[index] != digest.hex {
            let first = UInt64(index) * windowSize
            failWindow(record, image.sizes, first: first, last: min(first + windowSize, total) - 1, "differs from what was acquired")
        }
        if windows.results.count != expected.count {
            fail("media-sha256", nil, nil, "the image has \(windows.results.count) windows of \(windowSize) bytes; \(expected.count) were recorded")
        }
    }

    /// With chaining values (an image read back during its first pass): the image's SHA-256 is
    /// run again and its intermediate value compared at every window boundary; the first window
    /// whose value differs holds the first change (every later value differs with it).
    func locateFirstChange(_ record: AcquisitionRecord, chained: [String], windowSize: UInt64) {
        guard let image = openImage(record) else { return }
        let total = image.sizes.reduce(0, +)
        let digester = StreamDigester(.sha256)
        digester.chainEvery = windowSize
        guard (try? Pipeline.run(image.files, into: [digester])) != nil else { return }
        guard let window = Self.firstChangedWindow(found: digester.chainingValues.map(\.hex), recorded: chained) else {
            let tail = total % windowSize == 0 ? windowSize : total % windowSize
            return fail("media-sha256", nil, nil, "the change lies in the last \(tail) bytes (after the last window boundary)")
        }
        let first = UInt64(window) * windowSize
        failWindow(record, image.sizes, first: first, last: min(first + windowSize, total) - 1, "holds the first change from what was acquired; later windows cannot be told apart (chained values)")
    }

    /// The first window whose chaining value differs from the one recorded (every later one
    /// differs with it), or where one list ends before the other; nil when all agree.
    static func firstChangedWindow(found: [String], recorded: [String]) -> Int? {
        zip(found, recorded).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? (found.count != recorded.count ? min(found.count, recorded.count) : nil)
    }

    /// Names stream bytes `first`...`last` as a byte range in each image file they overlap.
    func failWindow(_ record: AcquisitionRecord, _ sizes: [UInt64], first: UInt64, last: UInt64, _ what: String) {
        var fileStart: UInt64 = 0
        for (fileIndex, size) in sizes.enumerated() {
            defer { fileStart += size }
            let fileEnd = fileStart + size
            guard first < fileEnd, last >= fileStart else { continue }
            let range = ByteRange(first: max(first, fileStart) - fileStart, last: min(last, fileEnd - 1) - fileStart)
            fail("media-sha256", record.image.files[fileIndex].path, range, "\(what) (stream bytes \(first)-\(last))")
        }
    }
}
