import Foundation
import Training

/// An experiment: a base model, stages learned along several paths (orders), the retrained
/// baselines, unlearning algorithms, seeds and an evaluation schedule.
///
/// Written as YAML (see docs/spec.md); `ExperimentSpec.parse` validates the whole file and
/// reports every problem with its key path before anything runs.
public struct ExperimentSpec: Codable, Equatable, Sendable {
    public var name: String
    /// Training seeds: every model is trained and unlearned once per seed.
    public var seeds: [Int]
    /// Seed of the synthetic data (shared by all training seeds, so that seeds vary training only).
    public var dataSeed: Int
    public var model: ModelSource
    public var tokenizer: TokenizerSource
    public var datasets: [String: DatasetSource]
    /// Pretraining of a from-scratch base model (absent for a loaded checkpoint).
    public var pretraining: StageSpec?
    public var stages: [StageSpec]
    /// Name of the stage to unlearn.
    public var forget: String
    public var paths: PathsSpec
    /// Train each path without the forget stage as the gold standard.
    public var retrain: Bool
    public var unlearning: UnlearningSpec
    public var evaluation: EvaluationSpec
}

public enum ModelSource: Codable, Equatable, Sendable {
    /// A built-in architecture preset, initialised from the seed and pretrained from scratch.
    case preset(String)
    /// A Hugging Face checkpoint directory.
    case checkpoint(String)
}

public enum TokenizerSource: Codable, Equatable, Sendable {
    /// Train a byte-level BPE tokenizer on a dataset of the spec.
    case train(dataset: String, vocabSize: Int, minFrequency: Int)
    /// A tokenizer.json file or a directory holding one.
    case file(String)
    /// The tokenizer stored in the model's checkpoint directory.
    case checkpoint
}

/// Where a dataset comes from: a built-in generator or a file in one of the loaders' formats.
public enum DatasetSource: Codable, Equatable, Sendable {
    case generator(kind: String, size: Int, testSize: Int)
    case file(path: String, format: String?, testPath: String?)
}

public struct StageSpec: Codable, Equatable, Sendable {
    public var name: String
    /// Dataset name; `NAME.test` names a dataset's test split.
    public var data: String
    public var objective: Objective
    public var epochs: Int
    public var batchSize: Int
    public var maxLength: Int?
    public var replay: ReplaySpec?
    public var optimizer: OptimizerSpec
    public var schedule: ScheduleSpec
    public var lora: LoRASpec?
    public var clipNorm: Double?
    /// DPO's β (objective dpo only).
    public var dpoBeta: Double
    /// For probability-mass data: which response the stage learns (`compliance`, `target` or `refusal`).
    public var response: String?

    public enum Objective: String, Codable, Sendable, CaseIterable { case lm, sft, dpo }
}

public struct ReplaySpec: Codable, Equatable, Sendable {
    public var dataset: String
    public var perBatch: Int
}

public struct OptimizerSpec: Codable, Equatable, Sendable {
    public var name: Name
    public var lr: Double
    public var betas: [Double]
    public var eps: Double
    public var weightDecay: Double
    public var momentum: Double
    public var nesterov: Bool

    public typealias Name = OptimizerChoice.Name

    public static func adamw(lr: Double, betas: [Double] = [0.9, 0.999], weightDecay: Double = 0) -> OptimizerSpec {
        OptimizerSpec(name: .adamw, lr: lr, betas: betas, eps: 1e-8, weightDecay: weightDecay, momentum: 0, nesterov: false)
    }
}

/// A learning-rate schedule; fractions are of the stage's total steps.
public struct ScheduleSpec: Codable, Equatable, Sendable {
    public var kind: Kind
    public var warmup: Double
    /// Final linear-decay fraction (wsd only).
    public var decay: Double
    /// Final learning rate as a fraction of the peak.
    public var floor: Double

    public typealias Kind = Training.ScheduleSpec.Kind
    public static let constant = ScheduleSpec(kind: .constant, warmup: 0, decay: 0, floor: 0)
}

public struct LoRASpec: Codable, Equatable, Sendable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var targets: [String]
    public static let allTargets = ["q", "k", "v", "o", "gate", "up", "down"]
}

public enum PathsSpec: Codable, Equatable, Sendable {
    /// The forget stage inserted at every position among the other stages (kept in listed order).
    case insertForget
    /// Every ordering of the stages.
    case permutations
    /// The listed orders (stage names).
    case explicit([[String]])
}

public struct UnlearningSpec: Codable, Equatable, Sendable {
    /// Dataset of the forget set (default: the forget stage's data).
    public var forgetData: String?
    /// Retain data for non-local algorithms (GradDiff, +RT).
    public var retainData: String?
    public var steps: Int
    public var batchSize: Int
    public var optimizer: OptimizerSpec
    public var schedule: ScheduleSpec
    public var lora: LoRASpec?
    public var algorithms: [AlgorithmSpec]
}

/// An unlearning algorithm and its hyper-parameters (names as in docs/unlearning.md).
public struct AlgorithmSpec: Codable, Equatable, Sendable {
    public var name: String
    /// Label in tables and plots (default: the name, with non-default hyper-parameters).
    public var label: String
    public var parameters: [String: Double]
    /// Unlearn this algorithm through a LoRA adapter (overrides `UnlearningSpec.lora`).
    public var lora: LoRASpec? = nil
    /// The retain term of an algorithm that has one (`retainLossAlgorithms`); nil is Training's
    /// default, the retain set's NLL.
    public var retain: RetainLoss? = nil

    /// The algorithms a spec may name and the numeric hyper-parameters it may set for each
    /// (Training's objectives have more, e.g. `length_normalized`, left at their defaults; the
    /// retain term is `retain`, below).
    static let settable: [String: [String]] = [
        "ga": [],
        "graddiff": ["gamma", "alpha"],
        "npo": ["beta"],
        "npo_rt": ["beta", "alpha"],
        "simnpo": ["beta", "gamma"],
        "simnpo_code": ["beta"],
        "simnpo_rt": ["beta", "gamma", "alpha"],
        "idkdpo": ["beta"],
    ]
    /// Algorithms whose retain term a spec may choose (`retain: nll | kl`).
    static let retainLossAlgorithms: Set<String> = ["graddiff", "npo_rt", "simnpo_rt"]
    /// Known algorithms and their settable hyper-parameters with Training's defaults.
    public static let known: [String: [String: Double]] = Dictionary(uniqueKeysWithValues: settable.map { name, keys in
        let defaults = Objective.named(name)!.numericParameters
        return (name, Dictionary(uniqueKeysWithValues: keys.map { ($0, defaults[$0]!) }))
    })
    /// Algorithms that use retain data (not local).
    public static let nonLocal: Set<String> = Set(settable.keys.filter { !Objective.named($0)!.isLocal })
}

public struct EvaluationSpec: Codable, Equatable, Sendable {
    /// Most evaluation points `every` (or the default, every step) may give.
    public static let maxEvaluationPoints = 100_000
    /// Unlearning steps after which the metrics are computed (always includes 0).
    public var steps: [Int]
    /// Forget prompts (dataset of unsafe prompts answered by refusals).
    public var forgetPrompts: String?
    /// Number of refusal paraphrases scored besides the target.
    public var paraphrases: Int
    /// Entity QA for fact utility.
    public var facts: String?
    /// Math problems for accuracy, and samples per problem (0 = greedy once).
    public var math: String?
    public var mathSamples: Int
    public var mathAt: MathSchedule
    /// Probability-mass items (prompt with C, U, R responses).
    public var mass: String?
    /// Sampled sequences per model for path divergence (0 = off).
    public var divergenceSamples: Int
    public var divergenceLength: Int
    /// τ of the report's "steps to forget score ≥ τ" table (nil: `defaultSpeedThreshold`). Only the
    /// report reads it, so it is left out of the units' content hashes.
    public var speedThreshold: Double?
    /// Membership inference at the ends of unlearning (nil = off).
    public var mia: MIASpec?
    /// TOFU's metrics on entity QA with paraphrased and perturbed answers at the ends of unlearning (nil = off).
    public var tofu: TOFUSpec?

    public static let defaultSpeedThreshold = 1.0
    public var resolvedSpeedThreshold: Double { speedThreshold ?? Self.defaultSpeedThreshold }

    public enum MathSchedule: String, Codable, Sendable, CaseIterable { case never, ends, every }
}

/// Min-k% membership inference: the forget set (members) against a holdout (non-members).
public struct MIASpec: Codable, Equatable, Sendable {
    /// Dataset of non-members, e.g. `safety.test` when the forget stage is `safety`.
    public var holdout: String
    /// Fraction of lowest-probability tokens averaged.
    public var k: Double
    /// Records of each set used, at most (the first ones).
    public var count: Int
}

/// TOFU's metrics on a dataset of entity QA with paraphrased and perturbed answers.
public struct TOFUSpec: Codable, Equatable, Sendable {
    /// Entity QA dataset (default: `evaluation.facts`). It is TOFU's forget split when it is the
    /// forget stage's data, its retain split otherwise.
    public var data: String
    /// Questions used, at most (the first ones).
    public var count: Int
    /// Tokens of each greedy answer at most (ROUGE-L).
    public var maxNewTokens: Int
}
