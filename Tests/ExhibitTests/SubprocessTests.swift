// SPDX-License-Identifier: Apache-2.0
import TestSupport
import Testing

/// The harness that runs the judges and the binaries: its time limits must reach what they limit.
struct SubprocessTests {
    /// The test runner blocks SIGTERM, and children inherit that mask: `timeout` (which the VM
    /// tests rely on to end a hung guest) would signal a program that never receives it.
    @Test func aTimeLimitStopsTheProgramItLimits() throws {
        let run = try Subprocess.run(["timeout", "1", "bash", "-c", "sleep 4; echo finished"])
        #expect(run.status == 124 && !run.stdout.contains("finished"), "\(run)")
    }
}
