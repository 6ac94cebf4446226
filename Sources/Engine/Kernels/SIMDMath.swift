import Foundation

typealias F8 = SIMD8<Float>

/// Splits `0..<total` into at most `Parallel.threads` contiguous chunks of at least `grain`
/// items and runs `body` on each. The split depends only on `total`, `grain` and the thread
/// count, so per-chunk partial results are deterministic for a given thread count.
@inline(__always)
func parallelChunks(_ total: Int, grain: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
    parallelChunks(total, chunks: chunkCount(total, grain: grain), body)
}

/// Runs `body` over exactly `chunks` contiguous parts of `0..<total` on up to `Parallel.threads`
/// threads (callers that keep per-chunk partials compute `chunks` once with `reductionChunkCount`).
@inline(__always)
func parallelChunks(_ total: Int, chunks: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
    if chunks <= 1 {
        if total > 0 { body(0, 0..<total) }
        return
    }
    Parallel.forEach(chunks, threads: min(chunks, Parallel.threads)) { c in body(c, Parallel.range(c, of: chunks, total: total)) }
}

/// Number of chunks `parallelChunks` uses.
@inline(__always)
func chunkCount(_ total: Int, grain: Int) -> Int {
    max(1, min(Parallel.threads, total / max(1, grain)))
}

/// Number of chunks of a reduction over `total` items: at most `Parallel.reductionChunks`, never
/// the thread count, so partial sums combined in chunk order are bit-identical with any threads.
@inline(__always)
func reductionChunkCount(_ total: Int, grain: Int) -> Int {
    max(1, min(Parallel.reductionChunks, total / max(1, grain)))
}

/// Vectorised e^x for 8 lanes, within ~2 ulp of the true value, IEEE at the edges: NaN stays
/// NaN, overflow (and +Inf) gives +Inf, underflow is gradual down to 0 (and exp(−Inf) = 0).
///
/// Only the input is clamped (to [−104, 89], outside which the result is 0 or +Inf anyway);
/// the scaling by 2^k is split into two factors so the multiply itself overflows/underflows
/// correctly, and a NaN input passes through the arithmetic. (`pointwiseMin`/`clamped` are
/// not inlined by the stdlib; `replacing(with:where:)` compiles to compare + blend.)
@inline(__always)
func simdExp(_ x: F8) -> F8 {
    let lo = F8(repeating: -104), hi = F8(repeating: 89)
    let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
    // k = round(x / ln2) with the 1.5·2^23 trick; r = x − k·ln2 with ln2 in two parts.
    let magic = F8(repeating: 12582912.0)
    var kf = xc * F8(repeating: 1.44269504088896341) + magic
    let k = unsafeBitCast(kf, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    kf = kf - magic
    var r = xc.addingProduct(kf, F8(repeating: -0.693359375))
    r = r.addingProduct(kf, F8(repeating: 2.12194440e-4))
    // e^r on [−ln2/2, ln2/2]: degree-5 minimax polynomial for (e^r − 1 − r) / r².
    var p = F8(repeating: 1.3981999507e-3).addingProduct(F8(repeating: 1.9875691500e-4), r)
    p = F8(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = F8(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = F8(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = F8(repeating: 5.0000001201e-1).addingProduct(p, r)
    let y = (r + F8(repeating: 1)).addingProduct(p, r * r)
    // 2^k as 2^(k>>1) · 2^(k−(k>>1)): both factors are normal floats for k in [−150, 129].
    let k1 = k &>> SIMD8<Int32>(repeating: 1)
    let k2 = k &- k1
    let bias = SIMD8<Int32>(repeating: 127), shift = SIMD8<Int32>(repeating: 23)
    return y * unsafeBitCast((k1 &+ bias) &<< shift, to: F8.self) * unsafeBitCast((k2 &+ bias) &<< shift, to: F8.self)
}

/// Scalar e^x with the same numerics as `simdExp` (so tails of SIMD loops match bodies).
@inline(__always)
func fastExp(_ x: Float) -> Float { simdExp(F8(repeating: x))[0] }

/// Sum of the 8 lanes in a fixed order.
@inline(__always)
func hsum(_ v: F8) -> Float { v.sum() }
