// SPDX-License-Identifier: Apache-2.0
import CUdev
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc

#endif

/// One device seen by discovery: at start (`present`) or in a uevent.
public struct DeviceEvent: Sendable {
    public enum Action: String, Sendable {
        case present, add, change, remove, other
    }

    public var action: Action
    /// `block` or `usb`.
    public var subsystem: String
    /// `disk`, `partition`, `usb_device`, …
    public var devtype: String?
    public var sysname: String
    public var syspath: String
    public var devnode: String?
    /// The event's properties (`ID_SERIAL`, `DISK_RO`, … where udevd ran).
    public var properties: [String: String]
}

/// Where device events come from.
public enum DiscoveryMode: Sendable, Equatable, CustomStringConvertible {
    /// udevd runs: events after its rules (read-only flag set, `ID_*` properties known).
    case udev
    /// No udevd: raw kernel uevents from netlink and attributes from sysfs.
    case kernel(reason: String)

    public var isDegraded: Bool { self != .udev }
    public var description: String {
        switch self {
        case .udev: "udev"
        case .kernel(let reason): "kernel uevents (degraded: \(reason))"
        }
    }

    /// udevd creates its control socket when it runs; libudev's own "is udev running" test looks
    /// at the same path.
    public static func detect(runDirectory: String = "/run/udev") -> DiscoveryMode {
        if FileManager.default.fileExists(atPath: "\(runDirectory)/control") { return .udev }
        return .kernel(
            reason: "udevd is not running (no \(runDirectory)/control): devices come from kernel uevents and "
                + "sysfs; no udev properties and no udev read-only rule")
    }
}

/// Enumerates block and USB devices through libudev, then follows a netlink monitor, on one
/// thread that owns every libudev object. The monitor is enabled before the enumeration, so no
/// device can slip between the two (duplicates are the receiver's to merge, by syspath).
public final class DeviceMonitor: Sendable {
    public let mode: DiscoveryMode
    private let logger: Logger
    private let wakeDescriptor: Int32
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    public init(mode: DiscoveryMode = .detect(), logger: Logger) throws(DeviceError) {
        self.mode = mode
        self.logger = logger
        wakeDescriptor = eventfd(0, Int32(EFD_CLOEXEC))
        guard wakeDescriptor >= 0 else { throw DeviceError(.monitorFailed, operation: "eventfd", errno: errno) }
    }

    deinit { close(wakeDescriptor) }

    /// Starts the monitor thread; `handler` gets every event on it, in order. Returns once the
    /// monitor listens and the enumeration was delivered, or throws why it cannot.
    public func start(_ handler: @escaping @Sendable (DeviceEvent) -> Void) throws(DeviceError) {
        let setup = Mutex<DeviceError?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            defer { finished.signal() }
            guard let udev = udev_new() else {
                setup.withLock { $0 = DeviceError(.udevUnavailable, operation: "udev_new", errno: errno) }
                ready.signal()
                return
            }
            defer { udev_unref(udev) }
            let source = mode == .udev ? "udev" : "kernel"
            guard let monitor = udev_monitor_new_from_netlink(udev, source) else {
                setup.withLock {
                    $0 = DeviceError(.monitorFailed, operation: "udev_monitor_new_from_netlink(\(source))", errno: errno)
                }
                ready.signal()
                return
            }
            defer { udev_monitor_unref(monitor) }
            udev_monitor_filter_add_match_subsystem_devtype(monitor, "block", nil)
            udev_monitor_filter_add_match_subsystem_devtype(monitor, "usb", "usb_device")
            let enabled = udev_monitor_enable_receiving(monitor)
            guard enabled >= 0 else {
                setup.withLock { $0 = DeviceError(.monitorFailed, operation: "udev_monitor_enable_receiving", errno: -enabled) }
                ready.signal()
                return
            }
            for event in Self.enumerate(udev) { handler(event) }
            ready.signal()
            Self.follow(monitor, wake: wakeDescriptor, stopped: stopped, logger: logger, handler)
        }
        thread.name = "exhibit.devices"
        thread.start()
        ready.wait()
        if let error = setup.withLock({ $0 }) { throw error }
    }

    /// Stops the monitor thread and waits for it.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, 8)
        finished.wait()
    }

    private static func enumerate(_ udev: OpaquePointer) -> [DeviceEvent] {
        guard let enumeration = udev_enumerate_new(udev) else { return [] }
        defer { udev_enumerate_unref(enumeration) }
        udev_enumerate_add_match_subsystem(enumeration, "block")
        udev_enumerate_add_match_subsystem(enumeration, "usb")
        udev_enumerate_scan_devices(enumeration)
        var events: [DeviceEvent] = []
        var entry = udev_enumerate_get_list_entry(enumeration)
        while let current = entry {
            if let path = udev_list_entry_get_name(current), let device = udev_device_new_from_syspath(udev, path) {
                if let event = describe(device, action: .present) { events.append(event) }
                udev_device_unref(device)
            }
            entry = udev_list_entry_get_next(current)
        }
        return events
    }

    private static func follow(
        _ monitor: OpaquePointer, wake: Int32, stopped: borrowing Atomic<Bool>, logger: Logger,
        _ handler: (DeviceEvent) -> Void
    ) {
        var descriptors = [
            pollfd(fd: udev_monitor_get_fd(monitor), events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
        ]
        while !stopped.load(ordering: .acquiring) {
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("device monitor: poll failed: \(String(cString: strerror(errno)))")
                return
            }
            if descriptors[1].revents != 0 { return }
            if descriptors[0].revents & Int16(POLLIN) != 0 {
                // A NULL receive is a message that failed a filter or could not be parsed;
                // ENOBUFS means the kernel dropped events, which the daemon's periodic sysfs
                // rescan makes good.
                guard let device = udev_monitor_receive_device(monitor) else { continue }
                let action = udev_device_get_action(device).map { String(cString: $0) } ?? ""
                if let event = describe(device, action: DeviceEvent.Action(rawValue: action) ?? .other) {
                    handler(event)
                }
                udev_device_unref(device)
            }
        }
    }

    private static func describe(_ device: OpaquePointer, action: DeviceEvent.Action) -> DeviceEvent? {
        func text(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }
        guard let subsystem = text(udev_device_get_subsystem(device)),
            let syspath = text(udev_device_get_syspath(device)),
            let sysname = text(udev_device_get_sysname(device))
        else { return nil }
        let devtype = text(udev_device_get_devtype(device))
        if subsystem == "usb", devtype != "usb_device" { return nil }
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            if let name = text(udev_list_entry_get_name(current)) {
                properties[name] = text(udev_list_entry_get_value(current)) ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        return DeviceEvent(
            action: action, subsystem: subsystem, devtype: devtype, sysname: sysname, syspath: syspath,
            devnode: text(udev_device_get_devnode(device)), properties: properties)
    }
}
