// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// Where two SHA-256 digests of one stream meet: the digest of the stream as it was read and the
/// digest of the image as the store gives it back each post their intermediate hash value at every
/// window boundary (FIPS 180-4's H(i), `Digest.chainingValue`). Equal values at boundary k mean the
/// stored bytes up to it are the bytes read (SHA-256's collision resistance); the first boundary
/// whose values differ names the first window the store did not give back as written.
public final class WindowChain: Sendable {
    public let windowSize: UInt64
    private struct Posts {
        var stream: [Int: DigestValue] = [:]
        var stored: [Int: DigestValue] = [:]
        var firstMismatch: Int?
        var compared = 0
    }
    private let posts = Mutex(Posts())

    public init(windowSize: UInt64) {
        precondition(windowSize > 0 && windowSize % 64 == 0, "window boundaries are on SHA-256 block boundaries")
        self.windowSize = windowSize
    }

    public enum Side: Sendable { case stream, stored }

    /// The chaining value after window `index` (bytes up to `(index + 1) × windowSize`).
    public func post(_ side: Side, window index: Int, _ value: DigestValue) {
        posts.withLock { posts in
            switch side {
            case .stream: posts.stream[index] = value
            case .stored: posts.stored[index] = value
            }
            guard let stream = posts.stream[index], let stored = posts.stored[index] else { return }
            posts.compared += 1
            if stream != stored, index < (posts.firstMismatch ?? .max) { posts.firstMismatch = index }
        }
    }

    /// The first window whose stored bytes are not the bytes read, if any so far.
    public var firstMismatch: Int? { posts.withLock { $0.firstMismatch } }
    /// How many boundaries both sides have posted.
    public var compared: Int { posts.withLock { $0.compared } }
    /// The stream's chaining values in window order, as far as they are contiguous (for the record).
    public var streamValues: [DigestValue] {
        posts.withLock { posts in
            var values: [DigestValue] = []
            while let value = posts.stream[values.count] { values.append(value) }
            return values
        }
    }
}

/// Reads an image back while it is still being written: the writer hands over each window once
/// it is durable (fsynced and dropped from the page cache), and this thread re-reads it from the
/// store into its own SHA-256, posting the chaining value at each boundary to `chain`. The
/// acquisition and its verification thus end together instead of one after the other.
final class WindowReadBack: @unchecked Sendable {
    private let layout: SegmentLayout
    private let chain: WindowChain
    private let queue = BlockingQueue<ByteSpan?>()
    private let done = DispatchSemaphore(value: 0)
    private let digest = Digest(.sha256)
    private var failure: AcquisitionError?
    private var value: DigestValue?
    private var finished = false
    static let readSize = 1 << 20

    init(layout: SegmentLayout, chain: WindowChain) {
        self.layout = layout
        self.chain = chain
        let thread = Thread { [self] in run() }
        thread.name = "image read-back"
        thread.start()
    }

    /// Stream bytes `span` are durable in the image: read them back (in order of handing over).
    func readBack(_ span: ByteSpan) { queue.push(span) }

    /// Waits for every handed-over window; the SHA-256 of the stored image as read back.
    func finish() throws(AcquisitionError) -> DigestValue {
        if !finished {
            finished = true
            queue.push(nil)
            done.wait()
        }
        if let failure { throw failure }
        return value!
    }

    deinit {
        if !finished {
            queue.push(nil)
            done.wait()
        }
    }

    private func run() {
        defer { done.signal() }
        var buffer: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&buffer, 4096, Self.readSize) == 0, let buffer else {
            failure = AcquisitionError(.readFailed, path: layout.paths[0], detail: "no memory for the read-back")
            return
        }
        defer { free(buffer) }
        while let span = queue.pop() {
            guard failure == nil else { continue }
            do throws(AcquisitionError) {
                try read(span, into: buffer)
            } catch {
                failure = error
            }
        }
        if failure == nil { value = digest.finalize() }
    }

    private func read(_ span: ByteSpan, into buffer: UnsafeMutableRawPointer) throws(AcquisitionError) {
        var position = span.start
        while position < span.end {
            let (path, inFile, room) = layout.location(of: position)
            let boundary = (position / chain.windowSize + 1) * chain.windowSize
            let count = Int(min(UInt64(Self.readSize), span.end - position, room, boundary - position))
            try Self.read(path, into: buffer, count: count, at: inFile)
            digest.update(UnsafeRawBufferPointer(start: buffer, count: count))
            position += UInt64(count)
            if position % chain.windowSize == 0, let value = digest.chainingValue {
                chain.post(.stored, window: Int(position / chain.windowSize) - 1, value)
            }
        }
    }

    private static func read(_ path: String, into buffer: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(AcquisitionError) {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { throw AcquisitionError(.openFailed, path: path, offset: offset, errno: errno, detail: "reading the image back") }
        defer { close(file) }
        var done = 0
        while done < count {
            let result = pread(file, buffer + done, count - done, off_t(offset) + off_t(done))
            if result > 0 {
                done += result
            } else if result < 0, errno == EINTR {
                continue
            } else {
                throw AcquisitionError(
                    .readFailed, path: path, offset: offset + UInt64(done), errno: result < 0 ? errno : nil, detail: "reading the image back")
            }
        }
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
