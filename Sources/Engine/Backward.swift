import Foundation

extension Autograd {
    /// Every backward rule, one case per op. `output` is the tensor `op` produced and `g` its
    /// gradient. Rules compute nothing for inputs that do not require grad (frozen parameters,
    /// constants), and add straight into a parameter's `grad` where that saves a buffer.
    static func backward(_ op: Op, output: Tensor, grad g: Tensor, ctx: BackwardContext) {
        switch op {
        case .reshape(let x):
            ctx.accumulate(x, g, owned: false)

        case .sliceRows(let x, let start):
            ctx.accumulateRows(x, start: start, inner: x.count / x.shape[0], g)

        case .narrow(let x, let axis, let start):
            guard ctx.wants(x) else { return }
            let dx = Tensor(zeros: x.shape)
            let len = output.shape[axis]
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
            for o in 0..<outer {
                (dx.pointer + (o * x.shape[axis] + start) * inner).update(from: g.pointer + o * len * inner, count: len * inner)
            }
            ctx.accumulate(x, dx, owned: true)

        case .concat(let ts, let axis):
            let outer = output.shape[..<axis].reduce(1, *), inner = output.shape[(axis + 1)...].reduce(1, *)
            var pos = 0
            for t in ts {
                let len = t.shape[axis]
                if ctx.wants(t) {
                    let dt = Tensor.uninitialized(t.shape)
                    for o in 0..<outer {
                        (dt.pointer + o * len * inner).update(from: g.pointer + (o * output.shape[axis] + pos) * inner, count: len * inner)
                    }
                    ctx.accumulate(t, dt, owned: true)
                }
                pos += len
            }

        case .matmul(let a, let b, let tA, let tB):
            matmulBackward(a, b, tA, tB, g, ctx)

        case .linear(let x, let w, let bias):
            let outF = w.shape[0], inF = w.shape[1], rows = x.count / inF
            if ctx.wants(x) {
                // dx[rows, in] = dy[rows, out] · W[out, in]
                let dx = Tensor.uninitialized(x.shape)
                GEMM.sgemm(transA: false, transB: false, m: rows, n: inF, k: outF, alpha: 1, a: g.pointer, lda: outF,
                           b: w.pointer, ldb: inF, beta: 0, c: dx.pointer, ldc: inF)
                ctx.accumulate(x, dx, owned: true)
            }
            if ctx.wants(w) {
                // dW[out, in] (+)= dyᵀ[out, rows] · x[rows, in]; a parameter's first gradient of
                // the step overwrites (beta 0), so the buffer is neither cleared nor read.
                let direct = ctx.leafGradTarget(w)
                let dw = direct == nil ? Tensor.uninitialized(w.shape) : nil
                let (target, overwrite) = direct ?? (dw!.pointer, true)
                GEMM.sgemm(transA: true, transB: false, m: outF, n: inF, k: rows, alpha: 1, a: g.pointer, lda: outF,
                           b: x.pointer, ldb: inF, beta: overwrite ? 0 : 1, c: target, ldc: inF)
                if let dw { ctx.accumulate(w, dw, owned: true) }
            }
            if let bias, ctx.wants(bias) {
                let direct = ctx.leafGradTarget(bias)
                let db = direct == nil ? Tensor.uninitialized(bias.shape) : nil
                let (target, overwrite) = direct ?? (db!.pointer, true)
                Elementwise.sumRows(g.pointer, rows: rows, n: outF, into: target, accumulate: !overwrite)
                if let db { ctx.accumulate(bias, db, owned: true) }
            }

        case .add(let a, let b):
            ctx.accumulate(a, g, owned: false)
            if ctx.wants(b) { ctx.accumulate(b, reduceBroadcast(g, to: b, like: a), owned: b.count != a.count) }

        case .sub(let a, let b):
            ctx.accumulate(a, g, owned: false)
            if ctx.wants(b) {
                let r = reduceBroadcast(g, to: b, like: a)
                let neg = Tensor.uninitialized(b.shape)
                Elementwise.scale(r.pointer, neg.pointer, -1, count: b.count)
                ctx.accumulate(b, neg, owned: true)
            }

        case .mul(let a, let b):
            let bc = Broadcast(a, b, op: "mul")
            if ctx.wants(a) { ctx.accumulate(a, BinaryKernel.apply(g, b, bc, MulOp()), owned: true) }
            if ctx.wants(b) {
                if bc.isFull {
                    let db = Tensor.uninitialized(b.shape)
                    Elementwise.map2(g.pointer, a.pointer, db.pointer, count: b.count, MulOp())
                    ctx.accumulate(b, db, owned: true)
                } else {
                    let db = Tensor(zeros: b.shape)
                    Elementwise.sumRowsOfProduct(g.pointer, a.pointer, rows: bc.rows, n: bc.n, into: db.pointer, accumulate: false)
                    ctx.accumulate(b, db, owned: true)
                }
            }

        case .scale(let x, let s):
            guard ctx.wants(x) else { return }
            let dx = Tensor.uninitialized(x.shape)
            Elementwise.scale(g.pointer, dx.pointer, s, count: x.count)
            ctx.accumulate(x, dx, owned: true)

        case .addScalar(let x):
            ctx.accumulate(x, g, owned: false)

        case .embedding(let table, let ids):
            guard ctx.wants(table) else { return }
            let c = table.shape[1]
            let direct = ctx.leafGradBuffer(table)
            let dt = direct == nil ? Tensor(zeros: table.shape) : nil
            let dst = direct ?? dt!.pointer
            // Scatter-add in token order (sequential: deterministic, and cheap next to the GEMMs).
            for (r, id) in ids.enumerated() {
                Elementwise.addInPlaceSerial(dst + Int(id) * c, g.pointer + r * c, count: c)
            }
            if let dt { ctx.accumulate(table, dt, owned: true) }

        case .rmsNorm(let x, let w, let rstd):
            let c = w.count, rows = x.count / c
            let dx = ctx.wants(x) ? Tensor.uninitialized(x.shape) : nil
            var dwOwn: Tensor? = nil
            var dw: UnsafeMutablePointer<Float>? = nil
            if ctx.wants(w) {
                dw = ctx.leafGradBuffer(w)
                if dw == nil { dwOwn = Tensor(zeros: w.shape); dw = dwOwn!.pointer }
            }
            RMSNormKernel.backward(dy: g.pointer, x: x.pointer, w: w.pointer, rstd: rstd.pointer, dx: dx?.pointer, dw: dw,
                                   rows: rows, c: c)
            if let dx { ctx.accumulate(x, dx, owned: true) }
            if let dwOwn { ctx.accumulate(w, dwOwn, owned: true) }

        case .rope(let x, let cfg):
            guard ctx.wants(x) else { return }
            let dx = Tensor.uninitialized(x.shape)
            RoPEKernel.apply(x: g.pointer, y: dx.pointer, cos: cfg.cos.pointer, sin: cfg.sin.pointer, batch: cfg.batch,
                             length: cfg.length, heads: cfg.heads, headDim: cfg.headDim, perBatchRow: cfg.perBatchRow, sinSign: -1)
            ctx.accumulate(x, dx, owned: true)

        case .silu(let x):
            guard ctx.wants(x) else { return }
            let dx = Tensor.uninitialized(x.shape)
            Elementwise.map2(g.pointer, x.pointer, dx.pointer, count: x.count, SiluBackwardOp())
            ctx.accumulate(x, dx, owned: true)

        case .swiglu(let gate, let up):
            if ctx.wants(gate) && ctx.wants(up) {
                let dGate = Tensor.uninitialized(gate.shape), dUp = Tensor.uninitialized(up.shape)
                Elementwise.swigluBackward(g.pointer, gate: gate.pointer, up: up.pointer, dGate: dGate.pointer,
                                           dUp: dUp.pointer, count: gate.count)
                ctx.accumulate(gate, dGate, owned: true)
                ctx.accumulate(up, dUp, owned: true)
                return
            }
            if ctx.wants(gate) {
                let d = Tensor.uninitialized(gate.shape)
                Elementwise.map3(g.pointer, gate.pointer, up.pointer, d.pointer, count: gate.count, SwigluGateBackwardOp())
                ctx.accumulate(gate, d, owned: true)
            }
            if ctx.wants(up) {
                let d = Tensor.uninitialized(up.shape)
                Elementwise.map2(g.pointer, gate.pointer, d.pointer, count: up.count, SwigluUpBackwardOp())
                ctx.accumulate(up, d, owned: true)
            }

        case .softmax(let x, let y):
            guard ctx.wants(x) else { return }
            let n = x.shape[x.shape.count - 1]
            let dx = Tensor.uninitialized(x.shape)
            SoftmaxKernel.backward(dy: g.pointer, y: y.pointer, dx: dx.pointer, rows: x.count / n, n: n)
            ctx.accumulate(x, dx, owned: true)

        case .exp(let x, let y):
            guard ctx.wants(x) else { return }
            let dx = Tensor.uninitialized(x.shape)
            Elementwise.map2(g.pointer, y.pointer, dx.pointer, count: x.count, MulOp())
            ctx.accumulate(x, dx, owned: true)

        case .log(let x):
            guard ctx.wants(x) else { return }
            let dx = Tensor.uninitialized(x.shape)
            Elementwise.map2(g.pointer, x.pointer, dx.pointer, count: x.count, DivOp())
            ctx.accumulate(x, dx, owned: true)

        case .logSigmoid(let x):
            // d/dx log σ(x) = σ(−x)
            guard ctx.wants(x) else { return }
            let dx = Tensor.uninitialized(x.shape)
            Elementwise.map2(g.pointer, x.pointer, dx.pointer, count: x.count, LogSigmoidBackwardOp())
            ctx.accumulate(x, dx, owned: true)

        case .attention(let q, let k, let v, let cfg, let probs):
            let dq = ctx.wants(q) ? Tensor.uninitialized(q.shape) : nil
            let dk = ctx.wants(k) ? Tensor.uninitialized(k.shape) : nil
            let dv = ctx.wants(v) ? Tensor.uninitialized(v.shape) : nil
            AttentionKernel.backward(dO: g.pointer, q: q.pointer, k: k.pointer, v: v.pointer, probs: probs.pointer,
                                     dq: dq?.pointer, dk: dk?.pointer, dv: dv?.pointer, cfg: cfg)
            if let dq { ctx.accumulate(q, dq, owned: true) }
            if let dk { ctx.accumulate(k, dk, owned: true) }
            if let dv { ctx.accumulate(v, dv, owned: true) }

        case .logSoftmaxGather(let logits, let targets, let lse, let ignore):
            guard ctx.wants(logits) else { return }
            let v = logits.shape[logits.shape.count - 1]
            let dl = Tensor.uninitialized(logits.shape)
            targets.withUnsafeBufferPointer { tp in
                SoftmaxKernel.logSoftmaxGatherBackward(g: g.pointer, gStride: 1, logits: logits.pointer, targets: tp.baseAddress!,
                                                       ignore: ignore, lse: lse.pointer, dlogits: dl.pointer, rows: targets.count, v: v)
            }
            ctx.accumulate(logits, dl, owned: true)

        case .crossEntropy(let logits, let targets, let lse, let ignore, let valid):
            guard ctx.wants(logits) else { return }
            let v = logits.shape[logits.shape.count - 1]
            let dl = Tensor.uninitialized(logits.shape)
            var coef = -g.pointer[0] / Float(valid)
            targets.withUnsafeBufferPointer { tp in
                SoftmaxKernel.logSoftmaxGatherBackward(g: &coef, gStride: 0, logits: logits.pointer, targets: tp.baseAddress!,
                                                       ignore: ignore, lse: lse.pointer, dlogits: dl.pointer, rows: targets.count, v: v)
            }
            ctx.accumulate(logits, dl, owned: true)

        case .sum(let x):
            guard ctx.wants(x) else { return }
            ctx.accumulate(x, Tensor.full(x.shape, value: g.pointer[0]), owned: true)

        case .mean(let x):
            guard ctx.wants(x) else { return }
            ctx.accumulate(x, Tensor.full(x.shape, value: g.pointer[0] / Float(x.count)), owned: true)

        case .sumLastAxis(let x):
            guard ctx.wants(x) else { return }
            let n = x.shape[x.shape.count - 1]
            let dx = Tensor.uninitialized(x.shape)
            for r in 0..<(x.count / n) { (dx.pointer + r * n).initialize(repeating: g.pointer[r], count: n) }
            ctx.accumulate(x, dx, owned: true)
        }
    }

    /// Sums a gradient of `a`'s shape over the rows `b` was broadcast across.
    private static func reduceBroadcast(_ g: Tensor, to b: Tensor, like a: Tensor) -> Tensor {
        let bc = Broadcast(a, b, op: "backward")
        if bc.isFull { return g }
        let db = Tensor(zeros: b.shape)
        if bc.n == 1 {
            db.pointer[0] = Float(Elementwise.sum(g.pointer, count: g.count))
        } else {
            Elementwise.sumRows(g.pointer, rows: bc.rows, n: bc.n, into: db.pointer, accumulate: false)
        }
        return db
    }

    private static func matmulBackward(_ a: Tensor, _ b: Tensor, _ tA: Bool, _ tB: Bool, _ g: Tensor, _ ctx: BackwardContext) {
        let s = MatmulShape(a, b, transposeA: tA, transposeB: tB)
        let (m, k, n) = (s.m, s.k, s.n)
        let lda = tA ? m : k, ldb = tB ? k : n
        if ctx.wants(a) {
            let da = Tensor.uninitialized(a.shape)
            for i in 0..<s.batch {
                let gp = g.pointer + i * m * n, bp = b.pointer + (s.bShared ? 0 : i * k * n), dp = da.pointer + i * m * k
                if !tA {
                    // dA[m, k] = dC[m, n] · op(B)ᵀ
                    GEMM.sgemm(transA: false, transB: !tB, m: m, n: k, k: n, alpha: 1, a: gp, lda: n, b: bp, ldb: ldb,
                               beta: 0, c: dp, ldc: k)
                } else {
                    // dA[k, m] = op(B)[k, n] · dCᵀ
                    GEMM.sgemm(transA: tB, transB: true, m: k, n: m, k: n, alpha: 1, a: bp, lda: ldb, b: gp, ldb: n,
                               beta: 0, c: dp, ldc: m)
                }
            }
            ctx.accumulate(a, da, owned: true)
        }
        if ctx.wants(b) {
            let db = Tensor(zeros: b.shape)
            for i in 0..<s.batch {
                let gp = g.pointer + i * m * n, ap = a.pointer + i * m * k, dp = db.pointer + (s.bShared ? 0 : i * k * n)
                if !tB {
                    // dB[k, n] (+)= op(A)ᵀ[k, m] · dC[m, n]
                    GEMM.sgemm(transA: !tA, transB: false, m: k, n: n, k: m, alpha: 1, a: ap, lda: lda, b: gp, ldb: n,
                               beta: 1, c: dp, ldc: n)
                } else {
                    // dB[n, k] (+)= dCᵀ[n, m] · op(A)[m, k]
                    GEMM.sgemm(transA: true, transB: tA, m: n, n: k, k: m, alpha: 1, a: gp, lda: n, b: ap, ldb: lda,
                               beta: 1, c: dp, ldc: k)
                }
            }
            ctx.accumulate(b, db, owned: true)
        }
    }
}
