// SPDX-License-Identifier: Apache-2.0
import CEWF
import Foundation
import Imaging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How EWF keeps one chunk: as a zlib stream (which carries its own Adler-32) when that is
/// smaller than the chunk, otherwise the bytes as they are followed by their Adler-32.
struct EncodedChunk {
    /// Bytes to write: the zlib stream, or the chunk without its checksum.
    var storedCount = 0
    /// Media bytes in the chunk (less than the chunk size only for the media's last chunk).
    var dataCount = 0
    var isCompressed = false
    /// The Adler-32 libewf writes after an uncompressed chunk (a compressed one carries its own).
    var checksum: UInt32 = 0
}

/// Encodes batches of chunks for libewf on every core, into slots it owns.
///
/// The chunks are compressed here (`ChunkDeflater`: ISA-L or libdeflate) rather than by
/// `libewf_handle_prepare_write_chunk`: libewf 20140813 compresses with zlib's `compress2`
/// (123 MB/s at level 1 on a file-system image here, 66 MB/s on random data), and the prepare
/// call reads the handle's state without locks, so it could not overlap
/// `libewf_handle_write_chunk` anyway. libewf takes any zlib stream: its reader inflates with zlib.
final class ChunkEncoder: @unchecked Sendable {
    let chunkSize: Int
    let compression: E01Compression
    /// Chunks per batch: 2 MiB of media, the pipeline's buffer, and at least one per worker.
    let capacity: Int
    private let workers: Int
    /// A slot holds the largest stored chunk: the raw chunk and its 4-byte checksum after it, so
    /// libewf writes both with one `write` (it does when the checksum buffer follows the data).
    private let slotSize: Int
    private let slots: UnsafeMutableRawPointer
    private let deflaters: [ChunkDeflater]
    /// The all-zero chunk, compressed once at libdeflate's highest level: unused disk space costs
    /// a few dozen bytes per chunk and no compression time.
    private let zeroChunk: [UInt8]?
    private(set) var chunks: [EncodedChunk]

    init(chunkSize: Int, compression: E01Compression, workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.chunkSize = chunkSize
        self.compression = compression
        self.workers = max(1, workers)
        capacity = max((2 << 20) / chunkSize, self.workers)
        slotSize = chunkSize + 4
        slots = UnsafeMutableRawPointer.allocate(byteCount: slotSize * capacity, alignment: 64)
        chunks = Array(repeating: EncodedChunk(), count: capacity)
        deflaters = (0..<self.workers).compactMap { _ in ChunkDeflater(compression) }
        zeroChunk = deflaters.isEmpty ? nil : Self.compressedZeroChunk(size: chunkSize)
    }

    deinit { slots.deallocate() }

    func slot(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: slots + index * slotSize, count: chunks[index].storedCount)
    }

    /// Where libewf finds an uncompressed chunk's checksum: right after its bytes in the slot.
    func checksumPointer(_ index: Int) -> UnsafeMutableRawPointer { slots + index * slotSize + chunks[index].storedCount }

    /// Encodes the chunks (at most `capacity`) into slots 0, 1 …; the workers take chunks in
    /// turn, so a slow incompressible chunk does not hold up the rest. Returns once all are done.
    func encode(_ input: [UnsafeRawBufferPointer]) {
        precondition(input.count <= capacity)
        let next = Atomic<Int>(0)
        let count = input.count
        input.withUnsafeBufferPointer { input in
            chunks.withUnsafeMutableBufferPointer { results in
                let shared = UnsafeSendable((input, results))
                DispatchQueue.concurrentPerform(iterations: min(workers, count)) { worker in
                    while true {
                        let index = next.add(1, ordering: .relaxed).oldValue
                        guard index < count else { return }
                        shared.value.1[index] = encodeOne(shared.value.0[index], into: slots + index * slotSize, worker: worker)
                    }
                }
            }
        }
    }

    private func encodeOne(_ input: UnsafeRawBufferPointer, into slot: UnsafeMutableRawPointer, worker: Int) -> EncodedChunk {
        if input.count == chunkSize, let zeroChunk, StoreWrites.isAllZero(input) {
            zeroChunk.withUnsafeBytes { slot.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return EncodedChunk(storedCount: zeroChunk.count, dataCount: input.count, isCompressed: true, checksum: 0)
        }
        if !deflaters.isEmpty {
            // Only a stream shorter than the chunk is kept (libewf's own rule); 0 means it was not.
            let count = deflaters[worker].compress(input, into: slot, capacity: input.count - 1)
            if count > 0 {
                return EncodedChunk(storedCount: count, dataCount: input.count, isCompressed: true, checksum: 0)
            }
        }
        slot.copyMemory(from: input.baseAddress!, byteCount: input.count)
        let checksum = libdeflate_adler32(1, input.baseAddress!, input.count)
        withUnsafeBytes(of: checksum.littleEndian) { (slot + input.count).copyMemory(from: $0.baseAddress!, byteCount: 4) }
        return EncodedChunk(storedCount: input.count, dataCount: input.count, isCompressed: false, checksum: checksum)
    }

    /// The zlib stream the encoder stores for an all-zero chunk of `size` bytes, made once per
    /// process and size: libdeflate's level-12 compressor takes 9 MB while it lives, which the
    /// read-back would otherwise add to the job's peak memory.
    static func compressedZeroChunk(size: Int) -> [UInt8]? {
        zeroChunks.withLock { known in
            if let stream = known[size] { return stream }
            let stream = makeCompressedZeroChunk(size: size)
            known[size] = stream
            return stream
        }
    }

    private static let zeroChunks = Mutex<[Int: [UInt8]?]>([:])

    private static func makeCompressedZeroChunk(size: Int) -> [UInt8]? {
        let zeros = [UInt8](repeating: 0, count: size)
        var output = [UInt8](repeating: 0, count: size)
        guard let compressor = libdeflate_alloc_compressor(12) else { return nil }
        defer { libdeflate_free_compressor(compressor) }
        let count = libdeflate_zlib_compress(compressor, zeros, size, &output, size - 1)
        return count > 0 ? Array(output.prefix(count)) : nil
    }
}

/// A pointer the encoding workers share; each writes only its own indices.
private struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
