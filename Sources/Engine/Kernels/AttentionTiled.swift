import Foundation

// Attention on the GEMM micro-kernel directly.
//
// A head's products are small (k = head dim, or a few hundred keys), so calling `sgemm` per
// block spends more time packing and dispatching than multiplying. Here each task packs its
// head's K, V (and Q, dO in backward) once into micro-panels and feeds `mr`-row tiles straight to
// the micro-kernel. Every product still accumulates over its depth in increasing order, one
// fused multiply-add per step, so results do not depend on the thread count.

extension AttentionKernel {
    /// Scratch for one task, freed when the task ends.
    private struct Scratch {
        let base: UnsafeMutablePointer<Float>
        private var used = 0
        let capacity: Int
        init(_ capacity: Int) { self.capacity = capacity; base = .allocate(capacity: capacity) }
        mutating func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            precondition(used + count <= capacity, "attention scratch overflow")
            defer { used += count }
            return base + used
        }
        func free() { base.deallocate() }
    }

    /// Rows `0..<rows` of row-major `x` (row stride `ld`, `cols` columns) as B micro-panels over
    /// its columns: panel `jp` is `[rows][nr]`, starting at `jp * rows * nr`; missing columns are 0.
    @inline(__always)
    static func packColumnPanels(_ x: UnsafePointer<Float>, ld: Int, rows: Int, cols: Int, nr: Int,
                                 into dst: UnsafeMutablePointer<Float>) {
        let panels = (cols + nr - 1) / nr
        for jp in 0..<panels {
            let c0 = jp * nr, w = Swift.min(nr, cols - c0)
            let panel = dst + jp * rows * nr
            for r in 0..<rows {
                let d = panel + r * nr
                d.update(from: x + r * ld + c0, count: w)
                if w < nr { (d + w).update(repeating: 0, count: nr - w) }
            }
        }
    }

    /// Xᵀ as B micro-panels: rows `0..<rows` of `x` (row stride `ld`, `cols` columns) become
    /// columns; panel `jp` is `[cols][nr]` (rows `jp*nr ..< jp*nr+nr`), missing rows are 0.
    @inline(__always)
    static func packRowPanels(_ x: UnsafePointer<Float>, ld: Int, rows: Int, cols: Int, nr: Int,
                              into dst: UnsafeMutablePointer<Float>) {
        let panels = (rows + nr - 1) / nr
        for jp in 0..<panels {
            let r0 = jp * nr, h = Swift.min(nr, rows - r0)
            let panel = dst + jp * cols * nr
            if h == nr && nr % 8 == 0 {
                // A whole panel: 8 × 8 register transposes (GEMM's own packing of a transposed B).
                GEMMPack.transposeRowsB(x + r0 * ld, ldb: ld, kc: cols, nr: nr, into: panel)
                continue
            }
            if h < nr { panel.update(repeating: 0, count: cols * nr) }
            for j in 0..<h {
                let src = x + (r0 + j) * ld
                var d = panel + j
                for p in 0..<cols { d.pointee = src[p]; d = d.advanced(by: nr) }
            }
        }
    }

    /// An A micro-panel `[depth][mr]` from `h` rows of row-major `x` (row stride `ld`): element
    /// (row r, depth p) is `x[r * ld + p]`; rows `h..<mr` are 0.
    @inline(__always)
    static func packRowsAsA(_ x: UnsafePointer<Float>, ld: Int, rows h: Int, depth: Int, mr: Int,
                            into dst: UnsafeMutablePointer<Float>) {
        if h == mr && (mr == 6 || mr == 12) {
            // A whole panel: 8 × 8 register transposes (GEMM's own packing of a row-major A).
            GEMMPack.transposeRowsA(x, lda: ld, kc: depth, mr: mr, into: dst)
            return
        }
        if h < mr { dst.update(repeating: 0, count: depth * mr) }
        for r in 0..<h {
            let src = x + r * ld
            var d = dst + r
            for p in 0..<depth { d.pointee = src[p]; d = d.advanced(by: mr) }
        }
    }

    /// An A micro-panel `[depth][mr]` from `h` columns of row-major `x` (row stride `ld`): element
    /// (row r, depth p) is `x[p * ld + r]`; rows `h..<mr` are 0.
    @inline(__always)
    static func packColumnsAsA(_ x: UnsafePointer<Float>, ld: Int, columns h: Int, depth: Int, mr: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<depth {
            let d = dst + p * mr
            d.update(from: x + p * ld, count: h)
            if h < mr { (d + h).update(repeating: 0, count: mr - h) }
        }
    }

    /// `C[h, w] = alpha · A · B + beta · C` for one micro-tile; partial tiles go through `edge`
    /// (`mr * nr` floats) and are stored as `sgemm`'s edge tiles are.
    @inline(__always)
    static func tile(_ kernel: GEMMMicroKernel, depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, rows h: Int, cols w: Int, alpha: Float, beta: Float,
                     edge: UnsafeMutablePointer<Float>) {
        if depth == 0 {
            for r in 0..<h {
                for j in 0..<w { c[r * ldc + j] = beta == 0 ? 0 : beta * c[r * ldc + j] }
            }
            return
        }
        if h == kernel.mr && w == kernel.nr {
            kernel.body(depth, a, b, c, ldc, alpha, beta, UnsafeRawPointer(b))
            return
        }
        kernel.body(depth, a, b, edge, kernel.nr, 1, 0, UnsafeRawPointer(b))
        storeEdgeTile(edge, nr: kernel.nr, into: c, ldc: ldc, rows: h, cols: w, alpha: alpha, beta: beta)
    }

    /// `tile` across `cols` columns of C in whole B panels (the last may be partial): panel `jp` at
    /// `b + jp * panelStride` gives C's columns from `c + jp * nr`. A is read in place, element
    /// (row r, depth p) at `a[r * rowStride + p * depthStride]`: straight from memory for full tiles
    /// when the kernel can (no copy), otherwise packed into `panel` (`depth * mr` floats) once for
    /// every panel, which also keeps a partial tile from reading past its rows.
    @inline(__always)
    static func tilesA(_ kernel: GEMMMicroKernel, depth: Int, a: UnsafePointer<Float>, rowStride: Int, depthStride: Int,
                       b: UnsafePointer<Float>, panelStride: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                       rows h: Int, cols: Int, alpha: Float, beta: Float,
                       panel: UnsafeMutablePointer<Float>, edge: UnsafeMutablePointer<Float>) {
        let nr = kernel.nr
        let panels = (cols + nr - 1) / nr
        if depth > 0 && h == kernel.mr, let strided = kernel.stridedBody {
            for jp in 0..<panels {
                let w = Swift.min(nr, cols - jp * nr)
                let bp = b + jp * panelStride, cp = c + jp * nr
                if w == nr {
                    strided(depth, a, rowStride, depthStride, bp, cp, ldc, alpha, beta)
                } else {
                    strided(depth, a, rowStride, depthStride, bp, edge, nr, 1, 0)
                    storeEdgeTile(edge, nr: nr, into: cp, ldc: ldc, rows: h, cols: w, alpha: alpha, beta: beta)
                }
            }
            return
        }
        if depthStride == 1 {
            packRowsAsA(a, ld: rowStride, rows: h, depth: depth, mr: kernel.mr, into: panel)
        } else {
            precondition(rowStride == 1, "tilesA: one of the strides must be 1")
            packColumnsAsA(a, ld: depthStride, columns: h, depth: depth, mr: kernel.mr, into: panel)
        }
        for jp in 0..<panels {
            tile(kernel, depth: depth, a: panel, b: b + jp * panelStride, c: c + jp * nr, ldc: ldc, rows: h,
                 cols: Swift.min(nr, cols - jp * nr), alpha: alpha, beta: beta, edge: edge)
        }
    }

    /// Forward over `mr`-query tiles; see `forward`.
    static func forwardTiled(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?, cfg: AttentionConfig) {
        let (B, H, Hkv, D) = (cfg.batch, cfg.heads, cfg.kvHeads, cfg.headDim)
        let group = H / Hkv
        let layout = Layout(cfg)
        let kernel = GEMMMicroKernel.best
        let (mr, nr) = (kernel.mr, kernel.nr)
        let dPanels = (D + nr - 1) / nr
        let (q, k, v, out) = (UncheckedPointer(q), UncheckedPointer(k), UncheckedPointer(v), UncheckedPointer(out))
        let probs = probs.map { UncheckedPointer($0) }
        GEMMWorkCounter(B * H).run(threads: Parallel.threads) { task in
            let b = task / H, head = task % H, kvh = head / group
            let Tq = layout.queries(b), Tk = layout.keys(b)
            let keyPanels = (Tk + nr - 1) / nr
            // 16 floats of slack after each score row, which `softmaxRowPadded` may overwrite.
            let ldS = keyPanels * nr + 16
            var scratch = Scratch(keyPanels * D * nr + dPanels * Tk * nr + mr * ldS + Swift.max(D, Tk) * mr + mr * nr)
            defer { scratch.free() }
            let kT = scratch.take(keyPanels * D * nr), vB = scratch.take(dPanels * Tk * nr)
            let s = scratch.take(mr * ldS), panel = scratch.take(Swift.max(D, Tk) * mr)
            let edge = scratch.take(mr * nr)
            let qh = q.pointer + layout.queryRow(b) * H * D + head * D
            let kh = k.pointer + layout.keyRow(b) * Hkv * D + kvh * D
            let vh = v.pointer + layout.keyRow(b) * Hkv * D + kvh * D
            let oh = out.pointer + layout.queryRow(b) * H * D + head * D
            let ph = probs.map { $0.pointer + layout.probs(b, head) }
            packRowPanels(kh, ld: Hkv * D, rows: Tk, cols: D, nr: nr, into: kT)
            packColumnPanels(vh, ld: Hkv * D, rows: Tk, cols: D, nr: nr, into: vB)
            let pad = visibleKeys(cfg, b: b, row: 0, keys: Tk).lowerBound
            var i0 = 0
            while i0 < Tq {
                let rows = Swift.min(mr, Tq - i0)
                let keyEnd = Swift.min(Tk, cfg.queryOffset + i0 + rows)
                if keyEnd <= pad {
                    // Every query of the tile lies inside the left padding: zero output.
                    for r in 0..<rows {
                        (oh + (i0 + r) * H * D).update(repeating: 0, count: D)
                        ph.map { ($0 + (i0 + r) * Tk).update(repeating: 0, count: Tk) }
                    }
                    i0 += rows
                    continue
                }
                // S = scale · Q_tile · Kᵀ over the key panels the tile can see (s has mr rows).
                tilesA(kernel, depth: D, a: qh + i0 * H * D, rowStride: H * D, depthStride: 1, b: kT, panelStride: D * nr,
                       c: s, ldc: ldS, rows: rows, cols: (keyEnd + nr - 1) / nr * nr, alpha: cfg.scale, beta: 0,
                       panel: panel, edge: edge)
                // Softmax over each row's visible keys; the rest of 0..<keyEnd becomes 0.
                for r in 0..<rows {
                    let row = s + r * ldS
                    let vis = visibleKeys(cfg, b: b, row: i0 + r, keys: Tk)
                    if vis.isEmpty {
                        row.update(repeating: 0, count: keyEnd)
                    } else {
                        SoftmaxKernel.softmaxRowPadded(row + vis.lowerBound, vis.count)
                        if vis.lowerBound > 0 { row.update(repeating: 0, count: vis.lowerBound) }
                        if vis.upperBound < keyEnd { (row + vis.upperBound).update(repeating: 0, count: keyEnd - vis.upperBound) }
                    }
                    if let pr = ph.map({ $0 + (i0 + r) * Tk }) {
                        pr.update(from: row, count: keyEnd)
                        if keyEnd < Tk { (pr + keyEnd).update(repeating: 0, count: Tk - keyEnd) }
                    }
                }
                // O_tile = P_tile · V over keys pad..<keyEnd.
                let nk = keyEnd - pad
                tilesA(kernel, depth: nk, a: s + pad, rowStride: ldS, depthStride: 1, b: vB + pad * nr, panelStride: Tk * nr,
                       c: oh + i0 * H * D, ldc: H * D, rows: rows, cols: D, alpha: 1, beta: 0, panel: panel, edge: edge)
                i0 += rows
            }
        }
    }

    /// dO: [B, Tq, H·D]; q, dq: [B, Tq, H·D]; k, v, dk, dv: [B, Tk, Hkv·D]; probs: [B, H, Tq, Tk].
    /// dq is written; dk, dv are written (zeroed first). Any of dq, dk, dv may be nil.
    /// Tasks are (b, kv head) pairs, so each owns its dk/dv rows. Per query head of the group:
    /// dP = dO · Vᵀ and dS = P ⊙ (dP − rowsum(P ⊙ dP)) over `mr`-query tiles, dQ = scale · dS · K
    /// per query tile, then dK += scale · dSᵀ · Q and dV += Pᵀ · dO per `mr`-key tile.
    static func backward(dO: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         probs: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?,
                         dv: UnsafeMutablePointer<Float>?, cfg: AttentionConfig) {
        let (B, H, Hkv, D) = (cfg.batch, cfg.heads, cfg.kvHeads, cfg.headDim)
        let group = H / Hkv
        let layout = Layout(cfg)
        let keyRows = layout.packed ? layout.starts[B] : B * cfg.keyLength
        if let dk { dk.update(repeating: 0, count: keyRows * Hkv * D) }
        if let dv { dv.update(repeating: 0, count: keyRows * Hkv * D) }
        if dq == nil && dk == nil && dv == nil { return }
        let kernel = GEMMMicroKernel.best
        let (mr, nr) = (kernel.mr, kernel.nr)
        let dPanels = (D + nr - 1) / nr
        let (dO, q, k, v, probs) = (UncheckedPointer(dO), UncheckedPointer(q), UncheckedPointer(k), UncheckedPointer(v),
                                    UncheckedPointer(probs))
        let (dq, dk, dv) = (dq.map { UncheckedPointer($0) }, dk.map { UncheckedPointer($0) }, dv.map { UncheckedPointer($0) })
        GEMMWorkCounter(B * Hkv).run(threads: Parallel.threads) { task in
            let b = task / Hkv, kvh = task % Hkv
            let Tq = layout.queries(b), Tk = layout.keys(b)
            let keyPanels = (Tk + nr - 1) / nr
            // dS rows span whole key panels; its rows fill whole query tiles.
            let ldS = keyPanels * nr
            let tqPad = (Tq + mr - 1) / mr * mr
            let depth = Swift.max(Tq, Tk, D)
            var scratch = Scratch(keyPanels * D * nr + 3 * dPanels * Swift.max(Tq, Tk) * nr + tqPad * ldS
                                  + depth * mr + mr * nr)
            defer { scratch.free() }
            let vT = scratch.take(keyPanels * D * nr)        // Vᵀ, for dP
            let kB = scratch.take(dPanels * Tk * nr)          // K over D columns, for dQ
            let qB = scratch.take(dPanels * Tq * nr)          // this head's Q over D columns, for dK
            let doB = scratch.take(dPanels * Tq * nr)         // this head's dO over D columns, for dV
            let dS = scratch.take(tqPad * ldS)
            let aPanel = scratch.take(depth * mr)
            let edge = scratch.take(mr * nr)
            let kh = k.pointer + layout.keyRow(b) * Hkv * D + kvh * D
            let vh = v.pointer + layout.keyRow(b) * Hkv * D + kvh * D
            let dkh = dk.map { $0.pointer + layout.keyRow(b) * Hkv * D + kvh * D }
            let dvh = dv.map { $0.pointer + layout.keyRow(b) * Hkv * D + kvh * D }
            let needDS = dq != nil || dk != nil
            if needDS {
                packRowPanels(vh, ld: Hkv * D, rows: Tk, cols: D, nr: nr, into: vT)
                if dq != nil { packColumnPanels(kh, ld: Hkv * D, rows: Tk, cols: D, nr: nr, into: kB) }
            }
            let pad = visibleKeys(cfg, b: b, row: 0, keys: Tk).lowerBound
            for head in (kvh * group)..<((kvh + 1) * group) {
                let qh = q.pointer + layout.queryRow(b) * H * D + head * D
                let doh = dO.pointer + layout.queryRow(b) * H * D + head * D
                let dqh = dq.map { $0.pointer + layout.queryRow(b) * H * D + head * D }
                let ph = probs.pointer + layout.probs(b, head)
                if needDS {
                    var i0 = 0
                    while i0 < Tq {
                        let rows = Swift.min(mr, Tq - i0)
                        let keyEnd = Swift.min(Tk, cfg.queryOffset + i0 + rows)
                        let tileS = dS + i0 * ldS
                        if keyEnd <= pad {
                            tileS.update(repeating: 0, count: mr * ldS)
                            if let dqh { for r in 0..<rows { (dqh + (i0 + r) * H * D).update(repeating: 0, count: D) } }
                            i0 += rows
                            continue
                        }
                        // dP = dO_tile · Vᵀ over the key panels the tile can see.
                        tilesA(kernel, depth: D, a: doh + i0 * H * D, rowStride: H * D, depthStride: 1, b: vT, panelStride: D * nr,
                               c: tileS, ldc: ldS, rows: rows, cols: (keyEnd + nr - 1) / nr * nr, alpha: 1, beta: 0,
                               panel: aPanel, edge: edge)
                        // dS over each row's visible keys; zero elsewhere (and in the padding rows).
                        for r in 0..<mr {
                            let row = tileS + r * ldS
                            let vis = r < rows ? visibleKeys(cfg, b: b, row: i0 + r, keys: Tk) : 0..<0
                            if vis.isEmpty {
                                row.update(repeating: 0, count: ldS)
                                continue
                            }
                            SoftmaxKernel.rowBackward(y: ph + (i0 + r) * Tk + vis.lowerBound, dy: row + vis.lowerBound,
                                                      dx: row + vis.lowerBound, n: vis.count)
                            if vis.lowerBound > 0 { row.update(repeating: 0, count: vis.lowerBound) }
                            (row + vis.upperBound).update(repeating: 0, count: ldS - vis.upperBound)
                        }
                        if let dqh {
                            // dQ_tile = scale · dS_tile · K over keys pad..<keyEnd.
                            let nk = keyEnd - pad
                            tilesA(kernel, depth: nk, a: tileS + pad, rowStride: ldS, depthStride: 1, b: kB + pad * nr,
                                   panelStride: Tk * nr, c: dqh + i0 * H * D, ldc: H * D, rows: rows, cols: D,
                                   alpha: cfg.scale, beta: 0, panel: aPanel, edge: edge)
                        }
                        i0 += rows
                    }
                }
                if dkh == nil && dvh == nil { continue }
                if dkh != nil { packColumnPanels(qh, ld: H * D, rows: Tq, cols: D, nr: nr, into: qB) }
                if dvh != nil { packColumnPanels(doh, ld: H * D, rows: Tq, cols: D, nr: nr, into: doB) }
                // Key tiles: key j is seen by queries i with queryOffset + i >= j.
                var j0 = pad
                while j0 < Tk {
                    let rows = Swift.min(mr, Tk - j0)
                    let firstQuery = Swift.max(0, j0 - cfg.queryOffset)
                    let nq = Swift.max(0, Tq - firstQuery)
                    if let dkh {
                        // dK_tile += scale · dS[:, tile]ᵀ · Q
                        tilesA(kernel, depth: nq, a: dS + firstQuery * ldS + j0, rowStride: 1, depthStride: ldS,
                               b: qB + firstQuery * nr, panelStride: Tq * nr, c: dkh + j0 * Hkv * D, ldc: Hkv * D,
                               rows: rows, cols: D, alpha: cfg.scale, beta: 1, panel: aPanel, edge: edge)
                    }
                    if let dvh {
                        // dV_tile += P[:, tile]ᵀ · dO
                        tilesA(kernel, depth: nq, a: ph + firstQuery * Tk + j0, rowStride: 1, depthStride: Tk,
                               b: doB + firstQuery * nr, panelStride: Tq * nr, c: dvh + j0 * Hkv * D, ldc: Hkv * D,
                               rows: rows, cols: D, alpha: 1, beta: 1, panel: aPanel, edge: edge)
                    }
                    j0 += rows
                }
            }
        }
    }
}
