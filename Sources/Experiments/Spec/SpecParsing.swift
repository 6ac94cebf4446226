import Datasets
import Foundation
import Models
import Training
import Yams

extension ExperimentSpec {
    /// Reads and validates an experiment file.
    public static func load(contentsOf url: URL) throws -> ExperimentSpec {
        let text = try readSpecFile(url, kind: "an experiment file")
        return try parse(yaml: text, file: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Parses and validates YAML text; relative file paths are resolved against `baseDirectory`.
    public static func parse(yaml: String, file: String = "<spec>", baseDirectory: URL? = nil) throws -> ExperimentSpec {
        let root = try SpecNode.root(yaml: yaml, file: file)
        let d = root.diagnostics
        let spec = read(root, baseDirectory: baseDirectory)
        if let spec, d.issues.isEmpty {
            spec.crossCheck(d)
        }
        guard let spec, d.issues.isEmpty else {
            throw SpecError(file: file, issues: d.issues.isEmpty ? [SpecIssue(path: "", line: nil, message: "empty file")] : d.issues)
        }
        return spec
    }

    private static func read(_ n: SpecNode, baseDirectory: URL?) -> ExperimentSpec? {
        guard n.isPresent else { n.fail("the file is empty"); return nil }
        guard n.isMapping else { n.fail("expected a mapping at the top level"); return nil }
        n.keys(allowed: ["name", "seeds", "data_seed", "model", "tokenizer", "datasets", "pretraining", "stages",
                         "forget", "paths", "retrain", "unlearning", "evaluation"])
        func resolve(_ path: String) -> String { resolvePath(path, against: baseDirectory) }
        let name = n.child("name").string(required: true) ?? ""
        let seeds = n.child("seeds").ints() ?? [0]
        if seeds.isEmpty { n.child("seeds").fail("must list at least one seed") }
        if Set(seeds).count != seeds.count { n.child("seeds").fail("seeds must be distinct") }
        // Seeds become UInt64 random streams; a negative one trapped that conversion at run time.
        if let bad = seeds.first(where: { $0 < 0 }) { n.child("seeds").fail("seeds must be >= 0, found \(bad)") }
        let dataSeed = n.child("data_seed").int(atLeast: 0) ?? 0

        // model: {preset: NAME} | {checkpoint: DIR}
        let m = n.child("model")
        var model = ModelSource.preset("pilot")
        if m.isPresent {
            let keys = m.keys(allowed: ["preset", "checkpoint"])
            if keys.contains("preset") && keys.contains("checkpoint") { m.fail("give either preset or checkpoint, not both") }
            if let p = m.child("preset").string() { model = .preset(p) }
            else if let c = m.child("checkpoint").string() { model = .checkpoint(resolve(c)) }
            else { m.fail("needs preset or checkpoint") }
        } else { m.fail("required") }

        // tokenizer: {train: {dataset, vocab_size, min_frequency}} | {file: PATH} | checkpoint
        let t = n.child("tokenizer")
        var tokenizer = TokenizerSource.checkpoint
        if t.isPresent {
            if case .scalar? = t.node {
                if t.string() != "checkpoint" { t.fail("must be 'checkpoint', {file: PATH} or {train: {...}}") }
            } else {
                let keys = t.keys(allowed: ["train", "file"])
                if keys.contains("train") {
                    let tr = t.child("train")
                    tr.keys(allowed: ["dataset", "vocab_size", "min_frequency"])
                    let vocab = tr.child("vocab_size").int(required: true) ?? 0
                    if vocab < 257 && tr.child("vocab_size").isPresent { tr.child("vocab_size").fail("must be at least 257 (256 bytes + end of sequence), found \(vocab)") }
                    let minFrequency = tr.child("min_frequency").int() ?? 2
                    if minFrequency < 1 { tr.child("min_frequency").fail("must be >= 1") }
                    tokenizer = .train(dataset: tr.child("dataset").string(required: true) ?? "", vocabSize: vocab, minFrequency: minFrequency)
                } else if let f = t.child("file").string(required: true) {
                    tokenizer = .file(resolve(f))
                }
            }
        } else if case .preset = model {
            t.fail("required for a preset model (train one, or give a file)")
        }

        // datasets: NAME: {generator: KIND, size, test_size} | {file, format, test_file}
        var datasets: [String: DatasetSource] = [:]
        for (key, d) in n.child("datasets").mappingEntries() {
            let keys = d.keys(allowed: ["generator", "size", "test_size", "file", "format", "test_file"])
            if key.contains(".") { d.fail("dataset names cannot contain '.' (NAME.test names a test split)") }
            if keys.contains("generator") {
                let kind = d.child("generator").oneOf(DatasetKinds.generators, required: true) ?? ""
                let size = d.child("size").int(required: true) ?? 1
                if size < 1 { d.child("size").fail("must be > 0, found \(size)") }
                let testSize = d.child("test_size").int() ?? 0
                if testSize < 0 { d.child("test_size").fail("must be >= 0, found \(testSize)") }
                // The generators' own limit, reported here with the key (sizes near Int.max overflowed).
                for (key, v) in [("size", size), ("test_size", testSize)] where v > GeneratorError.maxCount {
                    d.child(key).fail("must be at most \(GeneratorError.maxCount), found \(v)")
                }
                datasets[key] = .generator(kind: kind, size: size, testSize: testSize)
            } else if keys.contains("file") {
                let format = d.child("format").oneOf(DatasetKinds.formats)
                datasets[key] = .file(path: resolve(d.child("file").string(required: true) ?? ""), format: format,
                                      testPath: d.child("test_file").string().map(resolve))
            } else {
                d.fail("needs generator or file")
            }
        }

        let pre = n.child("pretraining")
        let pretraining = pre.isPresent ? readStage(pre, defaultName: "pretraining", defaultObjective: .lm) : nil
        let stageNodes = n.child("stages")
        if !stageNodes.isPresent { stageNodes.fail("required") }
        let stages = stageNodes.elements().compactMap { readStage($0, defaultName: nil, defaultObjective: .sft) }
        if stageNodes.isPresent && stages.isEmpty && stageNodes.isSequence { stageNodes.fail("must list at least one stage") }

        let forget = n.child("forget").string(required: true) ?? ""

        let p = n.child("paths")
        var paths = PathsSpec.insertForget
        if p.isPresent {
            if p.isSequence {
                paths = .explicit(p.elements().compactMap { $0.strings() })
            } else {
                switch p.oneOf(["insert_forget", "permutations"]) {
                case "permutations": paths = .permutations
                default: paths = .insertForget
                }
            }
        }
        let retrain = n.child("retrain").bool() ?? true
        let unlearning = readUnlearning(n.child("unlearning"))
        let evaluation = readEvaluation(n.child("evaluation"), unlearningSteps: unlearning.steps)
        return ExperimentSpec(name: name, seeds: seeds, dataSeed: dataSeed, model: model, tokenizer: tokenizer,
                              datasets: datasets, pretraining: pretraining, stages: stages, forget: forget,
                              paths: paths, retrain: retrain, unlearning: unlearning, evaluation: evaluation)
    }

    private static func readStage(_ s: SpecNode, defaultName: String?, defaultObjective: StageSpec.Objective) -> StageSpec? {
        guard s.isMapping else { s.fail("expected a mapping describing a stage"); return nil }
        s.keys(allowed: ["name", "data", "objective", "epochs", "batch_size", "max_length", "replay", "optimizer",
                         "schedule", "lora", "clip_norm", "dpo_beta", "response"])
        let name = s.child("name").string(required: defaultName == nil) ?? defaultName ?? ""
        let data = s.child("data").string(required: true) ?? ""
        let objective = s.child("objective").oneOf(StageSpec.Objective.allCases.map(\.rawValue)).flatMap(StageSpec.Objective.init) ?? defaultObjective
        let epochs = positive(s.child("epochs"), default: 1)
        let batchSize = positive(s.child("batch_size"), default: 32)
        let maxLength = s.child("max_length").isPresent ? positive(s.child("max_length"), default: 1) : nil
        var replay: ReplaySpec? = nil
        let r = s.child("replay")
        if r.isPresent {
            r.keys(allowed: ["dataset", "per_batch"])
            replay = ReplaySpec(dataset: r.child("dataset").string(required: true) ?? "", perBatch: positive(r.child("per_batch"), default: 1))
        }
        let clip = s.child("clip_norm").double()
        // Written so that NaN fails too: YAML reads `.nan` and `.inf` as numbers.
        if let clip, let problem = SpecRule.finitePositive(clip) { s.child("clip_norm").fail(problem) }
        let dpoBeta = s.child("dpo_beta").double() ?? 0.1
        if let problem = SpecRule.finitePositive(dpoBeta) { s.child("dpo_beta").fail(problem) }
        return StageSpec(name: name, data: data, objective: objective, epochs: epochs, batchSize: batchSize,
                         maxLength: maxLength, replay: replay,
                         optimizer: readOptimizer(s.child("optimizer"), defaultLR: 5e-4),
                         schedule: readSchedule(s.child("schedule")), lora: readLoRA(s.child("lora")),
                         clipNorm: clip, dpoBeta: dpoBeta,
                         response: s.child("response").oneOf(["compliance", "target", "refusal"]))
    }

    private static func positive(_ n: SpecNode, default value: Int) -> Int { n.int(atLeast: 1) ?? value }

    private static func readOptimizer(_ o: SpecNode, defaultLR: Double) -> OptimizerSpec {
        guard o.isPresent else { return .adamw(lr: defaultLR) }
        o.keys(allowed: ["name", "lr", "betas", "eps", "weight_decay", "momentum", "nesterov"])
        let name = o.child("name").oneOf(OptimizerSpec.Name.allCases.map(\.rawValue)).flatMap(OptimizerSpec.Name.init) ?? .adamw
        let lr = o.child("lr").double() ?? defaultLR
        if let problem = SpecRule.finitePositive(lr) { o.child("lr").fail(problem) }
        let betas = o.child("betas").doubles() ?? [0.9, 0.999]
        if betas.count != 2 || betas.contains(where: { !($0 >= 0 && $0 < 1) }) { o.child("betas").fail("must be two numbers in [0, 1), found \(betas)") }
        let eps = o.child("eps").double() ?? 1e-8
        if let problem = SpecRule.finitePositive(eps) { o.child("eps").fail(problem) }
        let wd = o.child("weight_decay").double() ?? 0
        if !(wd >= 0 && wd.isFinite) { o.child("weight_decay").fail("must be finite and >= 0, found \(wd)") }
        let momentum = o.child("momentum").double() ?? 0
        if !(momentum >= 0 && momentum < 1) { o.child("momentum").fail("must be in [0, 1), found \(momentum)") }
        return OptimizerSpec(name: name, lr: lr, betas: betas, eps: eps, weightDecay: wd, momentum: momentum,
                             nesterov: o.child("nesterov").bool() ?? false)
    }

    private static func readSchedule(_ s: SpecNode) -> ScheduleSpec {
        guard s.isPresent else { return .constant }
        if case .scalar? = s.node {
            let kind = s.oneOf(ScheduleSpec.Kind.allCases.map(\.rawValue)).flatMap(ScheduleSpec.Kind.init) ?? .constant
            return ScheduleSpec(kind: kind, warmup: 0, decay: kind == .wsd ? 0.02 : 0, floor: 0)
        }
        s.keys(allowed: ["kind", "warmup", "decay", "floor"])
        let kind = s.child("kind").oneOf(ScheduleSpec.Kind.allCases.map(\.rawValue), required: true).flatMap(ScheduleSpec.Kind.init) ?? .constant
        let warmup = s.child("warmup").double() ?? (kind == .wsd ? 0.02 : 0)
        let decay = s.child("decay").double() ?? (kind == .wsd ? 0.02 : 0)
        let floor = s.child("floor").double() ?? 0
        if !(warmup >= 0 && warmup <= 1) { s.child("warmup").fail("must be a fraction in [0, 1], found \(warmup)") }
        if !(decay >= 0 && decay <= 1) { s.child("decay").fail("must be a fraction in [0, 1], found \(decay)") }
        if kind != .wsd && s.child("decay").isPresent { s.child("decay").fail("only the wsd schedule has a decay fraction") }
        if warmup + decay > 1 { s.fail("warmup + decay must be at most 1, found \(warmup + decay)") }
        if !(floor >= 0 && floor <= 1) { s.child("floor").fail("must be a fraction of the peak in [0, 1], found \(floor)") }
        return ScheduleSpec(kind: kind, warmup: warmup, decay: decay, floor: floor)
    }

    private static func readLoRA(_ l: SpecNode) -> LoRASpec? {
        guard l.isPresent else { return nil }
        l.keys(allowed: ["rank", "alpha", "dropout", "targets"])
        let rank = positive(l.child("rank"), default: 8)
        // `2 * rank` overflowed for a rank near Int.max while the file was read.
        if rank > LoRAConfig.maxRank { l.child("rank").fail("must be at most \(LoRAConfig.maxRank), found \(rank)") }
        let alpha = l.child("alpha").double() ?? 2 * Double(rank)
        if !(alpha > 0 && alpha.isFinite) { l.child("alpha").fail("must be > 0 and finite, found \(alpha)") }
        let dropout = l.child("dropout").double() ?? 0
        if !(dropout >= 0 && dropout < 1) { l.child("dropout").fail("must be in [0, 1), found \(dropout)") }
        let targets = l.child("targets").strings() ?? LoRASpec.allTargets
        for (i, target) in targets.enumerated() where !LoRASpec.allTargets.contains(target) {
            l.diagnostics.add("\(l.path).targets[\(i)]", l.child("targets").line, "'\(target)' names no module; allowed: \(LoRASpec.allTargets.joined(separator: ", "))")
        }
        if targets.isEmpty { l.child("targets").fail("must name at least one module") }
        return LoRASpec(rank: rank, alpha: alpha, dropout: dropout, targets: targets)
    }

    private static func readUnlearning(_ u: SpecNode) -> UnlearningSpec {
        if !u.isPresent { u.fail("required") }
        u.keys(allowed: ["forget_data", "retain_data", "steps", "batch_size", "optimizer", "schedule", "lora", "algorithms"])
        var algorithms: [AlgorithmSpec] = []
        let a = u.child("algorithms")
        if !a.isPresent && u.isPresent { a.fail("required: list at least one algorithm") }
        for item in a.elements() {
            // Either a bare name or {name: NPO, beta: 0.1, label: ...}.
            if case .scalar? = item.node {
                guard let name = item.oneOf(AlgorithmSpec.known.keys.sorted(), required: true) else { continue }
                algorithms.append(AlgorithmSpec(name: name, label: name, parameters: AlgorithmSpec.known[name]!))
                continue
            }
            guard let name = item.child("name").oneOf(AlgorithmSpec.known.keys.sorted(), required: true) else { continue }
            let defaults = AlgorithmSpec.known[name]!
            let retainKey = AlgorithmSpec.retainLossAlgorithms.contains(name) ? ["retain"] : []
            item.keys(allowed: ["name", "label", "lora"] + retainKey + defaults.keys.sorted())
            var parameters = defaults
            var changed: [String] = []
            for key in defaults.keys.sorted() {
                guard let v = item.child(key).double() else { continue }
                if key == "beta" && !(v > 0 && v.isFinite) { item.child(key).fail("must be > 0 and finite, found \(v)") }
                else if !v.isFinite { item.child(key).fail("must be finite, found \(v)") }
                if (key == "alpha" || key == "gamma") && v < 0 && name != "simnpo" && name != "simnpo_rt" { item.child(key).fail("must be >= 0, found \(v)") }
                if v != defaults[key] { changed.append("\(key)=\(formatNumber(v))") }
                parameters[key] = v
            }
            let retain = item.child("retain").oneOf([RetainLoss.nll, .kl].map(\.rawValue)).flatMap(RetainLoss.init(rawValue:))
            if retain == .kl { changed.append("retain=kl") }
            let lora = readLoRA(item.child("lora"))
            if let lora { changed.append("lora=r\(lora.rank)") }
            let label = item.child("label").string() ?? (changed.isEmpty ? name : "\(name)(\(changed.joined(separator: ",")))")
            algorithms.append(AlgorithmSpec(name: name, label: label, parameters: parameters, lora: lora, retain: retain))
        }
        let labels = algorithms.map(\.label)
        if Set(labels).count != labels.count { a.fail("two algorithms have the same label; give each a distinct 'label'") }
        return UnlearningSpec(forgetData: u.child("forget_data").string(), retainData: u.child("retain_data").string(),
                              steps: positive(u.child("steps"), default: 10), batchSize: positive(u.child("batch_size"), default: 32),
                              optimizer: readOptimizer(u.child("optimizer"), defaultLR: 1e-4),
                              schedule: readSchedule(u.child("schedule")), lora: readLoRA(u.child("lora")),
                              algorithms: algorithms)
    }

    private static func readEvaluation(_ e: SpecNode, unlearningSteps: Int) -> EvaluationSpec {
        e.keys(allowed: ["steps", "every", "forget_prompts", "paraphrases", "facts", "math", "math_samples", "math_at",
                         "mass", "divergence_samples", "divergence_length", "speed_threshold", "mia", "tofu"])
        var steps: [Int]
        if let explicit = e.child("steps").ints() {
            steps = explicit
            for s in explicit where s < 0 || s > unlearningSteps { e.child("steps").fail("step \(s) is outside 0...\(unlearningSteps) (unlearning.steps)") }
        } else {
            // One evaluation per listed step: bounded, so a huge unlearning.steps cannot make the
            // reader allocate without limit (a fuzz finding).
            let every = e.child("every").isPresent ? positive(e.child("every"), default: 1) : 1
            if unlearningSteps / every >= EvaluationSpec.maxEvaluationPoints {
                (e.child("every").isPresent ? e.child("every") : e).fail(
                    "evaluating every \(every) of \(unlearningSteps) unlearning steps gives more than \(EvaluationSpec.maxEvaluationPoints) evaluations; set a larger 'every' or list 'steps'")
                steps = [0]
            } else {
                steps = Array(stride(from: 0, through: unlearningSteps, by: every))
            }
        }
        steps = Array(Set(steps + [0, unlearningSteps])).sorted()
        let paraphrases = e.child("paraphrases").int() ?? 10
        if paraphrases < 0 { e.child("paraphrases").fail("must be >= 0") }
        let samples = e.child("math_samples").int() ?? 0
        if samples < 0 { e.child("math_samples").fail("must be >= 0 (0 = greedy)") }
        let divergence = e.child("divergence_samples").int() ?? 0
        if divergence < 0 { e.child("divergence_samples").fail("must be >= 0") }
        let threshold = e.child("speed_threshold").double()
        if let threshold, !threshold.isFinite { e.child("speed_threshold").fail("must be a finite number") }
        var mia: MIASpec?
        let m = e.child("mia")
        if m.isPresent {
            m.keys(allowed: ["holdout", "k", "count"])
            let k = m.child("k").double() ?? 0.2
            if !(k > 0 && k <= 1) { m.child("k").fail("must be in (0, 1], found \(k)") }
            mia = MIASpec(holdout: m.child("holdout").string(required: true) ?? "", k: k, count: positive(m.child("count"), default: 32))
        }
        var tofu: TOFUSpec?
        let t = e.child("tofu")
        if t.isPresent {
            t.keys(allowed: ["data", "count", "max_new_tokens"])
            let data = t.child("data").string() ?? e.child("facts").string()
            if data == nil { t.child("data").fail("required when evaluation.facts is not given: a dataset of entity QA with perturbed answers") }
            tofu = TOFUSpec(data: data ?? "", count: positive(t.child("count"), default: 32),
                            maxNewTokens: positive(t.child("max_new_tokens"), default: 24))
        }
        return EvaluationSpec(steps: steps, forgetPrompts: e.child("forget_prompts").string(), paraphrases: paraphrases,
                              facts: e.child("facts").string(), math: e.child("math").string(), mathSamples: samples,
                              mathAt: e.child("math_at").oneOf(EvaluationSpec.MathSchedule.allCases.map(\.rawValue)).flatMap(EvaluationSpec.MathSchedule.init) ?? .ends,
                              mass: e.child("mass").string(), divergenceSamples: divergence,
                              divergenceLength: positive(e.child("divergence_length"), default: 32),
                              speedThreshold: threshold, mia: mia, tofu: tofu)
    }

    /// The problems of a spec read back from a run's `spec.json`, which skipped the YAML reader's
    /// checks: a hand-edited or damaged file naming an unknown stage trapped the plan's lookup.
    func storedSpecProblems() -> [SpecIssue] {
        let d = SpecDiagnostics()
        if seeds.isEmpty { d.add("seeds", nil, "must list at least one seed") }
        if let bad = seeds.first(where: { $0 < 0 }) { d.add("seeds", nil, "seeds must be >= 0, found \(bad)") }
        if dataSeed < 0 { d.add("data_seed", nil, "must be >= 0, found \(dataSeed)") }
        for (name, source) in datasets.sorted(by: { $0.key < $1.key }) {
            guard case .generator(_, let size, let testSize) = source else { continue }
            if !(1...GeneratorError.maxCount).contains(size) { d.add("datasets.\(name).size", nil, "must be in 1...\(GeneratorError.maxCount), found \(size)") }
            if !(0...GeneratorError.maxCount).contains(testSize) { d.add("datasets.\(name).test_size", nil, "must be in 0...\(GeneratorError.maxCount), found \(testSize)") }
        }
        crossCheck(d)
        return d.issues
    }

    /// Checks the references between parts of the spec (run once the parts themselves are valid).
    func crossCheck(_ d: SpecDiagnostics) {
        let stageNames = stages.map(\.name)
        for (i, name) in stageNames.enumerated() where stageNames.firstIndex(of: name) != i {
            d.add("stages[\(i)].name", nil, "duplicate stage name '\(name)'")
        }
        func checkData(_ ref: String?, _ path: String) {
            guard let ref else { return }
            let base = ref.hasSuffix(".test") ? String(ref.dropLast(5)) : ref
            guard let source = datasets[base] else {
                d.add(path, nil, "names no dataset: '\(base)'; defined: \(datasets.keys.sorted().joined(separator: ", "))"); return
            }
            if ref.hasSuffix(".test") {
                switch source {
                case .generator(_, _, let testSize) where testSize == 0: d.add(path, nil, "dataset '\(base)' has no test split (test_size is 0)")
                case .file(_, _, nil): d.add(path, nil, "dataset '\(base)' has no test split (no test_file)")
                default: break
                }
            }
        }
        if case .train(let dataset, _, _) = tokenizer { checkData(dataset, "tokenizer.train.dataset") }
        if case .checkpoint = tokenizer, case .preset = model { d.add("tokenizer", nil, "a preset model has no checkpoint tokenizer") }
        if let pretraining { checkData(pretraining.data, "pretraining.data"); checkData(pretraining.replay?.dataset, "pretraining.replay.dataset") }
        if case .preset = model, pretraining == nil { d.add("pretraining", nil, "required for a preset model (it starts from random weights)") }
        for (i, stage) in stages.enumerated() {
            checkData(stage.data, "stages[\(i)].data")
            let base = stage.data.hasSuffix(".test") ? String(stage.data.dropLast(5)) : stage.data
            let isMass: Bool = { if case .generator("mass", _, _)? = datasets[base] { return true } else { return false } }()
            if isMass && stage.response == nil { d.add("stages[\(i)].response", nil, "required for probability-mass data: compliance, target or refusal") }
            if !isMass && stage.response != nil { d.add("stages[\(i)].response", nil, "only probability-mass data has several responses") }
            checkData(stage.replay?.dataset, "stages[\(i)].replay.dataset")
        }
        if !stageNames.contains(forget) { d.add("forget", nil, "names no stage: '\(forget)'; stages: \(stageNames.joined(separator: ", "))") }
        if case .explicit(let orders) = paths {
            if orders.isEmpty { d.add("paths", nil, "must list at least one path") }
            for (i, order) in orders.enumerated() {
                for name in order where !stageNames.contains(name) { d.add("paths[\(i)]", nil, "names no stage: '\(name)'") }
                if Set(order).count != order.count { d.add("paths[\(i)]", nil, "a stage appears twice") }
                if !order.contains(forget) { d.add("paths[\(i)]", nil, "does not contain the forget stage '\(forget)'") }
            }
        }
        if case .permutations = paths, stages.count > 6 { d.add("paths", nil, "\(stages.count)! orders is too many; list them explicitly") }
        checkData(unlearning.forgetData, "unlearning.forget_data")
        checkData(unlearning.retainData, "unlearning.retain_data")
        if unlearning.algorithms.contains(where: { AlgorithmSpec.nonLocal.contains($0.name) }) && unlearning.retainData == nil {
            d.add("unlearning.retain_data", nil, "required by \(unlearning.algorithms.filter { AlgorithmSpec.nonLocal.contains($0.name) }.map(\.name).joined(separator: ", ")) (not local: they use retain data)")
        }
        checkData(evaluation.forgetPrompts, "evaluation.forget_prompts")
        checkData(evaluation.facts, "evaluation.facts")
        checkData(evaluation.math, "evaluation.math")
        checkData(evaluation.mass, "evaluation.mass")
        checkData(evaluation.mia?.holdout, "evaluation.mia.holdout")
        checkData(evaluation.tofu?.data, "evaluation.tofu.data")
        if let ref = evaluation.tofu?.data {
            let base = ref.hasSuffix(".test") ? String(ref.dropLast(5)) : ref
            if case .generator(let kind, _, _)? = datasets[base], kind != "entities" {
                d.add("evaluation.tofu.data", nil, "dataset '\(base)' is \(kind) data; TOFU needs entity QA with perturbed answers (generator entities or a tofu file)")
            }
        }
    }
}

/// Dataset generators and file formats an experiment can name.
public enum DatasetKinds {
    public static let generators = ["instructions", "entities", "math", "safety", "mass", "pretrain"]
    /// File formats: the spec's names, then the loaders' own (`DataFormat`) for the same records.
    public static let formats = ["tofu", "gsm8k", "chat", "pairs", "dpo", "text", "messages", "prompt-response"]

    /// The loader format a spec's `format` names (`chat` is `messages`, `pairs` is `prompt-response`).
    public static func dataFormat(_ name: String) -> DataFormat? {
        switch name {
        case "chat": return .messages
        case "pairs": return .promptResponse
        default: return DataFormat(rawValue: name)
        }
    }
}

func formatNumber(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(v)
}
