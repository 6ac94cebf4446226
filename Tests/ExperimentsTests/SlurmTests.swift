import Foundation
import Testing
@testable import Experiments
import Datasets

/// Expands a `--dependency` value into the set of tasks it waits for, given each array's size.
private func expand(_ dependency: String?, sizes: [String: Int]) -> Set<String> {
    guard let dependency else { return [] }
    #expect(dependency.hasPrefix("afterok:"))
    var tasks = Set<String>()
    for ref in dependency.dropFirst("afterok:".count).split(separator: ":").map(String.init) {
        if let n = sizes[ref] { for i in 0..<n { tasks.insert("\(ref)_\(i)") } } else { tasks.insert(ref) }
    }
    return tasks
}

/// A fake sbatch/squeue: hands out job ids from 100, keeps the scripts it was given.
private final class FakeSlurm: SlurmCommandRunner {
    var next = 100
    var submitted: [(id: String, script: String)] = []
    var squeueOutput = ""
    var sbatchFailure: String?
    /// Fail from the n-th sbatch call on (counting from 0).
    var failFrom: Int?
    var calls = 0
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        switch tool {
        case "sbatch":
            defer { calls += 1 }
            if let sbatchFailure, calls >= (failFrom ?? 0) { return (1, "", sbatchFailure) }
            let script = try String(contentsOfFile: arguments.last!, encoding: .utf8)
            let id = String(next); next += 1
            submitted.append((id, script))
            return (0, "\(id);cluster\n", "")
        case "squeue": return (0, squeueOutput, "")
        default: throw SlurmError("unexpected tool \(tool)")
        }
    }
}

/// A worker that writes a file and fails on request.
private struct MarkWorker: UnitWorker {
    let failOn: String?
    func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        if unit.id == failOn { throw StoreError(path: unit.id, message: "injected failure") }
        try writeAtomically(Data(unit.id.utf8), to: directory.appendingPathComponent("out.txt"))
        return ["out": "out.txt"]
    }
}

private let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

@Suite(.serialized) struct SlurmTests {
    let spec: ExperimentSpec
    let plan: ExperimentPlan
    init() throws {
        spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke)
        plan = ExperimentPlan(spec: spec)
    }

    func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-slurm-\(UUID().uuidString)")
    }

    /// Every unit is in exactly one array, after the arrays of its dependencies, and each array
    /// waits for exactly the tasks its units need.
    func checkGraph(_ graph: SlurmJobGraph, done: Set<String>, inFlight: [String: String]) {
        let ids = graph.arrays.indices.map { String(500 + $0) }
        var taskOf: [String: String] = inFlight
        var sizes: [String: Int] = [:]
        for (i, array) in graph.arrays.enumerated() {
            sizes[ids[i]] = array.units.count
            var needed = Set<String>()
            for unit in array.units {
                for dep in plan.unit(unit)!.dependencies where !done.contains(dep) {
                    let task = taskOf[dep]
                    #expect(task != nil, "\(unit) needs \(dep), which is neither finished nor in an earlier array")
                    if let task { needed.insert(task) }
                }
            }
            #expect(expand(graph.dependency(of: i, jobIDs: Array(ids.prefix(i))), sizes: sizes) == needed)
            for (t, unit) in array.units.enumerated() { taskOf[unit] = "\(ids[i])_\(t)" }
        }
        let all = graph.arrays.flatMap(\.units)
        #expect(Set(all).count == all.count)
        #expect(Set(all).union(done).union(inFlight.keys) == Set(plan.units.map(\.id)))
        #expect(Set(graph.finished) == done)
        // The report waits for everything submitted or in flight.
        #expect(expand(graph.reportDependency(jobIDs: ids), sizes: sizes) == Set(taskOf.values))
    }

    @Test func wavesAndDependenciesOfAFreshRun() throws {
        let graph = try SlurmJobGraph(plan: plan, done: [])
        checkGraph(graph, done: [], inFlight: [:])
        #expect(graph.arrays.map(\.name) == (0..<graph.arrays.count).map { "wave\($0)" })
        #expect(graph.arrays[0].units == ["data"] && graph.dependency(of: 0, jobIDs: []) == nil)
        #expect(graph.arrays[1].units == ["tokenizer"] && graph.dependency(of: 1, jobIDs: ["7"]) == "afterok:7")
        // smoke: 3 orders (safety inserted at each position of instructions, entities) → stage
        // prefixes of length 1, 2, 3 in waves 3, 4, 5; the retrained path (length 2) is evaluated
        // in wave 5 too; unlearning (3 paths × 2 algorithms) in wave 6, then the comparison.
        #expect(graph.arrays.map(\.units.count) == [1, 1, 1, 2, 3, 3 + 1, 3 * 2, 1])
        // Unlearning needs only the length-3 prefixes of wave 5 (named task by task) and the data (whole array).
        let unlearn = graph.dependency(of: 6, jobIDs: ["10", "11", "12", "13", "14", "15"])!
        #expect(unlearn.hasPrefix("afterok:10:15_"))
        #expect(!unlearn.contains(":15:") && !unlearn.hasSuffix(":15"))
    }

    @Test func resumingSkipsFinishedAndWaitsForTasksInFlight() throws {
        let done: Set<String> = ["data", "tokenizer"]
        let graph = try SlurmJobGraph(plan: plan, done: done, inFlight: ["s1/base": "42_0"])
        checkGraph(graph, done: done, inFlight: ["s1/base": "42_0"])
        #expect(graph.arrays[0].units == plan.units.filter { $0.kind == .stage && $0.prefix.count == 1 }.map(\.id))
        #expect(graph.dependency(of: 0, jobIDs: []) == "afterok:42_0")
        #expect(graph.inFlight == ["s1/base": "42_0"])
        // Everything finished: nothing to submit.
        #expect(try SlurmJobGraph(plan: plan, done: Set(plan.units.map(\.id))).isEmpty)
        // A finished unit in the middle: its dependents do not wait for anything of it.
        let mid = Set(plan.units.prefix(3).map(\.id))
        checkGraph(try SlurmJobGraph(plan: plan, done: mid), done: mid, inFlight: [:])
    }

    @Test func largeWavesAreSplitIntoSeveralArrays() throws {
        let graph = try SlurmJobGraph(plan: plan, done: [], maxArraySize: 2)
        checkGraph(graph, done: [], inFlight: [:])
        #expect(graph.arrays.allSatisfy { $0.units.count <= 2 })
        #expect(graph.arrays.map(\.name).contains("wave6.2") && graph.arrays.map(\.name).contains("wave3"))
        #expect(graph.arrays.count == 1 + 1 + 1 + 1 + 2 + 2 + 3 + 1)
    }

    @Test func scriptsCarryResourcesDependenciesAndTheUnitList() throws {
        let options = SlurmOptions(partition: "gpu", time: "1-02:00:00", cpusPerTask: 4, mem: "8G", account: "lab")
        try options.validate()
        let array = SlurmArray(name: "wave3", units: ["a", "b", "c"], needs: [:], needsExternal: [])
        let script = SlurmScript.array(experiment: "my exp", submission: 2, array: array, dependency: "afterok:5:6_1", options: options,
                                       binary: "/opt/p/palimpsest", runDirectory: "/shared/run", unitsFile: "/shared/run/slurm/002-wave3.units",
                                       logDirectory: "/shared/run/slurm/logs")
        let lines = script.split(separator: "\n").map(String.init)
        #expect(lines.first == "#!/bin/bash")
        for expected in ["#SBATCH --job-name=palimpsest-my_exp-wave3", "#SBATCH --array=0-2", "#SBATCH --output=/shared/run/slurm/logs/%A_%a.log",
                         "#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=1-02:00:00", "#SBATCH --cpus-per-task=4",
                         "#SBATCH --mem=8G", "#SBATCH --dependency=afterok:5:6_1", "#SBATCH --kill-on-invalid-dep=yes",
                         "exec /opt/p/palimpsest run-unit /shared/run --units-file /shared/run/slurm/002-wave3.units --index \"$SLURM_ARRAY_TASK_ID\""] {
            #expect(lines.contains(expected), "missing: \(expected)")
        }
        // sbatch stops reading #SBATCH lines at the first command.
        let firstCommand = lines.firstIndex { !$0.hasPrefix("#") }!
        #expect(lines[firstCommand...].allSatisfy { !$0.hasPrefix("#SBATCH") })
        let plain = SlurmScript.report(experiment: "e", submission: 1, dependency: nil, options: SlurmOptions(), binary: "/b/palimpsest",
                                       runDirectory: "/r", logDirectory: "/r/slurm/logs")
        #expect(!plain.contains("--dependency") && !plain.contains("--partition") && plain.contains("exec /b/palimpsest report /r\n"))
        #expect(plain.contains("#SBATCH --output=/r/slurm/logs/report_%j.log"))
    }

    @Test func badOptionsAndPathsAreRefusedClearly() throws {
        #expect(throws: SlurmError.self) { try SlurmOptions(time: "2 hours").validate() }
        #expect(throws: SlurmError.self) { try SlurmOptions(time: "2h").validate() }
        #expect(throws: SlurmError.self) { try SlurmOptions(cpusPerTask: 0).validate() }
        #expect(throws: SlurmError.self) { try SlurmOptions(partition: "a\n#SBATCH --x").validate() }
        #expect(throws: SlurmError.self) { try SlurmScript.checkPath("runs/x", what: "dir") }
        #expect(throws: SlurmError.self) { try SlurmScript.checkPath("/a b/x", what: "dir") }
        #expect(throws: SlurmError.self) { try SlurmScript.checkPath("/a%j/x", what: "dir") }
        try SlurmScript.checkPath("/shared/runs/smoke-1.x", what: "dir")
        let error = #expect(throws: SlurmError.self) { _ = try SystemSlurmCommands().run("palimpsest-no-such-tool", []) }
        #expect(error?.description.contains("not found on PATH") == true)
    }

    @Test func parsesSbatchAndSqueueOutput() throws {
        #expect(try parseSbatchJobID("123\n") == "123")
        #expect(try parseSbatchJobID("456;cluster\n") == "456")
        #expect(throws: SlurmError.self) { try parseSbatchJobID("Submitted batch job\n") }
        #expect(throws: SlurmError.self) { try parseSbatchJobID("") }
        let states = try SlurmTaskState.parse(squeue: "5|2|COMPLETED\n5|1|FAILED\n6|N/A|PENDING\n7|0|CANCELLED by 0\n\n")
        #expect(states == [.init(task: "5_2", state: "COMPLETED"), .init(task: "5_1", state: "FAILED"),
                           .init(task: "6", state: "PENDING"), .init(task: "7_0", state: "CANCELLED")])
        #expect(states.map(\.isActive) == [false, false, true, false])
        #expect(throws: SlurmError.self) { try SlurmTaskState.parse(squeue: "5 2 RUNNING\n") }
    }

    @Test func submitWritesScriptsRecordsJobsAndResubmitsOnlyWhatIsLeft() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try ExperimentRun(spec: spec, directory: root)
        try run.prepare()
        let fake = FakeSlurm()
        let executor = SlurmExecutor(run: run, options: SlurmOptions(time: "10"), binary: "/opt/palimpsest", commands: fake)
        let first = try executor.submit()
        #expect(first.jobIDs == (0..<8).map { String(100 + $0) } && first.reportJobID == "108")
        #expect(fake.submitted.count == 9)
        #expect(fake.submitted[1].script.contains("#SBATCH --dependency=afterok:100\n"))
        #expect(fake.submitted[8].script.contains("#SBATCH --dependency=afterok:" + (100..<108).map(String.init).joined(separator: ":") + "\n"))
        let units = try String(contentsOf: root.appendingPathComponent("slurm/001-wave3.units"), encoding: .utf8)
        #expect(units.split(separator: "\n").map(String.init) == first.graph.arrays[3].units)
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("slurm/001-report.sbatch").path))
        let record = try #require(try SlurmExecutor.readRecord(root))
        #expect(record.submissions.count == 1 && record.submissions[0].arrays.map(\.jobID) == first.jobIDs)

        // data, tokenizer and base finished; the wave-3 tasks are still queued; the rest failed or were cancelled.
        for id in ["data", "tokenizer", "s1/base"] { try run.store.markDone(plan.unit(id)!, seconds: 1, outputs: [:]) }
        fake.squeueOutput = "100|0|COMPLETED\n101|0|COMPLETED\n102|0|COMPLETED\n103|0|PENDING\n103|1|RUNNING\n104|0|CANCELLED\n"
        let second = try executor.submit()
        #expect(Set(second.graph.finished) == ["data", "tokenizer", "s1/base"])
        #expect(second.graph.inFlight.count == 2 && second.graph.inFlight.values.sorted() == ["103_0", "103_1"])
        #expect(second.jobIDs.first == "109" && fake.submitted[9].script.contains("#SBATCH --dependency=afterok:103_"))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("slurm/002-wave0.sbatch").path))
        #expect(try SlurmExecutor.readRecord(root)?.submissions.count == 2)

        // An sbatch error is reported with sbatch's own message.
        fake.sbatchFailure = "sbatch: error: invalid partition specified: nope"
        let error = #expect(throws: SlurmError.self) { try executor.submit() }
        #expect(error?.description.contains("invalid partition specified: nope") == true)
        #expect(error?.description.contains("stay queued") == false)
        // Failing half-way: the jobs already queued are recorded and named.
        let fresh = tempDir()
        defer { try? FileManager.default.removeItem(at: fresh) }
        let run2 = try ExperimentRun(spec: spec, directory: fresh)
        try run2.prepare()
        let fake2 = FakeSlurm()
        fake2.sbatchFailure = "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy"
        fake2.failFrom = 2
        let partial = #expect(throws: SlurmError.self) { try SlurmExecutor(run: run2, options: SlurmOptions(), binary: "/p", commands: fake2).submit() }
        #expect(partial?.description.contains("jobs 100, 101 of this submission stay queued") == true)
        #expect(try SlurmExecutor.readRecord(fresh)?.submissions.first?.arrays.map(\.jobID) == ["100", "101"])
    }

    @Test func runUnitRunsOneUnitAndStatusReadsMarkersAndSlurmStates() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try ExperimentRun(spec: spec, directory: root)
        try run.prepare()
        let failing = "s1/instructions"
        let runner = Runner(plan: plan, store: run.store, worker: MarkWorker(failOn: failing), display: quiet)
        #expect(throws: RunError.self) { try runner.runUnit("tokenizer") }   // its dependency is not finished
        #expect(throws: StoreError.self) { try runner.runUnit("no/such/unit") }
        #expect(try runner.runUnit("data"))
        #expect(try !runner.runUnit("data"))                                  // finished: skipped
        try runner.runUnit("tokenizer"); try runner.runUnit("s1/base")
        #expect(throws: RunError.self) { try runner.runUnit(failing) }
        let failedUnit = plan.unit(failing)!
        #expect(run.store.failedMarker(of: failedUnit)?.error?.contains("injected failure") == true)
        #expect(run.store.startedMarker(of: failedUnit) == nil)

        // Without Slurm: from the markers alone.
        var states = Dictionary(uniqueKeysWithValues: UnitStatus.read(run: run, record: nil, slurmStates: nil).map { ($0.unit, $0) })
        #expect(states["data"]?.state == .done && states["s1/base"]?.state == .done)
        #expect(states[failing]?.state == .failed && states[failing]?.detail?.contains("injected failure") == true)
        #expect(states["s1/safety"]?.state == .waiting)

        // With a record of Slurm tasks: running, killed by Slurm, cancelled after a failure, queued.
        let killed = plan.unit("s1/safety+instructions")!
        run.store.markStarted(killed)   // a task that Slurm then stopped at its time limit
        #expect(UnitStatus.read(run: run, record: nil, slurmStates: nil).first { $0.unit == killed.id }?.state == .running)
        let record = SlurmRecord(submissions: [.init(number: 1, time: "", arrays: [
            .init(jobID: "20", name: "wave3", script: "", units: [failing, "s1/safety"]),
            .init(jobID: "21", name: "wave4", script: "", units: [killed.id, "s1/instructions+safety", "s1/instructions+entities"]),
        ], reportJobID: "22")])
        let slurm = ["20_0": "FAILED", "20_1": "RUNNING", "21_0": "TIMEOUT", "21_1": "CANCELLED", "21_2": "PENDING"]
        states = Dictionary(uniqueKeysWithValues: UnitStatus.read(run: run, record: record, slurmStates: slurm).map { ($0.unit, $0) })
        #expect(states[failing]?.state == .failed && states[failing]?.log == root.appendingPathComponent("slurm/logs/20_0.log").path)
        #expect(states["s1/safety"]?.state == .running && states["s1/safety"]?.log?.hasSuffix("slurm/logs/20_1.log") == true)
        #expect(states[killed.id]?.state == .failed && states[killed.id]?.detail?.contains("TIMEOUT") == true)
        #expect(states["s1/instructions+safety"]?.state == .waiting)
        #expect(states["s1/instructions+entities"]?.state == .queued)
        // Slurm has forgotten the tasks: the started marker without completion is a failure.
        states = Dictionary(uniqueKeysWithValues: UnitStatus.read(run: run, record: record, slurmStates: [:]).map { ($0.unit, $0) })
        #expect(states[killed.id]?.state == .failed && states["s1/instructions+entities"]?.state == .waiting)

        // A retry that succeeds clears the failure.
        try Runner(plan: plan, store: run.store, worker: MarkWorker(failOn: nil), display: quiet).runUnit(failing)
        #expect(run.store.failedMarker(of: failedUnit) == nil && run.store.completion(of: failedUnit) != nil)
    }
}
