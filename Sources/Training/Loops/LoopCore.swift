import Engine
import Models

/// The optimizer of a stage or of an unlearning run; a fresh one is built for every run.
public enum OptimizerChoice: Sendable, Equatable {
    case adamw(AdamWConfig), sgd(SGDConfig)

    /// The optimizers' names in specs and options.
    public enum Name: String, Codable, Hashable, Sendable, CaseIterable { case adamw, sgd }

    public var name: Name {
        switch self {
        case .adamw: return .adamw
        case .sgd: return .sgd
        }
    }

    func make() throws -> Optimizer {
        switch self {
        case .adamw(let c): return try AdamW(c)
        case .sgd(let c): return try SGD(c)
        }
    }

    func validate() throws {
        switch self {
        case .adamw(let c): try c.validate()
        case .sgd(let c): try c.validate()
        }
    }
}

/// What happened at one optimizer step (1-based `step` of `totalSteps`).
public struct StepReport: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// The objective's value on this step's batch, before the update.
    public var loss: Double
    /// Learning rate used by this update (base rate × schedule multiplier).
    public var learningRate: Double
    /// Global L2 norm of the gradient before clipping.
    public var gradientNorm: Double?
    /// Named parts of the loss (e.g. "forget", "retain"); they add up to `loss`.
    public var terms: [String: Double] = [:]
    /// The 1-based pass over the data (stage epoch, or pass over the forget set) of this step.
    public var epoch = 1
    /// Whether this step is the last of its epoch (for checkpoints at epoch ends).
    public var endsEpoch = false

    public init(step: Int, totalSteps: Int, loss: Double, learningRate: Double, gradientNorm: Double?,
                terms: [String: Double] = [:]) {
        self.step = step; self.totalSteps = totalSteps; self.loss = loss
        self.learningRate = learningRate; self.gradientNorm = gradientNorm; self.terms = terms
    }
}

/// The trainable parameters of a model as optimizer slots over the tensors' own buffers.
///
/// Frozen tensors (`requiresGrad == false`, e.g. base weights under LoRA) get no slot; with LoRA
/// attached the adapters' A and B are the slots (`CausalLM.trainableParameters`, PEFT names,
/// weight decay by the usual rule: they are matrices). Every slot's gradient buffer is created
/// up front and reset between steps, so backward writes into the same memory the optimizer reads.
struct ModelSlots {
    let tensors: [Tensor]
    let slots: [ParameterSlot]

    init(model: CausalLM) {
        var tensors: [Tensor] = [], slots: [ParameterSlot] = []
        for (name, t) in model.trainableParameters {
            // The pointers stay valid while the model holds the tensors (the loops keep it alive).
            let value = t.withUnsafeMutableBufferPointer { $0 }
            let grad = t.withUnsafeMutableGradBufferPointer { $0 }
            tensors.append(t)
            slots.append(ParameterSlot(name: name, shape: t.shape, value: value, grad: grad))
        }
        self.tensors = tensors
        self.slots = slots
    }

    /// Zeroes every gradient lazily (`Tensor.resetGrad`): backward then writes over the buffers.
    func resetGrads() { for t in tensors { t.resetGrad() } }

    /// Zeroes the gradients no backward pass wrote since `resetGrads`, before the slots'
    /// pointers are read.
    func settleGrads() { for t in tensors { t.settleGrad() } }
}

/// Rows of several token batches padded to one length (so one forward pass serves them all),
/// with the rows each part occupies.
func mergeBatches(_ parts: [TokenBatch], padId: Int32) -> (batch: TokenBatch, rows: [Range<Int>]) {
    if parts.count == 1 { return (parts[0], [0..<parts[0].batchSize]) }
    let length = parts.map(\.length).max()!
    let rows = parts.reduce(0) { $0 + $1.batchSize }
    var ids = [Int32](repeating: padId, count: rows * length)
    var targets = [Int32](repeating: TokenLogLikelihood.ignoreIndex, count: rows * length)
    var lengths: [Int] = [], counts: [Int] = [], sources: [TokenBatch.Source] = [], ranges: [Range<Int>] = []
    var row = 0
    for p in parts {
        ranges.append(row..<(row + p.batchSize))
        for b in 0..<p.batchSize {
            for t in 0..<p.length {
                ids[row * length + t] = p.inputIds[b * p.length + t]
                targets[row * length + t] = p.targets[b * p.length + t]
            }
            row += 1
        }
        lengths += p.sequenceLengths; counts += p.tokenCounts; sources += p.sources
    }
    return (TokenBatch(batchSize: rows, length: length, inputIds: ids, targets: targets, sequenceLengths: lengths,
                       tokenCounts: counts, sources: sources), ranges)
}

/// HF-style labels (unshifted, −100 where no loss) of a batch whose `targets` are shifted:
/// labels[t] = targets[t − 1], labels[0] = −100.
func labels(of batch: TokenBatch) -> [Int32] {
    var out = [Int32](repeating: TokenLogLikelihood.ignoreIndex, count: batch.targets.count)
    let T = batch.length
    for b in 0..<batch.batchSize where T > 1 {
        for t in 1..<T { out[b * T + t] = batch.targets[b * T + t - 1] }
    }
    return out
}

/// Per-row sums in Double of a `[B, T]` tensor of token log-probabilities.
func rowSums(_ lp: Tensor, batch: Int, length: Int) -> [Double] {
    lp.withUnsafeBufferPointer { p in
        (0..<batch).map { b in
            var s = 0.0
            for t in 0..<length { s += Double(p[b * length + t]) }
            return s
        }
    }
}

/// Summed response log-likelihood of every row of `batch` under `model`, without recording a graph.
func sequenceLogLikelihoods(_ model: CausalLM, _ batch: TokenBatch) -> [Double] {
    Autograd.withNoGrad {
        let lp = model.tokenLogProbs(batch.inputIds, labels: labels(of: batch), batch: batch.batchSize, length: batch.length)
        return rowSums(lp, batch: batch.batchSize, length: batch.length)
    }
}

/// One forward and backward pass of an `Objective` over groups of sequences.
///
/// The groups are padded into one batch and run through the model once; the per-sequence
/// statistics go to `Objective.evaluate`, and its weights w_b = ∂loss/∂ℓ_b seed the backward
/// pass of the token log-probabilities (seed[b, t] = w_b at loss positions), which gives exactly
/// ∂loss/∂θ. With a KL retain term the pass goes through the full logits instead, seeded with
/// `TokenLogLikelihood.backward` + `klBackward`.
struct ObjectivePass {
    let model: CausalLM
    let reference: CausalLM?
    let objective: Objective
    let padId: Int32
    /// Rows per forward/backward pass (gradient accumulation); nil: the whole batch at once.
    /// The objective still sees the whole batch, so the gradient is the same up to rounding.
    var microBatch: Int? = nil

    /// One forward pass over some rows: their statistics, and the tensors backward needs.
    private struct Forward {
        var ll: [Double]
        var kl: [Double]?
        var logits: Tensor?, referenceLogits: Tensor?, tokenLP: Tensor?
    }

    private func forward(_ batch: TokenBatch, needsKL: Bool) throws -> Forward {
        let B = batch.batchSize, T = batch.length, V = model.config.vocabSize
        if needsKL, let reference {
            let x = model.logits(batch.inputIds, batch: B, length: T)
            let r = Autograd.withNoGrad { reference.logits(batch.inputIds, batch: B, length: T) }
            let ll = try x.withUnsafeBufferPointer {
                try TokenLogLikelihood.sequenceLogLikelihoods(logits: $0, targets: batch.targets, batch: B, length: T, vocab: V).logLikelihood
            }
            let kl = try x.withUnsafeBufferPointer { xp in
                try r.withUnsafeBufferPointer { rp in
                    try TokenLogLikelihood.klToReference(logits: xp, reference: rp, targets: batch.targets, batch: B, length: T, vocab: V)
                }
            }
            return Forward(ll: ll, kl: kl, logits: x, referenceLogits: r, tokenLP: nil)
        }
        let lp = model.tokenLogProbs(batch.inputIds, labels: labels(of: batch), batch: B, length: T)
        return Forward(ll: rowSums(lp, batch: B, length: T), kl: nil, logits: nil, referenceLogits: nil, tokenLP: lp)
    }

    /// Seeds the backward pass of `f` (over `batch`) with the per-row weights `w` (∂loss/∂ℓ_b)
    /// and `k` (∂loss/∂KL_b).
    private func backward(_ f: Forward, _ batch: TokenBatch, w: ArraySlice<Double>, k: ArraySlice<Double>) throws {
        let B = batch.batchSize, T = batch.length, V = model.config.vocabSize
        let w = Array(w), k = Array(k)
        if let lp = f.tokenLP {
            var seed = [Float](repeating: 0, count: B * T)
            for b in 0..<B {
                let wb = Float(w[b])
                for t in 0..<T where batch.targets[b * T + t] != TokenLogLikelihood.ignoreIndex { seed[b * T + t] = wb }
            }
            lp.backward(seed: Tensor(seed, shape: [B, T]))
        } else if let x = f.logits, let r = f.referenceLogits {
            let g = Tensor(zeros: [B, T, V])
            try x.withUnsafeBufferPointer { xp in
                try r.withUnsafeBufferPointer { rp in
                    try g.withUnsafeMutableBufferPointer { gp in
                        try TokenLogLikelihood.backward(logits: xp, targets: batch.targets, batch: B, length: T, vocab: V,
                                                        weights: w, into: gp)
                        try TokenLogLikelihood.klBackward(logits: xp, reference: rp, targets: batch.targets, batch: B,
                                                          length: T, vocab: V, weights: k, into: gp, accumulate: true)
                    }
                }
            }
            x.backward(seed: g)
        }
    }

    /// Adds ∂loss/∂θ into the parameters' gradients and returns the objective's result.
    /// - Parameter context: names the step in errors, e.g. "Unlearner step 3/20".
    func run(_ groups: [(role: SequenceRole, batch: TokenBatch)], context: String) throws -> ObjectiveResult {
        let (batch, ranges) = mergeBatches(groups.map(\.batch), padId: padId)
        let B = batch.batchSize
        let needsKL = groups.contains { objective.needsKL($0.role) }

        // Reference statistics first: no graph, and errors before any gradient is written.
        var referenceLL: [Int: [Double]] = [:]
        let refGroups = groups.indices.filter { objective.needsReferenceLogLikelihood(groups[$0].role) }
        if !refGroups.isEmpty || needsKL {
            guard reference != nil else {
                throw TrainingError.empty(context: context, message: "\(objective.name) needs a frozen reference model (the model before unlearning), got none")
            }
        }
        if !refGroups.isEmpty, let reference {
            let (rb, rr) = mergeBatches(refGroups.map { groups[$0].batch }, padId: padId)
            var ll: [Double] = []
            for chunk in chunks(rb.batchSize) { ll += sequenceLogLikelihoods(reference, rows(rb, chunk)) }
            for (i, g) in refGroups.enumerated() { referenceLL[g] = Array(ll[rr[i]]) }
        }

        // One pass with its graph kept, or (micro-batches) statistics without a graph first and
        // one forward and backward per micro-batch once the objective has weighted every row.
        let parts = chunks(B)
        var whole: Forward? = nil
        var ll: [Double] = [], kl: [Double]? = nil
        if parts.count == 1 {
            whole = try forward(batch, needsKL: needsKL)
            ll = whole!.ll; kl = whole!.kl
        } else {
            try Autograd.withNoGrad {
                for chunk in parts {
                    let f = try forward(rows(batch, chunk), needsKL: needsKL)
                    ll += f.ll
                    if let c = f.kl { kl = (kl ?? []) + c }
                }
            }
        }

        var inputs: [SequenceRole: SequenceStats] = [:]
        for (gi, g) in groups.enumerated() {
            let r = ranges[gi]
            if let i = r.first(where: { !ll[$0].isFinite }) {
                throw TrainingError.nonFinite(context: context,
                    message: "the loss is not finite: log-likelihood of \(g.role.rawValue) sequence \(i - r.lowerBound) is \(ll[i]) (NaN or infinity in the model's weights or activations)")
            }
            inputs[g.role] = SequenceStats(logLikelihood: Array(ll[r]), tokenCounts: Array(batch.tokenCounts[r]),
                                           referenceLogLikelihood: referenceLL[gi], klToReference: kl.map { Array($0[r]) })
        }
        let result: ObjectiveResult
        do {
            result = try objective.evaluate(inputs)
        } catch let e as TrainingError {
            throw e.within(context)
        }
        guard result.loss.isFinite else {
            throw TrainingError.nonFinite(context: context, message: "the loss is \(result.loss)")
        }

        var w = [Double](repeating: 0, count: B), k = [Double](repeating: 0, count: B)
        for (gi, g) in groups.enumerated() {
            guard let grads = result.gradients[g.role] else { continue }
            for (j, row) in ranges[gi].enumerated() {
                w[row] = grads.logLikelihood[j]
                if let kk = grads.klToReference { k[row] = kk[j] }
            }
        }
        if let whole {
            try backward(whole, batch, w: w[...], k: k[...])
        } else {
            for chunk in parts {
                let sub = rows(batch, chunk)
                try backward(try forward(sub, needsKL: needsKL), sub, w: w[chunk], k: k[chunk])
            }
        }
        return result
    }

    /// Row ranges of at most `microBatch` rows covering 0..<rows.
    private func chunks(_ rows: Int) -> [Range<Int>] {
        guard let m = microBatch, m < rows else { return [0..<rows] }
        return stride(from: 0, to: rows, by: m).map { $0..<Swift.min($0 + m, rows) }
    }

    /// Some rows of a batch, at the batch's padded length.
    private func rows(_ batch: TokenBatch, _ r: Range<Int>) -> TokenBatch {
        if r == 0..<batch.batchSize { return batch }
        let T = batch.length
        return TokenBatch(batchSize: r.count, length: T, inputIds: Array(batch.inputIds[(r.lowerBound * T)..<(r.upperBound * T)]),
                          targets: Array(batch.targets[(r.lowerBound * T)..<(r.upperBound * T)]),
                          sequenceLengths: Array(batch.sequenceLengths[r]), tokenCounts: Array(batch.tokenCounts[r]),
                          sources: Array(batch.sources[r]))
    }
}

/// Optimizer, schedule and clipping around `ObjectivePass`: one update per call.
final class UpdateLoop {
    let slots: ModelSlots
    let optimizer: Optimizer
    let schedule: LearningRateSchedule
    let learningRate: Double
    let clipNorm: Double?
    let name: String
    /// Its dropout is on only inside the update's forward and backward passes.
    let lora: LoRA?

    init(model: CausalLM, optimizer: OptimizerChoice, schedule: ScheduleSpec, totalSteps: Int,
         learningRate: Double, clipNorm: Double?, name: String) throws {
        try require(learningRate.isFinite && learningRate >= 0, "\(name).learningRate", "must be finite and >= 0, got \(learningRate)")
        if let c = clipNorm { try require(c.isFinite && c > 0, "\(name).clipNorm", "must be finite and > 0, got \(c)") }
        if let lora = model.lora, lora.isMerged {
            throw TrainingError.invalidOption(context: "\(name).lora",
                message: "the LoRA adapters are merged into the base weights; unmerge them (or detach) before training")
        }
        lora = model.lora
        slots = ModelSlots(model: model)
        if slots.slots.isEmpty {
            throw TrainingError.empty(context: name, message: "the model has no trainable parameter (every tensor has requiresGrad == false)")
        }
        self.optimizer = try optimizer.make()
        self.schedule = try schedule.resolve(totalSteps: totalSteps)
        self.learningRate = learningRate
        self.clipNorm = clipNorm
        self.name = name
    }

    func context(_ k: Int) -> String { "\(name) step \(k + 1)/\(schedule.totalSteps)" }

    /// Update number `k` (0-based): gradients from `pass`, norm check, clipping, optimizer step.
    /// Throws before touching any parameter when the loss or the gradient is not finite.
    func update(_ k: Int, _ pass: (String) throws -> ObjectiveResult) throws -> StepReport {
        let ctx = context(k)
        slots.resetGrads()
        lora?.isTraining = true
        let result: ObjectiveResult
        do {
            defer { lora?.isTraining = false }
            result = try pass(ctx)
        }
        slots.settleGrads()
        let norm = GradientClipping.globalNorm(slots.slots)
        guard norm.isFinite else {
            let culprit = slots.slots.first { s in s.grad.map { g in g.contains { !$0.isFinite } } ?? false }?.name ?? "?"
            throw TrainingError.nonFinite(context: ctx, message: "the gradient norm is \(norm) (first non-finite gradient: \(culprit)); no parameter was updated")
        }
        if let c = clipNorm { try GradientClipping.clipByGlobalNorm(slots.slots, maxNorm: c) }
        let lr = learningRate * schedule.multiplier(at: k)
        try optimizer.step(slots.slots, learningRate: lr)
        return StepReport(step: k + 1, totalSteps: schedule.totalSteps, loss: result.loss, learningRate: lr,
                          gradientNorm: norm, terms: result.terms)
    }
}

/// Batches may not be longer than the model's context (positions it was never built for).
func checkContext(_ maxContext: Int, _ model: CausalLM, _ context: String) throws {
    try require(maxContext <= model.config.maxPositionEmbeddings, context,
                "\(maxContext) tokens exceed the model's context (max_position_embeddings \(model.config.maxPositionEmbeddings))")
}

/// Every token id of `examples` must be a row of the model's embedding (the model itself would
/// stop the process on a bad id).
func checkVocabulary(_ examples: [Example], vocab: Int, _ context: String) throws {
    for (i, e) in examples.enumerated() {
        if let bad = e.prompt.first(where: { $0 < 0 || Int($0) >= vocab }) ?? e.response.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw TrainingError.mismatch(context: context,
                message: "example \(i) holds token id \(bad), outside the model's vocabulary 0..<\(vocab)")
        }
    }
}
