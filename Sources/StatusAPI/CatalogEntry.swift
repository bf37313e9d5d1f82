// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A row of `exhibit list`: one acquisition job and, once sealed, its bundle.
public struct CatalogEntry: Codable, Sendable {
    public var jobId: String
    public var caseId: String
    public var exhibitId: String
    public var examiner: String
    public var sourcePath: String
    public var sourceModel: String?
    public var sourceSerial: String?
    public var sizeBytes: UInt64
    /// `acquiring`, `verifying`, `sealing`, `sealed`, `failed` or `interrupted`.
    public var state: JobState
    public var startedAt: String
    public var finishedAt: String?
    public var error: String?
    public var bundleId: String?
    public var bundlePath: String?
    public var mediaSHA256: String?
    public var md5: String?
    public var sha1: String?
    public var unreadableSectors: UInt64?
    public var verification: String?
    public var sealSHA256: String?

    public init(
        jobId: String, caseId: String, exhibitId: String, examiner: String, sourcePath: String, sourceModel: String? = nil, sourceSerial: String? = nil, sizeBytes: UInt64, state: JobState, startedAt: String, finishedAt: String? = nil, error: String? = nil, bundleId: String? = nil, bundlePath: String? = nil, mediaSHA256: String? = nil, md5: String? = nil, sha1: String? = nil, unreadableSectors: UInt64? = nil, verification: String? = nil, sealSHA256: String? = nil
    ) {
        self.jobId = jobId
        self.caseId = caseId
        self.exhibitId = exhibitId
        self.examiner = examiner
        self.sourcePath = sourcePath
        self.sourceModel = sourceModel
        self.sourceSerial = sourceSerial
        self.sizeBytes = sizeBytes
        self.state = state
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.error = error
        self.bundleId = bundleId
        self.bundlePath = bundlePath
        self.mediaSHA256 = mediaSHA256
        self.md5 = md5
        self.sha1 = sha1
        self.unreadableSectors = unreadableSectors
        self.verification = verification
        self.sealSHA256 = sealSHA256
    }
}
