import Foundation
import Testing
@testable import Experiments

/// The probability-mass section: outcomes per stage order, classified by the documented rule.
@Suite struct MassReportTests {
    /// Two orders share forget position 3; in one the mass of U moves to C (superficial), in the
    /// other C falls below R (deep). A third order barely moves U (none).
    func records() -> [MetricRecord] {
        func r(_ path: [String], _ step: Int, c: Double, u: Double, r: Double) -> MetricRecord {
            MetricRecord(seed: 1, path: path, position: path.firstIndex(of: "U")! + 1, algorithm: "ga", step: step,
                         metrics: ["mass_loglik_c": c, "mass_loglik_u": u, "mass_loglik_r": r, "mass_share_u": step == 0 ? 0.4 : 0.1])
        }
        let superficial = ["R", "C", "U"], deep = ["C", "R", "U"], none = ["U", "R", "C"]
        return [r(superficial, 0, c: -10, u: -10, r: -12), r(superficial, 4, c: -9, u: -20, r: -12),
                r(deep, 0, c: -10, u: -10, r: -12), r(deep, 4, c: -15, u: -20, r: -12),
                r(none, 0, c: -10, u: -10, r: -12), r(none, 4, c: -10, u: -10.5, r: -12)]
    }

    @Test func outcomesPerOrderFollowTheRule() throws {
        let a = ExperimentAnalysis(records: records())
        #expect(a.orders == [["U", "R", "C"], ["C", "R", "U"], ["R", "C", "U"]])
        let outcomes = a.massOutcomes()
        #expect(outcomes.map(\.path) == a.orders)
        #expect(outcomes.map(\.depths) == [[.none], [.deep], [.superficial]])
        let deep = try #require(outcomes.first { $0.path == ["C", "R", "U"] })
        #expect(deep.initial.c.mean == -10 && deep.final.c.mean == -15 && deep.final.u.mean == -20 && deep.lastStep == 4)
        #expect(deep.finalShareU?.mean == 0.1)
        // Curves are per order, not per position: the two position-3 orders stay apart.
        #expect(a.curve("mass_loglik_c", algorithm: "ga", path: ["R", "C", "U"]).map(\.value.mean) == [-10, -9])
    }

    @Test func reportShowsTheMassTableAndNoEmptyRecencyTable() {
        let a = ExperimentAnalysis(records: records())
        let md = MarkdownReport(title: "mass", analysis: a).render()
        #expect(md.contains("## Where the probability mass went (C, U, R)"))
        #expect(md.contains("| ga | C → R → U | -10.0 → -15.0 | -10.0 → -20.0 | -12.0 → -12.0 | 0.400 → 0.100 | deep (1 of 1 seed) |"))
        #expect(md.contains("| ga | R → C → U | -10.0 → -9.0 |"))
        #expect(md.contains("superficial (1 of 1 seed)"))
        #expect(!md.contains("unlearn slowest"))  // no forget score was measured
        let html = HTMLReport(title: "mass", analysis: a).render()
        #expect(html.contains("log π(C), the paraphrase: ga"))
        #expect(html.contains("R → C → U"))
    }
}
