// swift-tools-version:6.1
import PackageDescription

// Each C library is imported by exactly one Swift module:
//   COpenSSL (libcrypto)      -> Cryptography
//   CBlockDevice (ioctls)     -> Acquisition
//   SQLite (through GRDB)     -> Store
//   CUdev (libudev)           -> Devices
//   CTerminal (wcwidth)       -> Panel
//   CUSB (libusb-1.0)         -> ADB
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
        .target(
            name: "CBlockDevice",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "Cryptography",
            dependencies: ["COpenSSL"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Acquisition",
            dependencies: [
                "CBlockDevice",
                "Cryptography",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Evidence",
            dependencies: ["Cryptography", "Acquisition"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Store",
            dependencies: [
                "Cryptography",
                "Evidence",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Devices",
            dependencies: [
                "Acquisition",
                "CUdev",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Appliance",
            dependencies: [
                "ADB",
                "Acquisition",
                "Devices",
                "Cryptography",
                "Evidence",
                "Store",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "CTerminal"),
        .target(
            name: "ADB",
            dependencies: ["CUSB"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Panel",
            dependencies: ["Appliance", "CTerminal", "Evidence", "Store"],
            resources: [.copy("Messages")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "exhibit",
            dependencies: [
                "Acquisition",
                "Appliance",
                "Panel",
                "Evidence",
                "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "exhibitd",
            dependencies: [
                "Appliance",
                "Devices",
                "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: ["ADB", "Cryptography"],
            swiftSettings: strictSettings
        ),
        // The simulated phone as a process (benchmark, trying Exhibit without a phone); not installed.
        .executableTarget(
            name: "simulated-adbd",
            dependencies: ["TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ExhibitTests",
            dependencies: [
                "ADB",
                "Acquisition",
                "Appliance",
                "Devices",
                "Cryptography",
                "Evidence",
                "Panel",
                "Store",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
