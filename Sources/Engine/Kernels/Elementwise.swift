import Foundation
#if arch(x86_64)
import EngineAVX512
#endif

/// Elementwise kernels over contiguous buffers. Large buffers are split across threads;
/// each output element depends only on its inputs, so results never depend on the split.
enum Elementwise {
    static let grain = 1 << 15

    /// Runs `body(start, n)` over chunks of `0..<count` (in parallel when large).
    @inline(__always)
    static func chunked(_ count: Int, _ body: (_ start: Int, _ n: Int) -> Void) {
        parallelChunks(count, grain: grain) { _, r in body(r.lowerBound, r.count) }
    }

    /// Applies a SIMD function lane-wise: `y[i] = f(x[i])`. The tail uses the same function.
    @inline(__always)
    static func map<F: Lanewise1>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, _ f: F) {
        chunked(count) { s, n in
            var i = 0
            while i + 8 <= n {
                let v = UnsafeRawPointer(x + s + i).loadUnaligned(as: F8.self)
                UnsafeMutableRawPointer(y + s + i).storeBytes(of: f.apply(v), as: F8.self)
                i += 8
            }
            if i < n {
                var v = F8(repeating: 0)
                for j in 0..<(n - i) { v[j] = x[s + i + j] }
                let r = f.apply(v)
                for j in 0..<(n - i) { y[s + i + j] = r[j] }
            }
        }
    }

    /// `z[i] = f(x[i], y[i])`.
    @inline(__always)
    static func map2<F: Lanewise2>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>,
                                   count: Int, _ f: F) {
        chunked(count) { s, n in
            var i = 0
            while i + 8 <= n {
                let a = UnsafeRawPointer(x + s + i).loadUnaligned(as: F8.self)
                let b = UnsafeRawPointer(y + s + i).loadUnaligned(as: F8.self)
                UnsafeMutableRawPointer(z + s + i).storeBytes(of: f.apply(a, b), as: F8.self)
                i += 8
            }
            if i < n {
                var a = F8(repeating: 0), b = F8(repeating: 0)
                for j in 0..<(n - i) { a[j] = x[s + i + j]; b[j] = y[s + i + j] }
                let r = f.apply(a, b)
                for j in 0..<(n - i) { z[s + i + j] = r[j] }
            }
        }
    }

    /// `w[i] = f(x[i], y[i], z[i])`.
    @inline(__always)
    static func map3<F: Lanewise3>(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafePointer<Float>,
                                   _ w: UnsafeMutablePointer<Float>, count: Int, _ f: F) {
        chunked(count) { s, n in
            var i = 0
            while i + 8 <= n {
                let a = UnsafeRawPointer(x + s + i).loadUnaligned(as: F8.self)
                let b = UnsafeRawPointer(y + s + i).loadUnaligned(as: F8.self)
                let c = UnsafeRawPointer(z + s + i).loadUnaligned(as: F8.self)
                UnsafeMutableRawPointer(w + s + i).storeBytes(of: f.apply(a, b, c), as: F8.self)
                i += 8
            }
            if i < n {
                var a = F8(repeating: 0), b = F8(repeating: 0), c = F8(repeating: 0)
                for j in 0..<(n - i) { a[j] = x[s + i + j]; b[j] = y[s + i + j]; c[j] = z[s + i + j] }
                let r = f.apply(a, b, c)
                for j in 0..<(n - i) { w[s + i + j] = r[j] }
            }
        }
    }

    /// Both SwiGLU input gradients in one pass, one sigmoid per element:
    /// `dGate = dy·up·silu'(gate)`, `dUp = dy·silu(gate)`, as `SwigluGateBackwardOp` and
    /// `SwigluUpBackwardOp` compute them one at a time.
    static func swigluBackward(_ dy: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        #if arch(x86_64)
        if WideMath.enabled {
            chunked(count) { s, n in
                VectorMathAVX512.swigluBackward(dy + s, gate: gate + s, up: up + s, dGate: dGate + s, dUp: dUp + s, count: n)
            }
            return
        }
        #endif
        swigluBackward8(dy, gate: gate, up: up, dGate: dGate, dUp: dUp, count: count)
    }

    /// `swigluBackward` on 8 lanes.
    static func swigluBackward8(_ dy: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        @inline(__always) func lanes(_ d: F8, _ g: F8, _ u: F8) -> (F8, F8) {
            let sg = sigmoid(g)
            return (d * u * (sg * (F8(repeating: 1) + g * (F8(repeating: 1) - sg))), d * (g * sg))
        }
        chunked(count) { s, n in
            var i = 0
            while i + 8 <= n {
                let d = UnsafeRawPointer(dy + s + i).loadUnaligned(as: F8.self)
                let g = UnsafeRawPointer(gate + s + i).loadUnaligned(as: F8.self)
                let u = UnsafeRawPointer(up + s + i).loadUnaligned(as: F8.self)
                let (a, b) = lanes(d, g, u)
                UnsafeMutableRawPointer(dGate + s + i).storeBytes(of: a, as: F8.self)
                UnsafeMutableRawPointer(dUp + s + i).storeBytes(of: b, as: F8.self)
                i += 8
            }
            if i < n {
                var d = F8(repeating: 0), g = F8(repeating: 0), u = F8(repeating: 0)
                for j in 0..<(n - i) { d[j] = dy[s + i + j]; g[j] = gate[s + i + j]; u[j] = up[s + i + j] }
                let (a, b) = lanes(d, g, u)
                for j in 0..<(n - i) { dGate[s + i + j] = a[j]; dUp[s + i + j] = b[j] }
            }
        }
    }

    /// `out = silu(gate) · up` (`SwigluOp`).
    static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        #if arch(x86_64)
        if WideMath.enabled {
            chunked(count) { s, n in VectorMathAVX512.swiglu(gate: gate + s, up: up + s, out: out + s, count: n) }
            return
        }
        #endif
        map2(gate, up, out, count: count, SwigluOp())
    }

    // x, y, out: [count]
    static func add(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        map2(x, y, out, count: count, AddOp())
    }

    // dst += src, both [count]
    static func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        map2(dst, src, dst, count: count, AddOp())
    }

    // dst += alpha * src
    static func axpy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, alpha: Float, count: Int) {
        map2(dst, src, dst, count: count, AxpyOp(alpha: F8(repeating: alpha)))
    }

    // out = x * s
    static func scale(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ s: Float, count: Int) {
        map(x, out, count: count, ScaleOp(s: F8(repeating: s)))
    }

    /// Row broadcasting: `out[r, j] = f(a[r, j], b[j])` for `a, out: [rows, n]`, `b: [n]`.
    @inline(__always)
    static func broadcastRows<F: Lanewise2>(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                            rows: Int, n: Int, _ f: F) {
        parallelChunks(rows, grain: max(1, grain / n)) { _, range in
            for r in range {
                let ar = a + r * n, orow = out + r * n
                var i = 0
                while i + 8 <= n {
                    let x = UnsafeRawPointer(ar + i).loadUnaligned(as: F8.self)
                    let y = UnsafeRawPointer(b + i).loadUnaligned(as: F8.self)
                    UnsafeMutableRawPointer(orow + i).storeBytes(of: f.apply(x, y), as: F8.self)
                    i += 8
                }
                while i < n {
                    orow[i] = f.apply(F8(repeating: ar[i]), F8(repeating: b[i]))[0]
                    i += 1
                }
            }
        }
    }

    /// Column sums of `[rows, n]` into `out[n]` (`out = beta·out + Σ_r g[r, :]`), deterministic
    /// whatever the thread count (fixed chunks, partials combined in chunk order).
    static func sumRows(_ g: UnsafePointer<Float>, rows: Int, n: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        sumRowsOfProduct(g, nil, rows: rows, n: n, into: out, accumulate: accumulate)
    }

    /// `out[j] (+)= Σ_r g[r, j] · x[r, j]` (x nil means 1), deterministic whatever the thread count.
    static func sumRowsOfProduct(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>?, rows: Int, n: Int,
                                 into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let chunks = reductionChunkCount(rows, grain: max(1, grain / n))
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * n)
        defer { partial.deallocate() }
        partial.initialize(repeating: 0, count: chunks * n)
        parallelChunks(rows, chunks: chunks) { c, range in
            let acc = partial + c * n
            for r in range {
                let gr = g + r * n
                if let x {
                    let xr = x + r * n
                    var i = 0
                    while i + 8 <= n {
                        let a = UnsafeRawPointer(acc + i).loadUnaligned(as: F8.self)
                        let u = UnsafeRawPointer(gr + i).loadUnaligned(as: F8.self)
                        let v = UnsafeRawPointer(xr + i).loadUnaligned(as: F8.self)
                        UnsafeMutableRawPointer(acc + i).storeBytes(of: a.addingProduct(u, v), as: F8.self)
                        i += 8
                    }
                    while i < n { acc[i] += gr[i] * xr[i]; i += 1 }
                } else {
                    var i = 0
                    while i + 8 <= n {
                        let a = UnsafeRawPointer(acc + i).loadUnaligned(as: F8.self)
                        let u = UnsafeRawPointer(gr + i).loadUnaligned(as: F8.self)
                        UnsafeMutableRawPointer(acc + i).storeBytes(of: a + u, as: F8.self)
                        i += 8
                    }
                    while i < n { acc[i] += gr[i]; i += 1 }
                }
            }
        }
        if !accumulate { out.update(repeating: 0, count: n) }
        for c in 0..<chunks {
            for j in 0..<n { out[j] += partial[c * n + j] }
        }
    }

    /// Σ x[i] in Double, deterministic whatever the thread count.
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let chunks = reductionChunkCount(count, grain: grain)
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
        defer { partial.deallocate() }
        parallelChunks(count, chunks: chunks) { c, r in
            var acc = SIMD8<Double>(repeating: 0)
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: F8.self)
                acc += SIMD8<Double>(v)
                i += 8
            }
            var s = acc.sum()
            while i < r.upperBound { s += Double(x[i]); i += 1 }
            partial[c] = s
        }
        var total = 0.0
        for c in 0..<chunks { total += partial[c] }
        return total
    }

    // σ(x) = 1 / (1 + e^-x)
    @inline(__always) static func sigmoid(_ x: F8) -> F8 {
        F8(repeating: 1) / (F8(repeating: 1) + simdExp(-x))
    }

    // silu(x) = x·σ(x)
    @inline(__always) static func silu(_ x: F8) -> F8 { x * sigmoid(x) }

    // d silu / dx = σ(x)·(1 + x·(1 − σ(x)))
    @inline(__always) static func siluGrad(_ x: F8) -> F8 {
        let s = sigmoid(x)
        return s * (F8(repeating: 1) + x * (F8(repeating: 1) - s))
    }
}

extension Elementwise {
    /// dst += src without threading (for many short rows inside an outer loop).
    @inline(__always)
    static func addInPlaceSerial(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let a = UnsafeRawPointer(dst + i).loadUnaligned(as: F8.self)
            let b = UnsafeRawPointer(src + i).loadUnaligned(as: F8.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: a + b, as: F8.self)
            i += 8
        }
        while i < n { dst[i] += src[i]; i += 1 }
    }
}

// Lane-wise functions as types rather than closures: generic kernels are specialised per type,
// so the function inlines into the SIMD loop even across the threads' closure boundary.
protocol Lanewise1 { func apply(_ x: F8) -> F8 }
protocol Lanewise2 { func apply(_ a: F8, _ b: F8) -> F8 }
protocol Lanewise3 { func apply(_ a: F8, _ b: F8, _ c: F8) -> F8 }

struct AddOp: Lanewise2 { @inline(__always) func apply(_ a: F8, _ b: F8) -> F8 { a + b } }
struct SubOp: Lanewise2 { @inline(__always) func apply(_ a: F8, _ b: F8) -> F8 { a - b } }
struct MulOp: Lanewise2 { @inline(__always) func apply(_ a: F8, _ b: F8) -> F8 { a * b } }
struct DivOp: Lanewise2 { @inline(__always) func apply(_ a: F8, _ b: F8) -> F8 { a / b } }
struct AxpyOp: Lanewise2 { let alpha: F8; @inline(__always) func apply(_ a: F8, _ b: F8) -> F8 { a.addingProduct(alpha, b) } }
struct ScaleOp: Lanewise1 { let s: F8; @inline(__always) func apply(_ x: F8) -> F8 { x * s } }
struct AddScalarOp: Lanewise1 { let s: F8; @inline(__always) func apply(_ x: F8) -> F8 { x + s } }
/// `f(a, s)` for a binary op with a fixed second operand (one-element broadcasting).
struct BindSecond<Op: Lanewise2>: Lanewise1 { let op: Op; let s: F8; @inline(__always) func apply(_ x: F8) -> F8 { op.apply(x, s) } }
struct ExpOp: Lanewise1 { @inline(__always) func apply(_ x: F8) -> F8 { simdExp(x) } }
struct SiluOp: Lanewise1 { @inline(__always) func apply(_ x: F8) -> F8 { Elementwise.silu(x) } }
/// silu(gate) · up
struct SwigluOp: Lanewise2 { @inline(__always) func apply(_ g: F8, _ u: F8) -> F8 { Elementwise.silu(g) * u } }
/// dy · silu'(x)
struct SiluBackwardOp: Lanewise2 { @inline(__always) func apply(_ dy: F8, _ x: F8) -> F8 { dy * Elementwise.siluGrad(x) } }
/// dy · up · silu'(gate)
struct SwigluGateBackwardOp: Lanewise3 {
    @inline(__always) func apply(_ dy: F8, _ g: F8, _ u: F8) -> F8 { dy * u * Elementwise.siluGrad(g) }
}
/// dy · silu(gate)
struct SwigluUpBackwardOp: Lanewise2 { @inline(__always) func apply(_ dy: F8, _ g: F8) -> F8 { dy * Elementwise.silu(g) } }
/// dy · σ(−x), the derivative of log σ(x)
struct LogSigmoidBackwardOp: Lanewise2 { @inline(__always) func apply(_ dy: F8, _ x: F8) -> F8 { dy * Elementwise.sigmoid(-x) } }
