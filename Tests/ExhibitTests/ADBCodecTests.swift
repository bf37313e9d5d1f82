// SPDX-License-Identifier: Apache-2.0
@testable import ADB
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc

#endif

@Suite struct ADBCodecTests {
    @Test func encodesTheHeaderAsAOSPDoes() {
        // CNXN(A_VERSION_SKIP_CHECKSUM, 4096, "host::\0") with the legacy byte sum (562 = 0x232).
        let message = ADBMessage(.connect, 0x0100_0001, 4096, payload: Array("host::\0".utf8))
        let header = message.header(checksum: .byteSum)
        #expect(header == Array("CNXN".utf8) + [0x01, 0, 0, 0x01, 0, 0x10, 0, 0, 7, 0, 0, 0, 0x32, 0x02, 0, 0, 0xBC, 0xB1, 0xA7, 0xB1])
        #expect(message.header(checksum: .skipped)[16..<20] == [0, 0, 0, 0])
        #expect(ADBChecksum.negotiated(ours: 0x0100_0001, theirs: 0x0100_0000) == .byteSum)
        #expect(ADBChecksum.negotiated(ours: 0x0100_0001, theirs: 0x0100_0001) == .skipped)
        #expect(ADBCommand.write.description == "WRTE" && ADBCommand(rawValue: 0x0102_0304).description == "0x1020304")
    }

    @Test(arguments: [ADBChecksum.byteSum, .skipped])
    func decodesWhateverWayTheBytesAreSplit(_ checksum: ADBChecksum) throws {
        let messages = [
            ADBMessage(.connect, 0x0100_0001, 1 << 20, payload: Array("device::ro.product.model=Pixel 7;features=shell_v2,stat_v2".utf8)),
            ADBMessage(.open, 1, 0, payload: Array("shell,v2,raw:getprop\0".utf8)),
            ADBMessage(.okay, 7, 1),
            ADBMessage(.write, 7, 1, payload: (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }),
            ADBMessage(.close, 7, 1),
        ]
        let stream = messages.flatMap { $0.encoded(checksum: checksum) }
        for chunk in [1, 7, 24, 4096, stream.count] {
            var decoder = ADBMessageDecoder(checksum: checksum)
            var decoded: [ADBMessage] = []
            var index = 0
            while index < stream.count {
                decoded += try decoder.feed(stream[index..<min(index + chunk, stream.count)])
                index += chunk
            }
            try decoder.finish()
            #expect(decoded == messages, "split into \(chunk)-byte pieces")
        }
    }

    @Test func namesEachKindOfBadInputWithItsOffset() throws {
        let good = ADBMessage(.okay, 1, 2).encoded(checksum: .byteSum)
        func failure(_ bytes: [UInt8], checksum: ADBChecksum = .byteSum, maximum: Int = 1 << 20) -> ADBProtocolError? {
            var decoder = ADBMessageDecoder(maximumPayload: maximum, checksum: checksum)
            do {
                _ = try decoder.feed(bytes)
                try decoder.finish()
                return nil
            } catch {
                return error
            }
        }
        var badMagic = good
        badMagic[20] ^= 0x01
        #expect(failure(good + badMagic)?.code == .badMagic && failure(good + badMagic)?.offset == 24)
        let unknown = ADBMessage(ADBCommand(rawValue: 0x5858_5858), 0, 0).encoded(checksum: .byteSum)
        #expect(failure(unknown)?.code == .unknownCommand)
        let big = ADBMessage(.write, 1, 2, payload: [UInt8](repeating: 1, count: 5000)).encoded(checksum: .byteSum)
        #expect(failure(big, maximum: 4096)?.code == .oversizePayload)
        let bigConnect = ADBMessage(.connect, 0x0100_0001, 4096, payload: [UInt8](repeating: 0x41, count: 5000))
        #expect(failure(bigConnect.encoded(checksum: .byteSum))?.code == .oversizePayload, "CNXN stays within 4096 bytes")
        var wrongSum = ADBMessage(.write, 1, 2, payload: [1, 2, 3]).encoded(checksum: .byteSum)
        wrongSum[16] = 0x07
        #expect(failure(wrongSum)?.code == .checksumMismatch)
        #expect(failure(wrongSum, checksum: .skipped) == nil, "peers at 0x01000001 do not check the sum")
        let truncated = failure(good + Array(big.prefix(30)))
        #expect(truncated?.code == .truncated && truncated?.offset == 24)
        #expect(truncated?.description.contains("stream offset 24") == true)
    }

    /// What a pulled cable left queued on the phone comes before its answer to our CNXN: pieces
    /// of payloads, and whole headers of the earlier stream (of which only a part of the payload
    /// may follow: each of its packets is set aside in turn, never read as a payload's length).
    @Test func usbSetsAsideAnEarlierStreamsPiecesBeforeTheHandshake() {
        let classify = { (bytes: [UInt8], before: Int) in USBTransport.classify(ArraySlice(bytes), setAsideBefore: before) }
        let payloadPiece = Array("shell,v2,raw:cat /dev/block/mm".utf8.prefix(24))
        #expect(classify(payloadPiece, 0) == .leftover, "24 bytes of a payload, no magic")
        #expect(classify([UInt8](repeating: 0x41, count: 512), 0) == .leftover)
        let largestWrite = ADBMessage(.write, 1, 2, payload: [UInt8](repeating: 0x41, count: 1 << 20))
        for stale in [largestWrite, ADBMessage(.okay, 1, 2), ADBMessage(.close, 1, 2)] {
            #expect(classify(stale.header(checksum: .skipped), 0) == .leftover, "an earlier stream's \(stale.command)")
        }
        let connect = ADBMessage(.connect, 0x0100_0001, 1 << 20, payload: Array("device::\0".utf8)).header(checksum: .byteSum)
        let auth = ADBMessage(.auth, 1, 0, payload: [UInt8](repeating: 7, count: 20)).header(checksum: .byteSum)
        let startTLS = ADBMessage(.startTLS, 0x0100_0000, 0).header(checksum: .skipped)
        for answer in [connect, auth, startTLS] {
            #expect(classify(answer, 0) == .header && classify(answer, USBTransport.staleBytesLimit) == .header, "the phone's answer")
        }
        #expect(classify(payloadPiece, USBTransport.staleBytesLimit) == .tooManyLeftovers, "bounded")
        #expect(classify(largestWrite.header(checksum: .skipped), USBTransport.staleBytesLimit) == .tooManyLeftovers, "bounded")
        var zeros = [UInt8](repeating: 0, count: 24)
        #expect(classify(zeros, 0) == .leftover, "zeros: 0 is not 0 inverted")
        zeros[20...] = [0xFF, 0xFF, 0xFF, 0xFF]
        #expect(classify(zeros, 0) == .header, "magic right, command unknown: the header's check names it")
    }

    @Test func readsAndWritesTheConnectionBanner() throws {
        let banner = try ADBBanner(
            payload: Array("device::ro.product.name=lynx;ro.product.model=Pixel 7a;ro.product.device=lynx;features=shell_v2,cmd,stat_v2,ls_v2\0".utf8))
        #expect(banner.systemType == .device && banner.serial.isEmpty)
        #expect(banner.properties["ro.product.model"] == "Pixel 7a")
        #expect(banner.features == ["shell_v2", "cmd", "stat_v2", "ls_v2"])
        #expect(try ADBBanner(payload: banner.payload) == banner)
        #expect(throws: ADBProtocolError.self) { try ADBBanner(payload: Array("toaster::x=y".utf8)) }
        #expect(throws: ADBProtocolError.self) { try ADBBanner(payload: [0x64, 0x65, 0xFF, 0x3A]) }
    }

    @Test func shellV2KeepsStreamsApartAndCarriesTheExitStatus() throws {
        let packets = [
            ShellPacket(.stdout, Array("[ro.product.model]: [Pixel 7a]\n".utf8)), ShellPacket(.stderr, Array("warning\n".utf8)),
            ShellPacket(.stdout, []), ShellPacket(.exit, [3]),
        ]
        let stream = packets.flatMap(\.encoded)
        #expect(Array(stream.prefix(5)) == [1, 31, 0, 0, 0])
        var decoder = ShellPacketDecoder()
        var decoded: [ShellPacket] = []
        for byte in stream { decoded += try decoder.feed([byte]) }
        try decoder.finish()
        #expect(decoded == packets && decoded.last?.exitStatus == 3)

        var bad = ShellPacketDecoder(maximumData: 1024)
        #expect(throws: ADBProtocolError.self) { _ = try bad.feed([9, 0, 0, 0, 0]) }
        var big = ShellPacketDecoder(maximumData: 1024)
        #expect(throws: ADBProtocolError.self) { _ = try big.feed([1, 0, 0, 1, 0]) }
        var cut = ShellPacketDecoder()
        _ = try cut.feed([1, 4, 0, 0, 0, 0x41])
        #expect(throws: ADBProtocolError.self) { try cut.finish() }
    }

    /// 100,000 mutated streams: every one ends in messages or a named error, never a crash, a
    /// hang or an allocation beyond the limit; what decodes accounts for every byte before it.
    @Test func survivesAHundredThousandMutatedMessages() {
        var random = SplitMix(seed: 0xADB)
        let commands = Array(ADBCommand.known)
        var outcomes = (decoded: 0, failed: 0, partial: 0)
        var codes: Set<ADBProtocolError.Code> = []
        for _ in 0..<100_000 {
            let checksum: ADBChecksum = random.next() % 2 == 0 ? .byteSum : .skipped
            var stream: [UInt8] = []
            for _ in 0..<(1 + random.next() % 3) {
                let payload = (0..<(random.next() % 48)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let command = commands[Int(random.next() % UInt64(commands.count))]
                stream += ADBMessage(command, UInt32(truncatingIfNeeded: random.next()), 0, payload: payload).encoded(checksum: checksum)
            }
            switch random.next() % 5 {
            case 0, 1:  // flip bytes
                for _ in 0..<(1 + random.next() % 3) { stream[Int(random.next() % UInt64(stream.count))] ^= UInt8(1 + random.next() % 255) }
            case 2:  // cut
                stream.removeLast(Int(random.next() % UInt64(stream.count)))
            case 3:  // a huge or odd length
                stream[12..<16] = [UInt8(random.next() & 0xFF), UInt8(random.next() & 0xFF), UInt8(random.next() & 0xFF), 0xFF][...]
            default:  // splice in garbage
                let at = Int(random.next() % UInt64(stream.count))
                stream.insert(contentsOf: (0..<(1 + random.next() % 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
            }
            var decoder = ADBMessageDecoder(maximumPayload: 4096, checksum: checksum)
            var decodedBytes = 0
            do {
                var index = 0
                while index < stream.count {
                    let step = 1 + Int(random.next() % 64)
                    let messages = try decoder.feed(stream[index..<min(index + step, stream.count)])
                    decodedBytes += messages.reduce(0) { $0 + ADBProtocol.headerSize + $1.payload.count }
                    if messages.contains(where: { $0.payload.count > 4096 }) { Issue.record("a payload over the limit came through") }
                    index += step
                }
                if decodedBytes + decoder.pendingBytes != stream.count { Issue.record("bytes unaccounted for") }
                try decoder.finish()
                outcomes.decoded += 1
            } catch {
                codes.insert(error.code)
                if error.offset > UInt64(stream.count) { Issue.record("error offset \(error.offset) beyond \(stream.count) bytes") }
                if error.code == .truncated { outcomes.partial += 1 } else { outcomes.failed += 1 }
            }
        }
        #expect(outcomes.decoded > 1000 && outcomes.failed > 1000 && outcomes.partial > 1000, "\(outcomes)")
        #expect(codes == [.badMagic, .unknownCommand, .oversizePayload, .checksumMismatch, .truncated], "\(codes)")
    }
}

/// A small deterministic generator, so a failing fuzz case can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

