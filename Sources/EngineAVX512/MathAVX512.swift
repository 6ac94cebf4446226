// 16-lane versions of Engine's exp-heavy loops. Each lane runs exactly the operations of Engine's
// 8-lane `simdExp` (same constants, same order, explicit fused multiply-adds only where Engine
// has them), and sums are accumulated 8 lanes at a time in Engine's order, so every result is
// bit-identical to the AVX2 path; only the throughput doubles. Called only after Engine has
// checked for AVX-512.

#if arch(x86_64)
public enum MathAVX512 {
    typealias F16 = SIMD16<Float>
    typealias I16 = SIMD16<Int32>

    /// Engine's `simdExp`, 16 lanes.
    @inline(__always)
    static func exp(_ x: F16) -> F16 {
        let lo = F16(repeating: -104), hi = F16(repeating: 89)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        let magic = F16(repeating: 12582912.0)
        var kf = xc * F16(repeating: 1.44269504088896341) + magic
        let k = unsafeBitCast(kf, to: I16.self) &- unsafeBitCast(magic, to: I16.self)
        kf = kf - magic
        var r = xc.addingProduct(kf, F16(repeating: -0.693359375))
        r = r.addingProduct(kf, F16(repeating: 2.12194440e-4))
        var p = F16(repeating: 1.3981999507e-3).addingProduct(F16(repeating: 1.9875691500e-4), r)
        p = F16(repeating: 8.3334519073e-3).addingProduct(p, r)
        p = F16(repeating: 4.1665795894e-2).addingProduct(p, r)
        p = F16(repeating: 1.6666665459e-1).addingProduct(p, r)
        p = F16(repeating: 5.0000001201e-1).addingProduct(p, r)
        let y = (r + F16(repeating: 1)).addingProduct(p, r * r)
        let k1 = k &>> I16(repeating: 1)
        let k2 = k &- k1
        let bias = I16(repeating: 127), shift = I16(repeating: 23)
        return y * unsafeBitCast((k1 &+ bias) &<< shift, to: F16.self) * unsafeBitCast((k2 &+ bias) &<< shift, to: F16.self)
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ count: Int) -> F16 {
        if count == 16 { return UnsafeRawPointer(p).loadUnaligned(as: F16.self) }
        var v = F16(repeating: 0)
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    @inline(__always)
    static func store(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        if count == 16 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self); return }
        for j in 0..<count { p[j] = v[j] }
    }

    /// Σ exp(x[i] − m) over `n` values, optionally writing the exponentials to `out`, as Engine's
    /// `SoftmaxKernel.sumExp`: whole groups of 8 into 8 lane sums in order, then the lanes' sum,
    /// then the last `n % 8` values one by one.
    public static func sumExp(_ x: UnsafePointer<Float>, _ n: Int, minus m: Float, out: UnsafeMutablePointer<Float>?) -> Float {
        let mv = F16(repeating: m)
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            let e = exp(UnsafeRawPointer(x + i).loadUnaligned(as: F16.self) - mv)
            if let out { UnsafeMutableRawPointer(out + i).storeBytes(of: e, as: F16.self) }
            acc += e.lowHalf
            acc += e.highHalf
            i += 16
        }
        if i + 8 <= n {
            let e = exp(load(x + i, 8) - mv)
            if let out { store(e, out + i, 8) }
            acc += e.lowHalf
            i += 8
        }
        var s = acc.sum()
        while i < n {
            let e = exp(F16(repeating: x[i] - m))[0]
            out?[i] = e
            s += e
            i += 1
        }
        return s
    }

    /// σ(x) as Engine computes it: 1 / (1 + e^−x).
    @inline(__always)
    static func sigmoid(_ x: F16) -> F16 { F16(repeating: 1) / (F16(repeating: 1) + exp(-x)) }

    /// `z = silu(g) · u` over `count` values (Engine's `SwigluOp`).
    public static func swiglu(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let w = Swift.min(16, count - i)
            let gv = load(g + i, w)
            store(gv * sigmoid(gv) * load(u + i, w), z + i, w)
            i += w
        }
    }

    /// Both SwiGLU input gradients (Engine's `Elementwise.swigluBackward`).
    public static func swigluBackward(_ dy: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>,
                                      _ dGate: UnsafeMutablePointer<Float>, _ dUp: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let w = Swift.min(16, count - i)
            let d = load(dy + i, w), gv = load(g + i, w), uv = load(u + i, w)
            let sg = sigmoid(gv)
            store(d * uv * (sg * (F16(repeating: 1) + gv * (F16(repeating: 1) - sg))), dGate + i, w)
            store(d * (gv * sg), dUp + i, w)
            i += w
        }
    }
}
#endif
