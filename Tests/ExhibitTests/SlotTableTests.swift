// SPDX-License-Identifier: Apache-2.0
import ADB
import Foundation
import Imaging
import StatusAPI
import Store
import Testing

@testable import Daemon
@testable import Jobs

/// The daemon's slot transitions, in process: which job a slot takes, and whose reports it heeds.
@Suite struct SlotTableTests {
    static func slot(_ state: SlotState, jobId: String? = nil) -> DaemonSlot {
        DaemonSlot(
            status: SlotStatus(
                slot: 1, kind: .disk, device: "/dev/sdb", syspath: "/sys/block/sdb", sizeBytes: 1 << 30, partitions: [], state: state,
                jobId: jobId, bytesDone: 0, unreadableSectors: 0, digests: [:], updatedAt: "-"),
            arrivedAt: Date())
    }

    static func progress(_ bytes: UInt64, _ phase: JobProgress.Phase = .acquiring) -> JobProgress {
        JobProgress(phase: phase, bytesDone: bytes, totalBytes: 1 << 30, unreadableSectors: 0, elapsed: 2)
    }

    /// What a stopped job asks of the technician is read from its cause under the stage and the
    /// decision that wrap it: a full store says so whether the store's own write (the catalog,
    /// the journal) or the image writer met it.
    @Test func whatResumesAStoppedJobIsNamedByItsCause() {
        func resumeBy(_ cause: any Error & Sendable) -> ResumeAction {
            ApplianceDaemon.resumeAction(
                after: JobError(stage: "store", underlying: JobStop(underlying: cause, state: .interrupted), jobId: "j"))
        }
        #expect(resumeBy(AcquisitionError(.storeFull, path: "/store/work/j/image.raw", offset: 4096)) == .freeStoreSpace)
        #expect(resumeBy(StoreError(.storeFull, path: "/store/catalog.sqlite", errno: ENOSPC, detail: "full")) == .freeStoreSpace)
        #expect(resumeBy(StoreError(.insufficientSpace, path: "/store", detail: "needs 1 GB")) == .freeStoreSpace)
        #expect(resumeBy(AcquisitionError(.sourceBecameWritable, path: "/dev/sdb", offset: 0)) == .makeReadOnly)
        #expect(resumeBy(AcquisitionError(.sourceVanished, path: "/dev/sdb", offset: 0)) == .reconnectDevice)
        #expect(resumeBy(StoreError(.catalog, path: "/store/catalog.sqlite", detail: "locked")) == .reconnectDevice)
    }

    /// A job taken up again that stops before its lifecycle takes it over (CI: a replugged
    /// phone's handshake met a stale message) is still interrupted, as the catalog keeps it; the
    /// slot had said "failed" while the job waited to be resumed.
    @Test func aResumedJobThatStopsBeforeItBeginsIsStillInterrupted() {
        let handshake = JobError(
            stage: "connect",
            underlying: ADBError(.protocolViolation, operation: "receive", device: "usb:1-1", "WRTE announces 1048576 payload bytes"),
            jobId: "j")
        #expect(ApplianceDaemon.endState(after: handshake, resumed: true, interruptsByKind: false) == .interrupted)
        #expect(ApplianceDaemon.endState(after: handshake, resumed: false, interruptsByKind: false) == .failed)
        #expect(ApplianceDaemon.endState(after: handshake, resumed: false, interruptsByKind: true) == .interrupted)
        // A phone that needs the technician first: a new job's slot is ready again; a job taken
        // up again stays interrupted (its alert had gone with the slot's job).
        let unauthorized = JobError(
            stage: "connect", underlying: ADBError(.unauthorized, operation: "AUTH", device: "usb:1-1", "tap Allow"), jobId: "j")
        let outcome = (interrupted: false, phoneState: PhoneState?.some(.unauthorized))
        #expect(ApplianceDaemon.phoneEndState(after: unauthorized, resumed: false, outcome: outcome) == .ready)
        #expect(ApplianceDaemon.phoneEndState(after: unauthorized, resumed: true, outcome: outcome) == .interrupted)
        // The job's own decision stands either way.
        let decided = JobError(
            stage: "source", underlying: JobStop(underlying: AcquisitionError(.readFailed, path: "/dev/sdb"), state: .failed), jobId: "j")
        #expect(ApplianceDaemon.endState(after: decided, resumed: true, interruptsByKind: true) == .failed)
    }

    @Test func aReadySlotTakesOneJobAndNoSecond() {
        var slot = Self.slot(.ready)
        let took = slot.claim(jobId: "a", caseId: "C", exhibitId: "E1", resuming: false, cancellation: CancellationFlag(), now: Date())
        #expect(took)
        #expect(slot.status.state == .acquiring && slot.status.jobId == "a" && slot.cancellation != nil)
        let tookAgain = slot.claim(jobId: "b", caseId: "C", exhibitId: "E2", resuming: false, cancellation: CancellationFlag(), now: Date())
        #expect(!tookAgain)
        #expect(slot.status.jobId == "a")
    }

    @Test(arguments: [SlotState.refused, .sealed, .failed, .interrupted, .acquiring])
    func onlyAReadySlotTakesANewJob(_ state: SlotState) {
        var slot = Self.slot(state, jobId: state == .sealed || state == .failed || state == .interrupted ? "old" : nil)
        let took = slot.claim(jobId: "new", caseId: "C", exhibitId: "E1", resuming: false, cancellation: CancellationFlag(), now: Date())
        #expect(!took)
        #expect(slot.status.state == state)
    }

    @Test func anInterruptedSlotTakesOnlyTheJobItResumes() {
        var slot = Self.slot(.interrupted, jobId: "old")
        let took = slot.claim(jobId: "old", caseId: "C", exhibitId: "E1", resuming: true, cancellation: CancellationFlag(), now: Date())
        #expect(took)
        #expect(slot.status.state == .acquiring && slot.status.detail == "resuming interrupted job old")
    }

    @Test func reportsOfAnotherJobAreIgnored() {
        var slot = Self.slot(.ready)
        _ = slot.claim(jobId: "a", caseId: "C", exhibitId: "E1", resuming: false, cancellation: CancellationFlag(), now: Date())
        let heeded = slot.record(Self.progress(100), jobId: "stale", now: Date())
        #expect(!heeded)
        #expect(slot.status.bytesDone == 0)
        let ended = slot.finish(jobId: "stale", state: .failed, detail: "x", summary: nil, now: Date())
        #expect(!ended)
        #expect(slot.status.state == .acquiring)
        let changed = slot.setPhoneState(.locked, jobId: "stale", now: Date())
        #expect(!changed)
    }

    @Test func progressSetsPhaseRatesAndTimeLeft() {
        var slot = Self.slot(.ready)
        _ = slot.claim(jobId: "a", caseId: "C", exhibitId: "E1", resuming: false, cancellation: CancellationFlag(), now: Date())
        let start = Date()
        let heeded = slot.record(Self.progress(100_000_000), jobId: "a", now: start)
        #expect(heeded)
        let heededAgain = slot.record(Self.progress(300_000_000, .verifying), jobId: "a", now: start.addingTimeInterval(1))
        #expect(heededAgain)
        #expect(slot.status.state == .verifying && slot.status.bytesDone == 300_000_000)
        #expect(slot.status.currentMBPerSecond == nil, "a new phase starts a new rate")
        let heeded3 = slot.record(Self.progress(500_000_000, .verifying), jobId: "a", now: start.addingTimeInterval(2))
        #expect(heeded3)
        #expect(slot.status.currentMBPerSecond == 200)
        #expect(slot.status.averageMBPerSecond == 250 && slot.status.etaSeconds != nil)
    }

    @Test func finishingFreesTheSlotAndClearsWhatNoLongerApplies() {
        var slot = Self.slot(.ready)
        _ = slot.claim(jobId: "a", caseId: "C", exhibitId: "E1", resuming: false, cancellation: CancellationFlag(), now: Date())
        _ = slot.setPhoneState(.locked, jobId: "a", now: Date())
        let ended = slot.finish(jobId: "a", state: .sealed, detail: nil, summary: nil, now: Date())
        #expect(ended)
        #expect(slot.cancellation == nil && slot.status.phoneState == nil && slot.status.etaSeconds == nil)
        var waiting = Self.slot(.ready)
        _ = waiting.claim(jobId: "b", caseId: "C", exhibitId: "E2", resuming: false, cancellation: CancellationFlag(), now: Date())
        let endedAgain = waiting.finish(jobId: "b", state: .ready, detail: "tap Allow", summary: nil, now: Date())
        #expect(endedAgain)
        #expect(waiting.status.jobId == nil, "a phone that must be unlocked waits ready for a new job")
        let took = waiting.claim(jobId: "c", caseId: "C", exhibitId: "E2", resuming: false, cancellation: CancellationFlag(), now: Date())
        #expect(took)
    }
}
