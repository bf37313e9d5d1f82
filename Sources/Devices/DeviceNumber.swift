// SPDX-License-Identifier: Apache-2.0
import Foundation

#if canImport(Glibc)
    import Glibc

#endif

/// A `dev_t` as the kernel's `MAJOR:MINOR`, the form sysfs and /proc name devices by.
public enum DeviceNumber {
    public static func major(_ device: dev_t) -> UInt32 {
        UInt32(truncatingIfNeeded: ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff))
    }

    public static func minor(_ device: dev_t) -> UInt32 {
        UInt32(truncatingIfNeeded: (device & 0xff) | ((device >> 12) & ~0xff))
    }

    public static func name(_ device: dev_t) -> String { "\(major(device)):\(minor(device))" }
}
