// SPDX-License-Identifier: Apache-2.0

/// The name and version recorded in every bundle (`tool` in acquisition.json, `uco-tool:Tool`).
public enum ToolVersion {
    public static let name = "Exhibit"
    public static let version = "0.1.0"
}
