import Engine
import Foundation

/// A bad LoRA setting (rank, alpha, dropout, targets) or a LoRA operation in the wrong state.
public struct LoRAError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The field or operation concerned, e.g. `lora.rank`, `LoRA.attach`.
    public let context: String
    public let message: String

    public init(_ context: String, _ message: String) {
        self.context = context
        self.message = message
    }

    public var description: String { "\(context): \(message)" }
}

/// Settings of a LoRA adapter, as PEFT's `LoraConfig` names them.
///
/// Each adapted linear layer `W: [out, in]` gains `y += scaling · B · A · dropout(x)` with
/// `A: [r, in]` (kaiming-uniform, a = √5, as PEFT: uniform in ±1/√in), `B: [out, r]` (zeros, so
/// the model starts unchanged) and `scaling = alpha / r` (`alpha / √r` with rsLoRA).
public struct LoRAConfig: Sendable, Equatable {
    /// The linear layers of a Llama / Qwen2 decoder block, by PEFT's short names.
    public static let moduleNames = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    public var rank: Int
    public var alpha: Double
    /// Probability of zeroing an input element of the adapter path while training.
    public var dropout: Double
    /// Module names as PEFT matches them: a module is adapted when its path equals a target or
    /// ends with `.` + target. The short forms q, k, v, o, gate, up, down stand for `q_proj`, ….
    public var targets: [String]
    /// Seeds A's initialisation (one stream per module) and the dropout masks.
    public var seed: UInt64
    /// rsLoRA scaling `alpha / √r` (PEFT's `use_rslora`).
    public var useRSLoRA: Bool

    /// - Parameter alpha: default `2 · rank`.
    public init(rank: Int, alpha: Double? = nil, dropout: Double = 0, targets: [String] = LoRAConfig.moduleNames,
                seed: UInt64 = 0, useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha ?? 2 * Double(rank)
        self.dropout = dropout
        self.targets = targets
        self.seed = seed
        self.useRSLoRA = useRSLoRA
    }

    /// The largest rank accepted: beyond the width of any model Palimpsest runs.
    public static let maxRank = 65_536

    /// `q` → `q_proj`, …; any other name unchanged.
    public static func canonicalTarget(_ name: String) -> String {
        let short = ["q", "k", "v", "o", "gate", "up", "down"]
        return short.contains(name) ? name + "_proj" : name
    }

    /// The targets with short forms expanded, duplicates removed, in the given order.
    public var canonicalTargets: [String] {
        var seen = Set<String>()
        return targets.map(Self.canonicalTarget).filter { seen.insert($0).inserted }
    }

    public var scaling: Float {
        Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }

    /// Rank ≥ 1, alpha > 0 and finite, dropout in [0, 1), at least one non-empty target.
    public func validate() throws {
        guard rank >= 1 else { throw LoRAError("lora.rank", "must be >= 1, got \(rank)") }
        // A's element count is rank × in: a rank near Int.max overflowed it when attaching.
        guard rank <= Self.maxRank else { throw LoRAError("lora.rank", "must be at most \(Self.maxRank), got \(rank)") }
        guard alpha.isFinite, alpha > 0 else { throw LoRAError("lora.alpha", "must be finite and > 0, got \(alpha)") }
        guard dropout >= 0, dropout < 1 else { throw LoRAError("lora.dropout", "must be in [0, 1), got \(dropout)") }
        guard !targets.isEmpty else {
            throw LoRAError("lora.targets", "must name at least one module (\(Self.moduleNames.joined(separator: ", ")))")
        }
        if let bad = targets.first(where: { $0.isEmpty || $0.hasPrefix(".") || $0.hasSuffix(".") }) {
            throw LoRAError("lora.targets", "\"\(bad)\" is not a module name")
        }
    }

    /// Whether PEFT would adapt the module at `path` (`model.layers.0.self_attn.q_proj`).
    func matches(_ path: String) -> Bool {
        canonicalTargets.contains { path == $0 || path.hasSuffix("." + $0) }
    }
}

/// Flags every adapter path of one attachment reads at each call.
final class LoRAState {
    var training = false
}

/// The low-rank path of one layer: what the `Linear.adapter` hook runs. It holds no reference to
/// its `Linear`, so the hook creates no reference cycle.
final class LoRAPath {
    let a: Tensor, b: Tensor
    let scaling: Float
    let dropout: Float
    let state: LoRAState
    var rng: SeededRandom

    init(a: Tensor, b: Tensor, scaling: Float, dropout: Float, state: LoRAState, rng: SeededRandom) {
        self.a = a; self.b = b; self.scaling = scaling; self.dropout = dropout; self.state = state; self.rng = rng
    }

    /// `scaling · B(A(dropout(x)))`, in PEFT's order of operations.
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        if state.training && dropout > 0 {
            // Inverted dropout as torch: keep with probability 1 − p, scale kept inputs by 1/(1 − p).
            let keep = 1 / (1 - dropout)
            var mask = [Float](repeating: 0, count: x.count)
            for i in mask.indices where rng.nextFloat() >= dropout { mask[i] = keep }
            h = x * Tensor(mask, shape: x.shape)
        }
        return linear(linear(h, weight: a), weight: b) * scaling
    }
}

/// One adapted linear layer.
public final class LoRALayer {
    /// Module path, e.g. `model.layers.0.self_attn.q_proj`.
    public let module: String
    public let linear: Linear
    let path: LoRAPath
    /// `[r, in]`.
    public var a: Tensor { path.a }
    /// `[out, r]`.
    public var b: Tensor { path.b }

    init(module: String, linear: Linear, path: LoRAPath) {
        self.module = module; self.linear = linear; self.path = path
    }

    /// PEFT's saved names: `base_model.model.<module>.lora_A.weight` and `…lora_B.weight`.
    public var nameA: String { "base_model.model.\(module).lora_A.weight" }
    public var nameB: String { "base_model.model.\(module).lora_B.weight" }

    /// `scaling · B · A`, `[out, in]`.
    func delta() -> [Float] {
        Autograd.withNoGrad { (matmul(path.b, path.a) * path.scaling).toArray() }
    }
}

/// LoRA adapters attached to a `CausalLM` through the `Linear.adapter` hook.
///
/// Attaching freezes every base parameter (`requiresGrad = false`: no gradient, no weight-gradient
/// GEMM, no optimizer slot); the adapters' A and B are then the model's only trainable tensors
/// (`CausalLM.trainableParameters`). `merge()` folds `scaling · B · A` into the base weights and
/// turns the hooks off; `detach()` removes the adapters and restores the base's `requiresGrad`.
public final class LoRA {
    public let config: LoRAConfig
    public let layers: [LoRALayer]
    /// True after `merge()`: the base weights hold the adapters' update and the hooks are off.
    public private(set) var isMerged = false
    let state: LoRAState
    private weak var model: CausalLM?
    private var savedRequiresGrad: [(Tensor, Bool)]

    /// Dropout applies only while this is true (the training loops set it around each update).
    public var isTraining: Bool {
        get { state.training }
        set { state.training = newValue }
    }

    /// When false, the hooks are removed and the model computes the base model alone (the
    /// adapters keep their values). Has no effect on a merged attachment's weights.
    public var isEnabled = true {
        didSet { installHooks(isEnabled && !isMerged) }
    }

    private init(config: LoRAConfig, layers: [LoRALayer], state: LoRAState, model: CausalLM, savedRequiresGrad: [(Tensor, Bool)]) {
        self.config = config
        self.state = state
        self.layers = layers
        self.model = model
        self.savedRequiresGrad = savedRequiresGrad
    }

    /// Attaches fresh adapters (A seeded, B zero) to every linear layer `config.targets` matches
    /// and freezes the base.
    ///
    /// - Throws: `LoRAError` for an invalid config, a target that matches no module, a model that
    ///   already has adapters or another hook on a targeted layer. Nothing is changed on error.
    @discardableResult
    public static func attach(to model: CausalLM, config: LoRAConfig) throws -> LoRA {
        try config.validate()
        if model.lora != nil {
            throw LoRAError("LoRA.attach", "the model already has LoRA adapters; merge or detach them first")
        }
        let modules = model.linearModules
        for t in config.canonicalTargets where !modules.contains(where: { $0.name == t || $0.name.hasSuffix("." + t) }) {
            throw LoRAError("lora.targets", "\"\(t)\" matches no linear module of this \(model.config.architecture.hfClassName); "
                            + "expected one of \(LoRAConfig.moduleNames.joined(separator: ", ")) (or q, k, v, o, gate, up, down)")
        }
        let chosen = modules.filter { config.matches($0.name) }
        if let busy = chosen.first(where: { $0.module.adapter != nil }) {
            throw LoRAError("LoRA.attach", "module \(busy.name) already has an adapter hook")
        }
        let state = LoRAState()
        let root = SeededRandom(seed: config.seed)
        let r = config.rank
        let layers = chosen.map { name, lin -> LoRALayer in
            let out = lin.weight.shape[0], inF = lin.weight.shape[1]
            // kaiming_uniform_(a=√5) on [r, in]: bound = gain·√(3/fan_in) with gain = √(2/(1+5)) = 1/√in.
            let bound = 1 / Double(inF).squareRoot()
            var rng = root.derived(name + ".lora_A")
            var av = [Float](repeating: 0, count: r * inF)
            for i in av.indices { av[i] = Float((rng.nextDouble() * 2 - 1) * bound) }
            let a = Tensor(av, shape: [r, inF], requiresGrad: true)
            let b = Tensor(zeros: [out, r], requiresGrad: true)
            let path = LoRAPath(a: a, b: b, scaling: config.scaling, dropout: Float(config.dropout), state: state,
                                rng: root.derived(name + ".dropout"))
            let layer = LoRALayer(module: name, linear: lin, path: path)
            a.name = layer.nameA
            b.name = layer.nameB
            return layer
        }
        let saved = model.namedParameters.map { ($0.tensor, $0.tensor.requiresGrad) }
        for (t, _) in saved { t.requiresGrad = false }
        let lora = LoRA(config: config, layers: layers, state: state, model: model, savedRequiresGrad: saved)
        lora.installHooks(true)
        model.lora = lora
        return lora
    }

    /// The adapters' tensors by PEFT's saved names, A then B for each layer in checkpoint order.
    public var parameters: [(name: String, tensor: Tensor)] {
        layers.flatMap { [($0.nameA, $0.a), ($0.nameB, $0.b)] }
    }

    /// Bytes held by the adapters (A and B of every layer, Float32).
    public var byteCount: Int { layers.reduce(0) { $0 + ($1.a.count + $1.b.count) * 4 } }

    private func installHooks(_ on: Bool) {
        for l in layers {
            let path = l.path
            l.linear.adapter = on ? { path($0) } : nil
        }
    }

    /// Adds `scaling · B · A` to every adapted base weight and turns the hooks off, so the model
    /// computes the same function (up to float rounding) with no adapter cost.
    public func merge() throws {
        guard !isMerged else { throw LoRAError("LoRA.merge", "the adapters are already merged") }
        for l in layers { apply(l, sign: 1) }
        isMerged = true
        installHooks(false)
    }

    /// Subtracts what `merge()` added (exact up to float rounding) and turns the hooks back on.
    public func unmerge() throws {
        guard isMerged else { throw LoRAError("LoRA.unmerge", "the adapters are not merged") }
        for l in layers { apply(l, sign: -1) }
        isMerged = false
        installHooks(isEnabled)
    }

    private func apply(_ l: LoRALayer, sign: Float) {
        let d = l.delta()
        l.linear.weight.withUnsafeMutableBufferPointer { w in
            for i in 0..<w.count { w[i] += sign * d[i] }
        }
    }

    /// Removes the adapters from the model and restores each base parameter's `requiresGrad`.
    /// Merged updates stay in the base weights (merge, then detach = PEFT's `merge_and_unload`).
    public func detach() {
        installHooks(false)
        for (t, g) in savedRequiresGrad { t.requiresGrad = g }
        savedRequiresGrad = []
        if let model, model.lora === self { model.lora = nil }
        model = nil
    }

    /// Merges and detaches: the model becomes a plain, fully trainable model holding the update.
    public func mergeAndDetach() throws {
        if !isMerged { try merge() }
        detach()
    }
}

extension CausalLM {
    /// The tensors an optimizer updates: base parameters with `requiresGrad`, then the
    /// attached, unmerged LoRA adapters (PEFT names).
    public var trainableParameters: [(name: String, tensor: Tensor)] {
        var out = namedParameters.filter { $0.tensor.requiresGrad }
        if let lora, !lora.isMerged, lora.isEnabled { out += lora.parameters.filter { $0.tensor.requiresGrad } }
        return out
    }

    /// A frozen model computing what this model computes now: the NPO / DPO / KL reference.
    ///
    /// With LoRA attached (unmerged and enabled) the reference shares this model's frozen base
    /// tensors (no second copy of the weights) and carries a frozen snapshot of the adapters
    /// (none while every B is zero, as right after attaching). The sharing is safe because the
    /// base stays frozen while the adapters train; merging them changes the reference too.
    /// Without LoRA it is `copy()`.
    public func frozenReference() throws -> CausalLM {
        guard let lora, !lora.isMerged, lora.isEnabled else {
            let twin = try copy()
            for (_, t) in twin.namedParameters { t.requiresGrad = false }
            return twin
        }
        let twin = CausalLM(config: config, tensors: byName, sharing: true)
        twin.companionFiles = companionFiles
        let active = lora.layers.contains { $0.b.toArray().contains { $0 != 0 } }
        if active {
            let snapshot = try LoRA.attach(to: twin, config: lora.config)
            for (mine, theirs) in zip(snapshot.layers, lora.layers) {
                mine.a.withUnsafeMutableBufferPointer { d in theirs.a.withUnsafeBufferPointer { s in _ = d.update(fromContentsOf: s) } }
                mine.b.withUnsafeMutableBufferPointer { d in theirs.b.withUnsafeBufferPointer { s in _ = d.update(fromContentsOf: s) } }
                mine.a.requiresGrad = false
                mine.b.requiresGrad = false
            }
        }
        return twin
    }
}
