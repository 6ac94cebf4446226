import Engine

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`.
public enum GradientClipping {
    /// The norm used by `clipByGlobalNorm`.
    public enum Norm: Codable, Hashable, Sendable { case l2, infinity }

    /// Scales every gradient in place so that their global norm is at most `maxNorm`, and
    /// returns the global norm *before* clipping.
    ///
    /// As torch: total = ‖(‖g₁‖, ‖g₂‖, ...)‖, coefficient = min(maxNorm / (total + 1e-6), 1),
    /// and every gradient is multiplied by the coefficient (also when it is 1). Slots without a
    /// gradient are ignored. A non-finite total throws when `errorIfNonFinite` (torch's
    /// `error_if_nonfinite`); otherwise the gradients are scaled by the resulting NaN, as torch does.
    @discardableResult
    public static func clipByGlobalNorm(_ parameters: [ParameterSlot], maxNorm: Double, norm: Norm = .l2,
                                        errorIfNonFinite: Bool = false) throws -> Double {
        try require(maxNorm.isFinite && maxNorm >= 0, "clipByGlobalNorm.maxNorm", "must be finite and >= 0, got \(maxNorm)")
        try validateSlots(parameters, "clipByGlobalNorm")
        let grads = parameters.compactMap { $0.grad }
        if grads.isEmpty { return 0 }
        var total = 0.0
        switch norm {
        case .l2:
            for g in grads { total += sumOfSquares(g) }
            total = total.squareRoot()
        case .infinity:
            var sawNaN = false
            for g in grads {
                for x in g {
                    if x.isNaN { sawNaN = true }
                    total = max(total, Double(abs(x)))
                }
            }
            if sawNaN { total = .nan }
        }
        if !total.isFinite && errorIfNonFinite {
            throw TrainingError.nonFinite(context: "clipByGlobalNorm",
                                          message: "the total gradient norm is \(total); some gradient holds NaN or infinity")
        }
        // torch computes the coefficient on a float32 tensor.
        let coefficient = min(Float(maxNorm) / (Float(total) + 1e-6), 1)
        for g in grads { scale(g, by: coefficient) }
        return total
    }

    /// Global L2 norm of the gradients, without changing them.
    public static func globalNorm(_ parameters: [ParameterSlot]) -> Double {
        parameters.compactMap { $0.grad }.reduce(0.0) { $0 + sumOfSquares($1) }.squareRoot()
    }
}

/// Σ x² accumulated in Double, by SIMD blocks of Float (exact enough for norms of any size).
func sumOfSquares(_ g: UnsafeMutableBufferPointer<Float>) -> Double {
    guard let base = g.baseAddress else { return 0 }
    var total = 0.0
    var i = 0
    let n = g.count
    while i < n {
        let end = min(n, i + 4096)
        var acc = SIMD8<Float>()
        while i + 8 <= end {
            let x = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.addProduct(x, x)
            i += 8
        }
        var block = Double(acc.sum())
        while i < end { block += Double(base[i]) * Double(base[i]); i += 1 }
        total += block
    }
    return total
}

/// x ← c·x.
func scale(_ g: UnsafeMutableBufferPointer<Float>, by c: Float) {
    guard let base = g.baseAddress else { return }
    var i = 0
    let n = g.count, vc = SIMD8<Float>(repeating: c)
    while i + 8 <= n {
        let p = UnsafeMutableRawPointer(base + i)
        p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) * vc, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { base[i] *= c; i += 1 }
}

/// y ← y + c·x.
func addScaled(_ x: UnsafePointer<Float>, _ c: Float, into y: UnsafeMutablePointer<Float>, count n: Int) {
    var i = 0
    let vc = SIMD8<Float>(repeating: c)
    while i + 8 <= n {
        var yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        yv.addProduct(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self), vc)
        UnsafeMutableRawPointer(y + i).storeBytes(of: yv, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { y[i] = y[i] + c * x[i]; i += 1 }
}

/// Sums gradients of several micro-batches into owned buffers, then writes the sum back.
///
/// Use it when the engine overwrites gradients at every backward pass. Give each micro-batch
/// the weight that makes the sum equal the full-batch gradient: for the objectives of this
/// module, pass the full batch's totals to `Objective.evaluate(..., totals:)` and use weight 1
/// (the weights then already carry the normalisation); for a plain per-micro-batch mean loss,
/// use `microBatchTokens / batchTokens`.
public final class GradientAccumulator {
    private var sums: [String: StateBuffer] = [:]
    /// Micro-batches added since the last `reset()`.
    public private(set) var microBatches = 0

    public init() {}

    /// sum ← sum + weight · grad for every slot with a gradient.
    public func add(_ parameters: [ParameterSlot], weight: Double = 1) throws {
        try validateSlots(parameters, "GradientAccumulator.add")
        for slot in parameters {
            guard let g = slot.grad else { continue }
            let buffer: StateBuffer
            if let b = sums[slot.name] {
                guard b.count == slot.count else {
                    throw TrainingError.mismatch(context: "GradientAccumulator.add \(slot.name)",
                                                 message: "accumulated \(b.count) elements, gradient has \(slot.count)")
                }
                buffer = b
            } else {
                buffer = StateBuffer(count: slot.count)
                sums[slot.name] = buffer
            }
            addScaled(g.baseAddress!, Float(weight), into: buffer.pointer, count: slot.count)
        }
        microBatches += 1
    }

    /// Copies the sums into the slots' gradient buffers (slots never accumulated get zeros).
    public func write(into parameters: [ParameterSlot]) throws {
        try require(microBatches > 0, "GradientAccumulator.write", "nothing was accumulated")
        for slot in parameters {
            guard let g = slot.grad else { continue }
            if let b = sums[slot.name] {
                guard b.count == slot.count else {
                    throw TrainingError.mismatch(context: "GradientAccumulator.write \(slot.name)",
                                                 message: "accumulated \(b.count) elements, gradient has \(slot.count)")
                }
                g.baseAddress!.update(from: b.pointer, count: slot.count)
            } else {
                g.baseAddress!.update(repeating: 0, count: slot.count)
            }
        }
    }

    /// Zeroes the sums for the next optimizer step.
    public func reset() {
        for b in sums.values { b.pointer.update(repeating: 0, count: b.count) }
        microBatches = 0
    }
}
