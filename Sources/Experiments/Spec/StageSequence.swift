import Foundation
import Models
import Training
import Yams

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
    public static func load(from url: URL) throws -> StageSequence {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SpecError(file: url.path, issues: [SpecIssue(path: "", line: nil, message: "cannot read the file: \(error.localizedDescription)")])
        }
        return try parse(text, file: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses stages-file text; `file` names it in errors.
    public static func parse(_ text: String, file: String, baseDirectory: URL? = nil) throws -> StageSequence {
        var issues: [SpecIssue] = []
        func add(_ path: String, _ node: Node?, _ message: String) {
            issues.append(SpecIssue(path: path, line: node?.mark.map { $0.line }, message: message))
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw SpecError(file: file, issues: [SpecIssue(path: "", line: nil, message: "not valid YAML: \(error)")])
        }
        guard let root, case .mapping(let top) = root else {
            throw SpecError(file: file, issues: [SpecIssue(path: "", line: nil, message: "expected a mapping with a `stages` list")])
        }
        for (k, _) in top where k.string != "stages" {
            add(k.string ?? "?", k, "unknown key (expected: stages)")
        }
        guard let list = top[Node("stages")] else {
            add("stages", nil, "missing (a list of stages)")
            throw SpecError(file: file, issues: issues)
        }
        guard case .sequence(let seq) = list, !seq.isEmpty else {
            add("stages", list, "expected a non-empty list of stages")
            throw SpecError(file: file, issues: issues)
        }
        var stages: [StageEntry] = []
        var names: [String: Int] = [:]
        for (i, node) in seq.enumerated() {
            let p = "stages[\(i)]"
            guard case .mapping(let m) = node else { add(p, node, "expected a mapping (key: value pairs)"); continue }
            for (k, _) in m where !stageKeys.contains(k.string ?? "") {
                add("\(p).\(k.string ?? "?")", k, "unknown key (expected one of: \(stageKeys.joined(separator: ", ")))")
            }
            func scalar(_ key: String) -> (String, Node)? {
                guard let v = m[Node(key)] else { return nil }
                guard case .scalar(let s) = v else { add("\(p).\(key)", v, "expected a single value"); return nil }
                return (s.string, v)
            }
            func string(_ key: String) -> String? {
                guard let (s, v) = scalar(key) else { return nil }
                guard !s.isEmpty else { add("\(p).\(key)", v, "must not be empty"); return nil }
                return s
            }
            func int(_ key: String, min: Int) -> Int? {
                guard let (s, v) = scalar(key) else { return nil }
                guard let x = Int(s) else { add("\(p).\(key)", v, "expected an integer, got \"\(s)\""); return nil }
                guard x >= min else { add("\(p).\(key)", v, min == 1 ? "must be > 0, got \(x)" : "must be >= \(min), got \(x)"); return nil }
                return x
            }
            func positive(_ key: String) -> Double? {
                guard let (s, v) = scalar(key) else { return nil }
                guard let x = Double(s) else { add("\(p).\(key)", v, "expected a number, got \"\(s)\""); return nil }
                guard x.isFinite, x > 0 else { add("\(p).\(key)", v, "must be finite and > 0, got \(s)"); return nil }
                return x
            }
            var entry = StageEntry(data: "")
            if let name = string("name") {
                if name.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) && name.first != "." {
                    if let j = names[name] { add("\(p).name", m[Node("name")], "\"\(name)\" is also the name of stages[\(j)]") }
                    names[name] = i
                    entry.name = name
                } else {
                    add("\(p).name", m[Node("name")], "\"\(name)\" is not a directory name: use letters, digits, '.', '_' or '-'")
                }
            }
            if let data = string("data") {
                entry.data = resolve(data, baseDirectory)
            } else if m[Node("data")] == nil {
                add("\(p).data", node, "missing (the stage's data file)")
            }
            if let (o, v) = scalar("objective") {
                if let kind = StageKind(rawValue: o) { entry.objective = kind } else {
                    add("\(p).objective", v, "expected lm, sft or dpo, got \"\(o)\"")
                }
            }
            entry.epochs = int("epochs", min: 1)
            entry.lr = positive("lr")
            entry.batchSize = int("batch_size", min: 1)
            entry.beta = positive("beta")
            entry.replay = string("replay").map { resolve($0, baseDirectory) }
            entry.replayPerBatch = int("replay_per_batch", min: 0)
            stages.append(entry)
        }
        guard issues.isEmpty else { throw SpecError(file: file, issues: issues) }
        return StageSequence(file: file, stages: stages)
    }

    /// Every stage with the options it does not set taken from `defaults`; checks the combinations
    /// (a dpo stage needs β and takes no replay, `replay_per_batch` needs a replay file).
    public func resolved(defaults: StageDefaults) throws -> [ResolvedStage] {
        var issues: [SpecIssue] = []
        var out: [ResolvedStage] = []
        for (i, e) in stages.enumerated() {
            let p = "stages[\(i)]"
            let objective = e.objective ?? defaults.objective
            let replay = e.replay ?? defaults.replay
            let perBatch = e.replayPerBatch ?? defaults.replayPerBatch
            var beta: Double? = nil
            if objective == .dpo {
                beta = e.beta ?? defaults.beta
                if let b = beta, !(b.isFinite && b > 0) {
                    issues.append(SpecIssue(path: "\(p).beta", line: nil, message: "must be finite and > 0, got \(b) (from --beta)"))
                } else if beta == nil {
                    issues.append(SpecIssue(path: "\(p).beta", line: nil, message: "a dpo stage needs beta > 0 (set beta or --beta)"))
                }
                if perBatch > 0 || e.replay != nil {
                    issues.append(SpecIssue(path: "\(p).replay", line: nil, message: "replay is not supported in a dpo stage (DPO has no term for plain documents)"))
                }
            } else if e.beta != nil {
                issues.append(SpecIssue(path: "\(p).beta", line: nil, message: "only a dpo stage takes beta (objective is \(objective.rawValue))"))
            }
            if objective != .dpo, perBatch > 0, replay == nil {
                issues.append(SpecIssue(path: "\(p).replay_per_batch", line: nil, message: "is \(perBatch) but no replay file is given (set replay or --replay)"))
            }
            let epochs = e.epochs ?? defaults.epochs, batch = e.batchSize ?? defaults.batchSize, lr = e.lr ?? defaults.lr
            if epochs < 1 { issues.append(SpecIssue(path: "\(p).epochs", line: nil, message: "must be > 0, got \(epochs) (from --epochs)")) }
            if batch < 1 { issues.append(SpecIssue(path: "\(p).batch_size", line: nil, message: "must be > 0, got \(batch) (from --batch-size)")) }
            if !(lr.isFinite && lr > 0) { issues.append(SpecIssue(path: "\(p).lr", line: nil, message: "must be finite and > 0, got \(lr) (from --lr)")) }
            out.append(ResolvedStage(index: i + 1, name: e.name ?? objective.rawValue, data: e.data, objective: objective,
                                     epochs: epochs, lr: lr, batchSize: batch, beta: beta,
                                     replay: objective == .dpo ? nil : replay, replayPerBatch: objective == .dpo ? 0 : perBatch))
        }
        guard issues.isEmpty else { throw SpecError(file: file, issues: issues) }
        return out
    }

    private static func resolve(_ path: String, _ base: URL?) -> String {
        guard let base, !path.hasPrefix("/") else { return path }
        return base.appendingPathComponent(path).path
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
