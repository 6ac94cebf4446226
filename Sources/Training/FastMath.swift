/// exp on 8 floats at once (Cephes-style range reduction and polynomial, ≤ 2 ulp relative error
/// on [−87, 88]); the token kernels call it instead of scalar `expf` for every vocabulary entry.
/// Inputs below −87.3 give ≈ 1e-38 (not 0), above 88.7 give ≈ 3e38 (not ∞): softmax
/// arguments here are always ≤ 0 after subtracting the row maximum, so only the first matters
/// and it is far below Float precision of any probability sum.
@inline(__always)
func simdExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    let lo = V(repeating: -87.3), hi = V(repeating: 88.7)
    var xc = x.replacing(with: lo, where: x .< lo)
    xc = xc.replacing(with: hi, where: xc .> hi)
    // Adding 1.5·2^23 rounds x·log2(e) to the nearest integer n, which then sits in the low
    // mantissa bits (SIMD `rounded` and Int conversions are scalar loops in Swift 6.3).
    let magic = V(repeating: 12_582_912)
    let f = xc * V(repeating: 1.442_695_04) + magic
    let n = f - magic
    // r = x − n·ln2 in two parts for accuracy.
    var r = xc
    r.addProduct(n, V(repeating: -0.693_359_375))
    r.addProduct(n, V(repeating: 2.121_944_4e-4))
    var p = V(repeating: 1.987_569_15e-4)
    p = p * r + V(repeating: 1.398_199_95e-3)
    p = p * r + V(repeating: 8.333_451_9e-3)
    p = p * r + V(repeating: 4.166_579_59e-2)
    p = p * r + V(repeating: 1.666_666_55e-1)
    p = p * r + V(repeating: 5.000_000_1e-1)
    let y = p * (r * r) + r + V(repeating: 1)
    let bits = unsafeBitCast(f, to: SIMD8<UInt32>.self) &- unsafeBitCast(magic, to: SIMD8<UInt32>.self) &+ 127
    return y * unsafeBitCast(bits &<< 23, to: V.self)
}

// Swift 6.3 lowers `pointwiseMax`, `SIMD.max()` and `SIMD.squareRoot()` to per-lane scalar code
// (the last to libm `sqrtf` calls); these forms compile to vmaxps / vsqrtps.

/// Lane-wise max (NaN in `b` is dropped; callers that care track NaN separately).
@inline(__always)
func fastMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

/// Largest lane.
@inline(__always)
func horizontalMax(_ a: SIMD8<Float>) -> Float {
    let h = a.lowHalf.replacing(with: a.highHalf, where: a.lowHalf .< a.highHalf)
    let q = h.lowHalf.replacing(with: h.highHalf, where: h.lowHalf .< h.highHalf)
    return max(q[0], q[1])
}

/// Exact IEEE square root of lanes known to be ≥ 0 (`magnitude` lets LLVM drop the errno path).
@inline(__always)
func sqrtNonNegative(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var r = SIMD8<Float>()
    for k in 0..<8 { r[k] = x[k].magnitude.squareRoot() }
    return r
}

@inline(__always)
func loadV(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

@inline(__always)
func storeV(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }
