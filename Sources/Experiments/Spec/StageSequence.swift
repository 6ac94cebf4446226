import Foundation
import Models
import Training

/// The objective of one stage of a `palimpsest train --stages` file.
public enum StageKind: String, Sendable, CaseIterable {
    case lm, sft, dpo
}

/// One stage as written in a stages file; unset options fall back to `StageDefaults`.
public struct StageEntry: Equatable, Sendable {
    public var name: String?
    /// Data file path, resolved against the stages file's directory when relative.
    public var data: String
    public var objective: StageKind?
    public var epochs: Int?
    public var lr: Double?
    public var batchSize: Int?
    public var beta: Double?
    public var replay: String?
    public var replayPerBatch: Int?

    public init(name: String? = nil, data: String, objective: StageKind? = nil, epochs: Int? = nil, lr: Double? = nil,
                batchSize: Int? = nil, beta: Double? = nil, replay: String? = nil, replayPerBatch: Int? = nil) {
        self.name = name; self.data = data; self.objective = objective; self.epochs = epochs; self.lr = lr
        self.batchSize = batchSize; self.beta = beta; self.replay = replay; self.replayPerBatch = replayPerBatch
    }
}

/// The command-line values a stage falls back to for the options it does not set.
public struct StageDefaults: Sendable {
    public var objective: StageKind
    public var epochs: Int
    public var lr: Double
    public var batchSize: Int
    public var beta: Double?
    public var replay: String?
    public var replayPerBatch: Int

    public init(objective: StageKind = .sft, epochs: Int = 1, lr: Double = 5e-4, batchSize: Int = 32, beta: Double? = nil,
                replay: String? = nil, replayPerBatch: Int = 0) {
        self.objective = objective; self.epochs = epochs; self.lr = lr; self.batchSize = batchSize
        self.beta = beta; self.replay = replay; self.replayPerBatch = replayPerBatch
    }
}

/// A stage with every option decided.
public struct ResolvedStage: Equatable, Sendable {
    /// 1-based position in the file.
    public var index: Int
    public var name: String
    public var data: String
    public var objective: StageKind
    public var epochs: Int
    public var lr: Double
    public var batchSize: Int
    /// Set exactly for dpo stages.
    public var beta: Double?
    public var replay: String?
    public var replayPerBatch: Int

    /// Where the model after this stage is saved inside the output directory.
    public var directoryName: String { "stage-\(index)-\(name)" }

    public var stageObjective: StageObjective {
        switch objective {
        case .lm: return .lm
        case .sft: return .sft
        case .dpo: return .dpo(beta: beta ?? 0)
        }
    }
}

/// A sequence of training stages read from a small YAML file:
///
/// ```yaml
/// stages:
///   - {name: pretrain, data: corpus.jsonl, objective: lm, epochs: 2, lr: 1e-3, batch_size: 8}
///   - {name: align, data: prefs.jsonl, objective: dpo, beta: 0.1, lr: 1e-5}
/// ```
///
/// Every problem (with its key path) is reported together, naming the file, before anything runs.
public struct StageSequence: Equatable, Sendable {
    public var file: String
    public var stages: [StageEntry]

    public init(file: String, stages: [StageEntry]) { self.file = file; self.stages = stages }

    static let stageKeys = ["name", "data", "objective", "epochs", "lr", "batch_size", "beta", "replay", "replay_per_batch"]

    /// Reads and checks a stages file; relative data paths are resolved against its directory.
    /// A file that is not a regular file of at most 16 MiB is refused unread.
    public static func load(from url: URL) throws -> StageSequence {
        let text = try readSpecFile(url, kind: "a stages file")
        return try parse(text, file: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses stages-file text; `file` names it in errors. Problems are worded, located and
    /// collected as in experiment files (`ExperimentSpec.parse`).
    public static func parse(_ text: String, file: String, baseDirectory: URL? = nil) throws -> StageSequence {
        let root = try SpecNode.root(yaml: text, file: file)
        let d = root.diagnostics
        guard root.isPresent, root.isMapping else {
            root.fail("expected a mapping with a `stages` list")
            throw SpecError(file: file, issues: d.issues)
        }
        root.keys(allowed: ["stages"])
        let list = root.child("stages")
        if !list.isPresent { list.fail("required: a list of stages") }
        let nodes = list.elements()
        if list.isPresent, list.isSequence, nodes.isEmpty { list.fail("must list at least one stage") }
        // An empty path stays empty, to be reported as such.
        func path(_ p: String) -> String { p.isEmpty ? p : resolvePath(p, against: baseDirectory) }
        var stages: [StageEntry] = []
        var stageNodes: [SpecNode] = []
        var positions: [Int] = []
        for (position, n) in nodes.enumerated() {
            guard n.isMapping else { n.fail("expected a mapping (key: value pairs)"); continue }
            n.keys(allowed: stageKeys)
            var entry = StageEntry(data: n.child("data").string(required: true).map(path) ?? "")
            entry.name = n.child("name").string()
            entry.objective = n.child("objective").oneOf(StageKind.allCases.map(\.rawValue)).flatMap(StageKind.init)
            entry.epochs = n.child("epochs").int()
            entry.lr = n.child("lr").double()
            entry.batchSize = n.child("batch_size").int()
            entry.beta = n.child("beta").double()
            entry.replay = n.child("replay").string().map(path)
            entry.replayPerBatch = n.child("replay_per_batch").int()
            stages.append(entry)
            stageNodes.append(n)
            positions.append(position)
        }
        let sequence = StageSequence(file: file, stages: stages)
        // The value rules are the ones `resolved` applies to stages built in code; here each
        // problem gets its line. A key whose read already failed is not reported again.
        let failed = Set(d.issues.map(\.path))
        for problem in sequence.entryProblems(positions: positions) {
            let n = stageNodes[problem.stage].child(problem.key)
            if !failed.contains(n.path) { n.fail(problem.message) }
        }
        // In file order, whichever check found them.
        d.issues = d.issues.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element)
        try d.throwIfAny(file: file)
        return sequence
    }

    /// Problems with the stages' own values: the index in `stages`, the stages-file key and the
    /// problem. `positions` are the stages' places in the file when some entries were unreadable.
    func entryProblems(positions: [Int]? = nil) -> [(stage: Int, key: String, message: String)] {
        var out: [(stage: Int, key: String, message: String)] = []
        var names: [String: Int] = [:]
        for (i, e) in stages.enumerated() {
            func add(_ key: String, _ message: String?) { if let message { out.append((i, key, message)) } }
            if let name = e.name {
                if name.isEmpty || name.first == "." || !name.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) {
                    add("name", "\"\(name)\" is not a directory name: use letters, digits, '.', '_' or '-' (not first '.')")
                } else if let j = names[name] {
                    add("name", "\"\(name)\" is also the name of stages[\(positions?[j] ?? j)]")
                } else {
                    names[name] = i
                }
            }
            if e.data.isEmpty { add("data", "must not be empty") }
            if e.replay?.isEmpty == true { add("replay", "must not be empty") }
            add("epochs", e.epochs.flatMap { SpecRule.atLeast(1, $0) })
            add("lr", e.lr.flatMap(SpecRule.finitePositive))
            add("batch_size", e.batchSize.flatMap { SpecRule.atLeast(1, $0) })
            add("beta", e.beta.flatMap(SpecRule.finitePositive))
            add("replay_per_batch", e.replayPerBatch.flatMap { SpecRule.atLeast(0, $0) })
        }
        return out
    }

    /// Every stage with the options it does not set taken from `defaults`. This is where every
    /// rule is checked for sequences built in code and for the defaults (named by their
    /// command-line flags, checked whether or not a stage uses them), and where the
    /// combinations are checked: a dpo stage needs β and takes no replay, `replay_per_batch`
    /// needs a replay file, only a dpo stage takes β.
    public func resolved(defaults: StageDefaults) throws -> [ResolvedStage] {
        let d = SpecDiagnostics()
        d.issues = defaults.problems()
        for problem in entryProblems() { d.add("stages[\(problem.stage)].\(problem.key)", nil, problem.message) }
        var out: [ResolvedStage] = []
        for (i, e) in stages.enumerated() {
            let p = "stages[\(i)]"
            let objective = e.objective ?? defaults.objective
            let replay = e.replay ?? defaults.replay
            let perBatch = e.replayPerBatch ?? defaults.replayPerBatch
            var beta: Double? = nil
            if objective == .dpo {
                beta = e.beta ?? defaults.beta
                if beta == nil { d.add("\(p).beta", nil, "a dpo stage needs beta > 0 (set beta or --beta)") }
                if perBatch > 0 || e.replay != nil {
                    d.add("\(p).replay", nil, "replay is not supported in a dpo stage (DPO has no term for plain documents)")
                }
            } else if e.beta != nil {
                d.add("\(p).beta", nil, "only a dpo stage takes beta (objective is \(objective.rawValue))")
            }
            if objective != .dpo, perBatch > 0, replay == nil {
                d.add("\(p).replay_per_batch", nil, "is \(perBatch) but no replay file is given (set replay or --replay)")
            }
            out.append(ResolvedStage(index: i + 1, name: e.name ?? objective.rawValue, data: e.data, objective: objective,
                                     epochs: e.epochs ?? defaults.epochs, lr: e.lr ?? defaults.lr,
                                     batchSize: e.batchSize ?? defaults.batchSize, beta: beta,
                                     replay: objective == .dpo ? nil : replay, replayPerBatch: objective == .dpo ? 0 : perBatch))
        }
        try d.throwIfAny(file: file)
        return out
    }
}

extension StageDefaults {
    /// Problems with the defaults themselves, each named by the flag of `palimpsest train` it
    /// comes from (`resolved` reports them too; the command checks them before reading a stages file).
    public func problems() -> [SpecIssue] {
        var out: [SpecIssue] = []
        func add(_ flag: String, _ message: String?) { if let message { out.append(SpecIssue(path: flag, line: nil, message: message)) } }
        add("--epochs", SpecRule.atLeast(1, epochs))
        add("--lr", SpecRule.finitePositive(lr))
        add("--batch-size", SpecRule.atLeast(1, batchSize))
        add("--beta", beta.flatMap(SpecRule.finitePositive))
        add("--replay-per-batch", SpecRule.atLeast(0, replayPerBatch))
        if replay?.isEmpty == true { add("--replay", "must not be empty") }
        return out
    }
}

/// The data of one stage, already tokenised.
public enum StageData: Sendable {
    /// LM or SFT examples.
    case examples([Example])
    /// DPO pairs.
    case pairs([TokenPreferencePair])
}

/// One stage ready to run.
public struct StageRun: Sendable {
    public var name: String
    public var options: StageOptions
    public var data: StageData
    public var replayPool: [Example]

    public init(name: String, options: StageOptions, data: StageData, replayPool: [Example] = []) {
        self.name = name; self.options = options; self.data = data; self.replayPool = replayPool
    }
}

extension StageRun {
    /// The runs of a resolved plan. Each file is read and tokenised once however many stages
    /// name it (as data or as replay): loads are cached by the file's resolved path, so
    /// `dir/../r.jsonl`, `./r.jsonl` and a symlink to it share one load. The loaders get the
    /// path as the stage gives it, so their errors name it that way.
    public static func prepare(_ plan: [ResolvedStage],
                               examples loadExamples: (String) throws -> [Example],
                               pairs loadPairs: (String) throws -> [TokenPreferencePair],
                               options: (ResolvedStage) throws -> StageOptions) throws -> [StageRun] {
        var exampleCache: [String: [Example]] = [:]
        var pairCache: [String: [TokenPreferencePair]] = [:]
        func key(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
        func examples(_ path: String) throws -> [Example] {
            if let cached = exampleCache[key(path)] { return cached }
            let loaded = try loadExamples(path)
            exampleCache[key(path)] = loaded
            return loaded
        }
        func pairs(_ path: String) throws -> [TokenPreferencePair] {
            if let cached = pairCache[key(path)] { return cached }
            let loaded = try loadPairs(path)
            pairCache[key(path)] = loaded
            return loaded
        }
        return try plan.map { s in
            let data: StageData = s.objective == .dpo ? .pairs(try pairs(s.data)) : .examples(try examples(s.data))
            let pool = try s.replay.map(examples) ?? []
            return StageRun(name: s.name, options: try options(s), data: data, replayPool: pool)
        }
    }
}

/// Runs stages one after another on one model, each with a fresh optimizer and schedule (as in
/// the paper); the reference of a DPO stage is the model at the start of that stage.
public enum StageSequenceRunner {
    /// Checks every stage before any step runs, then trains them in order. `progress` gets the
    /// 0-based stage index with each step's report; `afterStage` runs when a stage ends (save there).
    @discardableResult
    public static func run(model: CausalLM, stages: [StageRun],
                           progress: (Int, StepReport) throws -> Void = { _, _ in },
                           afterStage: (Int, StageResult) throws -> Void = { _, _ in }) throws -> [StageResult] {
        for (i, s) in stages.enumerated() {
            let at = "stage \(i + 1) (\(s.name))"
            do { try s.options.validate() } catch { throw TrainingError.invalidOption(context: at, message: "\(error)") }
            switch (s.data, s.options.objective) {
            case (.pairs(let p), .dpo):
                if p.isEmpty { throw TrainingError.empty(context: at, message: "the dpo stage has no pairs") }
                if s.options.batching.replayPerBatch > 0 || !s.replayPool.isEmpty {
                    throw TrainingError.invalidOption(context: at, message: "replay is not supported in a dpo stage")
                }
            case (.examples(let e), .lm), (.examples(let e), .sft):
                if e.isEmpty { throw TrainingError.empty(context: at, message: "the stage has no examples") }
            case (.pairs, _):
                throw TrainingError.invalidOption(context: at, message: "preference pairs need the dpo objective")
            case (.examples, _):
                throw TrainingError.invalidOption(context: at, message: "a dpo stage needs preference pairs (prompt/chosen/rejected)")
            }
            // Every example against the context and the truncation rule too: a stage that cannot
            // run fails now, not after the stages before it have trained.
            do {
                switch s.data {
                case .examples(let e): try StageTrainer.check(model: model, examples: e, replayPool: s.replayPool, options: s.options)
                case .pairs(let p): try StageTrainer.check(model: model, preferencePairs: p, options: s.options)
                }
            } catch let error as TrainingError {
                throw error.within(at)
            }
        }
        var results: [StageResult] = []
        for (i, s) in stages.enumerated() {
            let result: StageResult
            switch s.data {
            case .examples(let e):
                result = try StageTrainer.train(model: model, examples: e, replayPool: s.replayPool, options: s.options) { try progress(i, $0) }
            case .pairs(let p):
                // The default reference: the model as it is now, at the start of this stage.
                result = try StageTrainer.train(model: model, preferencePairs: p, options: s.options) { try progress(i, $0) }
            }
            results.append(result)
            try afterStage(i, result)
        }
        return results
    }
}
