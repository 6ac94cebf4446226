import Foundation

/// RMSNorm as in HF Llama/Qwen2: `y = w ⊙ (x / sqrt(mean(x²) + eps))`, computed in Float32.
enum RMSNormKernel {
    /// x, y: [rows, c]; w: [c]; rstd: [rows] (optional, saved for backward).
    static func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>?, rows: Int, c: Int, eps: Float) {
        parallelChunks(rows, grain: max(1, 4096 / c)) { _, range in
            for r in range {
                let xr = x + r * c, yr = y + r * c
                var acc = F8(repeating: 0)
                var i = 0
                while i + 8 <= c {
                    let v = UnsafeRawPointer(xr + i).loadUnaligned(as: F8.self)
                    acc.addProduct(v, v)
                    i += 8
                }
                var ss = acc.sum()
                while i < c { ss += xr[i] * xr[i]; i += 1 }
                let rs = 1 / (ss / Float(c) + eps).squareRoot()
                rstd?[r] = rs
                let rv = F8(repeating: rs)
                i = 0
                while i + 8 <= c {
                    let v = UnsafeRawPointer(xr + i).loadUnaligned(as: F8.self)
                    let wv = UnsafeRawPointer(w + i).loadUnaligned(as: F8.self)
                    UnsafeMutableRawPointer(yr + i).storeBytes(of: (v * rv) * wv, as: F8.self)
                    i += 8
                }
                while i < c { yr[i] = (xr[i] * rs) * w[i]; i += 1 }
            }
        }
    }

    /// dy, x, dx: [rows, c]; w, dw: [c]; rstd: [rows].
    /// dx = rstd·(dy⊙w − x̂·mean(dy⊙w⊙x̂)) with x̂ = x·rstd (written, not accumulated);
    /// dw += Σ_rows dy⊙x̂ (deterministic whatever the thread count).
    static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                         rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                         rows: Int, c: Int) {
        let grain = max(1, 4096 / c)
        let chunks = reductionChunkCount(rows, grain: grain)
        let partial: UnsafeMutablePointer<Float>? = dw == nil ? nil : .allocate(capacity: chunks * c)
        partial?.initialize(repeating: 0, count: chunks * c)
        defer { partial?.deallocate() }
        parallelChunks(rows, chunks: chunks) { ch, range in
            let acc = partial.map { $0 + ch * c }
            for r in range {
                let xr = x + r * c, gr = dy + r * c
                let rs = rstd[r]
                let rv = F8(repeating: rs)
                if let dx {
                    var dotv = F8(repeating: 0)
                    var i = 0
                    while i + 8 <= c {
                        let xv = UnsafeRawPointer(xr + i).loadUnaligned(as: F8.self)
                        let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: F8.self)
                        let wv = UnsafeRawPointer(w + i).loadUnaligned(as: F8.self)
                        dotv.addProduct(gv * wv, xv)
                        i += 8
                    }
                    var dot = dotv.sum()
                    while i < c { dot += gr[i] * w[i] * xr[i]; i += 1 }
                    // mean(dxhat·xhat) = rstd · dot / c
                    let m = dot * rs / Float(c)
                    let k = F8(repeating: m * rs)
                    let dxr = dx + r * c
                    i = 0
                    while i + 8 <= c {
                        let xv = UnsafeRawPointer(xr + i).loadUnaligned(as: F8.self)
                        let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: F8.self)
                        let wv = UnsafeRawPointer(w + i).loadUnaligned(as: F8.self)
                        UnsafeMutableRawPointer(dxr + i).storeBytes(of: rv * (gv * wv - xv * k), as: F8.self)
                        i += 8
                    }
                    while i < c { dxr[i] = rs * (gr[i] * w[i] - xr[i] * (m * rs)); i += 1 }
                }
                if let acc {
                    var i = 0
                    while i + 8 <= c {
                        let xv = UnsafeRawPointer(xr + i).loadUnaligned(as: F8.self)
                        let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: F8.self)
                        let av = UnsafeRawPointer(acc + i).loadUnaligned(as: F8.self)
                        UnsafeMutableRawPointer(acc + i).storeBytes(of: av.addingProduct(gv, xv * rv), as: F8.self)
                        i += 8
                    }
                    while i < c { acc[i] += gr[i] * (xr[i] * rs); i += 1 }
                }
            }
        }
        if let dw, let partial {
            for ch in 0..<chunks {
                for j in 0..<c { dw[j] += partial[ch * c + j] }
            }
        }
    }
}

/// Rotary position embedding, HF split-half layout, over `[B, T, H, D]` data.
enum RoPEKernel {
    /// cos/sin tables `[positions.count, D/2]`: angle = Float(pos) · invFreq[i] in Float32 (as HF).
    static func tables(positions: [Int], invFreq: [Float]) -> (cos: Tensor, sin: Tensor) {
        let half = invFreq.count
        let c = Tensor.uninitialized([positions.count, half]), s = Tensor.uninitialized([positions.count, half])
        let cp = c.pointer, sp = s.pointer
        for (row, pos) in positions.enumerated() {
            let p = Float(pos)
            for i in 0..<half {
                let a = p * invFreq[i]
                cp[row * half + i] = Foundation.cos(a)
                sp[row * half + i] = Foundation.sin(a)
            }
        }
        return (c, s)
    }

    /// x, y: [B, T, H, D] (may alias); cos, sin: [T or B·T, D/2].
    /// y1 = x1·cos − x2·sin, y2 = x2·cos + x1·sin (x1 = first half of each head, x2 = second).
    /// The backward is the same map with `sinSign = -1` (rotation by the opposite angle).
    static func apply(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>,
                      sin: UnsafePointer<Float>, batch: Int, length: Int, heads: Int, headDim: Int,
                      perBatchRow: Bool, sinSign: Float) {
        let half = headDim / 2
        let rows = batch * length
        parallelChunks(rows, grain: max(1, 8192 / (heads * headDim))) { _, range in
            for row in range {
                let t = row % length
                let tr = perBatchRow ? row : t
                let cr = cos + tr * half, sr = sin + tr * half
                for h in 0..<heads {
                    let xb = x + (row * heads + h) * headDim
                    let yb = y + (row * heads + h) * headDim
                    var i = 0
                    let sg = F8(repeating: sinSign)
                    while i + 8 <= half {
                        let c = UnsafeRawPointer(cr + i).loadUnaligned(as: F8.self)
                        let s = UnsafeRawPointer(sr + i).loadUnaligned(as: F8.self) * sg
                        let x1 = UnsafeRawPointer(xb + i).loadUnaligned(as: F8.self)
                        let x2 = UnsafeRawPointer(xb + half + i).loadUnaligned(as: F8.self)
                        UnsafeMutableRawPointer(yb + i).storeBytes(of: x1 * c - x2 * s, as: F8.self)
                        UnsafeMutableRawPointer(yb + half + i).storeBytes(of: x2 * c + x1 * s, as: F8.self)
                        i += 8
                    }
                    while i < half {
                        let c = cr[i], s = sr[i] * sinSign
                        let x1 = xb[i], x2 = xb[half + i]
                        yb[i] = x1 * c - x2 * s
                        yb[half + i] = x2 * c + x1 * s
                        i += 1
                    }
                }
            }
        }
    }
}
