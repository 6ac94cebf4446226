// Products with very few rows (a decode step, a single vector): packing B and running 12-row
// micro-tiles would read B twice and waste most of each tile. These loops read op(B) in place.
//
// They keep the packed path's arithmetic exactly: per depth block of `kc`, each element is
// `acc = fma(a, b, acc)` over p in order from zero, then `alpha * acc` (first block, beta 0) or
// `fma(alpha, acc, beta' * c)`. So a row of C does not change with the number of rows around it.

extension GEMMProblem {
    /// Rows up to which `runFewRows` may be used (it handles up to this many).
    static let fewRows = 4

    /// Whether `sgemm` takes the unpacked path: measured faster up to 4 rows with B as stored,
    /// up to 2 when B needs transposing.
    static func prefersFewRows(m: Int, transB: Bool) -> Bool { m <= (transB ? 2 : fewRows) }

    func runFewRows(kc kcMax: Int, threads requested: Int, minParallelWork: Int) {
        // Column blocks of 64 are independent; threads take them as they come.
        let block = 64
        let blocks = (n + block - 1) / block
        let threads = m * n * k < minParallelWork ? 1 : requested
        GEMMWorkCounter(blocks).run(threads: threads) { item in
            let j0 = item * block
            let width = min(block, n - j0)
            var p0 = 0
            while p0 < k {
                let kc = min(kcMax, k - p0)
                let betaHere: Float = p0 == 0 ? beta : 1
                if transB {
                    fewRowsTransposedB(j0: j0, width: width, p0: p0, kc: kc, beta: betaHere)
                } else {
                    fewRowsB(j0: j0, width: width, p0: p0, kc: kc, beta: betaHere)
                }
                p0 += kc
            }
        }
    }

    @inline(__always)
    private func opA(_ i: Int, _ p: Int) -> Float { transA ? a[p * lda + i] : a[i * lda + p] }

    @inline(__always)
    private func store(_ acc: SIMD8<Float>, row i: Int, col j: Int, beta: Float) {
        gemmStoreTile(c + i * ldc + j, acc, SIMD8(repeating: alpha), beta)
    }

    @inline(__always)
    private func store(_ acc: Float, row i: Int, col j: Int, beta: Float) {
        let dst = c + i * ldc + j
        dst.pointee = beta == 0 ? alpha * acc : (beta * dst.pointee).addingProduct(alpha, acc)
    }

    /// op(B) = B stored [k, n]: rows of B are contiguous, one 8-wide FMA per (row, 8 columns, p).
    private func fewRowsB(j0: Int, width: Int, p0: Int, kc: Int, beta: Float) {
        for i in 0..<m {
            var j = j0
            while j + 16 <= j0 + width {
                var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
                var src = UnsafeRawPointer(b + p0 * ldb + j)
                for p in p0..<(p0 + kc) {
                    let av = SIMD8<Float>(repeating: opA(i, p))
                    acc0.addProduct(av, src.loadUnaligned(as: SIMD8<Float>.self))
                    acc1.addProduct(av, src.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                    src += ldb * 4
                }
                store(acc0, row: i, col: j, beta: beta)
                store(acc1, row: i, col: j + 8, beta: beta)
                j += 16
            }
            while j < j0 + width {
                var acc: Float = 0
                for p in p0..<(p0 + kc) { acc.addProduct(opA(i, p), b[p * ldb + j]) }
                store(acc, row: i, col: j, beta: beta)
                j += 1
            }
        }
    }

    /// op(B) = B stored [n, k]: eight stored rows at a time, turned by 8 x 8 register transposes
    /// into eight depth steps of eight columns.
    private func fewRowsTransposedB(j0: Int, width: Int, p0: Int, kc: Int, beta: Float) {
        var j = j0
        while j + 8 <= j0 + width {
            var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
            let rows = b + j * ldb
            var p = p0
            while p + 8 <= p0 + kc {
                let s = rows + p
                @inline(__always) func row(_ r: Int) -> SIMD8<Float> {
                    UnsafeRawPointer(s + r * ldb).loadUnaligned(as: SIMD8<Float>.self)
                }
                var x = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
                GEMMPack.transpose8(&x)
                withUnsafeBytes(of: x) { raw in
                    let steps = raw.bindMemory(to: SIMD8<Float>.self)
                    for i in 0..<m {
                        var acc_i = i == 0 ? acc.0 : i == 1 ? acc.1 : i == 2 ? acc.2 : acc.3
                        for q in 0..<8 { acc_i.addProduct(SIMD8(repeating: opA(i, p + q)), steps[q]) }
                        switch i {
                        case 0: acc.0 = acc_i
                        case 1: acc.1 = acc_i
                        case 2: acc.2 = acc_i
                        default: acc.3 = acc_i
                        }
                    }
                }
                p += 8
            }
            while p < p0 + kc {
                var step = SIMD8<Float>()
                for r in 0..<8 { step[r] = rows[r * ldb + p] }
                for i in 0..<m {
                    let av = SIMD8<Float>(repeating: opA(i, p))
                    switch i {
                    case 0: acc.0.addProduct(av, step)
                    case 1: acc.1.addProduct(av, step)
                    case 2: acc.2.addProduct(av, step)
                    default: acc.3.addProduct(av, step)
                    }
                }
                p += 1
            }
            for i in 0..<m {
                store(i == 0 ? acc.0 : i == 1 ? acc.1 : i == 2 ? acc.2 : acc.3, row: i, col: j, beta: beta)
            }
            j += 8
        }
        while j < j0 + width {
            for i in 0..<m {
                var acc: Float = 0
                for p in p0..<(p0 + kc) { acc.addProduct(opA(i, p), b[j * ldb + p]) }
                store(acc, row: i, col: j, beta: beta)
            }
            j += 1
        }
    }
}
