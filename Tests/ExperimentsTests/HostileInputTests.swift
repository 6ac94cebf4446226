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

    /// Fuzz finding: `unlearning.steps: 4444444444444441` with the default evaluation schedule
    /// (every step) made the reader allocate 35 PB for the list of evaluation steps.
    @Test func hugeStepCountsGiveABoundedEvaluationSchedule() throws {
        func parse(_ evaluation: String) throws -> ExperimentSpec {
            try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke.replacingOccurrences(of: "  steps: 3\n", with: "  steps: 4444444444444441\n")
                                     .replacingOccurrences(of: "\nevaluation:\n", with: "\nevaluation:\n" + evaluation))
        }
        for evaluation in ["", "  every: 1\n"] {
            do {
                _ = try parse(evaluation)
                Issue.record("expected a SpecError")
            } catch let e as SpecError {
                #expect(e.description.contains("more than 100000 evaluations"), "\(e)")
            }
        }
        let spec = try parse("  every: 1000000000000\n")
        #expect(spec.evaluation.steps.count == 4446 && spec.evaluation.steps.last == 4444444444444441)
    }
}
