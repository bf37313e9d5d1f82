// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The image format a job is asked for, as the command line (`--format`, `--compression`), the
/// daemon's configuration and a job's journal name it. The job turns it into its `ImageFormat`.
public enum ImageFormatChoice: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The media stream byte for byte (dd).
    case raw
    /// Expert Witness (EnCase 6) through libewf, its chunks compressed so.
    case e01(Compression)

    public enum Compression: String, Codable, Sendable, CaseIterable {
        /// Chunks stored as they are (EWF keeps a checksum with each).
        case none
        /// deflate at its fastest level, as `ewfacquire -c fast`.
        case fast
        /// deflate at its best level, as `ewfacquire -c best`.
        case best
    }

    /// From the command line's or the configuration's words: `raw`, or `e01` with a compression
    /// (`fast` when none is given); nil for anything else.
    public init?(format: String, compression: String?) {
        switch format.lowercased() {
        case "raw" where compression == nil: self = .raw
        case "e01":
            guard let compression = Compression(rawValue: (compression ?? "fast").lowercased()) else { return nil }
            self = .e01(compression)
        default: return nil
        }
    }

    /// `raw`, `E01 fast`: as the panel and the status API show it.
    public var description: String {
        switch self {
        case .raw: "raw"
        case .e01(let compression): "E01 \(compression.rawValue)"
        }
    }
}
