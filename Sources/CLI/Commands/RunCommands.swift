import ArgumentParser
import Experiments
import Foundation

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how far an experiment run has progressed.",
        discussion: "Reads the run directory only; safe to call while the run is going on, from any machine that sees the directory."
    )

    @Argument(help: "The run directory (the --out of `palimpsest run`).")
    var directory: String

    @Flag(help: "Also check every file of the run: no leftover temporary files or unknown unit directories, every JSON, JSONL, safetensors file and checkpoint complete and finite, each done.json consistent with its unit. Exits with 1 on any error.")
    var verify = false

    func run() throws {
        let run = try ExperimentRun.open(URL(fileURLWithPath: directory))
        print("experiment \(run.spec.name) in \(directory)")
        let names: [PlanUnit.Kind: String] = [.data: "datasets", .tokenizer: "tokenizer", .base: "base models", .stage: "stage trainings",
                                              .unlearn: "unlearning runs", .evaluateRetrained: "retrained evaluations", .compare: "comparisons"]
        var finished = 0
        for row in run.status() {
            finished += row.done
            print(String(format: "  %-22@ %4d / %-4d", names[row.kind]! as NSString, row.done, row.total))
        }
        print("  \(finished) of \(run.plan.units.count) units finished")
        if verify { Self.report(run.verify()) }
    }

    static func report(_ findings: [StoreFinding]) {
        for f in findings { print("  \(f)") }
        let errors = findings.filter { $0.severity == .error }.count
        print(errors == 0 ? "  store verified: no errors" : "  store verification: \(errors) error\(errors == 1 ? "" : "s")")
        if errors > 0 { Foundation.exit(1) }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the report of an experiment run (HTML page with plots, Markdown summary, metrics as JSONL and CSV).",
        discussion: "Uses every unit finished so far, so it also works on a run that is still going on or was interrupted."
    )

    @Argument(help: "The run directory (the --out of `palimpsest run`).")
    var directory: String

    func run() throws {
        let run = try ExperimentRun.open(URL(fileURLWithPath: directory))
        let url = try run.writeReport()
        print("report: \(url.path)")
        print("summary: \(run.store.root.appendingPathComponent("summary.md").path)")
    }
}

/// Runs an experiment in a directory: validates, plans, runs every unfinished unit, reports.
func runExperiment(_ spec: ExperimentSpec, out: String, concurrency: Int) throws -> URL {
    let run = try ExperimentRun(spec: spec, directory: URL(fileURLWithPath: out))
    try run.prepare()
    let display = ProgressDisplay(unitsTotal: run.plan.units.count)
    display.message("experiment \(spec.name): \(run.plan.units.count) units (\(run.plan.paths.count) paths × \(spec.unlearning.algorithms.count) algorithms × \(spec.seeds.count) seed\(spec.seeds.count == 1 ? "" : "s")) in \(out)")
    let worker = PipelineWorker(spec: spec, plan: run.plan)
    try Runner(plan: run.plan, store: run.store, worker: worker, concurrency: concurrency, display: display).run()
    return try run.writeReport()
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment described by a YAML file (see docs/spec.md).",
        discussion: """
        The spec is validated completely before anything runs. Every unit (datasets, tokenizer, \
        base model, each path prefix, each unlearning run, each comparison) is cached in the run \
        directory under a hash of its inputs: run the same command again after an interruption \
        and finished units are skipped. The report is written at the end (and by `palimpsest report DIR`).
        """
    )

    @Argument(help: "The experiment file.")
    var spec: String

    @Option(help: "The run directory (default: runs/<experiment name>).")
    var out: String?

    @Option(help: "Units to run at once. Each unit already uses every core, so 1 is fastest on one machine.")
    var concurrency: Int = 1

    func validate() throws {
        guard concurrency > 0 else { throw ValidationError("--concurrency must be > 0") }
    }

    func run() throws {
        let spec = try ExperimentSpec.load(contentsOf: URL(fileURLWithPath: self.spec))
        let report = try runExperiment(spec, out: out ?? "runs/\(spec.name)", concurrency: concurrency)
        print("report: \(report.path)")
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the built-in demo: the paper's protocol on a small model trained from scratch.",
        discussion: """
        Four stages (instructions, entity QA, math, safety refusals) learned in the order with the \
        safety stage at position p = 1..4, the retrained baseline, and unlearning of the safety \
        stage with GA, NPO and SimNPO; then the report. `--print-spec` prints a built-in \
        experiment file to start your own from (`demo` or `mass`).
        """
    )

    @Option(help: "The run directory.")
    var out: String = "runs/demo"

    @Option(help: "Which built-in experiment to run: demo or mass (the probability-mass experiment).")
    var experiment: String = "demo"

    @Option(help: "Print a built-in experiment file (demo or mass) and exit.")
    var printSpec: String?

    func run() throws {
        if let name = printSpec {
            guard let yaml = BuiltinSpecs.all[name] else { throw ValidationError("no built-in experiment '\(name)'; choose \(BuiltinSpecs.all.keys.sorted().joined(separator: ", "))") }
            print(yaml)
            return
        }
        guard let yaml = BuiltinSpecs.all[experiment] else { throw ValidationError("no built-in experiment '\(experiment)'; choose \(BuiltinSpecs.all.keys.sorted().joined(separator: ", "))") }
        let spec = try ExperimentSpec.parse(yaml: yaml, file: "built-in \(experiment)")
        let start = Date()
        let report = try runExperiment(spec, out: out, concurrency: 1)
        print(String(format: "finished in %.0f s", Date().timeIntervalSince(start)))
        print("report: \(report.path)")
        print("summary: \(report.deletingLastPathComponent().appendingPathComponent("summary.md").path)")
    }
}
