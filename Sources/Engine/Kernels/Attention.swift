import Foundation

/// Fused causal self-attention with grouped-query heads over `[B, T, H·D]` activations.
///
/// For batch row b and query head h (kv head `h / (H/Hkv)`, as HF `repeat_kv`), query i sits
/// at absolute position `queryOffset + i` and attends keys j with `pad[b] <= j <= queryOffset + i`.
/// Scores are produced in row blocks by GEMM (only the keys a block can see), masked, softmaxed
/// and multiplied by V directly into the output columns of head h. The probabilities
/// `P: [B, H, Tq, Tk]` are kept only when backward needs them. A query with no visible key
/// (entirely inside the left padding) gets a zero output.
enum AttentionKernel {
    static let rowBlock = 64

    @inline(__always)
    static func visibleKeys(_ cfg: AttentionConfig, b: Int, row i: Int, keys tk: Int) -> Range<Int> {
        let start = cfg.leftPadding.isEmpty ? 0 : cfg.leftPadding[b]
        let end = Swift.min(tk, cfg.queryOffset + i + 1)
        return start..<Swift.max(start, end)
    }

    /// Where sequence b lives: its first query row, first key row, lengths, and the offset of its
    /// probabilities `[H, Tq_b, Tk_b]`. Uniform batches are `[B, T, ...]`; packed ones (see
    /// `AttentionConfig.sequenceLengths`) hold sequence after sequence in one `[1, N, ...]` tensor.
    struct Layout {
        let cfg: AttentionConfig
        let starts: [Int]
        let probStarts: [Int]

        init(_ cfg: AttentionConfig) {
            self.cfg = cfg
            if cfg.sequenceLengths.isEmpty {
                starts = []
                probStarts = []
            } else {
                var s = [0], ps = [0]
                for l in cfg.sequenceLengths {
                    s.append(s[s.count - 1] + l)
                    ps.append(ps[ps.count - 1] + cfg.heads * l * l)
                }
                starts = s
                probStarts = ps
            }
        }

        @inline(__always) var packed: Bool { !starts.isEmpty }
        @inline(__always) func queryRow(_ b: Int) -> Int { packed ? starts[b] : b * cfg.queryLength }
        @inline(__always) func keyRow(_ b: Int) -> Int { packed ? starts[b] : b * cfg.keyLength }
        @inline(__always) func queries(_ b: Int) -> Int { packed ? cfg.sequenceLengths[b] : cfg.queryLength }
        @inline(__always) func keys(_ b: Int) -> Int { packed ? cfg.sequenceLengths[b] : cfg.keyLength }
        /// Offset of `P[b, h, 0, 0]`; rows of P are `keys(b)` long.
        @inline(__always) func probs(_ b: Int, _ h: Int) -> Int {
            packed ? probStarts[b] + h * queries(b) * keys(b) : (b * cfg.heads + h) * cfg.queryLength * cfg.keyLength
        }
        /// Elements of P for the whole call.
        var probCount: Int { packed ? probStarts[probStarts.count - 1] : cfg.batch * cfg.heads * cfg.queryLength * cfg.keyLength }
    }

    /// q: [B, Tq, H·D]; k, v: [B, Tk, Hkv·D]; out: [B, Tq, H·D]; probs: [B, H, Tq, Tk] or nil.
    ///
    /// Fewer queries than a micro-tile's rows (decoding with a KV cache) take `sgemm` row blocks,
    /// whose few-row path reads K and V in place; anything longer runs on whole micro-tiles
    /// (`forwardTiled`).
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?, cfg: AttentionConfig) {
        if cfg.sequenceLengths.isEmpty && cfg.queryLength < GEMMMicroKernel.best.mr {
            forwardByRowBlocks(q: q, k: k, v: v, out: out, probs: probs, cfg: cfg)
        } else {
            forwardTiled(q: q, k: k, v: v, out: out, probs: probs, cfg: cfg)
        }
    }

    /// Forward in `rowBlock`-query blocks, each through `sgemm`.
    static func forwardByRowBlocks(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?, cfg: AttentionConfig) {
        let (B, H, Hkv, D) = (cfg.batch, cfg.heads, cfg.kvHeads, cfg.headDim)
        let group = H / Hkv
        let layout = Layout(cfg)
        let (q, k, v, out) = (UncheckedPointer(q), UncheckedPointer(k), UncheckedPointer(v), UncheckedPointer(out))
        let probs = probs.map { UncheckedPointer($0) }
        // Threads take (sequence, head) tasks as they come: packed sequences differ in length.
        GEMMWorkCounter(B * H).run(threads: Parallel.threads) { task in
            let b = task / H, h = task % H, kvh = h / group
            let Tq = layout.queries(b), Tk = layout.keys(b)
            // Scratch for one head's probabilities when they are not kept.
            let scratch: UnsafeMutablePointer<Float>? = probs == nil ? .allocate(capacity: Swift.min(rowBlock, Tq) * Tk) : nil
            defer { scratch?.deallocate() }
            do {
                let qh = q.pointer + layout.queryRow(b) * H * D + h * D
                let kh = k.pointer + layout.keyRow(b) * Hkv * D + kvh * D
                let vh = v.pointer + layout.keyRow(b) * Hkv * D + kvh * D
                let oh = out.pointer + layout.queryRow(b) * H * D + h * D
                var i0 = 0
                while i0 < Tq {
                    let i1 = Swift.min(Tq, i0 + rowBlock)
                    let p: UnsafeMutablePointer<Float> = probs.map { $0.pointer + layout.probs(b, h) + i0 * Tk } ?? scratch!
                    let keyStart = visibleKeys(cfg, b: b, row: i0, keys: Tk).lowerBound
                    let keyEnd = Swift.max(keyStart, Swift.min(Tk, cfg.queryOffset + i1))
                    let nk = keyEnd - keyStart
                    if nk > 0 {
                        // S[i, j] = scale · q_i · k_j for the block's visible key range.
                        GEMM.sgemm(transA: false, transB: true, m: i1 - i0, n: nk, k: D, alpha: cfg.scale,
                                   a: qh + i0 * H * D, lda: H * D, b: kh + keyStart * Hkv * D, ldb: Hkv * D,
                                   beta: 0, c: p + keyStart, ldc: Tk, threads: 1)
                    }
                    for i in i0..<i1 {
                        let row = p + (i - i0) * Tk
                        let vis = visibleKeys(cfg, b: b, row: i, keys: Tk)
                        if vis.isEmpty {
                            row.update(repeating: 0, count: Tk)
                            continue
                        }
                        let n = vis.count
                        let xr = row + vis.lowerBound
                        let m = SoftmaxKernel.rowMax(xr, n)
                        let s = SoftmaxKernel.sumExp(xr, n, minus: m, out: xr)
                        let inv = 1 / s
                        for j in 0..<n { xr[j] *= inv }
                        if vis.lowerBound > 0 { row.update(repeating: 0, count: vis.lowerBound) }
                        if vis.upperBound < Tk { (row + vis.upperBound).update(repeating: 0, count: Tk - vis.upperBound) }
                    }
                    if nk > 0 {
                        // O[i, :] = Σ_j P[i, j] · v_j
                        GEMM.sgemm(transA: false, transB: false, m: i1 - i0, n: D, k: nk, alpha: 1,
                                   a: p + keyStart, lda: Tk, b: vh + keyStart * Hkv * D, ldb: Hkv * D,
                                   beta: 0, c: oh + i0 * H * D, ldc: H * D, threads: 1)
                    } else {
                        for i in i0..<i1 { (oh + i * H * D).update(repeating: 0, count: D) }
                    }
                    i0 = i1
                }
            }
        }
    }
}
