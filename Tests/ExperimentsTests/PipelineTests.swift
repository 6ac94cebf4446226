import Datasets
import Foundation
import Testing
@testable import Experiments

/// The demo's code path end to end at the `smoke` scale: data, tokenizer, pretraining, every
/// path prefix, unlearning with evaluation, the retrained baseline, comparisons and the report.
@Suite(.serialized) struct PipelineTests {
    static let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

    func runSmoke(in root: URL, concurrency: Int = 1, threadsPerUnit: Int? = nil) throws -> (ExperimentRun, Runner.Summary) {
        let spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke)
        let run = try ExperimentRun(spec: spec, directory: root)
        try run.prepare()
        let summary = try Runner(plan: run.plan, store: run.store, worker: PipelineWorker(spec: spec, plan: run.plan),
                                 concurrency: concurrency, threadsPerUnit: threadsPerUnit, display: Self.quiet).run()
        try run.writeReport()
        return (run, summary)
    }

    @Test func smokeExperimentRunsResumesAndReports() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-smoke-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let (run, first) = try runSmoke(in: root)
        #expect(first.ran.count == run.plan.units.count)
        let (metrics, comparisons) = try run.collect()
        // 3 paths × 2 algorithms × 4 evaluations (steps 0...3), plus the retrained model.
        #expect(metrics.filter { $0.algorithm != "retrained" }.count == 3 * 2 * 4)
        #expect(metrics.filter { $0.algorithm == "retrained" }.count == 1)
        for record in metrics where record.algorithm != "retrained" {
            #expect(record.metrics["refusal_loglik"].map { $0 < 0 && $0.isFinite } == true)
            if record.step == 0 { #expect(record.metrics["forget_score"] == 0) }
        }
        // Gradient ascent lowers the refusal log-likelihood on every path.
        for p in 1...3 {
            let last = metrics.first { $0.algorithm == "ga" && $0.position == p && $0.step == 3 }!
            #expect(last.metrics["forget_score"]! > 0)
        }
        // Membership inference and TOFU at the ends of unlearning and on the retrained model.
        for record in metrics where record.step == 0 || record.step == 3 || record.algorithm == "retrained" {
            #expect(record.metrics["mia_auc"].map { $0 >= 0 && $0 <= 1 } == true)
            for key in ["tofu_probability", "tofu_rouge_l", "tofu_truth_ratio", "tofu_model_utility"] {
                #expect(record.metrics[key].map { $0 >= 0 && $0 <= 1 } == true, "\(key) of \(record.algorithm) step \(record.step)")
            }
        }
        #expect(metrics.filter { $0.step == 1 }.allSatisfy { $0.metrics["mia_auc"] == nil && $0.metrics["tofu_truth_ratio"] == nil })
        for c in comparisons {
            for row in c.toRetrained {
                #expect(row["privacy_leakage"]?.isFinite == true && row["gap_forget_score"]?.isFinite == true)
                #expect(row["gap_mia_auc"]?.isFinite == true && row["gap_fact_utility"]?.isFinite == true && row["gap_tofu_truth_ratio"]?.isFinite == true)
            }
        }
        #expect(comparisons.count == 2)
        #expect(comparisons.allSatisfy { $0.divergence.count == 3 && $0.toRetrained.allSatisfy { ($0["kl_symmetric"] ?? -1) >= 0 } })
        let html = try String(contentsOf: run.store.root.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("Forget score over unlearning steps"))
        let md = try String(contentsOf: run.store.root.appendingPathComponent("summary.md"), encoding: .utf8)
        #expect(md.contains("## Unlearning speed: steps to forget score ≥ 1") && md.contains("## Membership inference and TOFU after 3 unlearning steps: ga"))
        #expect(md.contains("## Gap to the retrained model after unlearning: npo(beta=0.5)") || md.contains("## Gap to the retrained model after unlearning: npo"))

        // Interrupted run: lose one unlearning unit and the comparison; the next run redoes only
        // those and reproduces the same numbers.
        let lost = run.plan.units.first { $0.kind == .unlearn }!
        for unit in [lost, run.plan.units.last!] {
            try FileManager.default.removeItem(at: run.store.directory(for: unit).appendingPathComponent("done.json"))
        }
        let (_, second) = try runSmoke(in: root)
        #expect(Set(second.ran) == [lost.id, run.plan.units.last!.id])
        let (again, againComparisons) = try run.collect()
        #expect(again == metrics)
        #expect(againComparisons == comparisons)
    }

    /// The same experiment run one unit at a time with 3 threads and two units at a time with 1
    /// thread each writes the same bytes: models, metrics, comparisons, report data.
    @Test func resultsDoNotDependOnConcurrencyOrThreads() throws {
        let tmp = FileManager.default.temporaryDirectory
        let a = tmp.appendingPathComponent("palimpsest-smoke-c1-\(UUID().uuidString)")
        let b = tmp.appendingPathComponent("palimpsest-smoke-c2-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let (runA, _) = try runSmoke(in: a, concurrency: 1, threadsPerUnit: 3)
        _ = try runSmoke(in: b, concurrency: 2, threadsPerUnit: 1)
        var compared = 0, differing: [String] = []
        let files = FileManager.default.enumerator(at: a, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }
        for file in files where !file.hasDirectoryPath {
            let relative = String(file.standardizedFileURL.path.dropFirst(a.standardizedFileURL.path.count))
            // Times and the log differ by nature; the report pages hold nothing else than the metrics files.
            if ["done.json", "log.jsonl", "report.html", "summary.md"].contains(file.lastPathComponent) { continue }
            guard let x = FileManager.default.contents(atPath: file.path) else { continue }
            compared += 1
            if x != FileManager.default.contents(atPath: b.path + relative) { differing.append(relative) }
        }
        #expect(differing.isEmpty, "files that differ: \(differing)")
        #expect(compared > runA.plan.units.count)
        #expect(FileManager.default.contents(atPath: a.appendingPathComponent("metrics.jsonl").path)!.count > 1000)
    }
}
