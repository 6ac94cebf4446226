import Engine

/// A first-order optimizer over named flat parameter buffers.
///
/// The learning rate is passed at every step (base rate × schedule multiplier), so one
/// optimizer object serves any schedule. State is created lazily per parameter name; the
/// paper re-initialises the optimizer at every stage, which is `reset()` (or a new object).
public protocol Optimizer: AnyObject {
    /// Updates every slot that has a gradient, in place.
    func step(_ parameters: [ParameterSlot], learningRate: Double) throws
    /// Forgets all state (moments, momentum buffers, step counts).
    func reset()
}

/// Hyper-parameters of AdamW, with torch.optim.AdamW's defaults.
public struct AdamWConfig: Codable, Hashable, Sendable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    /// Decoupled weight decay, applied only to slots with `decay == true`.
    public var weightDecay: Double = 0.01
    public var amsgrad: Bool = false

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                weightDecay: Double = 0.01, amsgrad: Bool = false) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.amsgrad = amsgrad
    }

    public func validate() throws {
        try require(beta1 >= 0 && beta1 < 1, "AdamW.beta1", "must be in [0, 1), got \(beta1)")
        try require(beta2 >= 0 && beta2 < 1, "AdamW.beta2", "must be in [0, 1), got \(beta2)")
        try require(eps >= 0 && eps.isFinite, "AdamW.eps", "must be finite and >= 0, got \(eps)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "AdamW.weightDecay", "must be finite and >= 0, got \(weightDecay)")
    }
}

/// Owned Float buffers (zero-initialised) for per-parameter optimizer state.
final class StateBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { pointer.deallocate() }
}

/// AdamW exactly as `torch.optim.AdamW` (single-tensor CPU path), per parameter:
///
///     t += 1
///     p ← p · (1 − lr·wd)                       (only if the slot decays)
///     m ← m + (1 − β1)·(g − m)
///     v ← β2·v + (1 − β2)·g²
///     v̂ ← max(v̂, v)                            (amsgrad only; v̂ replaces v below)
///     p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
///
/// Bias corrections are computed in Double, element arithmetic in Float, as torch does.
public final class AdamW: Optimizer {
    public let config: AdamWConfig
    private struct State { var step: Int; let m: StateBuffer; let v: StateBuffer; let vmax: StateBuffer? }
    private var state: [String: State] = [:]

    public init(_ config: AdamWConfig = AdamWConfig()) throws {
        try config.validate()
        self.config = config
    }

    public func reset() { state.removeAll() }

    /// Step count of one parameter (0 before its first update).
    public func stepCount(of name: String) -> Int { state[name]?.step ?? 0 }

    public func step(_ parameters: [ParameterSlot], learningRate lr: Double) throws {
        try require(lr.isFinite && lr >= 0, "AdamW.step", "learning rate must be finite and >= 0, got \(lr)")
        try validateSlots(parameters, "AdamW.step")
        var updates: [AdamWUpdate] = []
        updates.reserveCapacity(parameters.count)
        for slot in parameters {
            guard let grad = slot.grad else { continue }
            var s: State
            if let existing = state[slot.name] {
                guard existing.m.count == slot.count else {
                    throw TrainingError.mismatch(context: "AdamW.step \(slot.name)",
                                                 message: "state has \(existing.m.count) elements, parameter has \(slot.count)")
                }
                s = existing
            } else {
                s = State(step: 0, m: StateBuffer(count: slot.count), v: StateBuffer(count: slot.count),
                          vmax: config.amsgrad ? StateBuffer(count: slot.count) : nil)
            }
            s.step += 1
            state[slot.name] = s
            let t = Double(s.step)
            let bc1 = 1 - pow(config.beta1, t)
            let bc2Sqrt = (1 - pow(config.beta2, t)).squareRoot()
            let decayFactor = Float(slot.decay && config.weightDecay != 0 ? 1 - lr * config.weightDecay : 1)
            updates.append(AdamWUpdate(p: slot.value.baseAddress!, g: grad.baseAddress!, m: s.m.pointer, v: s.v.pointer,
                                       vmax: s.vmax?.pointer, count: slot.count, decay: decayFactor,
                                       bc2Sqrt: Float(bc2Sqrt), negStepSize: Float(-(lr / bc1))))
        }
        adamW(updates, oneMinusBeta1: Float(1 - config.beta1), beta2: Float(config.beta2),
              oneMinusBeta2: Float(1 - config.beta2), eps: Float(config.eps))
    }
}

/// One parameter's AdamW update: its buffers and per-parameter factors.
private struct AdamWUpdate {
    let p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, vmax: UnsafeMutablePointer<Float>?
    let count: Int
    let decay: Float, bc2Sqrt: Float, negStepSize: Float
}

/// Every update in one parallel pass: the parameters' elements, laid end to end, are cut into
/// one run per thread, so a model of many small tensors (each below a thread's worth) still
/// uses every thread, with one hand-off per step. Each element's arithmetic depends only on
/// itself, so where the cuts fall changes no result.
private func adamW(_ updates: [AdamWUpdate], oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float, eps: Float) {
    var starts = [0]
    starts.reserveCapacity(updates.count + 1)
    for u in updates { starts.append(starts[starts.count - 1] + u.count) }
    let total = starts[starts.count - 1]
    let chunks = elementwiseChunks(total)
    updates.withUnsafeBufferPointer { updates in
        starts.withUnsafeBufferPointer { starts in
            Parallel.forEach(chunks) { c in
                let r = Parallel.range(c, of: chunks, total: total)
                // The first update this run reaches: the last start at or before its beginning.
                var lo = 0, hi = updates.count - 1
                while lo < hi {
                    let mid = (lo + hi + 1) / 2
                    if starts[mid] <= r.lowerBound { lo = mid } else { hi = mid - 1 }
                }
                var i = lo
                while i < updates.count && starts[i] < r.upperBound {
                    let u = updates[i]
                    let from = Swift.max(r.lowerBound, starts[i]) - starts[i]
                    let to = Swift.min(r.upperBound, starts[i + 1]) - starts[i]
                    if from < to {
                        adamWKernel(p: u.p, g: u.g, m: u.m, v: u.v, vmax: u.vmax, range: from..<to, decay: u.decay,
                                    oneMinusBeta1: oneMinusBeta1, beta2: beta2, oneMinusBeta2: oneMinusBeta2,
                                    bc2Sqrt: u.bc2Sqrt, eps: eps, negStepSize: u.negStepSize)
                    }
                    i += 1
                }
            }
        }
    }
}

@inline(__always)
private func adamWKernel(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>,
                         m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                         vmax: UnsafeMutablePointer<Float>?, range r: Range<Int>,
                         decay: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float,
                         bc2Sqrt: Float, eps: Float, negStepSize: Float) {
    var i = r.lowerBound
    typealias V = SIMD8<Float>
    let vDecay = V(repeating: decay), vW1 = V(repeating: oneMinusBeta1), vB2 = V(repeating: beta2)
    let vW2 = V(repeating: oneMinusBeta2), vBc = V(repeating: bc2Sqrt), vEps = V(repeating: eps)
    let vStep = V(repeating: negStepSize)
    @inline(__always) func load(_ q: UnsafeMutablePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(q + i).loadUnaligned(as: V.self)
    }
    @inline(__always) func store(_ x: V, _ q: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(q + i).storeBytes(of: x, as: V.self)
    }
    while i + 8 <= r.upperBound {
        let gi = load(g, i)
        var pi = load(p, i) * vDecay
        let mi = load(m, i)
        let mn = mi + vW1 * (gi - mi)
        var vn = load(v, i) * vB2
        vn = vn + vW2 * (gi * gi)
        store(mn, m, i); store(vn, v, i)
        var vd = vn
        if let vmax {
            vd = fastMax(load(vmax, i), vn)
            store(vd, vmax, i)
        }
        let denom = sqrtNonNegative(vd) / vBc + vEps
        pi = pi + vStep * (mn / denom)
        store(pi, p, i)
        i += 8
    }
    while i < r.upperBound {
        let gi = g[i]
        var pi = p[i] * decay
        let mn = m[i] + oneMinusBeta1 * (gi - m[i])
        let vn = v[i] * beta2 + oneMinusBeta2 * (gi * gi)
        m[i] = mn; v[i] = vn
        var vd = vn
        if let vmax { vd = max(vmax[i], vn); vmax[i] = vd }
        let denom = vd.magnitude.squareRoot() / bc2Sqrt + eps
        pi = pi + negStepSize * (mn / denom)
        p[i] = pi
        i += 1
    }
}

/// Hyper-parameters of SGD, with torch.optim.SGD's semantics.
public struct SGDConfig: Codable, Hashable, Sendable {
    public var momentum: Double = 0
    public var dampening: Double = 0
    public var nesterov: Bool = false
    /// Coupled (L2) weight decay added to the gradient, only for slots with `decay == true`.
    public var weightDecay: Double = 0

    public init(momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0) {
        self.momentum = momentum; self.dampening = dampening; self.nesterov = nesterov; self.weightDecay = weightDecay
    }

    public func validate() throws {
        try require(momentum >= 0 && momentum.isFinite, "SGD.momentum", "must be finite and >= 0, got \(momentum)")
        try require(dampening.isFinite, "SGD.dampening", "must be finite, got \(dampening)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "SGD.weightDecay", "must be finite and >= 0, got \(weightDecay)")
        try require(!nesterov || (momentum > 0 && dampening == 0), "SGD.nesterov",
                    "requires momentum > 0 and dampening = 0, got momentum \(momentum), dampening \(dampening)")
    }
}

/// SGD exactly as `torch.optim.SGD`:
///
///     d ← g + wd·p                              (only if the slot decays)
///     b ← d at the first step, else μ·b + (1 − dampening)·d
///     d ← d + μ·b (nesterov) or b               (when μ > 0)
///     p ← p − lr·d
public final class SGD: Optimizer {
    public let config: SGDConfig
    private var buffers: [String: StateBuffer] = [:]

    public init(_ config: SGDConfig = SGDConfig()) throws {
        try config.validate()
        self.config = config
    }

    public func reset() { buffers.removeAll() }

    public func step(_ parameters: [ParameterSlot], learningRate lr: Double) throws {
        try require(lr.isFinite && lr >= 0, "SGD.step", "learning rate must be finite and >= 0, got \(lr)")
        try validateSlots(parameters, "SGD.step")
        let mu = Float(config.momentum), damp = Float(1 - config.dampening), negLr = Float(-lr)
        for slot in parameters {
            guard let grad = slot.grad else { continue }
            let wd = Float(slot.decay ? config.weightDecay : 0)
            var buffer: StateBuffer? = nil
            var first = false
            if config.momentum != 0 {
                if let b = buffers[slot.name] {
                    guard b.count == slot.count else {
                        throw TrainingError.mismatch(context: "SGD.step \(slot.name)",
                                                     message: "state has \(b.count) elements, parameter has \(slot.count)")
                    }
                    buffer = b
                } else {
                    buffer = StateBuffer(count: slot.count)
                    buffers[slot.name] = buffer
                    first = true
                }
            }
            let p = slot.value.baseAddress!, g = grad.baseAddress!, b = buffer?.pointer
            let nesterov = config.nesterov, count = slot.count
            let chunks = elementwiseChunks(count)
            Parallel.forEach(chunks) { c in
                sgdKernel(p: p, g: g, b: b, range: Parallel.range(c, of: chunks, total: count), wd: wd, mu: mu,
                          damp: damp, first: first, nesterov: nesterov, negLr: negLr)
            }
        }
    }
}

private func sgdKernel(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>?,
                       range: Range<Int>, wd: Float, mu: Float, damp: Float, first: Bool, nesterov: Bool, negLr: Float) {
    typealias V = SIMD8<Float>
    @inline(__always) func update(_ pv: V, _ gv: V, _ bv: V?) -> (p: V, b: V?) {
        var d = gv
        if wd != 0 { d = d + V(repeating: wd) * pv }
        var nb: V? = nil
        if let bv {
            let m = first ? d : bv * V(repeating: mu) + V(repeating: damp) * d
            nb = m
            d = nesterov ? d + V(repeating: mu) * m : m
        }
        return (pv + V(repeating: negLr) * d, nb)
    }
    var i = range.lowerBound
    while i + 8 <= range.upperBound {
        let r = update(loadV(p + i), loadV(g + i), b.map { loadV($0 + i) })
        storeV(r.p, p + i)
        if let b, let nb = r.b { storeV(nb, b + i) }
        i += 8
    }
    while i < range.upperBound {
        // The same arithmetic on one lane.
        var pv = V(repeating: 0), gv = V(repeating: 0), bv = V(repeating: 0)
        pv[0] = p[i]; gv[0] = g[i]
        if let b { bv[0] = b[i] }
        let r = update(pv, gv, b == nil ? nil : bv)
        p[i] = r.p[0]
        if let b, let nb = r.b { b[i] = nb[0] }
        i += 1
    }
}

import Foundation
