import Engine
import Foundation

/// A linear layer as HF checkpoints store it: `y = x · Wᵀ + b`, `W: [out, in]`.
///
/// `adapter`, when set, adds its output to the layer's (`y + adapter(x)`): the hook LoRA and
/// similar low-rank updates use without the decoder knowing about them.
public final class Linear {
    public var weight: Tensor
    public var bias: Tensor?
    public var adapter: ((Tensor) -> Tensor)?

    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = linear(x, weight: weight, bias: bias)
        if let adapter { return y + adapter(x) }
        return y
    }
}

/// Grouped-query self-attention with rotary embeddings (HF `self_attn`).
public final class Attention {
    public let qProj: Linear, kProj: Linear, vProj: Linear, oProj: Linear
    let heads: Int, kvHeads: Int, headDim: Int

    init(qProj: Linear, kProj: Linear, vProj: Linear, oProj: Linear, config: ModelConfig) {
        self.qProj = qProj
        self.kProj = kProj
        self.vProj = vProj
        self.oProj = oProj
        heads = config.numAttentionHeads
        kvHeads = config.numKeyValueHeads
        headDim = config.headDim
    }

    /// x: [B, T, hidden] → [B, T, hidden].
    func callAsFunction(_ x: Tensor, context: ForwardContext, layer: Int) -> Tensor {
        let q = rope(qProj(x), heads: heads, headDim: headDim, table: context.rope)
        let k = rope(kProj(x), heads: kvHeads, headDim: headDim, table: context.rope)
        let v = vProj(x)
        let attended: Tensor
        if let lengths = context.sequenceLengths {
            attended = packedCausalAttention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: headDim, sequenceLengths: lengths)
        } else if let cache = context.cache {
            let (keys, values) = cache.append(layer: layer, keys: k, values: v, at: context.offset)
            attended = causalAttention(q, keys, values, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                       queryOffset: context.offset, leftPadding: context.leftPadding)
        } else {
            attended = causalAttention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                       leftPadding: context.leftPadding)
        }
        return oProj(attended)
    }
}

/// The SwiGLU feed-forward block (HF `mlp`): `down(silu(gate(x)) ⊙ up(x))`.
public final class FeedForward {
    public let gateProj: Linear, upProj: Linear, downProj: Linear

    init(gateProj: Linear, upProj: Linear, downProj: Linear) {
        self.gateProj = gateProj
        self.upProj = upProj
        self.downProj = downProj
    }

    func callAsFunction(_ x: Tensor) -> Tensor { downProj(swiglu(gateProj(x), upProj(x))) }
}

/// One pre-norm decoder block (HF `model.layers.{i}`).
public final class DecoderLayer {
    public let inputLayernorm: Tensor
    public let selfAttn: Attention
    public let postAttentionLayernorm: Tensor
    public let mlp: FeedForward
    let eps: Float

    init(inputLayernorm: Tensor, selfAttn: Attention, postAttentionLayernorm: Tensor, mlp: FeedForward, eps: Float) {
        self.inputLayernorm = inputLayernorm
        self.selfAttn = selfAttn
        self.postAttentionLayernorm = postAttentionLayernorm
        self.mlp = mlp
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor, context: ForwardContext, layer: Int) -> Tensor {
        let h = x + selfAttn(rmsNorm(x, weight: inputLayernorm, eps: eps), context: context, layer: layer)
        return h + mlp(rmsNorm(h, weight: postAttentionLayernorm, eps: eps))
    }
}

/// What every layer of one forward pass shares.
struct ForwardContext {
    /// cos/sin of this pass's positions, computed once for every layer.
    let rope: RoPETable
    /// Absolute position of the first query (and its slot in the cache).
    let offset: Int
    let leftPadding: [Int]?
    let cache: KVCache?
    /// Packed sequences (one `[1, N, ...]` row holding them one after another), or nil.
    var sequenceLengths: [Int]? = nil
}

/// Keys and values of past tokens, one preallocated `[B, capacity, kvHeads·headDim]` buffer per
/// layer, so decoding a token costs one row of each instead of recomputing the prefix.
///
/// Attention reads the whole buffer but sees only keys at positions up to the query's, so the
/// unused tail is never read.
public final class KVCache {
    public let batch: Int
    public let capacity: Int
    /// Tokens stored so far (the position of the next token, counting left padding).
    public internal(set) var length = 0
    /// Leading padded positions per row (generation of prompts of different lengths).
    public let leftPadding: [Int]?
    var keys: [Tensor]
    var values: [Tensor]

    /// An empty cache for `batch` rows of at most `capacity` tokens.
    public init(config: ModelConfig, batch: Int, capacity: Int, leftPadding: [Int]? = nil) {
        precondition(batch > 0 && capacity > 0, "KVCache: batch \(batch) and capacity \(capacity) must be > 0")
        if let leftPadding {
            precondition(leftPadding.count == batch && leftPadding.allSatisfy { $0 >= 0 && $0 < capacity },
                         "KVCache: leftPadding \(leftPadding) must have \(batch) entries in 0..<\(capacity)")
        }
        self.batch = batch
        self.capacity = capacity
        self.leftPadding = leftPadding
        let width = config.numKeyValueHeads * config.headDim
        keys = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: [batch, capacity, width]) }
        values = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: [batch, capacity, width]) }
    }

    /// Copies `k`, `v: [B, T, width]` into slots `offset ..< offset+T`; returns the full buffers.
    func append(layer: Int, keys k: Tensor, values v: Tensor, at offset: Int) -> (Tensor, Tensor) {
        let t = k.shape[1], width = k.shape[2]
        precondition(k.shape[0] == batch && offset + t <= capacity,
                     "KVCache: \(t) new tokens at \(offset) exceed capacity \(capacity) (or batch \(k.shape[0]) != \(batch))")
        for (src, dst) in [(k, keys[layer]), (v, values[layer])] {
            src.withUnsafeBufferPointer { s in
                dst.withUnsafeMutableBufferPointer { d in
                    for b in 0..<batch {
                        let from = s.baseAddress! + b * t * width
                        let to = d.baseAddress! + (b * capacity + offset) * width
                        to.update(from: from, count: t * width)
                    }
                }
            }
        }
        return (keys[layer], values[layer])
    }
}

/// A Llama / Qwen2 causal language model (`LlamaForCausalLM`, `Qwen2ForCausalLM`) on the
/// engine's tensors, its modules named and shaped as in HF checkpoints.
///
/// Every parameter is a leaf tensor with `requiresGrad`, so a loss built from `logits` can be
/// differentiated with `backward()`. With tied embeddings `lmHead` is the same tensor as
/// `embedTokens` and receives both gradients.
public final class CausalLM {
    public let config: ModelConfig
    public let embedTokens: Tensor
    public let layers: [DecoderLayer]
    public let norm: Tensor
    public let lmHead: Tensor
    /// RoPE inverse frequencies with the config's scaling.
    public let ropeInverseFrequencies: [Float]
    /// Files saved alongside the weights (tokenizer, generation config): those of the
    /// checkpoint this model was loaded from, unless set otherwise.
    public var companionFiles: [URL] = []
    /// The LoRA adapters attached to this model (see `LoRA.attach`), if any.
    public internal(set) var lora: LoRA?
    let byName: [String: Tensor]

    /// Builds the model from parameters named as `config.parameterSpecs` (any order; each must
    /// be present with its shape).
    public convenience init(config: ModelConfig, parameters: [NamedTensor]) throws {
        try config.validate()
        let given = Dictionary(parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var tensors: [String: Tensor] = [:]
        for spec in config.parameterSpecs {
            guard let p = given[spec.name] else {
                throw ModelIOError(.missingTensor, file: "<parameters>", "parameter \"\(spec.name)\" (shape \(spec.shape)) is missing")
            }
            guard p.shape == spec.shape else {
                throw ModelIOError(.shapeMismatch, file: "<parameters>", "parameter \"\(spec.name)\": config implies shape \(spec.shape), found \(p.shape)")
            }
            tensors[spec.name] = Tensor(p.values, shape: p.shape)
        }
        if let extra = parameters.first(where: { tensors[$0.name] == nil && !Checkpoint.isIgnorable($0.name)
                                                   && !($0.name == "lm_head.weight" && config.tieWordEmbeddings) }) {
            throw ModelIOError(.unexpectedTensor, file: "<parameters>", "\"\(extra.name)\" is not a parameter of this config")
        }
        self.init(config: config, tensors: tensors)
    }

    /// Loads a validated checkpoint (`Checkpoint.loadTensors`): Float32 weights borrow the file's
    /// copy-on-write mapping, other dtypes are converted straight into their parameters.
    public convenience init(checkpoint: Checkpoint) throws {
        try Self.requireMemory(checkpoint.config, for: "loading the weights of \(checkpoint.directory.path)", file: checkpoint.directory.path)
        self.init(config: checkpoint.config, tensors: checkpoint.loadTensors())
        companionFiles = checkpoint.companionFiles
    }

    /// `tensors` holds exactly `config.parameterSpecs`, validated by the caller. With
    /// `sharing`, the tensors are another model's and keep their names and `requiresGrad`.
    init(config: ModelConfig, tensors: [String: Tensor], sharing: Bool = false) {
        self.config = config
        if !sharing {
            for (name, t) in tensors {
                t.name = name
                t.requiresGrad = true
            }
        }
        byName = tensors
        func linear(_ name: String) -> Linear { Linear(weight: tensors[name + ".weight"]!, bias: tensors[name + ".bias"]) }
        embedTokens = tensors["model.embed_tokens.weight"]!
        layers = (0..<config.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            return DecoderLayer(
                inputLayernorm: tensors[p + "input_layernorm.weight"]!,
                selfAttn: Attention(qProj: linear(p + "self_attn.q_proj"), kProj: linear(p + "self_attn.k_proj"),
                                    vProj: linear(p + "self_attn.v_proj"), oProj: linear(p + "self_attn.o_proj"), config: config),
                postAttentionLayernorm: tensors[p + "post_attention_layernorm.weight"]!,
                mlp: FeedForward(gateProj: linear(p + "mlp.gate_proj"), upProj: linear(p + "mlp.up_proj"),
                                 downProj: linear(p + "mlp.down_proj")),
                eps: config.rmsNormEps)
        }
        norm = tensors["model.norm.weight"]!
        lmHead = config.tieWordEmbeddings ? embedTokens : tensors["lm_head.weight"]!
        ropeInverseFrequencies = config.ropeInverseFrequencies
    }

    /// A freshly initialised model (see `ModelConfig.initialParameters(seed:)`).
    public convenience init(config: ModelConfig, seed: UInt64) throws {
        try config.validate()
        try Self.requireMemory(config, for: "initialising the model", file: "config.json")
        try self.init(config: config, parameters: config.initialParameters(seed: seed))
    }

    /// Refuses, before allocating, a model whose Float32 weights exceed `MemoryBudget`.
    static func requireMemory(_ config: ModelConfig, for what: String, file: String) throws {
        guard let bytes = config.parameterBytes else {
            throw ModelIOError(.tooLarge, file: file, "\(what): the config implies more parameters than can be counted")
        }
        do {
            try MemoryBudget.require(bytes, for: "\(what) (\(config.parameterCount) parameters as Float32)")
        } catch let e as MemoryBudgetError {
            throw ModelIOError(.tooLarge, file: file, e.message)
        }
    }

    /// Loads an HF checkpoint directory.
    public convenience init(directory: URL) throws {
        try self.init(checkpoint: Checkpoint(directory: directory))
    }

    /// Parameters named as in HF checkpoints, in `config.parameterSpecs` order (a tied
    /// `lm_head` is not listed separately).
    public var namedParameters: [(name: String, tensor: Tensor)] {
        config.parameterSpecs.map { ($0.name, byName[$0.name]!) }
    }

    /// Every linear layer by its module path (`model.layers.0.self_attn.q_proj`, ...), in
    /// checkpoint order; `lm_head` is not included (it may be the tied embedding).
    public var linearModules: [(name: String, module: Linear)] {
        layers.enumerated().flatMap { i, l -> [(name: String, module: Linear)] in
            let p = "model.layers.\(i)."
            return [(p + "self_attn.q_proj", l.selfAttn.qProj), (p + "self_attn.k_proj", l.selfAttn.kProj),
                    (p + "self_attn.v_proj", l.selfAttn.vProj), (p + "self_attn.o_proj", l.selfAttn.oProj),
                    (p + "mlp.gate_proj", l.mlp.gateProj), (p + "mlp.up_proj", l.mlp.upProj), (p + "mlp.down_proj", l.mlp.downProj)]
        }
    }

    /// An independent copy with the same parameter values (e.g. the frozen reference of NPO).
    public func copy() throws -> CausalLM {
        let twin = try CausalLM(config: config, parameters: parameterValues())
        twin.companionFiles = companionFiles
        return twin
    }

    /// The parameter with checkpoint name `name`.
    public func parameter(_ name: String) -> Tensor? { byName[name] }

    /// Current parameter values, for saving or comparing.
    public func parameterValues() -> [NamedTensor] {
        namedParameters.map { NamedTensor(name: $0.name, shape: $0.tensor.shape, values: $0.tensor.toArray()) }
    }

    /// Writes an HF checkpoint directory (see `Checkpoint.save`), with `companionFiles`
    /// (default: `self.companionFiles`) copied beside the weights.
    public func save(to directory: URL, dtype: SafetensorsDType = .F32, maxShardBytes: Int? = nil,
                     companionFiles: [URL]? = nil) throws {
        try Checkpoint.save(config: config, parameters: parameterValues(), to: directory, dtype: dtype,
                            maxShardBytes: maxShardBytes, companionFiles: companionFiles ?? self.companionFiles)
    }

    // MARK: Forward

    /// The final hidden states `[B, T, hidden]` (after `model.norm`).
    ///
    /// `ids` is `[B·T]` row-major. Without `leftPadding`, token t of every row sits at position
    /// `cache.length + t` (right padding needs nothing: causal attention never lets a real
    /// token see a later pad). With `leftPadding[b]` the first that many slots of row b are
    /// padding: they are masked from every query and row b's real tokens start at position 0.
    /// With a `cache`, the keys and values of these tokens are stored after the cached ones.
    public func hiddenStates(_ ids: [Int32], batch: Int, length: Int, cache: KVCache? = nil) -> Tensor {
        hiddenStates(ids, batch: batch, length: length, leftPadding: cache?.leftPadding, cache: cache)
    }

    func hiddenStates(_ ids: [Int32], batch: Int, length: Int, leftPadding: [Int]?, cache: KVCache?,
                      sequenceLengths: [Int]? = nil) -> Tensor {
        precondition(batch > 0 && length > 0 && ids.count == batch * length,
                     "CausalLM: \(ids.count) ids for batch \(batch) × length \(length)")
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            preconditionFailure("CausalLM: token id \(bad) outside the vocabulary 0..<\(config.vocabSize)")
        }
        let offset = cache?.length ?? 0
        if let cache {
            precondition(cache.batch == batch, "CausalLM: cache holds \(cache.batch) rows, input has \(batch)")
            precondition(offset + length <= cache.capacity, "CausalLM: \(offset) cached + \(length) new tokens exceed cache capacity \(cache.capacity)")
        }
        // Left-padded rows start their positions at their first real token.
        let table: RoPETable
        if let sequenceLengths {
            precondition(batch == 1 && cache == nil && leftPadding == nil && sequenceLengths.reduce(0, +) == length,
                         "CausalLM: packed sequences \(sequenceLengths) must fill one row of \(length) tokens without cache or padding")
            let p = sequenceLengths.flatMap { 0..<$0 }
            table = RoPETable(invFreq: ropeInverseFrequencies, positions: p, batch: 1, length: length)
        } else if let leftPadding {
            precondition(leftPadding.count == batch, "CausalLM: leftPadding has \(leftPadding.count) entries for batch \(batch)")
            var p = [Int](repeating: 0, count: batch * length)
            for b in 0..<batch {
                for t in 0..<length { p[b * length + t] = Swift.max(0, offset + t - leftPadding[b]) }
            }
            table = RoPETable(invFreq: ropeInverseFrequencies, positions: p, batch: batch, length: length)
        } else {
            table = RoPETable(invFreq: ropeInverseFrequencies, offset: offset, length: length)
        }
        let context = ForwardContext(rope: table, offset: offset, leftPadding: leftPadding, cache: cache,
                                     sequenceLengths: sequenceLengths)
        var x = embedding(embedTokens, ids: ids, shape: [batch, length])
        for (i, layer) in layers.enumerated() { x = layer(x, context: context, layer: i) }
        cache?.length += length
        return rmsNorm(x, weight: norm, eps: config.rmsNormEps)
    }

    /// Logits `[B, T, vocab]` for `ids: [B·T]` (see `hiddenStates` for positions and padding).
    public func logits(_ ids: [Int32], batch: Int, length: Int, leftPadding: [Int]? = nil) -> Tensor {
        linear(hiddenStates(ids, batch: batch, length: length, leftPadding: leftPadding, cache: nil), weight: lmHead)
    }

    /// Logits `[B, T, vocab]` for new tokens appended to `cache` (which supplies the positions
    /// and left padding).
    public func logits(_ ids: [Int32], batch: Int, length: Int, cache: KVCache, lastOnly: Bool = false) -> Tensor {
        var h = hiddenStates(ids, batch: batch, length: length, cache: cache)
        if lastOnly, length > 1 { h = h.narrow(axis: 1, start: length - 1, length: 1) }
        return linear(h, weight: lmHead)
    }

    /// HF's causal-LM targets: position t predicts `labels[t+1]`; the last position and
    /// labels equal to `ignoreIndex` are ignored.
    public static func shiftedTargets(_ labels: [Int32], batch: Int, length: Int, ignoreIndex: Int32 = -100) -> [Int32] {
        precondition(labels.count == batch * length, "shiftedTargets: \(labels.count) labels for batch \(batch) × length \(length)")
        var out = [Int32](repeating: ignoreIndex, count: labels.count)
        for b in 0..<batch where length > 1 {
            for t in 0..<(length - 1) { out[b * length + t] = labels[b * length + t + 1] }
        }
        return out
    }

    /// Mean next-token cross-entropy over the labels that are not `-100`, as HF computes `loss`
    /// from `labels` (shifted inside). NaN when every label is ignored, as PyTorch.
    ///
    /// Only positions with a target go through `lm_head`, so prompt tokens, padding and the
    /// last position cost nothing there (with a large vocabulary, most of the logits' memory),
    /// and positions after a row's last target are not computed at all (see `targetHiddenStates`).
    public func loss(_ ids: [Int32], labels: [Int32], batch: Int, length: Int) -> Tensor {
        let targets = Self.shiftedTargets(labels, batch: batch, length: length)
        guard let (rows, kept) = targetHiddenStates(ids, targets: targets, batch: batch, length: length) else {
            let hidden = hiddenStates(ids, batch: batch, length: length, leftPadding: nil, cache: nil)
            return crossEntropy(linear(hidden, weight: lmHead), targets: targets)
        }
        return crossEntropy(linear(rows, weight: lmHead), targets: kept)
    }

    /// Per-token log-likelihoods `[B, T]`: entry t is `log p(labels[t+1] | tokens ≤ t)`, and 0
    /// where that label is `-100` (and at the last position). Differentiable; like `loss`, only
    /// positions with a target go through `lm_head`.
    public func tokenLogProbs(_ ids: [Int32], labels: [Int32], batch: Int, length: Int) -> Tensor {
        let targets = Self.shiftedTargets(labels, batch: batch, length: length)
        guard let (rows, kept) = targetHiddenStates(ids, targets: targets, batch: batch, length: length) else {
            let hidden = hiddenStates(ids, batch: batch, length: length, leftPadding: nil, cache: nil)
            return logSoftmaxGather(linear(hidden, weight: lmHead), targets: targets)
        }
        let lp = logSoftmaxGather(linear(rows, weight: lmHead), targets: kept)  // [n]
        // Scatter back: the kept runs in order, zeros (constants) in the gaps.
        var pieces: [Tensor] = []
        var cursor = 0, used = 0
        for run in Self.targetRuns(targets) {
            if run.lowerBound > cursor { pieces.append(Tensor(zeros: [run.lowerBound - cursor])) }
            pieces.append(lp.rows(used..<(used + run.count)))
            used += run.count
            cursor = run.upperBound
        }
        if cursor < targets.count { pieces.append(Tensor(zeros: [targets.count - cursor])) }
        return (pieces.count == 1 ? pieces[0] : concat(pieces, axis: 0)).reshaped([batch, length])
    }

    /// The final hidden states `[n, D]` of the positions whose target is not -100, with those
    /// targets, in row-major order; nil when there is no target at all.
    ///
    /// Under causal attention a position never influences earlier ones, so each row is computed
    /// only up to its last target. When that trims more than an eighth of the batch (right
    /// padding, unscored tails), the rows' needed prefixes run packed one after another without
    /// padding (`packedCausalAttention`); the kept positions get the same values either way.
    func targetHiddenStates(_ ids: [Int32], targets: [Int32], batch: Int, length: Int) -> (Tensor, [Int32])? {
        precondition(batch > 0 && length > 0 && ids.count == batch * length && targets.count == ids.count,
                     "CausalLM: \(ids.count) ids and \(targets.count) targets for batch \(batch) × length \(length)")
        var needed = [Int](repeating: 0, count: batch)
        for b in 0..<batch {
            var t = length - 1
            while t >= 0, targets[b * length + t] == -100 { t -= 1 }
            needed[b] = t + 1
        }
        let total = needed.reduce(0, +)
        if total == 0 { return nil }
        let d = config.hiddenSize
        let hidden: Tensor, rowTargets: [Int32]
        if total * 8 <= batch * length * 7 {
            var packedIds: [Int32] = [], packedTargets: [Int32] = [], lengths: [Int] = []
            packedIds.reserveCapacity(total)
            packedTargets.reserveCapacity(total)
            for b in 0..<batch where needed[b] > 0 {
                packedIds.append(contentsOf: ids[(b * length)..<(b * length + needed[b])])
                packedTargets.append(contentsOf: targets[(b * length)..<(b * length + needed[b])])
                lengths.append(needed[b])
            }
            hidden = hiddenStates(packedIds, batch: 1, length: total, leftPadding: nil, cache: nil, sequenceLengths: lengths)
                .reshaped([total, d])
            rowTargets = packedTargets
        } else {
            hidden = hiddenStates(ids, batch: batch, length: length, leftPadding: nil, cache: nil).reshaped([batch * length, d])
            rowTargets = targets
        }
        return Self.selectTargetRows(hidden, rowTargets) ?? (hidden, rowTargets)
    }

    /// Runs of consecutive flat positions whose target is not -100.
    static func targetRuns(_ targets: [Int32]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var i = 0
        while i < targets.count {
            if targets[i] == -100 { i += 1; continue }
            let start = i
            while i < targets.count, targets[i] != -100 { i += 1 }
            runs.append(start..<i)
        }
        return runs
    }

    /// The rows of `hidden: [rows, D]` whose target is not -100, as `[n, D]`, with their targets;
    /// nil when every row or no row has a target (then the full tensor is as cheap).
    static func selectTargetRows(_ hidden: Tensor, _ targets: [Int32]) -> (Tensor, [Int32])? {
        let runs = targetRuns(targets)
        let kept = targets.filter { $0 != -100 }
        if kept.isEmpty || kept.count == targets.count { return nil }
        let flat = hidden.reshaped([targets.count, hidden.shape[hidden.shape.count - 1]])
        let pieces = runs.map { flat.rows($0) }
        return (pieces.count == 1 ? pieces[0] : concat(pieces, axis: 0), kept)
    }
}
