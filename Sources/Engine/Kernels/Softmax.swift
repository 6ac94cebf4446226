import Foundation
#if arch(x86_64)
import EngineAVX512
#endif

/// Whether the exp-heavy row and elementwise loops run on 16 lanes (EngineAVX512's
/// `VectorMathAVX512`) instead of Engine's 8-lane loops. Both give bit-identical results (the same
/// per-lane arithmetic, the same order of partial sums); the wide ones issue half the instructions.
/// `PALIMPSEST_VECTOR_KERNELS=avx2` keeps the 8-lane loops, for timing one against the other.
enum WideMath {
    static let enabled: Bool = {
        #if arch(x86_64)
        return CPUFeatures.hasAVX512 && ProcessInfo.processInfo.environment["PALIMPSEST_VECTOR_KERNELS"] != "avx2"
        #else
        return false
        #endif
    }()
}

/// Row softmax, fused log-softmax + gather, and their backward passes. Rows run in parallel.
enum SoftmaxKernel {
    /// Row maximum; NaN if any element is NaN (so NaN propagates through softmax as IEEE says).
    @inline(__always)
    static func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        #if arch(x86_64)
        if WideMath.enabled { return VectorMathAVX512.rowMax(x, n) }
        #endif
        return rowMax8(x, n)
    }

    /// Σ exp(x[i] − m), and optionally writes the exponentials to `out`.
    @inline(__always)
    static func sumExp(_ x: UnsafePointer<Float>, _ n: Int, minus m: Float, out: UnsafeMutablePointer<Float>?) -> Float {
        #if arch(x86_64)
        if WideMath.enabled { return VectorMathAVX512.sumExp(x, n, minus: m, out: out) }
        #endif
        return sumExp8(x, n, minus: m, out: out)
    }

    /// `rowMax` on 8 lanes.
    @inline(__always)
    static func rowMax8(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = F8(repeating: -.infinity)
        var nan = SIMDMask<SIMD8<Int32>>(repeating: false)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: F8.self)
            nan = nan .| (v .!= v)
            m = m.replacing(with: v, where: v .> m)
            i += 8
        }
        var s = -Float.infinity
        for l in 0..<8 where m[l] > s { s = m[l] }
        var hasNaN = any(nan)
        while i < n {
            if x[i].isNaN { hasNaN = true }
            if x[i] > s { s = x[i] }
            i += 1
        }
        return hasNaN ? .nan : s
    }

    /// `sumExp` on 8 lanes.
    @inline(__always)
    static func sumExp8(_ x: UnsafePointer<Float>, _ n: Int, minus m: Float, out: UnsafeMutablePointer<Float>?) -> Float {
        let mv = F8(repeating: m)
        var acc = F8(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let e = simdExp(UnsafeRawPointer(x + i).loadUnaligned(as: F8.self) - mv)
            if let out { UnsafeMutableRawPointer(out + i).storeBytes(of: e, as: F8.self) }
            acc += e
            i += 8
        }
        var s = acc.sum()
        while i < n {
            let e = fastExp(x[i] - m)
            out?[i] = e
            s += e
            i += 1
        }
        return s
    }

    /// Softmax of `x[0..<n]` in place (n > 0), for a row followed by at least 15 floats of slack
    /// (attention's score rows): `x[n ..< n+15]` may be read, whatever it holds, and overwritten
    /// with zeros. The last partial vector is read whole and its lanes past `n` masked, so no
    /// element is computed one at a time. The partial sums are those of `sumExp` with the tail
    /// added as a vector, so a row's result does not depend on where the row starts.
    @inline(__always)
    static func softmaxRowPadded(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        #if arch(x86_64)
        if WideMath.enabled { return VectorMathAVX512.softmaxRowPadded(x, n) }
        #endif
        softmaxRowPadded8(x, n)
    }

    /// `softmaxRowPadded` on 8 lanes.
    @inline(__always)
    static func softmaxRowPadded8(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let full = n / 8 * 8, rest = n - full
        let tail = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(rest))
        @inline(__always) func load(_ i: Int) -> F8 { UnsafeRawPointer(x + i).loadUnaligned(as: F8.self) }
        @inline(__always) func store(_ v: F8, _ i: Int) { UnsafeMutableRawPointer(x + i).storeBytes(of: v, as: F8.self) }
        var m = F8(repeating: -.infinity)
        var nan = SIMDMask<SIMD8<Int32>>(repeating: false)
        var i = 0
        while i < full {
            let v = load(i)
            nan = nan .| (v .!= v)
            m = m.replacing(with: v, where: v .> m)
            i += 8
        }
        if rest > 0 {
            let v = load(full).replacing(with: -.infinity, where: tail)
            nan = nan .| (v .!= v)
            m = m.replacing(with: v, where: v .> m)
        }
        var s = -Float.infinity
        for l in 0..<8 where m[l] > s { s = m[l] }
        let mv = F8(repeating: any(nan) ? .nan : s)
        var acc = F8(repeating: 0)
        i = 0
        while i < full {
            let e = simdExp(load(i) - mv)
            store(e, i)
            acc += e
            i += 8
        }
        if rest > 0 {
            let e = simdExp(load(full) - mv).replacing(with: 0, where: tail)
            store(e, full)
            acc += e
        }
        let inv = F8(repeating: 1 / acc.sum())
        i = 0
        while i < n {
            store(load(i) * inv, i)
            i += 8
        }
    }

    /// x, y: [rows, n]. y = softmax(x) along the last axis.
    static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        parallelChunks(rows, grain: max(1, 4096 / n)) { _, range in
            for r in range {
                let xr = x + r * n, yr = y + r * n
                let m = rowMax(xr, n)
                let s = sumExp(xr, n, minus: m, out: yr)
                let inv = F8(repeating: 1 / s)
                var i = 0
                while i + 8 <= n {
                    let v = UnsafeRawPointer(yr + i).loadUnaligned(as: F8.self)
                    UnsafeMutableRawPointer(yr + i).storeBytes(of: v * inv, as: F8.self)
                    i += 8
                }
                while i < n { yr[i] *= inv[0]; i += 1 }
            }
        }
    }

    /// One row of the softmax backward: dx = y ⊙ (dy − Σ dy⊙y). `dx` may be `dy` (in place): each
    /// element is read before it is written. Shared with attention's backward so both round alike.
    @inline(__always)
    static func rowBackward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, n: Int) {
        var acc = F8(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc.addProduct(UnsafeRawPointer(dy + i).loadUnaligned(as: F8.self), UnsafeRawPointer(y + i).loadUnaligned(as: F8.self))
            i += 8
        }
        var d = acc.sum()
        while i < n { d += dy[i] * y[i]; i += 1 }
        let dv = F8(repeating: d)
        i = 0
        while i + 8 <= n {
            let g = UnsafeRawPointer(dy + i).loadUnaligned(as: F8.self)
            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: F8.self)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: yv * (g - dv), as: F8.self)
            i += 8
        }
        while i < n { dx[i] = y[i] * (dy[i] - d); i += 1 }
    }

    /// dy, y, dx: [rows, n]. dx = y ⊙ (dy − Σ dy⊙y).
    static func backward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        parallelChunks(rows, grain: max(1, 4096 / n)) { _, range in
            for r in range {
                rowBackward(y: y + r * n, dy: dy + r * n, dx: dx + r * n, n: n)
            }
        }
    }

    /// logits: [rows, v]; targets: [rows]; out, lse: [rows].
    /// out[r] = logits[r, t] − logsumexp(logits[r, :]) for t = targets[r]; 0 where t == ignore.
    static func logSoftmaxGather(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, ignore: Int32,
                                 out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, rows: Int, v: Int) {
        parallelChunks(rows, grain: max(1, 8192 / v)) { _, range in
            for r in range {
                let t = targets[r]
                if t == ignore { out[r] = 0; lse[r] = 0; continue }
                let xr = logits + r * v
                let m = rowMax(xr, v)
                let l = m.isFinite ? m + Foundation.log(sumExp(xr, v, minus: m, out: nil)) : m
                lse[r] = l
                out[r] = xr[Int(t)] - l
            }
        }
    }

    /// dlogits[r, :] = g[r]·(onehot(t) − softmax(logits[r, :])) (written, not accumulated);
    /// zero rows where the target is ignored.
    static func logSoftmaxGatherBackward(g: UnsafePointer<Float>, gStride: Int, logits: UnsafePointer<Float>,
                                         targets: UnsafePointer<Int32>, ignore: Int32, lse: UnsafePointer<Float>,
                                         dlogits: UnsafeMutablePointer<Float>, rows: Int, v: Int) {
        parallelChunks(rows, grain: max(1, 8192 / v)) { _, range in
            for r in range {
                let t = targets[r]
                let dr = dlogits + r * v
                if t == ignore { dr.update(repeating: 0, count: v); continue }
                let xr = logits + r * v
                let gr = g[r * gStride]
                expScaledRow(xr, minus: lse[r], times: -gr, into: dr, count: v)
                dr[Int(t)] += gr
            }
        }
    }

    /// `d[i] = exp(x[i] − lse) · ng`: a row of the log-softmax-gather backward before its target term.
    @inline(__always)
    static func expScaledRow(_ x: UnsafePointer<Float>, minus lse: Float, times ng: Float,
                             into d: UnsafeMutablePointer<Float>, count v: Int) {
        #if arch(x86_64)
        if WideMath.enabled { return VectorMathAVX512.expScaledRow(x, minus: lse, times: ng, into: d, count: v) }
        #endif
        expScaledRow8(x, minus: lse, times: ng, into: d, count: v)
    }

    /// `expScaledRow` on 8 lanes.
    @inline(__always)
    static func expScaledRow8(_ x: UnsafePointer<Float>, minus lse: Float, times ng: Float,
                              into d: UnsafeMutablePointer<Float>, count v: Int) {
        let lv = F8(repeating: lse), gv = F8(repeating: ng)
        var i = 0
        while i + 8 <= v {
            let e = simdExp(UnsafeRawPointer(x + i).loadUnaligned(as: F8.self) - lv)
            UnsafeMutableRawPointer(d + i).storeBytes(of: e * gv, as: F8.self)
            i += 8
        }
        while i < v { d[i] = fastExp(x[i] - lse) * ng; i += 1 }
    }
}
