// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A USB vendor and product number, as `idVendor`/`idProduct` show them (four lowercase hex digits).
public struct USBProductID: Hashable, Codable, Sendable, CustomStringConvertible {
    public var vendor: String
    public var product: String

    public init(vendor: String, product: String) {
        self.vendor = vendor.lowercased()
        self.product = product.lowercased()
    }

    public var description: String { "\(vendor):\(product)" }
}

/// One USB interface's class triple (`bInterfaceClass`, `bInterfaceSubClass`, `bInterfaceProtocol`).
public struct USBInterfaceClass: Hashable, Codable, Sendable {
    public var classCode: UInt8
    public var subclass: UInt8
    public var `protocol`: UInt8

    public init(_ classCode: UInt8, _ subclass: UInt8, _ protocolCode: UInt8) {
        self.classCode = classCode
        self.subclass = subclass
        self.protocol = protocolCode
    }

    /// Android Debug Bridge: vendor-specific class 0xFF, subclass 0x42, protocol 0x01 (AOSP `adb/adb.h`).
    public static let adb = USBInterfaceClass(0xFF, 0x42, 0x01)
    /// Still Image / PTP, which MTP devices announce (class 6, subclass 1, protocol 1).
    public static let mtp = USBInterfaceClass(0x06, 0x01, 0x01)
    /// USB mass storage, bulk-only transport (class 8, protocol 0x50).
    public static func isMassStorage(_ interface: USBInterfaceClass) -> Bool { interface.classCode == 0x08 }
}

/// What kind of phone a USB device is; phones are announced here and acquired by their own jobs.
public enum PhoneKind: String, Codable, Sendable {
    case androidADB = "android-adb"
    case mtp
    case apple
}

/// Hardware write blockers recognised by their USB bridge's ids.
///
/// Ids from Debian's usb.ids (2025.07.26): 13d7 Guidance Software (Tableau), 0e90 WiebeTech.
/// An id is a hint that names the bridge on the panel and in the record, not proof by itself: the
/// blocker must also be what the technician sees. CRU, Digital Intelligence and Logicube bridges are
/// not in usb.ids; add them with `writeBlockers` in the daemon's configuration.
public struct WriteBlockerCatalog: Sendable {
    public private(set) var names: [USBProductID: String]

    public static let builtIn: [USBProductID: String] = [
        USBProductID(vendor: "13d7", product: "0001"): "Tableau T5 PATA forensic bridge",
        USBProductID(vendor: "13d7", product: "000c"): "Tableau T8-R2 forensic bridge",
        USBProductID(vendor: "0e90", product: "0100"): "WiebeTech Storage Adapter V1",
    ]

    public init(extra: [USBProductID: String] = [:]) {
        names = Self.builtIn.merging(extra) { _, configured in configured }
    }

    public func name(of product: USBProductID?) -> String? { product.flatMap { names[$0] } }
}

/// Classifies a USB device by its ids and interfaces.
public enum USBClassifier {
    /// Apple's USB vendor id.
    public static let appleVendor = "05ac"

    public static func phoneKind(product: USBProductID, interfaces: [USBInterfaceClass]) -> PhoneKind? {
        if interfaces.contains(.adb) { return .androidADB }
        if interfaces.contains(.mtp) { return .mtp }
        // Apple phones and tablets expose vendor-specific interfaces (usbmux 0xFF/0xFE/0x02);
        // an Apple mass-storage or HID device is not a phone.
        if product.vendor == appleVendor, interfaces.contains(where: { $0.classCode == 0xFF || $0.classCode == 0x06 }) {
            return .apple
        }
        return nil
    }
}
