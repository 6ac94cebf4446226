// Packing routines for the blocked sgemm. A micro-panel of A is `kc` columns of `mr` rows,
// stored column by column (`dst[p * mr + i]`); a micro-panel of B is `kc` rows of `nr`
// columns (`dst[p * nr + j]`). Panels narrower than mr/nr are zero-padded, so the
// micro-kernel always runs full width and the padding never reaches C.

@usableFromInline
enum GEMMPack {
    /// How many stored rows ahead the row-walking packers prefetch.
    static let rowsAhead = 6

    /// Asks for the cache lines of `floats` consecutive values (a hint; never faults).
    @inline(__always)
    static func prefetchRun(_ start: UnsafePointer<Float>, floats: Int) {
        let raw = UnsafeRawPointer(start)
        var offset = 0
        while offset < floats * 4 {
            llvmPrefetch(raw + offset, 0, 3, 1)
            offset += 64
        }
    }

    /// Packs rows `i0 ..< i0 + rows` and depth `p0 ..< p0 + kc` of op(A) into consecutive
    /// `mr`-row micro-panels.
    static func packA(
        _ a: UnsafePointer<Float>, lda: Int, trans: Bool,
        i0: Int, rows: Int, p0: Int, kc: Int, mr: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        var panel = dst
        var i = 0
        if trans && (mr == 6 || mr == 12) {
            // Walk each stored row of A once across all full panels: far fewer pages and cache
            // lines in flight than one panel at a time. As in `packB`, the row `rowsAhead` rows on is
            // asked for while this one is copied: the hardware prefetcher loses the row-to-row jump.
            let full = rows / mr
            if full > 0 {
                var src = a + p0 * lda + i0
                for p in 0..<kc {
                    if p + rowsAhead < kc { prefetchRun(src + rowsAhead * lda, floats: full * mr) }
                    var s = src, d = dst + p * mr
                    for _ in 0..<full {
                        if mr == 12 {
                            copy8(s, d); copy4(s + 8, d + 8)
                        } else {
                            copy4(s, d); d[4] = s[4]; d[5] = s[5]
                        }
                        s += mr; d += kc * mr
                    }
                    src += lda
                }
                i = full * mr
                panel = dst + full * kc * mr
            }
        }
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
            } else if h == mr && (mr == 6 || mr == 12) && kc >= 8 {
                transposeRowsA(a + (i0 + i) * lda + p0, lda: lda, kc: kc, mr: mr, into: panel)
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
    /// `nr`-column micro-panels, `panelStride` floats apart (default `kc * nr`: the panels of a whole
    /// depth block; a run of a block's rows passes the block's stride and starts at its first row).
    static func packB(
        _ b: UnsafePointer<Float>, ldb: Int, trans: Bool,
        p0: Int, kc: Int, j0: Int, cols: Int, nr: Int,
        into dst: UnsafeMutablePointer<Float>, panelStride: Int? = nil
    ) {
        let panelStride = panelStride ?? kc * nr
        if !trans {
            // op(B)[p, j] = b[p * ldb + j]: each stored row is read once, left to right across every
            // panel (panel by panel, the reads were `nr`-float pieces `ldb` apart, and the copy
            // stalled on them). The jump from row to row still defeats the hardware prefetcher,
            // so the row `rowsAhead` rows on is asked for while this one is copied.
            let full = cols / nr, w = cols - full * nr
            var src = b + p0 * ldb + j0
            for p in 0..<kc {
                if p + rowsAhead < kc { prefetchRun(src + rowsAhead * ldb, floats: cols) }
                var d = dst + p * nr
                for q in 0..<full {
                    copyRun(src + q * nr, d, nr)
                    d += panelStride
                }
                if w > 0 {
                    for c in 0..<w { d[c] = src[full * nr + c] }
                    for c in w..<nr { d[c] = 0 }
                }
                src += ldb
            }
            return
        }
        var panel = dst
        var j = 0
        while j < cols {
            let w = min(nr, cols - j)
            if w == nr && nr % 8 == 0 && kc >= 8 {
                transposeRowsB(b + (j0 + j) * ldb + p0, ldb: ldb, kc: kc, nr: nr, into: panel)
            } else {
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
            }
            panel += panelStride
            j += nr
        }
    }

    @inline(__always)
    static func copy8(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(d).storeBytes(of: UnsafeRawPointer(s).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func copy4(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(d).storeBytes(of: UnsafeRawPointer(s).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
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

    /// Full A panel from row-major A (`mr` = 6 or 12 rows starting at `src`): 8 x 8 register
    /// transposes turn eight depth steps of the rows into eight contiguous `mr`-wide columns.
    static func transposeRowsA(_ src: UnsafePointer<Float>, lda: Int, kc: Int, mr: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        let zero = SIMD8<Float>()
        var p = 0
        while p + 8 <= kc {
            let s = src + p
            @inline(__always) func row(_ r: Int) -> SIMD8<Float> {
                UnsafeRawPointer(s + r * lda).loadUnaligned(as: SIMD8<Float>.self)
            }
            let d = dst + p * mr
            if mr == 12 {
                var x = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
                transpose8(&x)
                store8(x, d, stride: 12)
                var y = (row(8), row(9), row(10), row(11), zero, zero, zero, zero)
                transpose8(&y)
                store4(y, d + 8, stride: 12)
            } else {
                var x = (row(0), row(1), row(2), row(3), row(4), row(5), zero, zero)
                transpose8(&x)
                store4(x, d, stride: 6)
                store2High(x, d + 4, stride: 6)
            }
            p += 8
        }
        while p < kc {
            for r in 0..<mr { dst[p * mr + r] = src[r * lda + p] }
            p += 1
        }
    }

    /// Full B panel from a transposed B (`nr` stored rows, a multiple of 8, starting at `src`).
    static func transposeRowsB(_ src: UnsafePointer<Float>, ldb: Int, kc: Int, nr: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        var p = 0
        while p + 8 <= kc {
            var g = 0
            while g < nr {
                let s = src + g * ldb + p
                @inline(__always) func row(_ r: Int) -> SIMD8<Float> {
                    UnsafeRawPointer(s + r * ldb).loadUnaligned(as: SIMD8<Float>.self)
                }
                var x = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
                transpose8(&x)
                store8(x, dst + p * nr + g, stride: nr)
                g += 8
            }
            p += 8
        }
        while p < kc {
            for c in 0..<nr { dst[p * nr + c] = src[c * ldb + p] }
            p += 1
        }
    }

    typealias Block8 = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>,
                        SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

    /// In-register 8 x 8 transpose: three perfect unshuffles of the 64 elements rotate the
    /// (row, column) index bits by three, which swaps row and column.
    @inline(__always)
    static func transpose8(_ x: inout Block8) {
        @inline(__always) func even(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
            SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf)
        }
        @inline(__always) func odd(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
            SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf)
        }
        for _ in 0..<3 {
            x = (even(x.0, x.1), even(x.2, x.3), even(x.4, x.5), even(x.6, x.7),
                 odd(x.0, x.1), odd(x.2, x.3), odd(x.4, x.5), odd(x.6, x.7))
        }
    }

    @inline(__always)
    static func store8(_ x: Block8, _ d: UnsafeMutablePointer<Float>, stride: Int) {
        let r = UnsafeMutableRawPointer(d), s = stride * 4
        r.storeBytes(of: x.0, as: SIMD8<Float>.self)
        r.storeBytes(of: x.1, toByteOffset: s, as: SIMD8<Float>.self)
        r.storeBytes(of: x.2, toByteOffset: 2 * s, as: SIMD8<Float>.self)
        r.storeBytes(of: x.3, toByteOffset: 3 * s, as: SIMD8<Float>.self)
        r.storeBytes(of: x.4, toByteOffset: 4 * s, as: SIMD8<Float>.self)
        r.storeBytes(of: x.5, toByteOffset: 5 * s, as: SIMD8<Float>.self)
        r.storeBytes(of: x.6, toByteOffset: 6 * s, as: SIMD8<Float>.self)
        r.storeBytes(of: x.7, toByteOffset: 7 * s, as: SIMD8<Float>.self)
    }

    /// Stores the low four lanes of each vector.
    @inline(__always)
    static func store4(_ x: Block8, _ d: UnsafeMutablePointer<Float>, stride: Int) {
        let r = UnsafeMutableRawPointer(d), s = stride * 4
        r.storeBytes(of: x.0.lowHalf, as: SIMD4<Float>.self)
        r.storeBytes(of: x.1.lowHalf, toByteOffset: s, as: SIMD4<Float>.self)
        r.storeBytes(of: x.2.lowHalf, toByteOffset: 2 * s, as: SIMD4<Float>.self)
        r.storeBytes(of: x.3.lowHalf, toByteOffset: 3 * s, as: SIMD4<Float>.self)
        r.storeBytes(of: x.4.lowHalf, toByteOffset: 4 * s, as: SIMD4<Float>.self)
        r.storeBytes(of: x.5.lowHalf, toByteOffset: 5 * s, as: SIMD4<Float>.self)
        r.storeBytes(of: x.6.lowHalf, toByteOffset: 6 * s, as: SIMD4<Float>.self)
        r.storeBytes(of: x.7.lowHalf, toByteOffset: 7 * s, as: SIMD4<Float>.self)
    }

    /// Stores lanes 4 and 5 of each vector.
    @inline(__always)
    static func store2High(_ x: Block8, _ d: UnsafeMutablePointer<Float>, stride: Int) {
        let r = UnsafeMutableRawPointer(d), s = stride * 4
        r.storeBytes(of: x.0.highHalf.lowHalf, as: SIMD2<Float>.self)
        r.storeBytes(of: x.1.highHalf.lowHalf, toByteOffset: s, as: SIMD2<Float>.self)
        r.storeBytes(of: x.2.highHalf.lowHalf, toByteOffset: 2 * s, as: SIMD2<Float>.self)
        r.storeBytes(of: x.3.highHalf.lowHalf, toByteOffset: 3 * s, as: SIMD2<Float>.self)
        r.storeBytes(of: x.4.highHalf.lowHalf, toByteOffset: 4 * s, as: SIMD2<Float>.self)
        r.storeBytes(of: x.5.highHalf.lowHalf, toByteOffset: 5 * s, as: SIMD2<Float>.self)
        r.storeBytes(of: x.6.highHalf.lowHalf, toByteOffset: 6 * s, as: SIMD2<Float>.self)
        r.storeBytes(of: x.7.highHalf.lowHalf, toByteOffset: 7 * s, as: SIMD2<Float>.self)
    }
}
