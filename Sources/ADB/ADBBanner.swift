// SPDX-License-Identifier: Apache-2.0

/// The identity in a CNXN payload: `<systemtype>:<serial>:<banner>`, where adbd's banner is
/// `key=value` pairs separated by `;` - the product properties and `features=a,b,c`, from
/// which the host chooses protocol variants (shell_v2, stat_v2, ls_v2, sendrecv_v2, …).
public struct ADBBanner: Sendable, Equatable {
    public enum SystemType: String, Sendable, CaseIterable {
        case device, host, bootloader, recovery, sideload, rescue
    }

    public var systemType: SystemType
    public var serial: String
    /// `ro.product.name`, `ro.product.model`, `ro.product.device`, …
    public var properties: [String: String]
    public var features: Set<String>

    public init(systemType: SystemType, serial: String = "", properties: [String: String] = [:], features: Set<String> = []) {
        self.systemType = systemType
        self.serial = serial
        self.properties = properties
        self.features = features
    }

    /// Reads a CNXN payload (a trailing NUL, which some peers send, is dropped).
    public init(payload: [UInt8], offset: UInt64 = 0) throws(ADBProtocolError) {
        var bytes = payload[...]
        if bytes.last == 0 { bytes = bytes.dropLast() }
        guard bytes.count <= ADBProtocol.maximumPayloadV1 else {
            throw ADBProtocolError(.malformedBanner, offset: offset, "the banner is \(bytes.count) bytes long")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ADBProtocolError(.malformedBanner, offset: offset, "the banner is not UTF-8")
        }
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, let type = SystemType(rawValue: String(parts[0])) else {
            throw ADBProtocolError(
                .malformedBanner, offset: offset, "\"\(text.prefix(64))\" does not start with a system type (device, host, …) and a colon")
        }
        systemType = type
        serial = String(parts[1])
        properties = [:]
        features = []
        for pair in (parts.count > 2 ? parts[2] : "").split(separator: ";") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            let key = String(pair[..<equals])
            let value = String(pair[pair.index(after: equals)...])
            if key == "features" {
                features = Set(value.split(separator: ",").map(String.init))
            } else {
                properties[key] = value
            }
        }
    }

    /// The payload this banner is sent as.
    public var payload: [UInt8] {
        var banner = properties.keys.sorted().map { "\($0)=\(properties[$0]!)" }
        if !features.isEmpty { banner.append("features=" + features.sorted().joined(separator: ",")) }
        return Array("\(systemType.rawValue):\(serial):\(banner.joined(separator: ";"))".utf8)
    }
}
