import Engine
import Foundation

/// The per-token bridge between logits and the per-sequence statistics of `Objective`, over
/// plain buffers.
///
/// Layout: `logits` is row-major `[batch, length, vocab]`; `targets` is `[batch, length]` with
/// `targets[b, t]` the token predicted at position t (already shifted, as `TokenBatch.targets`)
/// or `ignoreIndex` (−100) where no loss applies. Sums and normalisers are in Double; element
/// work in Float. Rows are processed in parallel, sums are reduced in a fixed order.
public enum TokenLogLikelihood {
    public static let ignoreIndex: Int32 = -100

    /// Per sequence: Σ_t log softmax(logits[b, t])[targets[b, t]] over non-ignored positions,
    /// and the number of such positions.
    public static func sequenceLogLikelihoods(logits: UnsafeBufferPointer<Float>, targets: [Int32],
                                              batch: Int, length: Int, vocab: Int) throws
        -> (logLikelihood: [Double], tokenCounts: [Int]) {
        try check(logits.count, targets, batch, length, vocab, "sequenceLogLikelihoods")
        let rows = batch * length
        var rowValues = [Double](repeating: 0, count: rows)
        rowValues.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!, x = logits.baseAddress!
            forEachTargetRow(targets, rows) { r in
                let row = x + r * vocab
                o[r] = Double(row[Int(targets[r])]) - logSumExp(row, vocab)
            }
        }
        return reduce(rowValues, targets, batch, length)
    }

    /// d loss / d logits = Σ_b weights[b] · d logLikelihood_b / d logits, i.e. at every
    /// non-ignored position w_b·(onehot(target) − softmax(logits)); zero elsewhere.
    /// Overwrites `gradient` (same layout as `logits`), or adds to it when `accumulate`.
    public static func backward(logits: UnsafeBufferPointer<Float>, targets: [Int32], batch: Int, length: Int,
                                vocab: Int, weights: [Double], into gradient: UnsafeMutableBufferPointer<Float>,
                                accumulate: Bool = false) throws {
        try check(logits.count, targets, batch, length, vocab, "TokenLogLikelihood.backward")
        try checkGradient(gradient.count, logits.count, weights.count, batch, "TokenLogLikelihood.backward")
        let x = logits.baseAddress!, g = gradient.baseAddress!
        forEachRow(batch * length) { r in
            let out = g + r * vocab
            let y = targets[r]
            let w = weights[r / length]
            if y == ignoreIndex || w == 0 {
                if !accumulate { out.update(repeating: 0, count: vocab) }
                return
            }
            let row = x + r * vocab
            let lse = Float(logSumExp(row, vocab))
            addScaledExp(row, shift: lse, scale: Float(-w), into: out, count: vocab, accumulate: accumulate)
            out[Int(y)] += Float(w)
        }
    }

    /// Per sequence: Σ_t KL(softmax(reference[b, t]) ‖ softmax(logits[b, t])) over non-ignored
    /// positions (the `.kl` retain term; `reference` is the frozen model's logits).
    public static func klToReference(logits: UnsafeBufferPointer<Float>, reference: UnsafeBufferPointer<Float>,
                                     targets: [Int32], batch: Int, length: Int, vocab: Int) throws -> [Double] {
        try check(logits.count, targets, batch, length, vocab, "klToReference")
        try check(reference.count, targets, batch, length, vocab, "klToReference.reference")
        let rows = batch * length
        var rowValues = [Double](repeating: 0, count: rows)
        rowValues.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!, x = logits.baseAddress!, q = reference.baseAddress!
            forEachTargetRow(targets, rows) { r in
                let row = x + r * vocab, ref = q + r * vocab
                let lseX = logSumExp(row, vocab), lseR = logSumExp(ref, vocab)
                var kl = 0.0
                for v in 0..<vocab {
                    let lr = Double(ref[v]) - lseR
                    kl += exp(lr) * (lr - (Double(row[v]) - lseX))
                }
                o[r] = kl
            }
        }
        return reduce(rowValues, targets, batch, length).logLikelihood
    }

    /// d loss / d logits = Σ_b weights[b] · d KL_b / d logits = w_b·(softmax(logits) − softmax(reference))
    /// at non-ignored positions. Overwrites `gradient`, or adds to it when `accumulate`.
    public static func klBackward(logits: UnsafeBufferPointer<Float>, reference: UnsafeBufferPointer<Float>,
                                  targets: [Int32], batch: Int, length: Int, vocab: Int, weights: [Double],
                                  into gradient: UnsafeMutableBufferPointer<Float>, accumulate: Bool = false) throws {
        try check(logits.count, targets, batch, length, vocab, "klBackward")
        try check(reference.count, targets, batch, length, vocab, "klBackward.reference")
        try checkGradient(gradient.count, logits.count, weights.count, batch, "klBackward")
        let x = logits.baseAddress!, q = reference.baseAddress!, g = gradient.baseAddress!
        forEachRow(batch * length) { r in
            let out = g + r * vocab
            let w = weights[r / length]
            if targets[r] == ignoreIndex || w == 0 {
                if !accumulate { out.update(repeating: 0, count: vocab) }
                return
            }
            let row = x + r * vocab, ref = q + r * vocab
            let lseX = Float(logSumExp(row, vocab)), lseR = Float(logSumExp(ref, vocab))
            addScaledExp(row, shift: lseX, scale: Float(w), into: out, count: vocab, accumulate: accumulate)
            addScaledExp(ref, shift: lseR, scale: Float(-w), into: out, count: vocab, accumulate: true)
        }
    }

    // MARK: helpers

    private static func check(_ n: Int, _ targets: [Int32], _ batch: Int, _ length: Int, _ vocab: Int,
                              _ ctx: String) throws {
        try require(batch > 0 && length > 0 && vocab > 0, ctx,
                    "batch, length and vocab must be > 0, got \(batch), \(length), \(vocab)")
        if n != batch * length * vocab {
            throw TrainingError.mismatch(context: ctx,
                message: "logits hold \(n) values, expected batch × length × vocab = \(batch) × \(length) × \(vocab)")
        }
        if targets.count != batch * length {
            throw TrainingError.mismatch(context: ctx, message: "targets hold \(targets.count) ids, expected \(batch) × \(length)")
        }
        if let i = targets.firstIndex(where: { $0 != ignoreIndex && ($0 < 0 || Int($0) >= vocab) }) {
            throw TrainingError.mismatch(context: ctx,
                message: "target \(targets[i]) at position \(i) is outside the vocabulary 0..<\(vocab) (and not \(ignoreIndex))")
        }
    }

    private static func checkGradient(_ n: Int, _ expected: Int, _ weights: Int, _ batch: Int, _ ctx: String) throws {
        if n != expected { throw TrainingError.mismatch(context: ctx, message: "gradient holds \(n) values, logits \(expected)") }
        if weights != batch { throw TrainingError.mismatch(context: ctx, message: "\(weights) weights for \(batch) sequences") }
    }

    private static func reduce(_ rowValues: [Double], _ targets: [Int32], _ batch: Int, _ length: Int)
        -> (logLikelihood: [Double], tokenCounts: [Int]) {
        var sums = [Double](repeating: 0, count: batch), counts = [Int](repeating: 0, count: batch)
        for b in 0..<batch {
            for t in 0..<length where targets[b * length + t] != ignoreIndex {
                sums[b] += rowValues[b * length + t]
                counts[b] += 1
            }
        }
        return (sums, counts)
    }

    private static func forEachRow(_ rows: Int, _ body: (Int) -> Void) {
        let chunks = min(rows, max(1, Parallel.threads * 4))
        Parallel.forEach(chunks) { c in
            for r in Parallel.range(c, of: chunks, total: rows) { body(r) }
        }
    }

    private static func forEachTargetRow(_ targets: [Int32], _ rows: Int, _ body: (Int) -> Void) {
        targets.withUnsafeBufferPointer { t in
            forEachRow(rows) { r in if t[r] != ignoreIndex { body(r) } }
        }
    }
}

/// log Σ exp(x_v), with the max subtracted; partial sums of 8 lanes are added in Double.
/// NaN anywhere gives NaN; a row of −∞ gives −∞.
@inline(__always)
func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    var m = -Float.infinity
    var nan = false
    var i = 0
    var vm = SIMD8<Float>(repeating: -.infinity)
    var vnan = SIMDMask<SIMD8<Int32>>()
    while i + 8 <= n {
        let v = loadV(x + i)
        vnan .|= v .!= v
        vm = fastMax(vm, v)
        i += 8
    }
    m = horizontalMax(vm)
    nan = any(vnan)
    while i < n { if x[i].isNaN { nan = true }; m = max(m, x[i]); i += 1 }
    if nan { return .nan }
    if m == -.infinity { return -.infinity }
    if m == .infinity { return .infinity }
    var s = 0.0
    i = 0
    let vmax = SIMD8<Float>(repeating: m)
    while i + 8 <= n {
        var acc = SIMD8<Float>()
        let end = min(n, i + 512) & ~7
        while i + 8 <= end {
            acc += simdExp(loadV(x + i) - vmax)
            i += 8
        }
        s += Double(acc.sum())
    }
    while i < n { s += Double(expf(x[i] - m)); i += 1 }
    return Double(m) + log(s)
}

/// out[v] = (accumulate ? out[v] : 0) + a·exp(x[v] − shift) for v < n.
@inline(__always)
func addScaledExp(_ x: UnsafePointer<Float>, shift: Float, scale a: Float, into out: UnsafeMutablePointer<Float>,
                  count n: Int, accumulate: Bool) {
    var i = 0
    let vs = SIMD8<Float>(repeating: shift), va = SIMD8<Float>(repeating: a)
    while i + 8 <= n {
        let d = va * simdExp(loadV(x + i) - vs)
        storeV(accumulate ? loadV(out + i) + d : d, out + i)
        i += 8
    }
    while i < n {
        let d = a * expf(x[i] - shift)
        out[i] = accumulate ? out[i] + d : d
        i += 1
    }
}
