// SPDX-License-Identifier: Apache-2.0
import CBlockDevice
import Cryptography
import Foundation
import Imaging

#if canImport(Glibc)
    import Glibc

#endif

/// The second pass over the areas the first pass skipped: each area is read again in halves
/// until every readable sector is found ("trim and scrape" by bisection), with direct I/O so an
/// error marks exactly one logical sector, not the page-cache page around it. A sector is retried
/// up to `attemptsPerSector` times, and an area gets at most `secondsPerArea`.
public struct SectorRecovery: Sendable {
    let access: SourceAccess
    public var path: String { access.path }
    public var size: UInt64 { access.size }
    public var sectorSize: Int { access.sectorSize }
    public var attemptsPerSector = 3
    public var secondsPerArea: Double = 300

    /// The largest piece read in one go; the buffer `recover` needs is this big.
    public static let pieceSize = 4 << 20

    init(_ access: SourceAccess) { self.access = access }

    /// Reads `area` again. `deliver` receives each piece (at most `pieceSize` bytes, zeros where
    /// unreadable) with its offset and the sub-spans that were read, in order.
    public func recover(
        _ area: ByteSpan, buffer: UnsafeMutableRawPointer,
        deliver: (UnsafeRawBufferPointer, UInt64, [ByteSpan]) throws -> Void
    ) throws -> RecoveredArea {
        let started = Date()
        let deadline = started.addingTimeInterval(secondsPerArea)
        let direct = access.isBlockDevice && exhibit_set_direct_io(access.descriptor, 1) == 0
        defer { if direct { _ = exhibit_set_direct_io(access.descriptor, 0) } }
        let digest = Digest(.sha256)
        var unreadable: [UnreadableRange] = []
        var position = area.start
        while position < area.end {
            // Before each piece, as the first pass before each buffer: reads that succeed raise no
            // error to have the flag checked after.
            try access.checkStillReadOnly(at: position)
            let length = Int(min(UInt64(Self.pieceSize), area.end - position))
            var state = PieceState(base: position, deadline: deadline)
            try read(ByteSpan(start: position, length: UInt64(length)), into: buffer, state: &state, attempts: 1)
            let piece = UnsafeRawBufferPointer(start: buffer, count: length)
            digest.update(piece)
            try deliver(piece, position, ByteSpan.merged(state.recovered))
            unreadable += state.unreadable
            position += UInt64(length)
        }
        return RecoveredArea(
            span: area, unreadable: UnreadableRange.merged(unreadable), sha256: digest.finalize().hex,
            seconds: Date().timeIntervalSince(started))
    }

    private struct PieceState {
        let base: UInt64
        let deadline: Date
        var recovered: [ByteSpan] = []
        var unreadable: [UnreadableRange] = []
    }

    /// Reads `span` (whole sectors, except a file's last partial one) into the piece buffer; on
    /// failure splits it in two, down to single sectors, which are retried.
    private func read(
        _ span: ByteSpan, into buffer: UnsafeMutableRawPointer, state: inout PieceState, attempts: Int
    ) throws(AcquisitionError) {
        let target = buffer + Int(span.start - state.base)
        let sector = UInt64(sectorSize)
        if Date() > state.deadline {
            return giveUp(span, target: target, state: &state, errno: ETIME, attempts: attempts - 1, timeLimited: true)
        }
        let error = try readOnce(span, into: target)
        if error == 0 {
            state.recovered.append(span)
            return
        }
        if span.length <= sector {
            var tries = attempts
            var lastError = error
            while tries < attemptsPerSector, lastError != 0, Date() <= state.deadline {
                tries += 1
                lastError = try readOnce(span, into: target)
            }
            if lastError == 0 {
                state.recovered.append(span)
            } else {
                giveUp(span, target: target, state: &state, errno: lastError, attempts: tries, timeLimited: false)
            }
            return
        }
        let sectors = (span.length + sector - 1) / sector
        let half = (sectors / 2) * sector
        try read(ByteSpan(start: span.start, length: half), into: buffer, state: &state, attempts: attempts + 1)
        try read(ByteSpan(start: span.start + half, length: span.length - half), into: buffer, state: &state, attempts: attempts + 1)
    }

    /// One positional read of the whole span: 0, or the errno of the failure.
    private func readOnce(_ span: ByteSpan, into target: UnsafeMutableRawPointer) throws(AcquisitionError) -> Int32 {
        var got = 0
        let length = Int(span.length)
        while got < length {
            let result = pread(access.descriptor, target + got, length - got, off_t(span.start + UInt64(got)))
            if result > 0 {
                got += result
                continue
            }
            if result == 0 {
                throw AcquisitionError(.sourceChanged, path: path, offset: span.start + UInt64(got), detail: "end of data while re-reading a skipped area")
            }
            let error = errno
            if error == EINTR { continue }
            if SourceAccess.meansVanished(error) {
                throw AcquisitionError(.sourceVanished, path: path, offset: span.start + UInt64(got), errno: error)
            }
            try access.checkPresent(at: span.start + UInt64(got), errno: error)
            try access.checkStillReadOnly(at: span.start + UInt64(got))
            return error
        }
        return 0
    }

    private func giveUp(
        _ span: ByteSpan, target: UnsafeMutableRawPointer, state: inout PieceState, errno: Int32, attempts: Int,
        timeLimited: Bool
    ) {
        memset(target, 0, Int(span.length))
        let sector = UInt64(sectorSize)
        state.unreadable.append(
            UnreadableRange(
                firstSector: span.start / sector, sectorCount: (span.length + sector - 1) / sector, errno: errno,
                attemptsPerSector: max(attempts, 1), sectorSize: UInt32(sectorSize), timeLimited: timeLimited ? true : nil))
    }
}
