// SPDX-License-Identifier: Apache-2.0
import Cryptography
import Evidence
import Foundation
import HumanText

#if canImport(Glibc)
    import Glibc

#endif

/// The appliance's local store:
///
///     STORE/catalog.sqlite
///     STORE/store.json            organisation and appliance id
///     STORE/keys/                 device.key (0600), device.pem, chain.pem, agency-root.pem
///     STORE/work/<job>/           acquisitions in progress (never a sealed bundle)
///     STORE/bundles/<bundle-id>/  sealed bundles, moved in by one rename
public struct EvidenceStore: Sendable {
    public let root: String

    public init(root: String) {
        // Absolute, so that records and the catalog name the same place whatever the working directory.
        self.root = URL(fileURLWithPath: root).standardizedFileURL.path
    }

    public var keysDirectory: String { "\(root)/keys" }
    public var workDirectory: String { "\(root)/work" }
    public var bundlesDirectory: String { "\(root)/bundles" }
    /// Where a bundle is once published.
    public func bundlePath(_ bundleId: String) -> String { "\(bundlesDirectory)/\(bundleId)" }
    public var catalogPath: String { "\(root)/catalog.sqlite" }
    public var settingsPath: String { "\(root)/store.json" }
    public var deviceKeyPath: String { "\(keysDirectory)/device.key" }
    public var deviceCertificatePath: String { "\(keysDirectory)/device.pem" }
    public var chainPath: String { "\(keysDirectory)/chain.pem" }
    public var trustAnchorPath: String { "\(keysDirectory)/agency-root.pem" }
    /// Only a development store has this: the agency CA that `provision` made up because no
    /// real agency issued the device certificate.
    public var developmentCAKeyPath: String { "\(keysDirectory)/dev-agency-ca.key" }
    /// The appliance's ADB host key (RSA-2048, PEM, 0600), as `adb` keeps `~/.android/adbkey`.
    public var adbKeyPath: String { "\(keysDirectory)/adbkey" }

    public struct Settings: Codable, Sendable {
        public var organization: String
        public var applianceId: String
        public var created: String
    }

    public func settings() throws(StoreError) -> Settings {
        guard let data = FileManager.default.contents(atPath: settingsPath),
            let settings = try? JSONDecoder().decode(Settings.self, from: data)
        else {
            throw StoreError(
                .notProvisioned, path: root, detail: "no store.json; run `exhibit provision --store \(root)` first")
        }
        return settings
    }

    public func catalog() throws(StoreError) -> Catalog { try Catalog(path: catalogPath) }

    public func trustAnchors() throws(StoreError) -> [Certificate] {
        try loadCertificates(trustAnchorPath)
    }

    /// The device key, certificate and chain, checked to belong together.
    public func signingIdentity() throws(StoreError) -> SigningIdentity {
        guard FileManager.default.fileExists(atPath: deviceCertificatePath) else {
            throw StoreError(
                .notProvisioned, path: deviceCertificatePath,
                detail: "no device certificate; run `exhibit provision --store \(root)` (or import the agency's)")

        }
        let key = try loadKey(deviceKeyPath)
        let certificate = try loadCertificates(deviceCertificatePath)[0]
        guard certificate.matches(key) else {
            throw StoreError(.keys, path: deviceCertificatePath, detail: "the certificate is not for the device key")
        }
        let chain = FileManager.default.fileExists(atPath: chainPath) ? (try? loadCertificates(chainPath)) ?? [] : []
        return SigningIdentity(certificate: certificate, key: key, chain: chain)
    }

    /// The appliance's ADB key, made on first use. It must persist: a phone told "Always allow"
    /// remembers this key, so a technician taps "Allow" once per phone, not once per job.
    public func androidDebugKey() throws(StoreError) -> AndroidDebugKey {
        do {
            if let pem = FileManager.default.contents(atPath: adbKeyPath) {
                return try AndroidDebugKey(pem: pem, source: adbKeyPath)
            }
            let key = try AndroidDebugKey.generate()
            let staging = "\(adbKeyPath).\(getpid()).new"
            try DurableFile.create(staging, contents: try key.pem(), mode: 0o600)
            defer { unlink(staging) }
            // link() fails when another job made the key first; that key is the one to use.
            if link(staging, adbKeyPath) != 0 {
                guard errno == EEXIST, let pem = FileManager.default.contents(atPath: adbKeyPath) else {
                    throw StoreError(.keys, path: adbKeyPath, errno: errno, detail: "cannot store the ADB key")
                }
                return try AndroidDebugKey(pem: pem, source: adbKeyPath)
            }
            try DurableFile.syncDirectory(keysDirectory)
            let name = (try? settings().applianceId) ?? "appliance"
            try? DurableFile.create("\(adbKeyPath).pub", contents: Data((try key.publicKeyLine(name: "exhibit@\(name)") + "\n").utf8))
            return key
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.keys, path: adbKeyPath, detail: "\(error)")
        }
    }

    func loadCertificates(_ path: String) throws(StoreError) -> [Certificate] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError(.keys, path: path, errno: ENOENT, detail: "cannot read the certificate")
        }
        do {
            return try Certificate.all(pem: data, source: path)
        } catch {
            throw StoreError(.keys, path: path, detail: error.description)
        }
    }

    func loadKey(_ path: String) throws(StoreError) -> PrivateKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError(.keys, path: path, errno: ENOENT, detail: "cannot read the device key")
        }
        do {
            return try PrivateKey(pem: data, source: path)
        } catch {
            throw StoreError(.keys, path: path, detail: error.description)
        }
    }

    // MARK: Space

    /// Bytes the store's file system lets an unprivileged writer use.
    public func freeBytes() throws(StoreError) -> UInt64 {
        try capacity().free
    }

    /// Bytes available to the appliance and the file system's size.
    public func capacity() throws(StoreError) -> (free: UInt64, total: UInt64) {
        var info = statvfs()
        guard statvfs(root, &info) == 0 else { throw StoreError(.layout, path: root, errno: errno, detail: "statvfs") }
        return (UInt64(info.f_bavail) * UInt64(info.f_frsize), UInt64(info.f_blocks) * UInt64(info.f_frsize))
    }

    /// Room kept for the records, manifests and seal beside the image.
    public static let recordReserve: UInt64 = 64 << 20

    /// Refuses, before anything is written, an image the store cannot hold.
    public func ensureRoom(forImageOf size: UInt64) throws(StoreError) {
        let free = try freeBytes()
        let needed = size + Self.recordReserve
        guard free >= needed else {
            throw StoreError(
                .insufficientSpace, path: root,
                detail: "the image needs \(needed) bytes (\(ByteCount.format(needed)) with records) "
                    + "and the store has \(free) bytes (\(ByteCount.format(free))) free")
        }
    }

    // MARK: Room for the records of a stop

    /// Space set aside in the store for the journal, catalog and custody records that a job
    /// writes when it stops. Another process can fill the file system past the writer's own
    /// reserve; without this, the job could not even record that the store is full.
    public static let spaceReserveBytes = 4 << 20
    public var spaceReservePath: String { "\(root)/.space-reserve" }

    /// Allocates the reserve if it is not there (best effort: a store already full has none).
    public func ensureSpaceReserve() {
        let descriptor = open(spaceReservePath, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_size < Self.spaceReserveBytes || status.st_blocks * 512 < Self.spaceReserveBytes else { return }
        if posix_fallocate(descriptor, 0, off_t(Self.spaceReserveBytes)) != 0 { _ = ftruncate(descriptor, 0) }
    }

    /// Gives the reserve back to the file system, for the records of a stop.
    public func releaseSpaceReserve() { unlink(spaceReservePath) }

    // MARK: The daemon's hold on the store

    /// The one daemon serving this store: an exclusive lock on `STORE/exhibitd.lock`, held for
    /// the daemon's life. Two daemons on one store would each open cases and start jobs.
    public final class ServiceLock: @unchecked Sendable {
        private let descriptor: Int32
        fileprivate init(_ descriptor: Int32) { self.descriptor = descriptor }
        deinit { close(descriptor) }
    }

    public func lockForService() throws(StoreError) -> ServiceLock {
        let path = "\(root)/exhibitd.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard descriptor >= 0 else { throw StoreError(.layout, path: path, errno: errno, detail: "cannot open the daemon's lock") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            var holder = [UInt8](repeating: 0, count: 32)
            let count = pread(descriptor, &holder, holder.count, 0)
            close(descriptor)
            let pid = count > 0 ? String(decoding: holder[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw StoreError(
                .inUse, path: root, errno: error == EWOULDBLOCK ? nil : error,
                detail: "another exhibitd (pid \(pid)) already serves this store; stop it first")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.count, 0)
        return ServiceLock(descriptor)
    }

    // MARK: Jobs and bundles

    /// A job's work directory, locked by this process for as long as the job lives.
    public final class JobLease: @unchecked Sendable {
        public let jobId: String
        public let directory: String
        private var lockDescriptor: Int32

        init(jobId: String, directory: String, lockDescriptor: Int32) {
            self.jobId = jobId
            self.directory = directory
            self.lockDescriptor = lockDescriptor
        }

        deinit { release() }

        public func release() {
            if lockDescriptor >= 0 {
                close(lockDescriptor)
                lockDescriptor = -1
            }
        }
    }

    public func beginJob(id: String) throws(StoreError) -> JobLease {
        let directory = "\(workDirectory)/\(id)"
        guard mkdir(directory, 0o750) == 0 else {
            throw StoreError(.layout, path: directory, errno: errno, detail: "cannot create the job's work directory")
        }
        let lock = open("\(directory)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw StoreError(.layout, path: directory, errno: errno, detail: "cannot lock the job's work directory")
        }
        return JobLease(jobId: id, directory: directory, lockDescriptor: lock)
    }

    /// Takes over the work directory of an interrupted job, to resume it.
    public func resumeJob(id: String) throws(StoreError) -> JobLease {
        let directory = "\(workDirectory)/\(id)"
        let lock = open("\(directory)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else {
            throw StoreError(.layout, path: directory, errno: errno, detail: "cannot open the interrupted job's lock")
        }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            close(lock)
            throw StoreError(.layout, path: directory, errno: error, detail: "another process is running this job")
        }
        return JobLease(jobId: id, directory: directory, lockDescriptor: lock)
    }

    /// Brings the catalog and `work/` in line with what processes left: jobs of processes that
    /// no longer run become interrupted, and the work directories of sealed jobs are removed, which
    /// nothing would ever resume. A job is recorded sealed before its bag is moved into `bundles/`,
    /// so a process stopped between the two leaves a sealed bag in its work directory: it is
    /// published here, by the same one rename, before the work goes.
    public func reconcile(catalog: Catalog) throws(StoreError) {
        try catalog.markAbandonedJobs(isRunning: isJobRunning)
        for entry in try catalog.entries() where entry.state == .sealed {
            let work = "\(workDirectory)/\(entry.jobId)"
            guard FileManager.default.fileExists(atPath: work), !isJobRunning(entry.jobId) else { continue }
            if let bundleId = entry.bundleId {
                let bag = "\(work)/\(bundleId)"
                let moved: Bool
                do {
                    // Under the seal lock, so that two processes reconciling at once move it once.
                    moved = try withSealLock {
                        guard FileManager.default.fileExists(atPath: "\(bag)/seal.p7s"),
                            !FileManager.default.fileExists(atPath: bundlePath(bundleId))
                        else { return false }
                        _ = try publish(bag: bag, bundleId: bundleId)
                        return true
                    }
                } catch let error as StoreError {
                    throw error
                } catch {
                    throw StoreError(.publish, path: bag, detail: "\(error)")
                }
                if moved {
                    try catalog.audit(
                        actor: "store", action: .bundlePublished, object: bundleId,
                        details: [
                            "job": entry.jobId,
                            "reason": "the sealing process ended after recording the bundle and before moving it into bundles/",
                        ])
                }
            }
            try? FileManager.default.removeItem(atPath: work)
        }
    }

    /// Whether a process still holds the job's lock.
    public func isJobRunning(_ id: String) -> Bool {
        let lock = open("\(workDirectory)/\(id)/.lock", O_RDWR | O_CLOEXEC)
        guard lock >= 0 else { return false }
        defer { close(lock) }
        if flock(lock, LOCK_EX | LOCK_NB) == 0 {
            flock(lock, LOCK_UN)
            return false
        }
        return true
    }

    /// Serialises sealing across processes, so that each bundle links to the one sealed before it.
    public func withSealLock<T>(_ body: () throws -> T) throws -> T {
        let lock = open("\(root)/.seal.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw StoreError(.layout, path: "\(root)/.seal.lock", errno: errno, detail: "cannot open") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw StoreError(.layout, path: "\(root)/.seal.lock", errno: errno, detail: "cannot lock")
            }
        }
        return try body()
    }

    /// Moves a sealed bag from the job's work directory into `bundles/` with one rename, then
    /// syncs `bundles/`. Before the rename nothing is in `bundles/`; after it, all of it is.
    public func publish(bag: String, bundleId: String) throws(StoreError) -> String {
        let destination = bundlePath(bundleId)
        guard rename(bag, destination) == 0 else {
            throw StoreError(.publish, path: destination, errno: errno, detail: "rename from \(bag)")
        }
        do {
            try DurableFile.syncDirectory(bundlesDirectory)
            try DurableFile.syncDirectory((bag as NSString).deletingLastPathComponent)
        } catch {
            throw StoreError(.publish, path: bundlesDirectory, detail: error.description)
        }
        return destination
    }

    /// Removes a finished job's (now empty) work directory.
    public func removeWork(_ lease: JobLease) {
        lease.release()
        try? FileManager.default.removeItem(atPath: lease.directory)
    }
}
