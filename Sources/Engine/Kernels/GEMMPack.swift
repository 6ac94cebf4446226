// Packing routines for the blocked sgemm. A micro-panel of A is `kc` columns of `mr` rows,
// stored column by column (`dst[p * mr + i]`); a micro-panel of B is `kc` rows of `nr`
// columns (`dst[p * nr + j]`). Panels narrower than mr/nr are zero-padded, so the
// micro-kernel always runs full width and the padding never reaches C.

@usableFromInline
enum GEMMPack {
    /// Packs rows `i0 ..< i0 + rows` and depth `p0 ..< p0 + kc` of op(A) into consecutive
    /// `mr`-row micro-panels.
    static func packA(
        _ a: UnsafePointer<Float>, lda: Int, trans: Bool,
        i0: Int, rows: Int, p0: Int, kc: Int, mr: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        var panel = dst
        var i = 0
        while i < rows {
            let h = min(mr, rows - i)
            if trans {
                // op(A)[i, p] = a[p * lda + i]: each depth step is a contiguous run of h values.
                var src = a + p0 * lda + (i0 + i)
                var d = panel
                if h == mr {
                    for _ in 0..<kc {
                        copyRun(src, d, mr)
                        src += lda; d += mr
                    }
                } else {
                    for _ in 0..<kc {
                        for r in 0..<h { d[r] = src[r] }
                        for r in h..<mr { d[r] = 0 }
                        src += lda; d += mr
                    }
                }
            } else {
                // op(A)[i, p] = a[i * lda + p]: read each row contiguously, write it strided.
                for r in 0..<h {
                    let src = a + (i0 + i + r) * lda + p0
                    var d = panel + r
                    for p in 0..<kc { d.pointee = src[p]; d += mr }
                }
                if h < mr {
                    for r in h..<mr {
                        var d = panel + r
                        for _ in 0..<kc { d.pointee = 0; d += mr }
                    }
                }
            }
            panel += kc * mr
            i += mr
        }
    }

    /// Packs depth `p0 ..< p0 + kc` and columns `j0 ..< j0 + cols` of op(B) into consecutive
    /// `nr`-column micro-panels.
    static func packB(
        _ b: UnsafePointer<Float>, ldb: Int, trans: Bool,
        p0: Int, kc: Int, j0: Int, cols: Int, nr: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        var panel = dst
        var j = 0
        while j < cols {
            let w = min(nr, cols - j)
            if trans {
                // op(B)[p, j] = b[j * ldb + p]: read each stored row contiguously, write it strided.
                for c in 0..<w {
                    let src = b + (j0 + j + c) * ldb + p0
                    var d = panel + c
                    for p in 0..<kc { d.pointee = src[p]; d += nr }
                }
                if w < nr {
                    for c in w..<nr {
                        var d = panel + c
                        for _ in 0..<kc { d.pointee = 0; d += nr }
                    }
                }
            } else {
                var src = b + p0 * ldb + (j0 + j)
                var d = panel
                if w == nr {
                    for _ in 0..<kc {
                        copyRun(src, d, nr)
                        src += ldb; d += nr
                    }
                } else {
                    for _ in 0..<kc {
                        for c in 0..<w { d[c] = src[c] }
                        for c in w..<nr { d[c] = 0 }
                        src += ldb; d += nr
                    }
                }
            }
            panel += kc * nr
            j += nr
        }
    }

    /// Copies `count` floats (a multiple of 8 in the hot cases) with 8-wide moves.
    @inline(__always)
    static func copyRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        var o = 0
        while o + 8 <= count {
            let v = UnsafeRawPointer(src + o).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(dst + o).storeBytes(of: v, as: SIMD8<Float>.self)
            o += 8
        }
        while o < count { dst[o] = src[o]; o += 1 }
    }
}
