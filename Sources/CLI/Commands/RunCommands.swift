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
