// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// Where the bytes read and the bytes the store gives back meet, window by window: each side
/// posts the GMAC tag (AES-128-GCM, `Cryptography.GMAC`) of every window under a key drawn for
/// this check, with the window's index as nonce. Equal tags mean the store gave back the window as
/// it was read; the first window whose tags differ is named. GMAC runs at about three times
/// SHA-256's speed here, so the read-back costs a fraction of a second SHA-256 pass.
public final class WindowCheck: Sendable {
    public let windowSize: UInt64
    public let totalSize: UInt64
    let key: [UInt8]
    private struct Posts {
        var read: [Int: DigestValue] = [:]
        var stored: [Int: DigestValue] = [:]
        var firstMismatch: Int?
        var compared = 0
    }
    private let posts = Mutex(Posts())

    public init(windowSize: UInt64, totalSize: UInt64) {
        precondition(windowSize > 0, "windows hold bytes")
        self.windowSize = windowSize
        self.totalSize = totalSize
        self.key = GMAC.randomKey()
    }

    public enum Side: Sendable { case read, stored }

    /// How many windows the stream has (the last may be short).
    public var windowCount: Int { Int((totalSize + windowSize - 1) / windowSize) }

    func tagger(window index: Int) -> GMAC { GMAC(key: key, nonce: UInt64(index)) }

    func post(_ side: Side, window index: Int, _ tag: DigestValue) {
        posts.withLock { posts in
            switch side {
            case .read: posts.read[index] = tag
            case .stored: posts.stored[index] = tag
            }
            guard let read = posts.read[index], let stored = posts.stored[index] else { return }
            posts.read[index] = nil
            posts.stored[index] = nil
            posts.compared += 1
            if read != stored, index < (posts.firstMismatch ?? .max) { posts.firstMismatch = index }
        }
    }

    /// The first window the store did not give back as it was read, if any so far.
    public var firstMismatch: Int? { posts.withLock { $0.firstMismatch } }
    /// How many windows both sides have posted.
    public var compared: Int { posts.withLock { $0.compared } }

    /// Throws unless both sides posted every window and all matched: the first that did not,
    /// named by its stream bytes, or how many were compared (`path`: the image, for the error).
    public func confirm(path: String) throws(AcquisitionError) {
        try throwIfMismatched(path: path)
        guard compared == windowCount else {
            throw AcquisitionError(
                .verifyMismatch, path: path, detail: "\(compared) of \(windowCount) windows were read back; the image is not verified")
        }
    }

    /// Throws if a window came back otherwise than it was read, naming it: a read-back during the
    /// acquisition stops the job there, not hours later.
    public func throwIfMismatched(path: String) throws(AcquisitionError) {
        guard let window = firstMismatch else { return }
        let first = UInt64(window) * windowSize
        throw AcquisitionError(
            .verifyMismatch, path: path, offset: first,
            detail: "the store gave back stream bytes \(first)-\(min(first + windowSize, totalSize) - 1) not as they were written")
    }

    /// What a read-back on `worker` has found so far: its first failure (a read error), or the
    /// first window the store gave back otherwise.
    public func throwFindings<Item>(of worker: SerialWorker<Item>, path: String) throws(AcquisitionError) {
        if let failure = worker.failureSoFar { throw failure }
        try throwIfMismatched(path: path)
    }
}

/// One side of a `WindowCheck` as a pipeline consumer, on a thread of its own: the GMAC of each
/// window of the stream as the source is read (`.read`), or as an image decoded from the store
/// gives it back (`.stored`).
public final class WindowTagger: StreamConsumer, @unchecked Sendable {
    private let check: WindowCheck
    private let side: WindowCheck.Side
    private var window = 0
    private var tagger: GMAC
    private var inWindow: UInt64 = 0

    public init(_ check: WindowCheck, side: WindowCheck.Side = .read) {
        self.check = check
        self.side = side
        self.tagger = check.tagger(window: 0)
    }

    public var name: String { "window GMAC" }

    public func consume(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(AcquisitionError) {
        var rest = bytes
        while !rest.isEmpty {
            let take = Int(min(UInt64(rest.count), check.windowSize - inWindow))
            tagger.update(UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            inWindow += UInt64(take)
            if inWindow == check.windowSize { next() }
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
        }
    }

    public func finish() throws(AcquisitionError) { if inWindow > 0 { next() } }

    private func next() {
        check.post(side, window: window, tagger.finalize())
        window += 1
        inWindow = 0
        tagger = check.tagger(window: window)
    }
}

/// Reads an image back while it is still being written: the writer hands over each window once
/// it is durable (fsynced and dropped from the page cache), and this thread re-reads it from the
/// store and posts its GMAC to the `WindowCheck`. The acquisition and its verification thus end
/// together instead of one after the other.
final class WindowReadBack: @unchecked Sendable {
    private let layout: SegmentLayout
    private let check: WindowCheck
    private var worker: SerialWorker<ByteSpan>!
    private var window = 0
    private var tagger: GMAC
    private var inWindow: UInt64 = 0
    /// The image file being read back, kept open from one read to the next.
    private var file: (path: String, descriptor: Int32)?
    /// Page-aligned room for one read; nil when it could not be had (every read then fails so).
    private let buffer: UnsafeMutableRawPointer?
    static let readSize = 1 << 20

    init(layout: SegmentLayout, check: WindowCheck) {
        self.layout = layout
        self.check = check
        self.tagger = check.tagger(window: 0)
        var buffer: UnsafeMutableRawPointer? = nil
        self.buffer = posix_memalign(&buffer, 4096, Self.readSize) == 0 ? buffer : nil
        worker = SerialWorker(name: "image read-back") { [self] span throws(AcquisitionError) in
            guard let buffer = self.buffer else {
                throw AcquisitionError(.readFailed, path: layout.paths[0], detail: "no memory for the read-back")
            }
            try read(span, into: buffer)
        }
    }

    /// Stream bytes `span` are durable in the image: read them back (in order of handing over).
    func readBack(_ span: ByteSpan) { worker.submit(span) }

    /// Waits for every handed-over window to be read back.
    func finish() throws(AcquisitionError) { try worker.finish() }

    /// Throws what the read-back found so far: a window that came back otherwise, or a failed read.
    func throwIfFailed(path: String) throws(AcquisitionError) { try check.throwFindings(of: worker, path: path) }

    /// Ends the read-back of a writer dropped unfinished: what was handed over and not read yet
    /// is left (on a slow store a backlog of windows would hold a stopping job for as long).
    func cancel() { worker.cancel() }

    deinit {
        free(buffer)
        if let file { close(file.descriptor) }
    }

    private func read(_ span: ByteSpan, into buffer: UnsafeMutableRawPointer) throws(AcquisitionError) {
        var position = span.start
        while position < span.end, !worker.isCancelled {
            let (path, inFile, room) = layout.location(of: position)
            let count = Int(min(UInt64(Self.readSize), span.end - position, room, check.windowSize - inWindow))
            try read(path, into: buffer, count: count, at: inFile)
            tagger.update(UnsafeRawBufferPointer(start: buffer, count: count))
            position += UInt64(count)
            inWindow += UInt64(count)
            if inWindow == check.windowSize || position == check.totalSize {
                check.post(.stored, window: window, tagger.finalize())
                window += 1
                inWindow = 0
                tagger = check.tagger(window: window)
            }
        }
    }

    private func read(_ path: String, into buffer: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) {
        if file?.path != path {
            if let file { close(file.descriptor) }
            file = nil
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw AcquisitionError(.openFailed, path: path, offset: offset, errno: errno, detail: "reading the image back")
            }
            file = (path, descriptor)
        }
        try StoreWrites.readAll(
            into: buffer, count: count, from: file!.descriptor, at: offset, path: path, reported: offset, what: "reading the image back")
    }
}

/// How a stream lies in an image's files: one file, or segments of `segmentSize` bytes.
struct SegmentLayout: Sendable {
    let paths: [String]
    let segmentSize: UInt64?
    let totalSize: UInt64

    /// The file holding stream byte `offset`, where in it, and how many bytes of the stream it
    /// holds from there.
    func location(of offset: UInt64) -> (path: String, offset: UInt64, room: UInt64) {
        guard let segmentSize, paths.count > 1 else { return (paths[0], offset, totalSize - offset) }
        let index = min(Int(offset / segmentSize), paths.count - 1)
        let inFile = offset - UInt64(index) * segmentSize
        let fileSize = index == paths.count - 1 ? totalSize - UInt64(index) * segmentSize : segmentSize
        return (paths[index], inFile, fileSize - inFile)
    }
}
