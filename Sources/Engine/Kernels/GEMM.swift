/// Single-precision general matrix multiply on row-major matrices.
///
/// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`, where `op(X)` is `X` or its
/// transpose. `lda`, `ldb`, `ldc` are row strides (elements) of the matrices as stored:
/// `A` is stored `[m, k]` (or `[k, m]` when `transA`), `B` is stored `[k, n]` (or `[n, k]` when `transB`).
public enum GEMM {
    public static func sgemm(
        transA: Bool, transB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        threads: Int = Parallel.threads
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m=\(m) n=\(n) k=\(k)")
        // Reference implementation; replaced by the packed, blocked kernel.
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += av * bv
                }
                let prior = beta == 0 ? 0 : beta * c[i * ldc + j]
                c[i * ldc + j] = alpha * acc + prior
            }
        }
    }
}
