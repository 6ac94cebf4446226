/// exp on 8 floats at once (Cephes-style range reduction and polynomial, ≤ 2 ulp relative error
/// on [−87, 88]); the token kernels call it instead of scalar `expf` for every vocabulary entry.
/// Inputs below −87.3 give ≈ 1e-38 (not 0), above 88.7 give ≈ 3e38 (not ∞): softmax
/// arguments here are always ≤ 0 after subtracting the row maximum, so only the first matters
/// and it is far below Float precision of any probability sum.
@inline(__always)
func simdExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    let xc = pointwiseMin(pointwiseMax(x, V(repeating: -87.3)), V(repeating: 88.7))
    let n = (xc * V(repeating: 1.442_695_04)).rounded(.toNearestOrEven)
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
    var y = p * (r * r) + r + V(repeating: 1)
    let e = SIMD8<Int32>(n, rounding: .toNearestOrEven) &+ 127
    y = y * unsafeBitCast(e &<< 23, to: V.self)
    return y
}

@inline(__always)
func loadV(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

@inline(__always)
func storeV(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }
