// SPDX-License-Identifier: Apache-2.0
import Foundation

/// What happened, in the custody log of a bundle and in the store's audit trail: one vocabulary,
/// so that a hub's analyst and a court read the same words for the same events everywhere.
public enum CustodyAction: String, Codable, Sendable, CaseIterable {
    // A job's life.
    case acquisitionRequested = "acquisition-requested"
    case acquisitionStarted = "acquisition-started"
    case acquisitionResumed = "acquisition-resumed"
    case acquisitionRestarted = "acquisition-restarted"
    case acquisitionInterrupted = "acquisition-interrupted"
    case acquisitionFailed = "acquisition-failed"
    // What it proved and wrote.
    case writeProtectionVerified = "write-protection-verified"
    case continuityVerified = "continuity-verified"
    case phoneConnected = "phone-connected"
    case imageWritten = "image-written"
    case imageVerified = "image-verified"
    case logicalExtractionWritten = "logical-extraction-written"
    // Its bundle.
    case bundleSealing = "bundle-sealing"
    case bundleSealed = "bundle-sealed"
    case bundlePublished = "bundle-published"
    // The appliance and its operators.
    case caseOpened = "case-opened"
    case caseClosed = "case-closed"
    case alertAcknowledged = "alert-acknowledged"
    case developmentIdentityCreated = "development-identity-created"
    case certificateRequestWritten = "certificate-request-written"
    case deviceCertificateImported = "device-certificate-imported"
}
