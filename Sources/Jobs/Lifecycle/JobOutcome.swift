// SPDX-License-Identifier: Apache-2.0
import Evidence
import Foundation
import Imaging
import StatusAPI
import Store

/// A job's failure with how the job ended: `interrupted` (resumable) or `failed`.
public struct JobStop: Error, CustomStringConvertible, Sendable {
    public let underlying: any Error & Sendable
    public let state: JobState
    /// What else the technician must know of the stop, said after the error.
    public let note: String?
    public var description: String { "\(underlying)" + (note.map { " (\($0))" } ?? "") }

    public init(underlying: any Error & Sendable, state: JobState, note: String? = nil) {
        self.underlying = underlying
        self.state = state
        self.note = note
    }

    /// Whether the job stopped because the store is full, whichever layer said so (the
    /// store's own writes, or an image writer's): what resumes it is room in the store.
    public static func isStoreFull(_ error: any Error) -> Bool {
        let cause = cause(of: error)
        return (cause as? StoreError)?.code == .storeFull || (cause as? AcquisitionError)?.code == .storeFull
    }

    /// The error a job met, under the stage (`JobError`) and the decision (`JobStop`) that wrap it.
    public static func cause(of error: any Error) -> any Error {
        var current: any Error = error
        while true {
            if let job = current as? JobError { current = job.underlying } else if let stop = current as? JobStop { current = stop.underlying } else { return current }
        }
    }
}

/// What `exhibit acquire --json` prints.
public struct AcquisitionSummary: Codable, Sendable {
    public var jobId: String
    public var bundleId: String
    public var bundlePath: String
    public var caseId: String
    public var exhibitId: String
    public var source: String
    public var sizeBytes: UInt64
    public var mediaSHA256: String
    public var digests: [String: String]
    public var durationSeconds: Double
    public var averageMBPerSecond: Double
    public var verification: String
    public var unreadableSectors: UInt64
    public var sealSHA256: String
}

/// Where a job is, for progress lines and the daemon's status.
public struct JobProgress: Sendable {
    public enum Phase: String, Sendable { case acquiring, recovering, verifying, sealing }
    public var phase: Phase
    public var bytesDone: UInt64
    public var totalBytes: UInt64
    public var unreadableSectors: UInt64
    /// Bytes the first pass skipped, to be read again by the second.
    public var skippedBytes: UInt64 = 0
    /// Seconds since this phase began in this run.
    public var elapsed: TimeInterval
    /// `bytesDone` when this phase began in this run (a resumed job's earlier bytes), for rates.
    public var startBytes: UInt64 = 0

    public init(
        phase: Phase, bytesDone: UInt64, totalBytes: UInt64, unreadableSectors: UInt64, skippedBytes: UInt64 = 0,
        elapsed: TimeInterval, startBytes: UInt64 = 0
    ) {
        self.phase = phase
        self.bytesDone = bytesDone
        self.totalBytes = totalBytes
        self.unreadableSectors = unreadableSectors
        self.skippedBytes = skippedBytes
        self.elapsed = elapsed
        self.startBytes = startBytes
    }
}

/// A failure of a job as a whole, with the stage it happened in.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let stage: String
    public let underlying: any Error & Sendable
    public let jobId: String?

    public var description: String { "\(stage): \(underlying)" }

    /// How the job ended when it had started (`interrupted` or `failed`, as its catalog entry
    /// says); nil when it stopped before it was catalogued.
    public var stoppedAs: JobState? { (underlying as? JobStop)?.state }

    /// Runs one stage of a job; a failure is reported with the stage's name.
    /// The store's own failures, and a full store met while writing, are named as the store's,
    /// whatever stage met them.
    static func during<T>(_ name: String, _ jobId: String? = nil, _ body: () throws -> T) throws(JobError) -> T {
        do { return try body() } catch let error as JobError { throw error } catch {
            let cause = JobStop.cause(of: error)
            let isStore = cause is StoreError || JobStop.isStoreFull(cause)
            throw JobError(stage: isStore ? "store" : name, underlying: error as any Error & Sendable, jobId: jobId)
        }
    }
}
