import Datasets
import FileSupport
import Foundation

/// Runs a Slurm client command (`sbatch`, `squeue`). Injected so that submission can be tested
/// without Slurm.
public protocol SlurmCommandRunner {
    /// Runs `tool` with `arguments`; returns its exit status, standard output and error.
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String)
}

/// Runs the real commands, found on `PATH`.
public struct SystemSlurmCommands: SlurmCommandRunner {
    public init() {}

    public func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let path = Self.which(tool) else {
            throw SlurmError("\(tool) not found on PATH: the Slurm executor runs where the Slurm client commands are (a login node of the cluster); elsewhere use the local executor (the default)")
        }
        // Output goes to files, not pipes: a long squeue listing cannot fill a pipe and block.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-\(tool)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw SlurmError("cannot start \(path): \(error.localizedDescription)") }
        process.waitUntilExit()
        let read = { (u: URL) in (try? String(contentsOf: u, encoding: .utf8)) ?? "" }
        return (process.terminationStatus, read(out), read(err))
    }

    public static func which(_ tool: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for dir in dirs {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

/// What was submitted for a run directory: `slurm/jobs.json`.
public struct SlurmRecord: Codable, Equatable, Sendable {
    public struct Array: Codable, Equatable, Sendable {
        public var jobID: String
        public var name: String
        public var script: String
        public var units: [String]
    }
    public struct Submission: Codable, Equatable, Sendable {
        public var number: Int
        public var time: String
        public var arrays: [Array]
        public var reportJobID: String?
    }
    public var submissions: [Submission] = []

    /// The latest task of each unit: `JOBID_TASK`.
    public func latestTasks() -> [String: String] {
        var tasks: [String: String] = [:]
        for s in submissions { for a in s.arrays { for (i, unit) in a.units.enumerated() { tasks[unit] = "\(a.jobID)_\(i)" } } }
        return tasks
    }

    public var jobIDs: [String] {
        submissions.flatMap { $0.arrays.map(\.jobID) + ($0.reportJobID.map { [$0] } ?? []) }
    }
}

/// Submits a run's unfinished units to Slurm (see `SlurmJobGraph`) and reads their states back.
public struct SlurmExecutor {
    public var run: ExperimentRun
    public var options: SlurmOptions
    /// Absolute path of the `palimpsest` binary the tasks run (on the shared filesystem).
    public var binary: String
    public var commands: SlurmCommandRunner

    public init(run: ExperimentRun, options: SlurmOptions, binary: String, commands: SlurmCommandRunner = SystemSlurmCommands()) {
        self.run = run; self.options = options; self.binary = binary; self.commands = commands
    }

    public var slurmDirectory: URL { run.store.root.appendingPathComponent("slurm") }
    public var logDirectory: URL { slurmDirectory.appendingPathComponent("logs") }
    public var recordURL: URL { slurmDirectory.appendingPathComponent("jobs.json") }

    public static func readRecord(_ root: URL) throws -> SlurmRecord? {
        let url = root.appendingPathComponent("slurm/jobs.json")
        let data: Data
        do { data = try readBoundedFile(atPath: url.path, limit: maxStoreRecordBytes) } catch {
            guard error == .notFound else { throw StoreError(path: url.path, message: "unreadable record of Slurm jobs: \(error.description)") }
            return nil
        }
        do { return try JSONDecoder().decode(SlurmRecord.self, from: data) } catch {
            throw StoreError(path: url.path, message: "unreadable record of Slurm jobs: \(error)")
        }
    }

    /// The log file of a task `JOBID_TASK`.
    public static func logPath(root: URL, task: String) -> String {
        root.appendingPathComponent("slurm/logs/\(task).log").path
    }

    /// States of the run's tasks known to Slurm (finished tasks stay listed for `MinJobAge`).
    public static func taskStates(jobIDs: [String], commands: SlurmCommandRunner) throws -> [String: String] {
        if jobIDs.isEmpty { return [:] }
        let r = try commands.run("squeue", ["-h", "-r", "-t", "all", "-j", jobIDs.joined(separator: ","), "-o", "%F|%K|%T"])
        if r.status != 0 {
            // Jobs long finished are forgotten by Slurm; when all are, squeue says so and fails.
            if r.stderr.contains("Invalid job id") { return [:] }
            throw SlurmError("squeue failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var states: [String: String] = [:]
        for t in try SlurmTaskState.parse(squeue: r.stdout) { states[t.task] = t.state }
        return states
    }

    public struct Result {
        public var graph: SlurmJobGraph
        public var jobIDs: [String]
        public var reportJobID: String?
        public var scripts: [URL]
    }

    /// Submits every unit not finished and not queued or running from an earlier submission.
    /// When nothing is left to run, writes the report at once and submits nothing.
    public func submit(message: (String) -> Void = { _ in }) throws -> Result {
        try options.validate()
        try SlurmScript.checkPath(run.store.root.path, what: "the run directory (--out)")
        try SlurmScript.checkPath(binary, what: "the palimpsest binary")
        var record = try Self.readRecord(run.store.root) ?? SlurmRecord()
        let done = Set(run.plan.units.filter { run.store.completion(of: $0) != nil }.map(\.id))
        var inFlight: [String: String] = [:]
        let latest = record.latestTasks()
        if !latest.isEmpty {
            let states = try Self.taskStates(jobIDs: record.submissions.flatMap { $0.arrays.map(\.jobID) }, commands: commands)
            for (unit, task) in latest where !done.contains(unit) {
                if let state = states[task], SlurmTaskState(task: task, state: state).isActive { inFlight[unit] = task }
            }
        }
        let graph = try SlurmJobGraph(plan: run.plan, done: done, inFlight: inFlight)
        if graph.isEmpty && graph.inFlight.isEmpty {
            message("all \(run.plan.units.count) units are finished; nothing to submit")
            let report = try run.writeReport()
            message("report: \(report.path)")
            return Result(graph: graph, jobIDs: [], reportJobID: nil, scripts: [])
        }
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        let number = (record.submissions.map(\.number).max() ?? 0) + 1
        let prefix = String(format: "%03d", number)
        let root = run.store.root.path
        var submission = SlurmRecord.Submission(number: number, time: ISO8601DateFormatter().string(from: Date()), arrays: [], reportJobID: nil)
        var jobIDs: [String] = [], scripts: [URL] = []
        // The record is saved after every job, so that a failure half-way leaves the jobs
        // already queued known to `status` and to the next submission.
        func save() throws {
            var r = record
            r.submissions.append(submission)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(try encoder.encode(r), to: recordURL)
        }
        for (i, array) in graph.arrays.enumerated() {
            let unitsFile = slurmDirectory.appendingPathComponent("\(prefix)-\(array.name).units")
            try writeAtomically(Data((array.units.joined(separator: "\n") + "\n").utf8), to: unitsFile)
            let script = slurmDirectory.appendingPathComponent("\(prefix)-\(array.name).sbatch")
            let text = SlurmScript.array(experiment: run.spec.name, submission: number, array: array, dependency: graph.dependency(of: i, jobIDs: jobIDs),
                                         options: options, binary: binary, runDirectory: root, unitsFile: unitsFile.path, logDirectory: logDirectory.path)
            try writeAtomically(Data(text.utf8), to: script)
            let id = try sbatch(script, alreadySubmitted: jobIDs)
            jobIDs.append(id); scripts.append(script)
            submission.arrays.append(.init(jobID: id, name: array.name, script: script.lastPathComponent, units: array.units))
            try save()
            message("submitted \(array.name): job \(id), \(array.units.count) task\(array.units.count == 1 ? "" : "s") (\(script.path))")
        }
        let reportScript = slurmDirectory.appendingPathComponent("\(prefix)-report.sbatch")
        try writeAtomically(Data(SlurmScript.report(experiment: run.spec.name, submission: number, dependency: graph.reportDependency(jobIDs: jobIDs), options: options,
                                                     binary: binary, runDirectory: root, logDirectory: logDirectory.path).utf8), to: reportScript)
        let reportID = try sbatch(reportScript, alreadySubmitted: jobIDs)
        submission.reportJobID = reportID
        scripts.append(reportScript)
        try save()
        message("submitted the report: job \(reportID)")
        record.submissions.append(submission)
        return Result(graph: graph, jobIDs: jobIDs, reportJobID: reportID, scripts: scripts)
    }

    private func sbatch(_ script: URL, alreadySubmitted: [String]) throws -> String {
        let r = try commands.run("sbatch", ["--parsable", script.path])
        guard r.status == 0 else {
            var text = "sbatch \(script.path) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            if !alreadySubmitted.isEmpty {
                text += "\n  jobs \(alreadySubmitted.joined(separator: ", ")) of this submission stay queued (recorded in \(recordURL.path)); fix the problem and submit again to add the rest"
            }
            throw SlurmError(text)
        }
        return try parseSbatchJobID(r.stdout)
    }
}
