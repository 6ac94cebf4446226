import Foundation
import Testing
@testable import Experiments
import Datasets

@Suite struct ReportTests {
    /// Forget scores that grow linearly with the step at a rate that depends on the position.
    func records(rates: [Int: [Double]]) -> [MetricRecord] {
        var out: [MetricRecord] = []
        for (seed, perPosition) in rates {
            for (i, rate) in perPosition.enumerated() {
                for step in [0, 2, 4] {
                    out.append(MetricRecord(seed: seed, path: ["p\(i + 1)"], position: i + 1, algorithm: "ga", step: step,
                                            metrics: ["forget_score": rate * Double(step), "fact_utility": 1 - 0.01 * Double(step)]))
                }
            }
        }
        return out
    }

    @Test func recencyCountsSeedsAndOrdering() {
        let a = ExperimentAnalysis(records: records(rates: [1: [3, 2, 1.5, 0.5], 2: [3, 1, 2, 0.1], 3: [1, 2, 3, 4]]))
        let f = try! #require(a.recency().first)
        #expect(f.seedsMeasured == 3)
        #expect(f.seedsWhereLastIsSlowest == 2)
        #expect(f.seedsMonotone == 1)
        // Seed 1, p=1: mean of 3·2 and 3·4 = 9.
        #expect(a.windowMean("forget_score", algorithm: "ga", position: 1, seed: 1) == 9)
        #expect(abs(f.windowMeans[4]!.mean - (1.5 + 0.3 + 12) / 3) < 1e-12)
    }

    @Test func markdownHasTheTableAndTheSpread() {
        let a = ExperimentAnalysis(records: records(rates: [1: [1.0, 0.5], 2: [1.2, 0.5]]))
        let md = MarkdownReport(title: "t", analysis: a).render()
        #expect(md.contains("## After 2 unlearning steps"))
        #expect(md.contains("## After 4 unlearning steps"))
        // p=1 at step 4: seeds give 4.0 and 4.8 → 4.40 ± 0.40.
        #expect(md.contains("| p=1 | 4.40 ± 0.40 | 0.96 ± 0.00 |"))
        #expect(md.contains("| ga | 3.30 ± 0.30 | 1.50 ± 0.00 | 2 of 2 seeds | 2 of 2 seeds |"))
    }

    @Test func metricFilesRoundTrip() throws {
        let rs = records(rates: [1: [1, 2]])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("m-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeAtomically(try MetricFiles.jsonl(rs), to: url)
        #expect(try MetricFiles.readJSONL(MetricRecord.self, from: url) == rs)
        try writeAtomically(Data("{\"seed\": 1}\n".utf8), to: url)
        #expect(throws: StoreError.self) { try MetricFiles.readJSONL(MetricRecord.self, from: url) }
        let csv = MetricFiles.csv(rs)
        #expect(csv.hasPrefix("seed,path,position,algorithm,step,fact_utility,forget_score\n"))
        #expect(csv.split(separator: "\n").count == rs.count + 1)
    }
}

@Suite struct HTMLReportTests {
    @Test func pageHoldsCurvesTablesAndHeatmap() {
        var records: [MetricRecord] = []
        for seed in [1, 2] { for p in 1...3 { for step in [0, 5, 10] {
            records.append(MetricRecord(seed: seed, path: [], position: p, algorithm: "npo", step: step,
                                        metrics: ["forget_score": Double(step) / Double(p + seed), "fact_utility": 1]))
        } } }
        records.append(MetricRecord(seed: 1, path: [], position: nil, algorithm: "retrained", step: 0, metrics: ["fact_utility": 1]))
        let comparison = ComparisonRecord(seed: 1, algorithm: "npo", labels: ["p=1", "p=2", "p=3"],
                                          divergence: [[0, 1, 2], [1, 0, 3], [2, 3, 0]], toRetrained: [["kl": 1], ["kl": 2], ["kl": 3]])
        let html = HTMLReport(title: "A <test>", analysis: ExperimentAnalysis(records: records, comparisons: [comparison])).render()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<title>A &lt;test&gt;</title>"))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 3)  // two curves + one heatmap
        #expect(!html.contains("<?xml"))
        #expect(html.contains("<th>npo: forget score</th>"))
        #expect(html.contains("Jeffreys divergence between paths: npo"))
        #expect(html.contains("<td>p=2</td><td>2.000</td>"))  // distance-to-retrained table
        // A comparison without a divergence matrix (not measured) gives no heatmap.
        var unmeasured = comparison
        unmeasured.divergence = []
        let plain = HTMLReport(title: "t", analysis: ExperimentAnalysis(records: records, comparisons: [unmeasured])).render()
        #expect(!plain.contains("Jeffreys divergence between paths"))
    }
}
