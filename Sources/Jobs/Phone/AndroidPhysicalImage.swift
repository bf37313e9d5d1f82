// SPDX-License-Identifier: Apache-2.0
import Android
import Evidence
import Foundation
import Imaging
import Store

extension AndroidDriver {
    /// Whether a partition is imaged, and why the methods not achieved were not.
    struct PhysicalPlan {
        var partition: (path: String, size: UInt64)?
        var methodsNotAchieved: [PhoneExtraction.Method]
    }

    /// A written physical image: its file, digests and what the record says of it.
    struct PhysicalImage {
        var file: AcquisitionRecord.ImageFile
        var digests: [String: String]
        var record: PhoneExtraction.Physical
    }

    /// The partition asked for, if root allows it, with the size the phone gives for it.
    func physicalPlan(_ job: RunningJob, session: Session, commands: CommandAudit) throws -> PhysicalPlan {
        let device = session.device
        var plan = PhysicalPlan(partition: nil, methodsNotAchieved: [])
        if let requested = request.physicalPartition {
            if device.root {
                let sizeOutput = try commands.run(session.asRoot("blockdev --getsize64 \(requested)"), name: "blockdev-size")
                guard sizeOutput.record.exitStatus == 0 || sizeOutput.record.exitStatus == nil,
                    let size = UInt64(String(decoding: sizeOutput.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                    size > 0
                else {
                    throw AcquisitionError(
                        .sourceNotFound, path: "\(sourceName) \(requested)",
                        detail: "the phone gives no size for the partition (see \(sizeOutput.record.stdoutFile))")
                }
                plan.partition = (requested, size)
            } else {
                plan.methodsNotAchieved.append(.init(method: "physical", reason: "requested, but \(device.rootDetail)"))
                job.log.note("physical image of \(requested) requested but not possible: \(device.rootDetail)", level: .warning)
            }
        } else {
            plan.methodsNotAchieved.append(
                .init(method: "physical", reason: device.root ? "not requested (root was available)" : "not requested; \(device.rootDetail)"))
        }
        plan.methodsNotAchieved.append(.init(method: "file-system", reason: "not implemented by this version of Exhibit"))
        return plan
    }

    /// The partition streamed through `exec:` into the digests and a raw image, made read-only.
    /// Unless `--no-verify`, each window of the image is read back from the store while the rest
    /// streams (as a disk's is), and its GMAC must equal that of the bytes the phone sent.
    func physicalImage(
        _ job: RunningJob, partition: (path: String, size: UInt64), session: Session, pulledBytes: UInt64, total: UInt64
    ) throws -> PhysicalImage {
        let command = session.asRoot("cat \(partition.path)")
        let imageDirectory = "\(job.bag)/data/image"
        try FileManager.default.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)
        let format = RawImage()
        let writer = try format.writer(
            directory: imageDirectory, baseName: BundleName.fileSafe(state.exhibitId), totalSize: partition.size,
            keepFree: EvidenceStore.recordReserve, resumingAt: nil)
        let sha256 = StreamDigester(.sha256)
        let extra = request.extraDigests.filter { $0 != .sha256 }.map { StreamDigester($0) }
        let stream = try connection.open("exec:\(command)")
        defer { stream.close() }
        let source = PhoneStreamSource(stream: stream, path: "\(sourceName) \(partition.path)", size: partition.size)
        job.log.note("physical image of \(partition.path) (\(partition.size) bytes) through exec:\(command)")
        let check =
            request.verifyAfterWriting
            ? WindowCheck(windowSize: VerificationWindows.size(for: partition.size), totalSize: partition.size) : nil
        // A raw image always reads back while written; were it not, confirm() would find no window compared.
        if let check { _ = writer.readBackWhileWriting(check: check) }
        let readBack: [any StreamConsumer] = check.map { [WindowTagger($0)] } ?? []
        let outcome = try Pipeline.run(
            source, into: [sha256, writer] + extra + readBack, configuration: request.pipeline, cancellation: job.cancellation
        ) {
            job.progress(
                JobProgress(phase: .acquiring, bytesDone: pulledBytes + $0.bytesDone, totalBytes: total, unreadableSectors: 0, elapsed: $0.elapsed))
        }
        try source.checkEnd()
        let digest = sha256.result!.hex
        var digests = ["sha256": digest]
        for digester in extra { digests[digester.algorithm.rawValue] = digester.result!.hex }
        job.log.note("image SHA-256 \(digest), \(String(format: "%.1f", Double(partition.size) / max(outcome.elapsed, 0.001) / 1e6)) MB/s")
        job.custody.append(
            actor: job.applianceId, action: .imageWritten, object: job.object,
            details: ["bytes": String(partition.size), "sha256": digest, "partition": partition.path])
        if let check {
            try check.confirm(path: imageDirectory)
            job.log.note("image read back while it was written: all \(check.windowCount) windows of \(check.windowSize) bytes as streamed")
        }
        try writer.makeReadOnly()
        return PhysicalImage(
            file: .init(path: "data/image/\(writer.fileNames[0])", sizeBytes: partition.size, sha256: digest), digests: digests,
            record: .init(partition: partition.path, sizeBytes: partition.size, command: "exec:\(command)"))
    }
}
