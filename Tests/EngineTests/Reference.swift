import Foundation

/// Plain Float64 reference implementations of every op, written independently of the kernels
/// (straight loops from the textbook / HF definitions).
enum Ref {
    /// op(a)·op(b) for batched a [batch, ·, ·], b [batch or 1, ·, ·].
    static func matmul(_ a: [Double], _ b: [Double], batch: Int, m: Int, k: Int, n: Int, tA: Bool, tB: Bool, bShared: Bool) -> [Double] {
        var c = [Double](repeating: 0, count: batch * m * n)
        for p in 0..<batch {
            let ao = p * m * k, bo = bShared ? 0 : p * k * n
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for q in 0..<k {
                        let av = tA ? a[ao + q * m + i] : a[ao + i * k + q]
                        let bv = tB ? b[bo + j * k + q] : b[bo + q * n + j]
                        s += av * bv
                    }
                    c[p * m * n + i * n + j] = s
                }
            }
        }
        return c
    }

    static func linear(_ x: [Double], _ w: [Double], _ b: [Double]?, rows: Int, inF: Int, outF: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * outF)
        for r in 0..<rows {
            for o in 0..<outF {
                var s = b?[o] ?? 0
                for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
                y[r * outF + o] = s
            }
        }
        return y
    }

    static func rmsNorm(_ x: [Double], _ w: [Double], c: Int, eps: Double) -> [Double] {
        var y = x
        for r in 0..<(x.count / c) {
            var ss = 0.0
            for j in 0..<c { ss += x[r * c + j] * x[r * c + j] }
            let rs = 1 / (ss / Double(c) + eps).squareRoot()
            for j in 0..<c { y[r * c + j] = x[r * c + j] * rs * w[j] }
        }
        return y
    }

    /// positions[b*T + t]; the angle is formed in Float32 as HF does, everything else in Double.
    static func rope(_ x: [Double], batch: Int, length: Int, heads: Int, headDim: Int, invFreq: [Float], positions: [Int]) -> [Double] {
        var y = x
        let half = headDim / 2
        for b in 0..<batch {
            for t in 0..<length {
                let pos = positions[b * length + t]
                for h in 0..<heads {
                    let base = ((b * length + t) * heads + h) * headDim
                    for i in 0..<half {
                        let ang = Double(Float(pos) * invFreq[i])
                        let c = cos(ang), s = sin(ang)
                        let x1 = x[base + i], x2 = x[base + half + i]
                        y[base + i] = x1 * c - x2 * s
                        y[base + half + i] = x2 * c + x1 * s
                    }
                }
            }
        }
        return y
    }

    static func attention(q: [Double], k: [Double], v: [Double], batch: Int, tq: Int, tk: Int, heads: Int, kvHeads: Int,
                          headDim d: Int, offset: Int, pad: [Int]?, scale: Double) -> [Double] {
        var out = [Double](repeating: 0, count: batch * tq * heads * d)
        let group = heads / kvHeads
        for b in 0..<batch {
            for h in 0..<heads {
                let kvh = h / group
                for i in 0..<tq {
                    let lo = pad?[b] ?? 0, hi = min(tk - 1, offset + i)
                    if lo > hi { continue }
                    var scores = [Double]()
                    for j in lo...hi {
                        var s = 0.0
                        for e in 0..<d { s += q[((b * tq + i) * heads + h) * d + e] * k[((b * tk + j) * kvHeads + kvh) * d + e] }
                        scores.append(s * scale)
                    }
                    let m = scores.max()!
                    let ex = scores.map { exp($0 - m) }
                    let z = ex.reduce(0, +)
                    for (jj, j) in (lo...hi).enumerated() {
                        let p = ex[jj] / z
                        for e in 0..<d { out[((b * tq + i) * heads + h) * d + e] += p * v[((b * tk + j) * kvHeads + kvh) * d + e] }
                    }
                }
            }
        }
        return out
    }

    static func softmax(_ x: [Double], n: Int) -> [Double] {
        var y = x
        for r in 0..<(x.count / n) {
            let row = x[(r * n)..<((r + 1) * n)]
            let m = row.max()!
            let z = row.reduce(0) { $0 + exp($1 - m) }
            for j in 0..<n { y[r * n + j] = exp(x[r * n + j] - m) / z }
        }
        return y
    }

    static func logSoftmaxGather(_ x: [Double], v: Int, targets: [Int], ignore: Int) -> [Double] {
        (0..<targets.count).map { r in
            if targets[r] == ignore { return 0 }
            let row = x[(r * v)..<((r + 1) * v)]
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            return x[r * v + targets[r]] - lse
        }
    }

    static func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
    static func logSigmoid(_ x: Double) -> Double { -log(1 + exp(-x)) }
}
