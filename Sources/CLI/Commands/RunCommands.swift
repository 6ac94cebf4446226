import ArgumentParser
import Engine
import Experiments
import FileSupport
import Foundation

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how far an experiment run has progressed.",
        discussion: """
        Reads the run directory only (and, for a run submitted to Slurm, asks squeue for its \
        tasks); safe to call while the run is going on, from any machine that sees the directory. \
        Lists running and failed units, with the Slurm log of a failed task.
        """
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
            let name = names[row.kind]!
            print("  " + name + String(repeating: " ", count: max(1, 23 - name.count)) + String(format: "%4d / %d", row.done, row.total))
        }
        print("  \(finished) of \(run.plan.units.count) units finished")

        let record = try SlurmExecutor.readRecord(run.store.root)
        var slurmStates: [String: String]?
        if let record {
            do { slurmStates = try SlurmExecutor.taskStates(jobIDs: record.jobIDs, commands: SystemSlurmCommands()) } catch {
                print("  (Slurm states unknown: \(error))")
            }
            if let report = record.submissions.last?.reportJobID, let state = slurmStates?[report] {
                print("  report job \(report): \(state.lowercased())")
            }
        }
        let units = UnitStatus.read(run: run, record: record, slurmStates: slurmStates)
        let count = { (s: UnitStatus.State) in units.filter { $0.state == s }.count }
        print("  running \(count(.running)), queued \(count(.queued)), failed \(count(.failed)), not started \(count(.waiting))")
        for u in units where u.state == .running {
            print("  running: \(u.unit)" + (u.detail.map { " (\($0))" } ?? "") + (u.log.map { "\n    log: \($0)" } ?? ""))
        }
        for u in units where u.state == .failed {
            print("  FAILED: \(u.unit)" + (u.detail.map { ": \($0)" } ?? "") + (u.log.map { "\n    log: \($0)" } ?? ""))
        }
        if count(.failed) > 0 {
            print("  submit again (the same `palimpsest run` command) to retry failed units; finished units are kept")
        }

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

/// `--concurrency`: a number of units, or `auto` (from the cores and the memory budget).
enum Concurrency: ExpressibleByArgument, Equatable, CustomStringConvertible {
    case auto
    case units(Int)

    init?(argument: String) {
        if argument == "auto" { self = .auto } else if let n = Int(argument), n > 0 { self = .units(n) } else { return nil }
    }

    var description: String { switch self { case .auto: return "auto"; case .units(let n): return "\(n)" } }

    /// The number of units; `auto` is one per core, as many as the memory budget holds at the
    /// spec's estimated peak per unit.
    func resolve(for spec: ExperimentSpec, message: (String) -> Void) throws -> Int {
        guard case .auto = self else { if case .units(let n) = self { return n }; return 1 }
        let budget = try MemoryBudget.limit()
        let peak = UnitMemory.peakBytes(spec: spec)
        let cores = Parallel.globalThreads
        let n = UnitMemory.autoConcurrency(cores: cores, budgetBytes: budget?.bytes, unitPeakBytes: peak)
        message("--concurrency auto: \(n) unit\(n == 1 ? "" : "s") at once (\(cores) cores; "
                + (peak.map { "about \(MemoryBudget.format($0)) per unit" } ?? "unit memory unknown")
                + (budget.map { " of \(MemoryBudget.format($0.bytes)), \($0.source)" } ?? "") + ")")
        return n
    }
}

/// The options of the local executor that `run` and `demo` share.
struct LocalExecutorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Units to run at once (local executor): a number, or auto, the default (one per core, as many as memory holds).",
                               valueName: "n|auto"))
    var concurrency: Concurrency?

    @Option(help: "Kernel threads of each running unit (default: the cores divided among the units running).")
    var threadsPerUnit: Int?

    func validate() throws {
        if let threadsPerUnit, threadsPerUnit < 1 { throw ValidationError("--threads-per-unit must be > 0, got \(threadsPerUnit)") }
    }
}

/// Runs an experiment in a directory: validates, plans, runs every unfinished unit, reports.
func runExperiment(_ spec: ExperimentSpec, out: String, options: LocalExecutorOptions = LocalExecutorOptions()) throws -> URL {
    let run = try ExperimentRun(spec: spec, directory: URL(fileURLWithPath: out))
    try run.prepare()
    let display = ProgressDisplay(unitsTotal: run.plan.units.count)
    display.message("experiment \(spec.name): \(run.plan.units.count) units (\(run.plan.paths.count) paths × \(spec.unlearning.algorithms.count) algorithms × \(spec.seeds.count) seed\(spec.seeds.count == 1 ? "" : "s")) in \(out)")
    // Auto by default: a small model's unit keeps two cores only partly busy (evaluation,
    // generation, many short kernels), so two units side by side finished the demo 1.2–1.6x
    // sooner on 2 cores, with identical results (docs/guide.md).
    let concurrency = try (options.concurrency ?? .auto).resolve(for: spec) { display.message($0) }
    let worker = PipelineWorker(spec: spec, plan: run.plan)
    try Runner(plan: run.plan, store: run.store, worker: worker, concurrency: concurrency,
               threadsPerUnit: options.threadsPerUnit, display: display).run()
    return try run.writeReport()
}

/// Absolute path of this executable, for Slurm tasks to run.
func currentExecutablePath() -> String {
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"), path.hasPrefix("/") { return path }
    let arg0 = CommandLine.arguments[0]
    if arg0.hasPrefix("/") { return arg0 }
    if arg0.contains("/") { return URL(fileURLWithPath: arg0).standardizedFileURL.path }
    return SystemSlurmCommands.which(arg0) ?? arg0
}

enum Executor: String, ExpressibleByArgument, CaseIterable {
    case local, slurm
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment described by a YAML file (see docs/spec.md).",
        discussion: """
        The spec is validated completely before anything runs. Every unit (datasets, tokenizer, \
        base model, each path prefix, each unlearning run, each comparison) is cached in the run \
        directory under a hash of its inputs: run the same command again after an interruption \
        and finished units are skipped. The report is written at the end (and by `palimpsest report DIR`).

        With `--executor slurm` the units are submitted to Slurm instead (see docs/cluster.md): \
        one job array per wave of independent units, each waiting (afterok) for the tasks it \
        needs, then a job that writes the report. The scripts, unit lists and task logs are \
        written under DIR/slurm/. `--out` must be an absolute path on a filesystem the compute \
        nodes share. Submitting again skips finished units and units still queued or running, \
        and retries failed ones; `palimpsest status DIR` shows progress.
        """
    )

    @Argument(help: "The experiment file.")
    var spec: String

    @Option(help: "The run directory (default: runs/<experiment name>).")
    var out: String?

    @OptionGroup var local: LocalExecutorOptions

    @Option(help: "Where units run: local (here, the default) or slurm (submitted with sbatch).")
    var executor: Executor = .local

    @Option(help: "Slurm: the partition (sbatch --partition).")
    var partition: String?

    @Option(help: "Slurm: the time limit of each task, e.g. 30, 2:00:00 or 1-00 (sbatch --time).")
    var time: String?

    @Option(help: "Slurm: cores per task (sbatch --cpus-per-task); the task's kernels use that many threads.")
    var cpusPerTask: Int?

    @Option(help: "Slurm: memory per node of a task, e.g. 8G (sbatch --mem).")
    var mem: String?

    @Option(help: "Slurm: the account charged (sbatch --account).")
    var account: String?

    func validate() throws {
        if executor == .local {
            let given = [("--partition", partition), ("--time", time), ("--mem", mem), ("--account", account), ("--cpus-per-task", cpusPerTask.map(String.init))]
                .filter { $0.1 != nil }.map(\.0)
            if !given.isEmpty { throw ValidationError("\(given.joined(separator: ", ")) apply only with --executor slurm") }
        } else if local.concurrency != nil || local.threadsPerUnit != nil {
            throw ValidationError("--concurrency and --threads-per-unit apply only with --executor local (a Slurm task's kernels use its --cpus-per-task)")
        } else if let out, !out.hasPrefix("/") {
            throw ValidationError("--executor slurm needs --out as an absolute path on a filesystem the compute nodes share (got '\(out)')")
        } else if out == nil {
            throw ValidationError("--executor slurm needs --out: an absolute path on a filesystem the compute nodes share")
        }
    }

    func run() throws {
        let spec = try ExperimentSpec.load(contentsOf: URL(fileURLWithPath: self.spec))
        let out = self.out ?? "runs/\(spec.name)"
        switch executor {
        case .local:
            let report = try runExperiment(spec, out: out, options: local)
            print("report: \(report.path)")
        case .slurm:
            let options = SlurmOptions(partition: partition, time: time, cpusPerTask: cpusPerTask, mem: mem, account: account)
            try options.validate()
            let run = try ExperimentRun(spec: spec, directory: URL(fileURLWithPath: out))
            try run.prepare()
            let executor = SlurmExecutor(run: run, options: options, binary: currentExecutablePath())
            let result = try executor.submit { print($0) }
            let g = result.graph
            if !result.jobIDs.isEmpty || result.reportJobID != nil {
                print("\(g.arrays.map(\.units.count).reduce(0, +)) units submitted in \(g.arrays.count) array\(g.arrays.count == 1 ? "" : "s"); \(g.finished.count) finished, \(g.inFlight.count) still queued or running from before")
                print("progress: palimpsest status \(out)")
            }
        }
    }
}

struct RunUnit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-unit",
        abstract: "Run one unit of a prepared run directory (what each Slurm task runs).",
        discussion: """
        Runs exactly one unit, as `palimpsest run` would, and records its completion atomically. \
        A finished unit is skipped; a unit whose dependencies are not finished is refused. \
        Name the unit, or give a file of unit ids (one a line) and a 0-based index into it.
        """
    )

    @Argument(help: "The run directory.")
    var directory: String

    @Argument(help: "The unit id (as in DIR/plan.json).")
    var unit: String?

    @Option(help: "A file of unit ids, one a line (the .units files under DIR/slurm/).")
    var unitsFile: String?

    @Option(help: "The 0-based line of --units-file (a Slurm array task passes $SLURM_ARRAY_TASK_ID).")
    var index: Int?

    func validate() throws {
        switch (unit, unitsFile, index) {
        case (.some, nil, nil), (nil, .some, .some): break
        default: throw ValidationError("give either a unit id or both --units-file and --index")
        }
        if let index, index < 0 { throw ValidationError("--index must be ≥ 0, got \(index)") }
    }

    func run() throws {
        let id: String
        if let unit { id = unit } else {
            let file = unitsFile!, index = index!
            // Bounded: a FIFO or a link to /dev/zero would never end.
            guard let data = try? readBoundedFile(atPath: file, limit: 16 << 20), let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("\(file): cannot read the unit list")
            }
            let ids = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
            guard index < ids.count else { throw ValidationError("\(file): --index \(index) is past its \(ids.count) units") }
            id = ids[index]
        }
        let run = try ExperimentRun.open(URL(fileURLWithPath: directory))
        let display = ProgressDisplay(unitsTotal: 1)
        let worker = PipelineWorker(spec: run.spec, plan: run.plan)
        let start = Date()
        if try Runner(plan: run.plan, store: run.store, worker: worker, display: display).runUnit(id) {
            print(String(format: "unit %@ finished in %.1f s", id, Date().timeIntervalSince(start)))
        } else {
            print("unit \(id) was already finished")
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the built-in demo: the paper's protocol on a small model trained from scratch.",
        discussion: """
        Four stages (instructions, entity QA, math, safety refusals) learned in the order with the \
        safety stage at position p = 1..4, the retrained baseline, and unlearning of the safety \
        stage with GA, NPO and SimNPO; then the report. `--experiment` runs another built-in \
        experiment: demo-seeds (the demo with three seeds), scaled (the protocol on a larger \
        model and data; docs/guide.md gives run times), mass (the probability-mass experiment) \
        or smoke (seconds). `--print-spec` prints one to start your own from.
        """
    )

    @Option(help: "The run directory.")
    var out: String = "runs/demo"

    @Option(help: "Which built-in experiment to run: demo, demo-seeds, scaled, mass or smoke.")
    var experiment: String = "demo"

    @Option(help: "Print a built-in experiment file (demo, demo-seeds, scaled, mass or smoke) and exit.")
    var printSpec: String?

    @OptionGroup var local: LocalExecutorOptions

    func run() throws {
        if let name = printSpec {
            guard let yaml = BuiltinSpecs.all[name] else { throw ValidationError("no built-in experiment '\(name)'; choose \(BuiltinSpecs.all.keys.sorted().joined(separator: ", "))") }
            print(yaml)
            return
        }
        guard let yaml = BuiltinSpecs.all[experiment] else { throw ValidationError("no built-in experiment '\(experiment)'; choose \(BuiltinSpecs.all.keys.sorted().joined(separator: ", "))") }
        let spec = try ExperimentSpec.parse(yaml: yaml, file: "built-in \(experiment)")
        let start = Date()
        let report = try runExperiment(spec, out: out, options: local)
        print(String(format: "finished in %.0f s", Date().timeIntervalSince(start)))
        print("report: \(report.path)")
        print("summary: \(report.deletingLastPathComponent().appendingPathComponent("summary.md").path)")
    }
}
