import Foundation
import Models

/// Rough peak memory of a unit, from the model's shape, and the number of units to run at once
/// that the cores and the memory budget allow (`palimpsest run --concurrency auto`).
public enum UnitMemory {
    /// Memory of a unit beyond its model tensors: datasets, tokenizer, evaluation buffers, runtime.
    public static let overheadBytes = 64 << 20

    /// Sequence length assumed when no stage sets `max_length`: the built-in generators' examples
    /// are well under it; a spec with longer examples should set `max_length`.
    public static let typicalSequence = 256

    /// Float32 copies of the parameters a unit holds at its peak: training keeps weights, gradients
    /// and two AdamW moments (4); unlearning also a frozen reference model (5, for every algorithm:
    /// the runner makes one before knowing whether the objective reads it); the comparison unit
    /// holds up to three models at once; data and tokenizer units none.
    public static func parameterCopies(_ kind: PlanUnit.Kind) -> Int {
        switch kind {
        case .data, .tokenizer: return 0
        case .base, .stage: return 4
        case .unlearn: return 5
        case .evaluateRetrained: return 1
        case .compare: return 3
        }
    }

    /// Activations a training step keeps for backward, doubled for the gradients that live next to
    /// them: per token and layer the norms' inputs, q/k/v, the attention output and probabilities
    /// (heads × sequence), the MLP's four intermediate-wide tensors and the residual stream; per
    /// token the logits, their softmax and gradient (3 × vocab).
    public static func activationBytes(_ config: ModelConfig, batch: Int, sequence: Int) -> Int {
        let h = config.hiddenSize, kv = product(config.numKeyValueHeads, config.headDim)
        let perLayer = sum(product(5, h), product(2, kv), product(config.numAttentionHeads, sequence), product(4, config.intermediateSize))
        let perToken = sum(product(config.numHiddenLayers, perLayer), product(3, config.vocabSize))
        return product(2, batch, sequence, perToken, MemoryLayout<Float>.size)
    }

    /// Peak bytes of one unit of `kind`.
    public static func peakBytes(_ config: ModelConfig, kind: PlanUnit.Kind, batch: Int, sequence: Int) -> Int {
        let copies = parameterCopies(kind)
        if copies == 0 { return overheadBytes }
        let weights = product(copies, config.checkedParameterCount ?? .max, MemoryLayout<Float>.size)
        return sum(overheadBytes, weights, activationBytes(config, batch: batch, sequence: sequence))
    }

    // An estimate, so it saturates at Int.max: a spec's batch_size or max_length near Int.max (or
    // a large config) overflowed the arithmetic and trapped `run --concurrency auto`.
    private static func product(_ xs: Int...) -> Int {
        var p = 1
        for x in xs {
            let (m, o) = p.multipliedReportingOverflow(by: max(0, x))
            if o { return .max }
            p = m
        }
        return p
    }

    private static func sum(_ xs: Int...) -> Int {
        var s = 0
        for x in xs {
            let (m, o) = s.addingReportingOverflow(max(0, x))
            if o { return .max }
            s = m
        }
        return s
    }

    /// The model a spec trains: the preset's shape with the tokenizer's vocabulary size, or the
    /// checkpoint's config.json; nil when that cannot be read (a tokenizer from a file, say, keeps
    /// the preset's vocabulary).
    public static func modelConfig(of spec: ExperimentSpec) -> ModelConfig? {
        switch spec.model {
        case .preset(let name):
            guard var config = ModelPreset(rawValue: name)?.config else { return nil }
            if case .train(_, let vocab, _) = spec.tokenizer { config.vocabSize = vocab }
            return config
        case .checkpoint(let dir):
            return try? ModelConfig.load(from: URL(fileURLWithPath: dir).appendingPathComponent("config.json"))
        }
    }

    /// The largest peak over the spec's units: the largest batch (with replay) of pretraining,
    /// the stages and unlearning, at the longest `max_length` (else `typicalSequence`, capped by
    /// the model's positions). Nil when the model's shape is unknown.
    public static func peakBytes(spec: ExperimentSpec) -> Int? {
        guard let config = modelConfig(of: spec) else { return nil }
        let stages = (spec.pretraining.map { [$0] } ?? []) + spec.stages
        let trainBatch = stages.map { sum($0.batchSize, $0.replay?.perBatch ?? 0) }.max() ?? 1
        let sequence = min(config.maxPositionEmbeddings, stages.compactMap(\.maxLength).max() ?? typicalSequence)
        let train = peakBytes(config, kind: .stage, batch: trainBatch, sequence: sequence)
        // Unlearning batches hold the forget batch and, for algorithms with a retain term, as many retain examples.
        let unlearn = peakBytes(config, kind: .unlearn, batch: product(2, spec.unlearning.batchSize), sequence: sequence)
        return max(train, unlearn)
    }

    /// Units to run at once: one per core, as many as `budgetBytes` holds at `unitPeakBytes` each
    /// (never more; at least one). An unknown budget or peak leaves the cores alone to decide.
    public static func autoConcurrency(cores: Int, budgetBytes: Int?, unitPeakBytes: Int?) -> Int {
        var c = max(1, cores)
        if let budget = budgetBytes, let peak = unitPeakBytes, peak > 0 { c = min(c, max(1, budget / peak)) }
        return c
    }
}
