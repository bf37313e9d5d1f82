// SPDX-License-Identifier: Apache-2.0
import Foundation
import Store

// The appliance daemon (hotplug discovery, write-block enforcement, concurrent jobs, status API)
// is built in its own issue. Until then this executable only checks the store it would serve and
// says plainly that it does not run jobs, so nothing mistakes it for a working daemon.
let arguments = CommandLine.arguments.dropFirst()
guard let index = arguments.firstIndex(of: "--store"), arguments.index(after: index) < arguments.endIndex else {
    FileHandle.standardError.write(Data("usage: exhibitd --store DIR\n".utf8))
    exit(64)
}
let store = EvidenceStore(root: arguments[arguments.index(after: index)])
do {
    let settings = try store.settings()
    FileHandle.standardError.write(
        Data("exhibitd: store \(store.root) of appliance \(settings.applianceId) is ready; the daemon is not implemented yet: use `exhibit acquire`\n".utf8))
    exit(69)
} catch {
    FileHandle.standardError.write(Data("exhibitd: \(error)\n".utf8))
    exit(1)
}
