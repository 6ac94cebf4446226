import Foundation

/// Resources asked of Slurm for every task (the `sbatch` options of the same names).
public struct SlurmOptions: Codable, Equatable, Sendable {
    public var partition: String?
    public var time: String?
    public var cpusPerTask: Int?
    public var mem: String?
    public var account: String?

    public init(partition: String? = nil, time: String? = nil, cpusPerTask: Int? = nil, mem: String? = nil, account: String? = nil) {
        self.partition = partition; self.time = time; self.cpusPerTask = cpusPerTask; self.mem = mem; self.account = account
    }

    /// Values go into `#SBATCH` lines: one word each, so that nothing can end or extend a line.
    public func validate() throws {
        for (flag, value) in [("--partition", partition), ("--time", time), ("--mem", mem), ("--account", account)] {
            guard let value else { continue }
            if value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "#" || $0 == "'" || $0 == "\"" || $0 == "\\" }) {
                throw SlurmError("\(flag) '\(value)': expected one word (e.g. --time 2:00:00, --mem 8G)")
            }
        }
        if let time, !time.allSatisfy({ $0.isNumber || $0 == ":" || $0 == "-" }) {
            throw SlurmError("--time '\(time)': expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")
        }
        if let cpusPerTask, cpusPerTask < 1 { throw SlurmError("--cpus-per-task must be ≥ 1, got \(cpusPerTask)") }
    }

    /// The `#SBATCH` lines for these resources.
    var directives: [String] {
        var lines: [String] = []
        if let partition { lines.append("--partition=\(partition)") }
        if let account { lines.append("--account=\(account)") }
        if let time { lines.append("--time=\(time)") }
        if let cpusPerTask { lines.append("--cpus-per-task=\(cpusPerTask)") }
        if let mem { lines.append("--mem=\(mem)") }
        return lines
    }
}

public struct SlurmError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One job array of a submission: units of one topological wave; array task `i` runs `units[i]`.
public struct SlurmArray: Equatable, Sendable {
    /// e.g. `wave2` or `wave2.1` when a wave is split into several arrays.
    public var name: String
    public var units: [String]
    /// Tasks of arrays submitted before this one in the same submission: array position → task indices.
    public var needs: [Int: Set<Int>]
    /// Jobs of earlier submissions still queued or running (`JOBID` or `JOBID_TASK`).
    public var needsExternal: [String]
}

/// How a plan's unfinished units become Slurm jobs: one array per topological wave of the
/// units left to run (a unit's wave is one more than the latest wave among its unfinished
/// dependencies), each array waiting (`afterok`) for exactly the tasks its units need, then
/// one report job after everything. Pure: no Slurm is needed to build or test it.
public struct SlurmJobGraph: Equatable, Sendable {
    public var arrays: [SlurmArray]
    /// Units already finished, skipped.
    public var finished: [String]
    /// Units whose task from an earlier submission is still queued or running: not submitted
    /// again, their dependents wait for that task.
    public var inFlight: [String: String]

    /// - Parameters:
    ///   - done: ids of finished units.
    ///   - inFlight: unit id → its queued or running task (`JOBID_TASK`) from an earlier submission.
    ///   - maxArraySize: Slurm's `MaxArraySize` bound (default configuration: 1001 → 1000 tasks).
    public init(plan: ExperimentPlan, done: Set<String>, inFlight: [String: String] = [:], maxArraySize: Int = 1000) throws {
        precondition(maxArraySize > 0)
        var wave: [String: Int] = [:]
        var known = Set<String>()
        var finished: [String] = [], flying: [String: String] = [:]
        var waves: [[String]] = []
        for unit in plan.units {
            defer { known.insert(unit.id) }
            if done.contains(unit.id) { finished.append(unit.id); continue }
            if let task = inFlight[unit.id] { flying[unit.id] = task; continue }
            var w = 0
            for dep in unit.dependencies {
                guard known.contains(dep) else {
                    throw SlurmError("plan: unit \(unit.id) depends on \(dep), which is not an earlier unit of the plan")
                }
                if let dw = wave[dep] { w = max(w, dw + 1) }
            }
            wave[unit.id] = w
            if waves.count <= w { waves.append(contentsOf: Array(repeating: [], count: w + 1 - waves.count)) }
            waves[w].append(unit.id)
        }
        // Arrays in wave order; a wave larger than the array limit becomes several arrays.
        var arrays: [SlurmArray] = []
        var position: [String: (array: Int, task: Int)] = [:]
        for (w, ids) in waves.enumerated() {
            let chunks = stride(from: 0, to: ids.count, by: maxArraySize).map { Array(ids[$0..<min(ids.count, $0 + maxArraySize)]) }
            for (c, chunk) in chunks.enumerated() {
                var needs: [Int: Set<Int>] = [:]
                var external = Set<String>()
                for id in chunk {
                    for dep in plan.unit(id)!.dependencies {
                        if let p = position[dep] { needs[p.array, default: []].insert(p.task) }
                        else if let task = flying[dep] { external.insert(task) }
                    }
                }
                let name = chunks.count == 1 ? "wave\(w)" : "wave\(w).\(c)"
                let index = arrays.count
                for (t, id) in chunk.enumerated() { position[id] = (index, t) }
                arrays.append(SlurmArray(name: name, units: chunk, needs: needs, needsExternal: external.sorted()))
            }
        }
        self.arrays = arrays; self.finished = finished; self.inFlight = flying
    }

    /// Nothing left to submit.
    public var isEmpty: Bool { arrays.isEmpty }

    /// The `--dependency` value of array `index` once the arrays before it have the given job
    /// ids; nil when it can start at once. A whole array is named by its job id, single tasks as
    /// `JOBID_TASK`.
    public func dependency(of index: Int, jobIDs: [String]) -> String? {
        let array = arrays[index]
        var refs: [String] = []
        for (other, tasks) in array.needs.sorted(by: { $0.key < $1.key }) {
            precondition(other < index && other < jobIDs.count, "array \(index) needs array \(other), which is not submitted before it")
            if tasks.count == arrays[other].units.count { refs.append(jobIDs[other]) }
            else { refs += tasks.sorted().map { "\(jobIDs[other])_\($0)" } }
        }
        refs += array.needsExternal
        return refs.isEmpty ? nil : "afterok:" + refs.joined(separator: ":")
    }

    /// The report job waits for every array and every task still in flight.
    public func reportDependency(jobIDs: [String]) -> String? {
        let refs = jobIDs + inFlight.values.sorted()
        return refs.isEmpty ? nil : "afterok:" + refs.joined(separator: ":")
    }
}

/// The batch scripts, written into the run directory next to the units they run.
public enum SlurmScript {
    /// Slurm reads `#SBATCH` paths unquoted and expands `%` in them: such paths are refused.
    public static func checkPath(_ path: String, what: String) throws {
        guard path.hasPrefix("/") else { throw SlurmError("\(what) '\(path)' must be an absolute path (Slurm tasks run on other machines)") }
        if let bad = path.first(where: { $0.isWhitespace || $0 == "%" || $0 == "'" || $0 == "\"" || $0 == "\\" || $0 == "$" || $0 == "`" }) {
            throw SlurmError("\(what) '\(path)' contains '\(bad)', which Slurm scripts cannot carry; choose a path without it")
        }
    }

    /// The script of one array: task `$SLURM_ARRAY_TASK_ID` runs line `TASK+1` of `unitsFile`.
    public static func array(experiment: String, submission: Int, array: SlurmArray, dependency: String?, options: SlurmOptions,
                             binary: String, runDirectory: String, unitsFile: String, logDirectory: String) -> String {
        var lines = [
            "#!/bin/bash",
            "# Palimpsest experiment '\(experiment)', submission \(submission), \(array.name): \(array.units.count) unit\(array.units.count == 1 ? "" : "s").",
            "# Array task N runs the unit on line N+1 of \(unitsFile).",
            "# Written and submitted by `palimpsest run --executor slurm`; `palimpsest status \(runDirectory)` shows progress.",
            "#SBATCH --job-name=palimpsest-\(jobName(experiment))-\(array.name)",
            "#SBATCH --array=0-\(array.units.count - 1)",
            "#SBATCH --output=\(logDirectory)/%A_%a.log",
        ]
        lines += options.directives.map { "#SBATCH " + $0 }
        if let dependency { lines += ["#SBATCH --dependency=\(dependency)", "#SBATCH --kill-on-invalid-dep=yes"] }
        lines += threadsLines
        lines.append("exec \(binary) run-unit \(runDirectory) --units-file \(unitsFile) --index \"$SLURM_ARRAY_TASK_ID\"")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The script of the job that writes the report after every unit.
    public static func report(experiment: String, submission: Int, dependency: String?, options: SlurmOptions,
                              binary: String, runDirectory: String, logDirectory: String) -> String {
        var lines = [
            "#!/bin/bash",
            "# Palimpsest experiment '\(experiment)', submission \(submission): the report, after every unit.",
            "#SBATCH --job-name=palimpsest-\(jobName(experiment))-report",
            "#SBATCH --output=\(logDirectory)/report_%j.log",
        ]
        var reportOptions = options
        reportOptions.cpusPerTask = nil
        lines += reportOptions.directives.map { "#SBATCH " + $0 }
        if let dependency { lines += ["#SBATCH --dependency=\(dependency)", "#SBATCH --kill-on-invalid-dep=yes"] }
        lines.append("set -eu")
        lines.append("exec \(binary) report \(runDirectory)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Kernels use every core they see unless told otherwise; under Slurm, the cores allocated.
    /// (Results are bit-reproducible for a fixed thread count: set PALIMPSEST_THREADS to compare runs.)
    static let threadsLines = [
        "set -eu",
        "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ] && [ -z \"${PALIMPSEST_THREADS:-}\" ]; then export PALIMPSEST_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi",
    ]

    static func jobName(_ experiment: String) -> String {
        String(experiment.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }
}

/// One line of `squeue -h -r -t all -o '%F|%K|%T'`.
public struct SlurmTaskState: Equatable, Sendable {
    /// `JOBID_TASK` for array tasks, `JOBID` otherwise.
    public var task: String
    public var state: String

    /// States in which a task will still run or is running.
    public var isActive: Bool {
        ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"].contains(state)
    }

    /// Parses squeue's output; lines that do not have the three fields are errors.
    public static func parse(squeue output: String) throws -> [SlurmTaskState] {
        try output.split(whereSeparator: \.isNewline).compactMap { raw in
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { return nil }
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 3, !f[0].isEmpty, !f[2].isEmpty else { throw SlurmError("squeue: unexpected line '\(line)' (expected JOBID|TASK|STATE)") }
            let task = (f[1].isEmpty || f[1] == "N/A") ? f[0] : "\(f[0])_\(f[1])"
            // A state can carry a suffix such as "CANCELLED by 0".
            return SlurmTaskState(task: task, state: String(f[2].split(separator: " ").first ?? ""))
        }
    }
}

/// `sbatch --parsable` prints `JOBID` or `JOBID;CLUSTER`.
public func parseSbatchJobID(_ output: String) throws -> String {
    let line = output.split(whereSeparator: \.isNewline).last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
    let id = line.split(separator: ";").first.map(String.init) ?? ""
    guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw SlurmError("sbatch printed '\(output.trimmingCharacters(in: .whitespacesAndNewlines))', expected a job id") }
    return id
}
