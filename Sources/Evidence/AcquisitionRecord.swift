// SPDX-License-Identifier: Apache-2.0
import Foundation
import Imaging

/// `data/acquisition.json`: the machine-readable record of one acquisition.
public struct AcquisitionRecord: Codable, Sendable {
    public static let currentFormat = "exhibit-acquisition/1"

    public struct Appliance: Codable, Sendable {
        /// The device certificate's CN, also `Internal-Sender-Identifier`.
        public var id: String
        public var certificateSHA256: String
        public var certificateSubject: String
        public var certificateIssuer: String
        public var hostname: String
        /// The appliance image and root hash this ran from (ApplianceBuild.swift); absent off the image.
        public var build: ApplianceBuild? = ApplianceBuild.current

        public init(id: String, certificateSHA256: String, certificateSubject: String, certificateIssuer: String, hostname: String) {
            self.id = id
            self.certificateSHA256 = certificateSHA256
            self.certificateSubject = certificateSubject
            self.certificateIssuer = certificateIssuer
            self.hostname = hostname
        }
    }

    public struct Tool: Codable, Sendable {
        public var name: String
        public var version: String
        public var commandLine: [String]

        public init(name: String, version: String, commandLine: [String]) {
            self.name = name
            self.version = version
            self.commandLine = commandLine
        }
    }

    public struct Media: Codable, Sendable {
        public var sizeBytes: UInt64
        public var logicalSectors: UInt64
        /// Bytes after the last whole logical sector (non-zero for odd-sized files).
        public var trailingBytes: UInt64
        /// Lowercase hex digests of the stream read from the source, by algorithm (`sha256`, `md5`, `sha1`).
        public var digests: [String: String]

        public init(sizeBytes: UInt64, logicalSectors: UInt64, trailingBytes: UInt64, digests: [String: String]) {
            self.sizeBytes = sizeBytes
            self.logicalSectors = logicalSectors
            self.trailingBytes = trailingBytes
            self.digests = digests
        }
    }

    public struct ImageFile: Codable, Sendable, Equatable {
        /// Path relative to the bag root (`data/image/E1.raw`).
        public var path: String
        public var sizeBytes: UInt64
        public var sha256: String

        public init(path: String, sizeBytes: UInt64, sha256: String) {
            self.path = path
            self.sizeBytes = sizeBytes
            self.sha256 = sha256
        }
    }

    public struct Image: Codable, Sendable {
        public var format: String
        /// What else the format says of itself (E01: its compression).
        public var detail: String?
        public var segmentSize: UInt64?
        public var files: [ImageFile]

        public init(format: String, detail: String? = nil, segmentSize: UInt64? = nil, files: [ImageFile]) {
            self.format = format
            self.detail = detail
            self.segmentSize = segmentSize
            self.files = files
        }
    }

    public struct ReadPolicy: Codable, Sendable {
        public var bufferBytes: Int
        public var attemptsPerSector: Int
        public var errorGranularity: String
        public var fill: String
        /// How unreadable areas were handled: the first pass's skip, the second pass's re-reads.
        public var passes: [String]?
        public var secondsPerArea: Double?

        public init(
            bufferBytes: Int, attemptsPerSector: Int, errorGranularity: String, fill: String, passes: [String]? = nil,
            secondsPerArea: Double? = nil
        ) {
            self.bufferBytes = bufferBytes
            self.attemptsPerSector = attemptsPerSector
            self.errorGranularity = errorGranularity
            self.fill = fill
            self.passes = passes
            self.secondsPerArea = secondsPerArea
        }
    }

    /// A stop of the job before it finished (source unplugged, store full, power cut), and where
    /// it went on from.
    public struct Interruption: Codable, Sendable {
        public var at: String
        /// The first byte not yet durably written when the job stopped; it resumed here.
        public var resumedAtOffset: UInt64
        public var reason: String
        /// How the resumed job proved, before reading on, that the bytes it already held are
        /// still what the source gives (a source changed while the job was stopped would
        /// otherwise be sealed as a mix of two states).
        public var continuityCheck: String?

        public init(at: String, resumedAtOffset: UInt64, reason: String, continuityCheck: String? = nil) {
            self.at = at
            self.resumedAtOffset = resumedAtOffset
            self.reason = reason
            self.continuityCheck = continuityCheck
        }
    }

    public struct Verification: Codable, Sendable {
        /// `matched`, `mismatched` or `skipped`.
        public var result: String
        public var method: String
        public var sha256: String?
        public var durationSeconds: Double?
        /// SHA-256 of each `windowSize` bytes of the stream, so that a later change can be located.
        public var windowSize: UInt64?
        public var windowSHA256: [String]?
        /// With a read-back during the first pass: SHA-256's intermediate hash value (FIPS 180-4,
        /// 6.2) after each whole window of the stream, which the stored image's matched. A later
        /// change is located at the first window whose value differs.
        public var windowChainSHA256: [String]?

        public init(result: String, method: String, sha256: String? = nil, durationSeconds: Double? = nil, windowSize: UInt64? = nil, windowSHA256: [String]? = nil,
            windowChainSHA256: [String]? = nil
        ) {
            self.result = result
            self.method = method
            self.sha256 = sha256
            self.durationSeconds = durationSeconds
            self.windowSize = windowSize
            self.windowSHA256 = windowSHA256
            self.windowChainSHA256 = windowChainSHA256
        }
    }

    public var format: String = AcquisitionRecord.currentFormat
    public var bundleId: String
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    public var organization: String
    public var appliance: Appliance
    public var tool: Tool
    public var source: SourceIdentity
    public var startedAt: Date
    public var finishedAt: Date
    public var durationSeconds: Double
    public var averageMBPerSecond: Double
    public var media: Media
    public var image: Image
    public var readPolicy: ReadPolicy
    public var unreadableRanges: [UnreadableRange]
    public var unreadableSectors: UInt64
    public var verification: Verification
    public var warnings: [String]
    public var interruptions: [Interruption]?
    /// Present for phones.
    public var phone: PhoneExtraction?

    public var mediaSHA256: String { media.digests["sha256"] ?? "" }

    public init(bundleId: String, caseId: String, exhibitId: String, examiner: String, organization: String, appliance: Appliance, tool: Tool, source: SourceIdentity, startedAt: Date, finishedAt: Date, durationSeconds: Double, averageMBPerSecond: Double, media: Media, image: Image, readPolicy: ReadPolicy, unreadableRanges: [UnreadableRange], unreadableSectors: UInt64, verification: Verification, warnings: [String]) {
        self.bundleId = bundleId
        self.caseId = caseId
        self.exhibitId = exhibitId
        self.examiner = examiner
        self.organization = organization
        self.appliance = appliance
        self.tool = tool
        self.source = source
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationSeconds = durationSeconds
        self.averageMBPerSecond = averageMBPerSecond
        self.media = media
        self.image = image
        self.readPolicy = readPolicy
        self.unreadableRanges = unreadableRanges
        self.unreadableSectors = unreadableSectors
        self.verification = verification
        self.warnings = warnings
    }
}
