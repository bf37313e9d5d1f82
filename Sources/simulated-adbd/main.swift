// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport

// The simulated phone as a process, for the benchmark, the USB test in a VM and trying Exhibit
// by hand:
//   simulated-adbd --root DIR [--tree [--userdata-mib N]] [--rooted] [--auth off|allow|never] [--allow-after SECONDS]
//                  [--serial S] [--functionfs FFS_DIR] [--hostile-listings] [--cut-payload-before-connect]
// (--hostile-listings: a tampered adbd whose /sdcard/Hostile lists forged names and directories
// that list themselves; see HostileListing; --cut-payload-before-connect: each connection begins
// with an earlier session's WRTE header and only part of its payload, as a pulled cable leaves them)
// prints "port N" once it listens on 127.0.0.1 (and "functionfs FFS_DIR" once the USB
// function's descriptors are written) and serves until killed.

let arguments = Array(CommandLine.arguments.dropFirst())
func value(_ name: String, in arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
guard let root = value("--root") else {
    FileHandle.standardError.write(
        Data(
            ("usage: simulated-adbd --root DIR [--tree [--userdata-mib N]] [--rooted] [--auth off|allow|never] "
                + "[--allow-after SECONDS] [--serial S] [--functionfs DIR] [--hostile-listings] [--cut-payload-before-connect]\n").utf8))
    exit(2)
}
if arguments.contains("--tree") {
    try SimulatedPhoneTree.create(at: root, userdataSize: (value("--userdata-mib").flatMap(Int.init) ?? 24) << 20)
}
if arguments.contains("--hostile-listings") { try HostileListing.create(at: root) }
var phone = value("--serial").map { SimulatedPhone(root: root, serial: $0) } ?? SimulatedPhone(root: root)
phone.rooted = arguments.contains("--rooted")
phone.deniedPaths = [SimulatedPhoneTree.deniedDirectory]
phone.authorization = ["allow": .allowWhenAsked, "never": .neverAllowed][value("--auth") ?? "off"] ?? .off
phone.authorizationDelay = value("--allow-after").flatMap(TimeInterval.init) ?? 0
phone.hostileListings = arguments.contains("--hostile-listings")
if arguments.contains("--cut-payload-before-connect") { phone.strayMessagesBeforeConnect = .cutPayload }
let device = try SimulatedAndroidDevice(phone)
FileHandle.standardOutput.write(Data("port \(device.port)\n".utf8))
if let directory = value("--functionfs") {
    let frontEnd = try FunctionFSFrontEnd(device: device, directory: directory)
    FileHandle.standardOutput.write(Data("functionfs \(frontEnd.directory)\n".utf8))
}
while true { sleep(3600) }
