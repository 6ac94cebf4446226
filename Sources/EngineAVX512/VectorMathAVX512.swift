// Compiled for AVX-512 (see Package.swift): call only after Engine's CPU check.
//
// 16-lane versions of Engine's exp-heavy row and elementwise loops (Engine's SoftmaxKernel and
// Elementwise, compiled for AVX2, work on 8 lanes). Each lane runs exactly the arithmetic of
// Engine's `simdExp` and `sigmoid`, and every sum adds the same 8-lane partials in the same
// order, so results are bit-identical to the AVX2 loops: only the instruction count halves.

#if arch(x86_64)
public enum VectorMathAVX512 {
    typealias V = SIMD16<Float>
    typealias V8 = SIMD8<Float>

    /// e^x on 16 lanes: Engine's `simdExp`, lane for lane (same clamp, reduction, polynomial and
    /// two-factor scaling).
    @inline(__always)
    static func exp(_ x: V) -> V {
        let lo = V(repeating: -104), hi = V(repeating: 89)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        let magic = V(repeating: 12582912.0)
        var kf = xc * V(repeating: 1.44269504088896341) + magic
        let k = unsafeBitCast(kf, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
        kf = kf - magic
        var r = xc.addingProduct(kf, V(repeating: -0.693359375))
        r = r.addingProduct(kf, V(repeating: 2.12194440e-4))
        var p = V(repeating: 1.3981999507e-3).addingProduct(V(repeating: 1.9875691500e-4), r)
        p = V(repeating: 8.3334519073e-3).addingProduct(p, r)
        p = V(repeating: 4.1665795894e-2).addingProduct(p, r)
        p = V(repeating: 1.6666665459e-1).addingProduct(p, r)
        p = V(repeating: 5.0000001201e-1).addingProduct(p, r)
        let y = (r + V(repeating: 1)).addingProduct(p, r * r)
        let k1 = k &>> SIMD16<Int32>(repeating: 1)
        let k2 = k &- k1
        let bias = SIMD16<Int32>(repeating: 127), shift = SIMD16<Int32>(repeating: 23)
        return y * unsafeBitCast((k1 &+ bias) &<< shift, to: V.self) * unsafeBitCast((k2 &+ bias) &<< shift, to: V.self)
    }

    /// e^x of one value, with the vector arithmetic (for loop tails).
    @inline(__always)
    static func exp(_ x: Float) -> Float { exp(V(repeating: x))[0] }

    /// σ(x) = 1 / (1 + e^−x), as Engine's `Elementwise.sigmoid`.
    @inline(__always)
    static func sigmoid(_ x: V) -> V { V(repeating: 1) / (V(repeating: 1) + exp(-x)) }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// The first `count` (< 16) elements in the low lanes, zeros above.
    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> V {
        var v = V(repeating: 0)
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    @inline(__always)
    static func storePartial(_ v: V, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for j in 0..<count { p[j] = v[j] }
    }

    /// Row maximum; NaN if any element is NaN (Engine's `SoftmaxKernel.rowMax`).
    public static func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = V(repeating: -.infinity)
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        var i = 0
        while i + 16 <= n {
            let v = load(x + i)
            nan = nan .| (v .!= v)
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        var s = -Float.infinity
        for l in 0..<16 where m[l] > s { s = m[l] }
        var hasNaN = any(nan)
        while i < n {
            if x[i].isNaN { hasNaN = true }
            if x[i] > s { s = x[i] }
            i += 1
        }
        return hasNaN ? .nan : s
    }

    /// Σ exp(x[i] − m), writing the exponentials to `out` when given (Engine's
    /// `SoftmaxKernel.sumExp`: the same 8-lane partial sums, added in the same order).
    ///
    /// The exponentials go to memory (`out`, or a block on the stack) and are summed from there:
    /// summed straight from registers in 8-lane halves, LLVM narrowed the whole exp to 256 bits.
    public static func sumExp(_ x: UnsafePointer<Float>, _ n: Int, minus m: Float, out: UnsafeMutablePointer<Float>?) -> Float {
        let block = 1024
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: out == nil ? block : 0) { scratch in
            let mv = V(repeating: m)
            var acc = V8(repeating: 0)
            var start = 0
            let whole = n / 8 * 8  // the 8-lane body; the rest is summed one by one
            while start < whole {
                let count = min(block, whole - start)
                let e = out.map { $0 + start } ?? scratch.baseAddress!
                var i = 0
                while i + 16 <= count {
                    store(exp(load(x + start + i) - mv), e + i)
                    i += 16
                }
                if i < count {  // 8 left
                    let v = exp(loadPartial(x + start + i, 8) - mv)
                    UnsafeMutableRawPointer(e + i).storeBytes(of: v.lowHalf, as: V8.self)
                }
                i = 0
                while i < count {
                    acc += UnsafeRawPointer(e + i).loadUnaligned(as: V8.self)
                    i += 8
                }
                start += count
            }
            var s = acc.sum()
            var i = whole
            while i < n {
                let e = exp(x[i] - m)
                out?[i] = e
                s += e
                i += 1
            }
            return s
        }
    }

    /// Softmax of `x[0..<n]` in place (n > 0) for a row with slack after it (Engine's
    /// `SoftmaxKernel.softmaxRowPadded8`, bit for bit): the last partial vector is read whole, its
    /// lanes past `n` masked, and written back whole, so `x[n ..< n+15]` may be read (any values)
    /// and overwritten with zeros.
    public static func softmaxRowPadded(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let full = n / 16 * 16, rest = n - full
        let tail = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .>= SIMD16<Int32>(repeating: Int32(rest))
        var m = V(repeating: -.infinity)
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        var i = 0
        while i < full {
            let v = load(x + i)
            nan = nan .| (v .!= v)
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        if rest > 0 {
            let v = load(x + full).replacing(with: -.infinity, where: tail)
            nan = nan .| (v .!= v)
            m = m.replacing(with: v, where: v .> m)
        }
        var s = -Float.infinity
        for l in 0..<16 where m[l] > s { s = m[l] }
        let mv = V(repeating: any(nan) ? .nan : s)
        i = 0
        while i < full {
            store(exp(load(x + i) - mv), x + i)
            i += 16
        }
        if rest > 0 { store(exp(load(x + full) - mv).replacing(with: 0, where: tail), x + full) }
        // Summed from memory in 8-lane order (see `sumExp`), up to n rounded up to 8.
        var acc = V8(repeating: 0)
        i = 0
        while i < n {
            acc += UnsafeRawPointer(x + i).loadUnaligned(as: V8.self)
            i += 8
        }
        let inv = V(repeating: 1 / acc.sum())
        i = 0
        while i < n {
            store(load(x + i) * inv, x + i)
            i += 16
        }
    }

    /// One row of the log-softmax-gather backward without its target term:
    /// `d[i] = exp(x[i] − lse) · (−g)`.
    public static func expScaledRow(_ x: UnsafePointer<Float>, minus lse: Float, times ng: Float,
                                    into d: UnsafeMutablePointer<Float>, count v: Int) {
        let lv = V(repeating: lse), gv = V(repeating: ng)
        var i = 0
        while i + 16 <= v {
            store(exp(load(x + i) - lv) * gv, d + i)
            i += 16
        }
        while i < v { d[i] = exp(x[i] - lse) * ng; i += 1 }
    }

    /// `y = silu(gate) · up` over `count` elements.
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count n: Int) {
        @inline(__always) func f(_ g: V, _ u: V) -> V { g * sigmoid(g) * u }
        var i = 0
        while i + 16 <= n {
            store(f(load(gate + i), load(up + i)), out + i)
            i += 16
        }
        if i < n { storePartial(f(loadPartial(gate + i, n - i), loadPartial(up + i, n - i)), out + i, n - i) }
    }

    /// Both SwiGLU input gradients (Engine's `Elementwise.swigluBackward`):
    /// `dGate = dy·up·silu'(gate)`, `dUp = dy·silu(gate)`.
    public static func swigluBackward(_ dy: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                      dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count n: Int) {
        @inline(__always) func f(_ d: V, _ g: V, _ u: V) -> (V, V) {
            let sg = sigmoid(g)
            return (d * u * (sg * (V(repeating: 1) + g * (V(repeating: 1) - sg))), d * (g * sg))
        }
        var i = 0
        while i + 16 <= n {
            let (a, b) = f(load(dy + i), load(gate + i), load(up + i))
            store(a, dGate + i)
            store(b, dUp + i)
            i += 16
        }
        if i < n {
            let r = n - i
            let (a, b) = f(loadPartial(dy + i, r), loadPartial(gate + i, r), loadPartial(up + i, r))
            storePartial(a, dGate + i, r)
            storePartial(b, dUp + i, r)
        }
    }
}
#endif
