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
    static let rowBlock = 32

    @inline(__always)
    static func visibleKeys(_ cfg: AttentionConfig, b: Int, row i: Int) -> Range<Int> {
        let start = cfg.leftPadding.isEmpty ? 0 : cfg.leftPadding[b]
        let end = Swift.min(cfg.keyLength, cfg.queryOffset + i + 1)
        return start..<Swift.max(start, end)
    }

    /// q: [B, Tq, H·D]; k, v: [B, Tk, Hkv·D]; out: [B, Tq, H·D]; probs: [B, H, Tq, Tk] or nil.
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?, cfg: AttentionConfig) {
        let (B, Tq, Tk, H, Hkv, D) = (cfg.batch, cfg.queryLength, cfg.keyLength, cfg.heads, cfg.kvHeads, cfg.headDim)
        let group = H / Hkv
        let tasks = B * H
        let chunks = Swift.min(Parallel.threads, tasks)
        Parallel.forEach(chunks) { c in
            // Scratch for one head's probabilities when they are not kept.
            let scratch: UnsafeMutablePointer<Float>? = probs == nil ? .allocate(capacity: Swift.min(rowBlock, Tq) * Tk) : nil
            defer { scratch?.deallocate() }
            for task in Parallel.range(c, of: chunks, total: tasks) {
                let b = task / H, h = task % H, kvh = h / group
                let qh = q + b * Tq * H * D + h * D
                let kh = k + b * Tk * Hkv * D + kvh * D
                let vh = v + b * Tk * Hkv * D + kvh * D
                let oh = out + b * Tq * H * D + h * D
                var i0 = 0
                while i0 < Tq {
                    let i1 = Swift.min(Tq, i0 + rowBlock)
                    let p: UnsafeMutablePointer<Float> = probs.map { $0 + ((b * H + h) * Tq + i0) * Tk } ?? scratch!
                    let keyStart = visibleKeys(cfg, b: b, row: i0).lowerBound
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
                        let vis = visibleKeys(cfg, b: b, row: i)
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

    /// dO: [B, Tq, H·D]; q, dq: [B, Tq, H·D]; k, v, dk, dv: [B, Tk, Hkv·D]; probs: [B, H, Tq, Tk].
    /// dq is written; dk, dv are written (zeroed first). Any of dq, dk, dv may be nil.
    /// Work is split over (b, kv head) so each task owns its dk/dv rows.
    static func backward(dO: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         probs: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?,
                         dv: UnsafeMutablePointer<Float>?, cfg: AttentionConfig) {
        let (B, Tq, Tk, H, Hkv, D) = (cfg.batch, cfg.queryLength, cfg.keyLength, cfg.heads, cfg.kvHeads, cfg.headDim)
        let group = H / Hkv
        let tasks = B * Hkv
        let chunks = Swift.min(Parallel.threads, tasks)
        if let dk { dk.update(repeating: 0, count: B * Tk * Hkv * D) }
        if let dv { dv.update(repeating: 0, count: B * Tk * Hkv * D) }
        Parallel.forEach(chunks) { c in
            let ds = UnsafeMutablePointer<Float>.allocate(capacity: Swift.min(rowBlock, Tq) * Tk)
            defer { ds.deallocate() }
            for task in Parallel.range(c, of: chunks, total: tasks) {
                let b = task / Hkv, kvh = task % Hkv
                let kh = k + b * Tk * Hkv * D + kvh * D
                let vh = v + b * Tk * Hkv * D + kvh * D
                let dkh = dk.map { $0 + b * Tk * Hkv * D + kvh * D }
                let dvh = dv.map { $0 + b * Tk * Hkv * D + kvh * D }
                for h in (kvh * group)..<((kvh + 1) * group) {
                    let qh = q + b * Tq * H * D + h * D
                    let doh = dO + b * Tq * H * D + h * D
                    let dqh = dq.map { $0 + b * Tq * H * D + h * D }
                    var i0 = 0
                    while i0 < Tq {
                        let i1 = Swift.min(Tq, i0 + rowBlock)
                        let rows = i1 - i0
                        let p = probs + ((b * H + h) * Tq + i0) * Tk
                        let keyStart = visibleKeys(cfg, b: b, row: i0).lowerBound
                        let keyEnd = Swift.max(keyStart, Swift.min(Tk, cfg.queryOffset + i1))
                        let nk = keyEnd - keyStart
                        if nk == 0 {
                            if let dqh { for i in i0..<i1 { (dqh + i * H * D).update(repeating: 0, count: D) } }
                            i0 = i1
                            continue
                        }
                        if let dvh {
                            // dV[j] += Σ_i P[i, j] · dO_i
                            GEMM.sgemm(transA: true, transB: false, m: nk, n: D, k: rows, alpha: 1,
                                       a: p + keyStart, lda: Tk, b: doh + i0 * H * D, ldb: H * D,
                                       beta: 1, c: dvh + keyStart * Hkv * D, ldc: Hkv * D, threads: 1)
                        }
                        if dqh == nil && dkh == nil { i0 = i1; continue }
                        // dP = dO · Vᵀ over the block's key range, into ds[:, 0..<nk].
                        GEMM.sgemm(transA: false, transB: true, m: rows, n: nk, k: D, alpha: 1,
                                   a: doh + i0 * H * D, lda: H * D, b: vh + keyStart * Hkv * D, ldb: Hkv * D,
                                   beta: 0, c: ds, ldc: nk, threads: 1)
                        // dS = P ⊙ (dP − Σ_j P⊙dP), zero outside each row's visible keys.
                        for i in i0..<i1 {
                            let pr = p + (i - i0) * Tk + keyStart
                            let dr = ds + (i - i0) * nk
                            let vis = visibleKeys(cfg, b: b, row: i)
                            let n = vis.isEmpty ? 0 : vis.upperBound - keyStart
                            var acc = F8(repeating: 0)
                            var j = 0
                            while j + 8 <= n {
                                acc.addProduct(UnsafeRawPointer(pr + j).loadUnaligned(as: F8.self),
                                               UnsafeRawPointer(dr + j).loadUnaligned(as: F8.self))
                                j += 8
                            }
                            var dot = acc.sum()
                            while j < n { dot += pr[j] * dr[j]; j += 1 }
                            let dv8 = F8(repeating: dot)
                            j = 0
                            while j + 8 <= n {
                                let pv = UnsafeRawPointer(pr + j).loadUnaligned(as: F8.self)
                                let gv = UnsafeRawPointer(dr + j).loadUnaligned(as: F8.self)
                                UnsafeMutableRawPointer(dr + j).storeBytes(of: pv * (gv - dv8), as: F8.self)
                                j += 8
                            }
                            while j < n { dr[j] = pr[j] * (dr[j] - dot); j += 1 }
                            if n < nk { (dr + n).update(repeating: 0, count: nk - n) }
                        }
                        if let dqh {
                            // dQ_i = scale · Σ_j dS[i, j] · k_j
                            GEMM.sgemm(transA: false, transB: false, m: rows, n: D, k: nk, alpha: cfg.scale,
                                       a: ds, lda: nk, b: kh + keyStart * Hkv * D, ldb: Hkv * D,
                                       beta: 0, c: dqh + i0 * H * D, ldc: H * D, threads: 1)
                        }
                        if let dkh {
                            // dK_j += scale · Σ_i dS[i, j] · q_i
                            GEMM.sgemm(transA: true, transB: false, m: nk, n: D, k: rows, alpha: cfg.scale,
                                       a: ds, lda: nk, b: qh + i0 * H * D, ldb: H * D,
                                       beta: 1, c: dkh + keyStart * Hkv * D, ldc: Hkv * D, threads: 1)
                        }
                        i0 = i1
                    }
                }
            }
        }
    }
}
