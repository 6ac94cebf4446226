import Foundation
import Testing
@testable import Experiments

/// Hostile experiment files and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct SpecHostileInputTests {
    /// /dev/zero never ends: refused unread.
    @Test func endlessFilesAreRefusedUnread() {
        do {
            _ = try ExperimentSpec.load(contentsOf: URL(fileURLWithPath: "/dev/zero"))
            Issue.record("expected a refusal")
        } catch let e as SpecError {
            #expect(e.file == "/dev/zero" && e.description.contains("not a regular file"), "\(e)")
        } catch { Issue.record("unexpected \(error)") }
    }
}
