import Foundation

/// HF rotary inverse frequencies `1 / theta^(2i/headDim)` for `i in 0..<headDim/2`, in Float32 as HF computes them.
public func ropeInverseFrequencies(headDim: Int, theta: Float) -> [Float] {
    check(headDim > 0 && headDim % 2 == 0, "ropeInverseFrequencies: headDim must be even and > 0, got \(headDim)")
    return (0..<(headDim / 2)).map { 1 / Foundation.pow(theta, Float(2 * $0) / Float(headDim)) }
}

/// Precomputed RoPE cos/sin for a set of positions, reusable across layers and for q and k.
public struct RoPETable: @unchecked Sendable {
    let cos: Tensor, sin: Tensor
    /// Sequence length the table covers.
    public let length: Int
    /// Batch rows with their own positions (`positions` variant), or nil when shared by every row.
    public let batch: Int?
    /// Half the head dimension (`invFreq.count`).
    public let halfDim: Int

    /// Positions `offset ..< offset+length`, the same for every batch row. The angle
    /// `Float(pos)·invFreq[i]` is formed in Float32 as HF does.
    public init(invFreq: [Float], offset: Int = 0, length: Int) {
        check(offset >= 0 && length > 0 && !invFreq.isEmpty,
              "RoPETable: need offset >= 0 (got \(offset)), length > 0 (got \(length)) and invFreq")
        (cos, sin) = RoPEKernel.tables(positions: Array(offset..<(offset + length)), invFreq: invFreq)
        self.length = length
        self.batch = nil
        self.halfDim = invFreq.count
    }

    /// One position per token, `positions: [batch·length]` row-major (e.g. left-padded generation).
    public init(invFreq: [Float], positions: [Int], batch: Int, length: Int) {
        check(batch > 0 && length > 0 && positions.count == batch * length && !invFreq.isEmpty,
              "RoPETable: \(positions.count) positions for batch \(batch) × length \(length)")
        check(positions.allSatisfy { $0 >= 0 }, "RoPETable: negative position")
        (cos, sin) = RoPEKernel.tables(positions: positions, invFreq: invFreq)
        self.length = length
        self.batch = batch
        self.halfDim = invFreq.count
    }
}

/// Rotary position embedding in the HF split-half layout, applied to `x: [B, T, H·D]` (read as
/// `[B, T, H, D]`) at positions `offset ..< offset+T` for every batch row. `invFreq` has `D/2`
/// entries (scaled frequencies, e.g. Llama-3 rope scaling, are the caller's choice).
public func rope(_ x: Tensor, heads: Int, headDim: Int, invFreq: [Float], offset: Int = 0) -> Tensor {
    let (_, t) = ropeCheck(x, heads: heads, headDim: headDim, halfDim: invFreq.count)
    return rope(x, heads: heads, headDim: headDim, table: RoPETable(invFreq: invFreq, offset: offset, length: t))
}

/// RoPE with an explicit position for every token: `positions` is `[B·T]` row-major
/// (e.g. generation with left padding, where each row's real tokens start at position 0).
public func rope(_ x: Tensor, heads: Int, headDim: Int, invFreq: [Float], positions: [Int]) -> Tensor {
    let (b, t) = ropeCheck(x, heads: heads, headDim: headDim, halfDim: invFreq.count)
    check(positions.count == b * t, "rope: \(positions.count) positions for input \(x.shape) (need B·T = \(b * t))")
    return rope(x, heads: heads, headDim: headDim, table: RoPETable(invFreq: invFreq, positions: positions, batch: b, length: t))
}

/// RoPE with a precomputed table (compute it once per forward pass and share it across layers).
public func rope(_ x: Tensor, heads: Int, headDim: Int, table: RoPETable) -> Tensor {
    let (b, t) = ropeCheck(x, heads: heads, headDim: headDim, halfDim: table.halfDim)
    check(t == table.length && (table.batch == nil || table.batch == b),
          "rope: table for length \(table.length)\(table.batch.map { ", batch \($0)" } ?? "") does not fit input \(x.shape)")
    return ropeApply(x, RoPEConfig(batch: b, length: t, heads: heads, headDim: headDim, cos: table.cos, sin: table.sin,
                                   perBatchRow: table.batch != nil))
}

private func ropeCheck(_ x: Tensor, heads: Int, headDim: Int, halfDim: Int) -> (Int, Int) {
    check(heads > 0 && headDim > 0 && headDim % 2 == 0, "rope: heads \(heads) must be > 0 and headDim \(headDim) even and > 0")
    check(x.shape.count == 3 && x.shape[2] == heads * headDim,
                 "rope: input \(x.shape) must be [B, T, heads·headDim] = [B, T, \(heads * headDim)]")
    check(halfDim == headDim / 2, "rope: invFreq has \(halfDim) entries, need headDim/2 = \(headDim / 2)")
    return (x.shape[0], x.shape[1])
}

private func ropeApply(_ x: Tensor, _ cfg: RoPEConfig) -> Tensor {
    let out = Tensor.uninitialized(x.shape)
    RoPEKernel.apply(x: x.pointer, y: out.pointer, cos: cfg.cos.pointer, sin: cfg.sin.pointer, batch: cfg.batch,
                     length: cfg.length, heads: cfg.heads, headDim: cfg.headDim, perBatchRow: cfg.perBatchRow, sinSign: 1)
    return out.recorded(Autograd.shouldRecord(x), .rope(x, cfg))
}

/// Fused causal self-attention with grouped-query heads.
///
/// - `q: [B, Tq, heads·headDim]`, `k`, `v: [B, Tk, kvHeads·headDim]` (read as `[B, T, H, D]`);
///   returns `[B, Tq, heads·headDim]`. Query head h uses kv head `h / (heads/kvHeads)` (HF `repeat_kv`).
/// - Query i sits at absolute position `queryOffset + i`; key j at position j. Query i attends keys
///   `j <= queryOffset + i`, so `k`/`v` may hold past keys from a KV cache (`Tk >= queryOffset + Tq`).
/// - `leftPadding[b]`: number of leading keys of batch row b to ignore (left-padded batches).
///   A query that sees no key gets zeros.
/// - `scale` defaults to `1/sqrt(headDim)`.
public func causalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, kvHeads: Int, headDim: Int,
                            queryOffset: Int = 0, leftPadding: [Int]? = nil, scale: Float? = nil) -> Tensor {
    let what = "causalAttention(q \(q.shape), k \(k.shape), v \(v.shape), heads \(heads), kvHeads \(kvHeads), headDim \(headDim))"
    check(heads > 0 && kvHeads > 0 && headDim > 0 && heads % kvHeads == 0,
                 "\(what): heads must be a positive multiple of kvHeads and headDim > 0")
    check(q.shape.count == 3 && q.shape[2] == heads * headDim, "\(what): q must be [B, Tq, \(heads * headDim)]")
    check(k.shape.count == 3 && k.shape[0] == q.shape[0] && k.shape[2] == kvHeads * headDim,
                 "\(what): k must be [B, Tk, \(kvHeads * headDim)] with B = \(q.shape[0])")
    check(v.shape == k.shape, "\(what): v must have k's shape")
    let b = q.shape[0], tq = q.shape[1], tk = k.shape[1]
    check(queryOffset >= 0 && queryOffset + tq <= tk,
                 "\(what): queryOffset \(queryOffset) + Tq \(tq) exceeds the \(tk) keys")
    if let leftPadding {
        check(leftPadding.count == b && leftPadding.allSatisfy { $0 >= 0 && $0 <= tk },
                     "\(what): leftPadding \(leftPadding) must have B = \(b) entries in 0...\(tk)")
    }
    let cfg = AttentionConfig(batch: b, queryLength: tq, keyLength: tk, heads: heads, kvHeads: kvHeads, headDim: headDim,
                              queryOffset: queryOffset, scale: scale ?? 1 / Float(headDim).squareRoot(),
                              leftPadding: leftPadding ?? [])
    return attentionApply(q, k, v, cfg)
}

/// Causal self-attention over sequences of different lengths packed one after another (no padding).
///
/// `q: [1, N, heads·headDim]`, `k`, `v: [1, N, kvHeads·headDim]` hold sequence 0's tokens, then
/// sequence 1's, ... with `sequenceLengths` summing to N; each token attends the earlier tokens of
/// its own sequence only (positions restart at 0 per sequence, so RoPE must use per-token
/// positions). Each sequence gives exactly what `causalAttention` gives it alone.
public func packedCausalAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, kvHeads: Int, headDim: Int,
                                  sequenceLengths: [Int], scale: Float? = nil) -> Tensor {
    let what = "packedCausalAttention(q \(q.shape), k \(k.shape), v \(v.shape), heads \(heads), kvHeads \(kvHeads), headDim \(headDim))"
    check(heads > 0 && kvHeads > 0 && headDim > 0 && heads % kvHeads == 0,
          "\(what): heads must be a positive multiple of kvHeads and headDim > 0")
    let n = sequenceLengths.reduce(0, +)
    check(!sequenceLengths.isEmpty && sequenceLengths.allSatisfy { $0 > 0 },
          "\(what): sequenceLengths \(sequenceLengths) must be positive")
    check(q.shape == [1, n, heads * headDim], "\(what): q must be [1, \(n), \(heads * headDim)] (N = sum of sequenceLengths)")
    check(k.shape == [1, n, kvHeads * headDim] && v.shape == k.shape, "\(what): k and v must be [1, \(n), \(kvHeads * headDim)]")
    var cfg = AttentionConfig(batch: sequenceLengths.count, queryLength: n, keyLength: n, heads: heads, kvHeads: kvHeads,
                              headDim: headDim, queryOffset: 0, scale: scale ?? 1 / Float(headDim).squareRoot(), leftPadding: [])
    cfg.sequenceLengths = sequenceLengths
    return attentionApply(q, k, v, cfg)
}

private func attentionApply(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ cfg: AttentionConfig) -> Tensor {
    let rec = Autograd.shouldRecord(q, k, v)
    let out = Tensor.uninitialized(q.shape)
    let probs = rec ? Tensor.uninitialized([AttentionKernel.Layout(cfg).probCount]) : nil
    AttentionKernel.forward(q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, probs: probs?.pointer, cfg: cfg)
    // Unrecorded, the op is only named (by a profiler), so any tensor stands in for probs.
    return out.recorded(rec, .attention(q: q, k: k, v: v, cfg, probs: probs ?? out))
}

/// Per-token log-likelihoods: `logits: [..., V]`, `targets` one per row (row-major, e.g. `[B, T]`)
/// → `[...]` with `log softmax(logits)[target]`. Rows whose target is `ignoreIndex` give 0 and no gradient.
public func logSoftmaxGather(_ logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100) -> Tensor {
    let (rows, v) = checkTargets(logits, targets, ignoreIndex, op: "logSoftmaxGather")
    let out = Tensor.uninitialized(Array(logits.shape.dropLast()).isEmpty ? [] : Array(logits.shape.dropLast()))
    let lse = Tensor.uninitialized([rows])
    targets.withUnsafeBufferPointer { tp in
        SoftmaxKernel.logSoftmaxGather(logits: logits.pointer, targets: tp.baseAddress!, ignore: ignoreIndex,
                                       out: out.pointer, lse: lse.pointer, rows: rows, v: v)
    }
    return out.recorded(Autograd.shouldRecord(logits), .logSoftmaxGather(logits: logits, targets: targets, lse: lse, ignoreIndex: ignoreIndex))
}

/// `logSoftmaxGather` with `Int` targets.
public func logSoftmaxGather(_ logits: Tensor, targets: [Int], ignoreIndex: Int = -100) -> Tensor {
    logSoftmaxGather(logits, targets: targets.map { Int32(clamping: $0) }, ignoreIndex: Int32(clamping: ignoreIndex))
}

/// Mean cross-entropy over the rows whose target is not `ignoreIndex` (a scalar; NaN if every
/// target is ignored, as PyTorch).
public func crossEntropy(_ logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100) -> Tensor {
    let (rows, v) = checkTargets(logits, targets, ignoreIndex, op: "crossEntropy")
    let logp = Tensor.uninitialized([rows])
    let lse = Tensor.uninitialized([rows])
    targets.withUnsafeBufferPointer { tp in
        SoftmaxKernel.logSoftmaxGather(logits: logits.pointer, targets: tp.baseAddress!, ignore: ignoreIndex,
                                       out: logp.pointer, lse: lse.pointer, rows: rows, v: v)
    }
    let valid = targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
    let total = Elementwise.sum(logp.pointer, count: rows)
    let loss = Tensor(scalar: Float(-total / Double(valid)))
    return loss.recorded(Autograd.shouldRecord(logits),
                         .crossEntropy(logits: logits, targets: targets, lse: lse, ignoreIndex: ignoreIndex, valid: valid))
}

/// `crossEntropy` with `Int` targets.
public func crossEntropy(_ logits: Tensor, targets: [Int], ignoreIndex: Int = -100) -> Tensor {
    crossEntropy(logits, targets: targets.map { Int32(clamping: $0) }, ignoreIndex: Int32(clamping: ignoreIndex))
}

private func checkTargets(_ logits: Tensor, _ targets: [Int32], _ ignore: Int32, op: String) -> (Int, Int) {
    check(!logits.shape.isEmpty, "\(op): logits must be [..., V], got a scalar")
    let v = logits.shape[logits.shape.count - 1], rows = logits.count / v
    check(targets.count == rows, "\(op): \(targets.count) targets for logits \(logits.shape) (need \(rows))")
    if let bad = targets.firstIndex(where: { $0 != ignore && ($0 < 0 || Int($0) >= v) }) {
        fatalError("\(op): target \(targets[bad]) at index \(bad) out of range 0..<\(v) (ignoreIndex \(ignore)) for logits \(logits.shape)")
    }
    return (rows, v)
}
