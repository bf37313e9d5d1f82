// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A USB device's ids and interfaces, read from its sysfs directory.
public struct USBDeviceDescription: Sendable, Equatable {
    public var syspath: String
    public var product: USBProductID
    public var manufacturer: String?
    public var productName: String?
    public var serial: String?
    public var interfaces: [USBInterfaceClass]

    /// Reads `idVendor`, `idProduct`, the strings and each interface's class triple.
    public init?(syspath: String) {
        func read(_ name: String) -> String? {
            SysfsBlockDevice.readTrimmed("\(syspath)/\(name)").flatMap { $0.isEmpty ? nil : $0 }
        }
        guard let vendor = read("idVendor"), let product = read("idProduct") else { return nil }
        self.syspath = syspath
        self.product = USBProductID(vendor: vendor, product: product)
        manufacturer = read("manufacturer")
        productName = read("product")
        serial = read("serial")
        let name = (syspath as NSString).lastPathComponent
        let children = (try? FileManager.default.contentsOfDirectory(atPath: syspath)) ?? []
        interfaces = children.filter { $0.hasPrefix(name + ":") }.sorted().compactMap { child in
            guard let classCode = read("\(child)/bInterfaceClass").flatMap({ UInt8($0, radix: 16) }),
                let subclass = read("\(child)/bInterfaceSubClass").flatMap({ UInt8($0, radix: 16) }),
                let protocolCode = read("\(child)/bInterfaceProtocol").flatMap({ UInt8($0, radix: 16) })
            else { return nil }
            return USBInterfaceClass(classCode, subclass, protocolCode)
        }
    }

    /// The USB device a block device hangs from (its bridge), found by walking up the sysfs path.
    public static func ancestor(ofBlockDevice syspath: String) -> USBDeviceDescription? {
        var directory = (syspath as NSString).deletingLastPathComponent
        while directory.count > "/sys/devices".count {
            if FileManager.default.fileExists(atPath: "\(directory)/idVendor") { return USBDeviceDescription(syspath: directory) }
            directory = (directory as NSString).deletingLastPathComponent
        }
        return nil
    }
}
