import Datasets
import Foundation

/// One cacheable piece of work of an experiment.
public struct PlanUnit: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// Generate or load the datasets.
        case data
        /// Train or load the tokenizer.
        case tokenizer
        /// Pretrain (or load) the base model for a seed.
        case base
        /// Train one stage on top of its parent: the model after a prefix of a path.
        case stage
        /// Unlearn the forget stage from a path's model with one algorithm, evaluating on the way.
        case unlearn
        /// Evaluate a retrained model (a path without the forget stage).
        case evaluateRetrained
        /// Compare models of one seed: distance to retrained, path divergence.
        case compare
    }

    public var id: String
    public var kind: Kind
    /// Content hash of everything that determines the unit's output, its parents' hashes included.
    public var hash: String
    public var dependencies: [String]
    public var seed: Int?
    /// Stage names trained so far (stage units) or the full path (unlearn / evaluate units).
    public var prefix: [String]
    public var algorithm: String?
    /// Human-readable description for logs and progress.
    public var label: String
}

/// The graph of units an experiment expands into. Paths that share a prefix of stages share
/// the units that train it, so every prefix is trained once per seed.
public struct ExperimentPlan: Codable, Equatable, Sendable {
    public var units: [PlanUnit]
    /// Per seed, the paths (with the forget stage) and their retrained counterparts.
    public var paths: [[String]]
    public var retrainedPaths: [[String]]

    public func unit(_ id: String) -> PlanUnit? { units.first { $0.id == id } }

    /// Units whose dependencies are all in `done`, and that are not done themselves.
    public func ready(done: Set<String>) -> [PlanUnit] {
        units.filter { !done.contains($0.id) && $0.dependencies.allSatisfy(done.contains) }
    }

    public init(units: [PlanUnit], paths: [[String]], retrainedPaths: [[String]]) {
        self.units = units; self.paths = paths; self.retrainedPaths = retrainedPaths
    }

    public init(spec: ExperimentSpec) {
        let paths = spec.orderedPaths()
        // The speed threshold only shapes the report: changing it reruns nothing.
        var evaluation = spec.evaluation
        evaluation.speedThreshold = nil
        let retrained = spec.retrain ? uniqueOrdered(paths.map { $0.filter { $0 != spec.forget } }) : []
        var units: [PlanUnit] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func hash<T: Encodable>(_ kind: PlanUnit.Kind, _ config: T, _ parents: [String]) -> String {
            let body = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return SHA256.hex(Data("\(kind.rawValue)|\(body)|\(parents.joined(separator: ","))".utf8))
        }
        func add(_ kind: PlanUnit.Kind, id: String, hash: String, deps: [PlanUnit], seed: Int?, prefix: [String] = [], algorithm: String? = nil, label: String) -> PlanUnit {
            let unit = PlanUnit(id: id, kind: kind, hash: hash, dependencies: deps.map(\.id), seed: seed, prefix: prefix, algorithm: algorithm, label: label)
            units.append(unit)
            return unit
        }
        struct DataConfig: Encodable { var datasets: [String: DatasetSource]; var seed: Int }
        let data = add(.data, id: "data", hash: hash(.data, DataConfig(datasets: spec.datasets, seed: spec.dataSeed), []), deps: [], seed: nil, label: "datasets")
        let tokenizer = add(.tokenizer, id: "tokenizer", hash: hash(.tokenizer, spec.tokenizer, [data.hash]), deps: [data], seed: nil, label: "tokenizer")
        let stagesByName = Dictionary(spec.stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for seed in spec.seeds {
            struct BaseConfig: Encodable { var model: ModelSource; var pretraining: StageSpec?; var seed: Int }
            let base = add(.base, id: "s\(seed)/base", hash: hash(.base, BaseConfig(model: spec.model, pretraining: spec.pretraining, seed: seed), [tokenizer.hash]),
                           deps: [tokenizer], seed: seed, label: "seed \(seed): base model")
            var stageUnits: [[String]: PlanUnit] = [[]: base]
            func stageUnit(_ prefix: [String]) -> PlanUnit {
                if let existing = stageUnits[prefix] { return existing }
                let parent = stageUnit(Array(prefix.dropLast()))
                struct StageConfig: Encodable { var stage: StageSpec; var seed: Int; var position: Int }
                let config = StageConfig(stage: stagesByName[prefix.last!]!, seed: seed, position: prefix.count)
                let unit = add(.stage, id: "s\(seed)/" + prefix.joined(separator: "+"), hash: hash(.stage, config, [parent.hash]),
                               deps: [parent], seed: seed, prefix: prefix, label: "seed \(seed): train \(prefix.joined(separator: " → "))")
                stageUnits[prefix] = unit
                return unit
            }
            var unlearnUnits: [PlanUnit] = []
            for path in paths {
                let model = stageUnit(path)
                for algorithm in spec.unlearning.algorithms {
                    struct UnlearnConfig: Encodable { var unlearning: UnlearningSpec; var algorithm: AlgorithmSpec; var evaluation: EvaluationSpec; var forget: String; var seed: Int }
                    var unlearning = spec.unlearning
                    unlearning.algorithms = []
                    let config = UnlearnConfig(unlearning: unlearning, algorithm: algorithm, evaluation: evaluation, forget: spec.forget, seed: seed)
                    unlearnUnits.append(add(.unlearn, id: "s\(seed)/unlearn/\(algorithm.label)/" + path.joined(separator: "+"),
                                            hash: hash(.unlearn, config, [model.hash, data.hash]), deps: [model, data], seed: seed, prefix: path,
                                            algorithm: algorithm.label, label: "seed \(seed): \(algorithm.label) on \(path.joined(separator: " → "))"))
                }
            }
            var retrainedUnits: [PlanUnit] = []
            for path in retrained {
                let model = stageUnit(path)
                struct EvalConfig: Encodable { var evaluation: EvaluationSpec; var seed: Int }
                retrainedUnits.append(add(.evaluateRetrained, id: "s\(seed)/retrained/" + path.joined(separator: "+"),
                                          hash: hash(.evaluateRetrained, EvalConfig(evaluation: evaluation, seed: seed), [model.hash, data.hash]),
                                          deps: [model, data], seed: seed, prefix: path, label: "seed \(seed): evaluate retrained \(path.joined(separator: " → "))"))
            }
            let compareDeps = unlearnUnits + retrainedUnits
            _ = add(.compare, id: "s\(seed)/compare", hash: hash(.compare, evaluation, compareDeps.map(\.hash)), deps: compareDeps, seed: seed,
                    label: "seed \(seed): compare paths and retrained models")
        }
        self.init(units: units, paths: paths, retrainedPaths: retrained)
    }
}

extension ExperimentSpec {
    /// The paths of the experiment, each an ordering of stage names that contains the forget stage.
    public func orderedPaths() -> [[String]] {
        let names = stages.map(\.name)
        switch paths {
        case .explicit(let orders): return orders
        case .permutations: return permutations(names)
        case .insertForget:
            let others = names.filter { $0 != forget }
            return (0...others.count).map { p in var o = others; o.insert(forget, at: p); return o }
        }
    }
}

private func permutations(_ items: [String]) -> [[String]] {
    if items.count <= 1 { return [items] }
    var result: [[String]] = []
    for (i, first) in items.enumerated() {
        var rest = items; rest.remove(at: i)
        for tail in permutations(rest) { result.append([first] + tail) }
    }
    return result
}

private func uniqueOrdered(_ lists: [[String]]) -> [[String]] {
    var seen = Set<[String]>(), out: [[String]] = []
    for l in lists where seen.insert(l).inserted { out.append(l) }
    return out
}
