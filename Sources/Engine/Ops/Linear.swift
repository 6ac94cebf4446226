import Foundation

/// Shapes of a (batched) matmul: `a` is `[batch…, M, K]` (`[batch…, K, M]` when transposed),
/// `b` is `[batch…, K, N]` (`[batch…, N, K]` when transposed) or 2-D and shared by every batch.
struct MatmulShape {
    let batch: Int, m: Int, k: Int, n: Int
    let bShared: Bool
    let outShape: [Int]

    init(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) {
        let what = "matmul(\(a.shape)\(transposeA ? "ᵀ" : ""), \(b.shape)\(transposeB ? "ᵀ" : ""))"
        check(a.shape.count >= 2 && b.shape.count >= 2, "\(what): both operands need at least 2 dimensions")
        let ar = a.shape.count, br = b.shape.count
        m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2]
        let ka = transposeA ? a.shape[ar - 2] : a.shape[ar - 1]
        let kb = transposeB ? b.shape[br - 1] : b.shape[br - 2]
        n = transposeB ? b.shape[br - 2] : b.shape[br - 1]
        check(ka == kb, "\(what): inner dimensions differ (\(ka) vs \(kb))")
        k = ka
        let aBatch = Array(a.shape.dropLast(2))
        bShared = br == 2
        check(bShared || Array(b.shape.dropLast(2)) == aBatch,
                     "\(what): batch dimensions differ (\(aBatch) vs \(Array(b.shape.dropLast(2))))")
        batch = aBatch.reduce(1, *)
        outShape = aBatch + [m, n]
    }
}

/// Batched matrix product `op(a) · op(b)` (see `MatmulShape`); `op` transposes the last two axes.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    let s = MatmulShape(a, b, transposeA: transposeA, transposeB: transposeB)
    let out = Tensor.uninitialized(s.outShape)
    let lda = transposeA ? s.m : s.k, ldb = transposeB ? s.k : s.n
    if s.bShared && !transposeA {
        // One GEMM over every batch's rows.
        GEMM.sgemm(transA: false, transB: transposeB, m: s.batch * s.m, n: s.n, k: s.k, alpha: 1,
                   a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: 0, c: out.pointer, ldc: s.n)
    } else {
        for i in 0..<s.batch {
            GEMM.sgemm(transA: transposeA, transB: transposeB, m: s.m, n: s.n, k: s.k, alpha: 1,
                       a: a.pointer + i * s.m * s.k, lda: lda, b: b.pointer + (s.bShared ? 0 : i * s.k * s.n), ldb: ldb,
                       beta: 0, c: out.pointer + i * s.m * s.n, ldc: s.n)
        }
    }
    return out.recorded(Autograd.shouldRecord(a, b), .matmul(a, b, transposeA: transposeA, transposeB: transposeB))
}

/// A linear layer as in HF checkpoints: `y = x · Wᵀ + bias` with `x: [*, in]`, `W: [out, in]`,
/// `bias: [out]`; returns `[*, out]`.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    check(weight.shape.count == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let outF = weight.shape[0], inF = weight.shape[1]
    check(!x.shape.isEmpty && x.shape.last == inF,
                 "linear: input \(x.shape) does not end with in_features \(inF) of weight \(weight.shape)")
    if let bias { check(bias.shape == [outF], "linear: bias \(bias.shape) must be [\(outF)] for weight \(weight.shape)") }
    let rows = x.count / inF
    let out = Tensor.uninitialized(Array(x.shape.dropLast()) + [outF])
    if let bias {
        let y = out.pointer, bp = bias.pointer
        for r in 0..<rows { (y + r * outF).update(from: bp, count: outF) }
    }
    GEMM.sgemm(transA: false, transB: true, m: rows, n: outF, k: inF, alpha: 1,
               a: x.pointer, lda: inF, b: weight.pointer, ldb: inF, beta: bias == nil ? 0 : 1, c: out.pointer, ldc: outF)
    return out.recorded(Autograd.shouldRecord(x, weight, bias), .linear(x: x, weight: weight, bias: bias))
}

/// Embedding lookup: `table: [V, C]`, `ids` (row-major, `shape` e.g. `[B, T]`) → `[shape…, C]`.
public func embedding(_ table: Tensor, ids: [Int32], shape: [Int]) -> Tensor {
    check(table.shape.count == 2, "embedding: table must be [vocab, dim], got \(table.shape)")
    let n = Tensor.checkedCount(shape, op: "embedding")
    check(ids.count == n, "embedding: \(ids.count) ids for shape \(shape)")
    let v = table.shape[0], c = table.shape[1]
    if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= v }) {
        fatalError("embedding: id \(ids[bad]) at index \(bad) out of range 0..<\(v) for table \(table.shape)")
    }
    let out = Tensor.uninitialized(shape + [c])
    let src = table.pointer, dst = out.pointer
    ids.withUnsafeBufferPointer { idp in
        parallelChunks(n, grain: Swift.max(1, 16384 / c)) { _, range in
            for r in range { (dst + r * c).update(from: src + Int(idp[r]) * c, count: c) }
        }
    }
    return out.recorded(Autograd.shouldRecord(table), .embedding(table: table, ids: ids))
}

/// Embedding lookup with `Int` ids.
public func embedding(_ table: Tensor, ids: [Int], shape: [Int]) -> Tensor {
    embedding(table, ids: ids.map { Int32(clamping: $0) }, shape: shape)
}

/// RMSNorm over the last axis: `y = weight ⊙ x / sqrt(mean(x²) + eps)`; `weight: [C]`.
public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
    check(!x.shape.isEmpty && weight.shape == [x.shape[x.shape.count - 1]],
                 "rmsNorm: weight \(weight.shape) must be [C] for input \(x.shape) (C = last dimension)")
    let c = weight.count, rows = x.count / c
    let out = Tensor.uninitialized(x.shape)
    let rec = Autograd.shouldRecord(x, weight)
    let rstd = rec ? Tensor.uninitialized([rows]) : nil
    RMSNormKernel.forward(x: x.pointer, w: weight.pointer, y: out.pointer, rstd: rstd?.pointer, rows: rows, c: c, eps: eps)
    // Unrecorded, the op is only named (by a profiler), so any tensor stands in for rstd.
    return out.recorded(rec, .rmsNorm(x: x, weight: weight, rstd: rstd ?? out))
}
