// swift-tools-version:6.1
import PackageDescription

// Each C library is imported by exactly one Swift module:
//   COpenSSL (libcrypto)      -> Cryptography
//   CBlockDevice (ioctls)     -> EvidenceSources
//   SQLite (through GRDB)     -> Store
//   CUdev (libudev)           -> Devices
//   CTerminal (wcwidth)       -> Panel
//   CUSB (libusb-1.0)         -> ADB
//   CEWF (libewf, libdeflate, ISA-L) -> ExpertWitness
// Dependencies point down: HumanText, Cryptography → Imaging → Evidence → Store; Imaging →
// ExpertWitness (the E01 format, for the jobs and the verifier); Devices →
// EvidenceSources; ADB → Android; all of them → Jobs → Daemon; StatusAPI ← Panel, Daemon.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Exhibit",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "exhibit", targets: ["exhibit"]),
        .executable(name: "exhibitd", targets: ["exhibitd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CUSB",
            pkgConfig: "libusb-1.0",
            providers: [.apt(["libusb-1.0-0-dev"])]
        ),
        .systemLibrary(
            name: "CUdev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        // libewf (the 20140813 line ewf-tools is built from) writes and reads E01; ISA-L (fast)
        // and libdeflate (best) compress its chunks, libdeflate inflates them for the read-back
        // (each faster than zlib at the same or a better ratio, measured).
        .systemLibrary(
            name: "CEWF",
            pkgConfig: "libewf",
            providers: [.apt(["libewf-dev", "libdeflate-dev", "libisal-dev"])]
        ),
        .target(
            name: "CBlockDevice",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "Cryptography",
            dependencies: ["COpenSSL"],
            swiftSettings: strictSettings
        ),
        // What people type and read: names refused or escaped, byte counts (Foundation only).
        .target(name: "HumanText", swiftSettings: strictSettings),
        // The read → digests → image pipeline, image files and formats: no device code, so the
        // hub's verifier links it without the appliance's ioctls.
        .target(
            name: "Imaging",
            dependencies: ["Cryptography"],
            swiftSettings: strictSettings
        ),
        // The E01 (Expert Witness) image format through libewf: chunks compressed on every core.
        .target(
            name: "ExpertWitness",
            dependencies: ["CEWF", "Cryptography", "HumanText", "Imaging"],
            swiftSettings: strictSettings
        ),
        // The sealed bundle: records, BagIt, bag-info schema, seal, custody, CASE, verifier.
        .target(
            name: "Evidence",
            dependencies: ["Cryptography", "ExpertWitness", "HumanText", "Imaging"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Store",
            dependencies: [
                "Cryptography",
                "Evidence",
                "HumanText",
                "StatusAPI",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Device discovery: sysfs, libudev, USB classification, system disks.
        .target(
            name: "Devices",
            dependencies: [
                "CUdev",
                "HumanText",
                "Imaging",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Read-only disks and image files, proven read-only and read with skip-and-recover.
        .target(
            name: "EvidenceSources",
            dependencies: ["CBlockDevice", "Cryptography", "Devices", "HumanText", "Imaging"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ADB",
            dependencies: ["CUSB"],
            swiftSettings: strictSettings
        ),
        // Android phones: the phone source and the logical and physical extraction over ADB.
        .target(
            name: "Android",
            dependencies: ["ADB", "Cryptography", "Evidence", "HumanText", "Imaging", "StatusAPI"],
            swiftSettings: strictSettings
        ),
        // The acquisition jobs: journal, activity log, publication, the disk and phone jobs.
        .target(
            name: "Jobs",
            dependencies: [
                "ADB", "Android", "Cryptography", "Evidence", "EvidenceSources", "ExpertWitness", "HumanText", "Imaging", "StatusAPI",
                "Store", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The daemon's status protocol and its client (Foundation only): the panel's one link to it.
        .target(name: "StatusAPI", dependencies: ["HumanText"], swiftSettings: strictSettings),
        // The daemon: slots, alerts, case session, status server, sd_notify.
        .target(
            name: "Daemon",
            dependencies: [
                "Android", "Cryptography", "Devices", "Evidence", "EvidenceSources", "HumanText", "Imaging", "Jobs",
                "StatusAPI", "Store",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "CTerminal"),
        .target(
            name: "Panel",
            dependencies: ["CTerminal", "HumanText", "StatusAPI"],
            resources: [.copy("Messages")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "exhibit",
            dependencies: [
                "ADB", "Android", "Cryptography", "Evidence", "HumanText", "Imaging", "Jobs", "Panel", "StatusAPI", "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "exhibitd",
            dependencies: [
                "Daemon", "Devices", "StatusAPI", "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: ["ADB", "Cryptography", "Imaging"],
            swiftSettings: strictSettings
        ),
        // The simulated phone as a process (benchmark, trying Exhibit without a phone); not installed.
        .executableTarget(
            name: "simulated-adbd",
            dependencies: ["TestSupport"],
            swiftSettings: strictSettings
        ),
        // Drives the E01 writer from the command line: the benchmark probe and the SIGKILL test's
        // child process; not installed.
        .executableTarget(
            name: "e01-probe",
            dependencies: ["Cryptography", "ExpertWitness", "Imaging", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ExhibitTests",
            dependencies: [
                "ADB", "Android", "Cryptography", "Daemon", "Devices", "Evidence", "EvidenceSources", "ExpertWitness",
                "HumanText", "Imaging",
                "Jobs", "Panel", "StatusAPI", "Store", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
