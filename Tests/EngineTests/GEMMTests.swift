import Testing
@testable import Engine

/// Stored matrices and a Float64 reference for one sgemm call.
private struct GEMMCase {
    let m, n, k: Int
    let transA, transB: Bool
    let alpha, beta: Float
    let lda, ldb, ldc: Int
    var a: [Float], b: [Float], c: [Float]

    init(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float = 1, beta: Float = 0,
         pad: Int = 0, seed: UInt64) {
        self.m = m; self.n = n; self.k = k; self.transA = transA; self.transB = transB
        self.alpha = alpha; self.beta = beta
        lda = (transA ? m : k) + pad
        ldb = (transB ? k : n) + 2 * pad
        ldc = n + 3 * pad
        var rng = SeededRandom(seed: seed)
        a = (0..<max(1, (transA ? k : m) * lda)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        b = (0..<max(1, (transB ? n : k) * ldb)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        c = (0..<max(1, m * ldc)).map { _ in Float(rng.nextDouble() * 2 - 1) }
    }

    func opA(_ i: Int, _ p: Int) -> Double { Double(transA ? a[p * lda + i] : a[i * lda + p]) }
    func opB(_ p: Int, _ j: Int) -> Double { Double(transB ? b[j * ldb + p] : b[p * ldb + j]) }

    /// Runs sgemm (through `kernel` when given) and returns the result.
    func run(threads: Int, kernel: GEMMMicroKernel? = nil, maxPackedB: Int = GEMMProblem.maxPackedB,
             minParallelWork: Int = GEMMProblem.minParallelWork, cBlockFloats: Int = GEMMProblem.cBlockFloats,
             fewRows: Bool = false) -> [Float] {
        var out = c
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    if fewRows {
                        GEMMProblem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                    a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                    beta: beta, c: pc.baseAddress!, ldc: ldc)
                            .runFewRows(kc: GEMMMicroKernel.best.kc, threads: threads, minParallelWork: 0)
                    } else if let kernel {
                        GEMMProblem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                    a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                    beta: beta, c: pc.baseAddress!, ldc: ldc)
                            .run(kernel: kernel, threads: threads, maxPackedB: maxPackedB, minParallelWork: minParallelWork,
                                 cBlockFloats: cBlockFloats)
                    } else {
                        GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                   a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                   beta: beta, c: pc.baseAddress!, ldc: ldc, threads: threads)
                    }
                }
            }
        }
        return out
    }

    /// Max error relative to `|alpha| sum |a||b| + |beta c|`, and whether padding was left untouched.
    func check(_ out: [Float]) -> (error: Double, paddingKept: Bool) {
        var worst = 0.0
        var kept = true
        for i in 0..<m {
            for j in 0..<ldc {
                let got = out[i * ldc + j]
                if j >= n {
                    if got != c[i * ldc + j] { kept = false }
                    continue
                }
                var sum = 0.0, mag = 0.0
                for p in 0..<k {
                    let t = opA(i, p) * opB(p, j)
                    sum += t; mag += abs(t)
                }
                let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                let want = Double(alpha) * sum + prior
                let scale = abs(Double(alpha)) * mag + abs(prior) + 1e-30
                if !(abs(Double(got) - want) / scale <= worst) { worst = got.isNaN ? .infinity : abs(Double(got) - want) / scale }
            }
        }
        return (worst, kept)
    }
}

/// Float32 accumulation over k terms stays well inside this bound relative to sum |a||b|.
private func tolerance(_ k: Int) -> Double { Double(k + 4) * Double(Float.ulpOfOne) }

private let transposes = [(false, false), (false, true), (true, false), (true, true)]

@Test(arguments: GEMMMicroKernel.available.map(\.name))
func gemmMatchesReferenceOnOddShapes(kernelName: String) {
    let kernel = GEMMMicroKernel.available.first { $0.name == kernelName }!
    let mr = kernel.mr, nr = kernel.nr
    // Sizes on both sides of the micro-tile, the depth block and the row block.
    let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (3, 5, 7), (mr, nr, 17), (mr + 1, nr - 1, 1), (mr - 1, nr + 1, 31),
        (17, 2 * nr + 3, kernel.kc + 1), (2 * mr + 5, 3, kernel.kc - 1), (kernel.mc + 7, nr + 5, 9),
        (127, 1, 40), (1, 127, 40),
    ]
    var seed: UInt64 = 1
    for (m, n, k) in shapes {
        for (ta, tb) in transposes {
            seed += 1
            let pad = Int(seed % 3)
            let alpha: Float = seed % 2 == 0 ? 1 : -0.75
            let beta: Float = [0, 1, 0.5][Int(seed % 3)]
            let t = GEMMCase(m: m, n: n, k: k, transA: ta, transB: tb, alpha: alpha, beta: beta, pad: pad, seed: seed)
            let (error, kept) = t.check(t.run(threads: 1, kernel: kernel))
            #expect(error <= tolerance(k), "m=\(m) n=\(n) k=\(k) tA=\(ta) tB=\(tb) alpha=\(alpha) beta=\(beta)")
            #expect(kept, "sgemm wrote outside the n columns of C (ldc padding)")
        }
    }
}

@Test func gemmPublicEntryMatchesReference() {
    for (index, (ta, tb)) in transposes.enumerated() {
        let t = GEMMCase(m: 37, n: 41, k: 300, transA: ta, transB: tb, alpha: 1.5, beta: -2, pad: 1, seed: 100 + UInt64(index))
        let (error, kept) = t.check(t.run(threads: 2))
        #expect(error <= tolerance(300) && kept, "tA=\(ta) tB=\(tb)")
    }
}

@Test func gemmThreadedAndChunkedPathsAreExactAndDeterministic() {
    // Force threading and several packed-B chunks on a small problem.
    for kernel in GEMMMicroKernel.available {
        for (ta, tb) in [(false, true), (true, false)] {
            let t = GEMMCase(m: kernel.mc + 11, n: 2 * kernel.nr + 7, k: kernel.kc + 9, transA: ta, transB: tb,
                             alpha: 0.5, beta: 0.25, pad: 2, seed: 7)
            let serial = t.run(threads: 1, kernel: kernel, maxPackedB: 1, minParallelWork: 0)
            let twoA = t.run(threads: 2, kernel: kernel, maxPackedB: 1, minParallelWork: 0)
            let twoB = t.run(threads: 2, kernel: kernel, maxPackedB: 1, minParallelWork: 0)
            let three = t.run(threads: 3, kernel: kernel, minParallelWork: 0)
            // A packed over all of k, C walked one column panel at a time.
            let subBlocked = t.run(threads: 2, kernel: kernel, minParallelWork: 0, cBlockFloats: 1)
            #expect(twoA == twoB, "\(kernel.name): two runs with 2 threads differ")
            #expect(serial == twoA && serial == three, "\(kernel.name): results depend on the thread count")
            #expect(subBlocked == serial, "\(kernel.name): column sub-blocking changed the result")
            let (error, kept) = t.check(twoA)
            #expect(error <= tolerance(t.k) && kept, "\(kernel.name) tA=\(ta) tB=\(tb)")
        }
    }
    // Every kernel sums in the same order, so they agree bit for bit.
    let t = GEMMCase(m: 29, n: 70, k: 300, transA: false, transB: false, alpha: 1, beta: 1, seed: 9)
    let results = GEMMMicroKernel.available.map { t.run(threads: 1, kernel: $0) }
    #expect(results.allSatisfy { $0 == results[0] })
}

@Test func gemmBetaZeroIgnoresNaNAndAlphaZeroIgnoresInputs() {
    var t = GEMMCase(m: 9, n: 20, k: 5, transA: false, transB: true, alpha: 2, beta: 0, seed: 3)
    t.c = t.c.map { _ in .nan }
    let out = t.run(threads: 1)
    #expect(out.allSatisfy { !$0.isNaN })
    #expect(t.check(out).error <= tolerance(5))

    var u = GEMMCase(m: 4, n: 3, k: 6, transA: true, transB: false, alpha: 0, beta: 0.5, seed: 4)
    u.a = u.a.map { _ in .nan }
    let c0 = u.c
    #expect(u.run(threads: 1) == c0.map { $0 * 0.5 })
}

@Test func gemmEmptySizes() {
    // k = 0: C = beta * C, A and B never read.
    let t = GEMMCase(m: 3, n: 4, k: 0, transA: false, transB: false, alpha: 1, beta: 0.5, seed: 5)
    #expect(t.run(threads: 1) == t.c.map { $0 * 0.5 })
    var z = GEMMCase(m: 3, n: 4, k: 0, transA: true, transB: true, alpha: 1, beta: 0, seed: 6)
    z.c = z.c.map { _ in .nan }
    #expect(z.run(threads: 2).allSatisfy { $0 == 0 })
    // m = 0 or n = 0: nothing is touched.
    for (m, n) in [(0, 5), (5, 0), (0, 0)] {
        let e = GEMMCase(m: m, n: n, k: 3, transA: false, transB: false, beta: 0, seed: 8)
        #expect(e.run(threads: 2) == e.c)
    }
}

@Test func gemmBatchedMatchesSingleCalls() {
    // Strided batch with a shared B (stride 0), padded strides, run in parallel over the batch.
    let (m, n, k, batch) = (13, 37, 21, 5)
    let lda = k + 1, ldb = k + 3, ldc = n + 2
    let strideA = m * lda + 7, strideC = m * ldc + 5
    var rng = SeededRandom(seed: 11)
    let a = (0..<(batch * strideA)).map { _ in Float(rng.nextDouble() * 2 - 1) }
    let b = (0..<(n * ldb)).map { _ in Float(rng.nextDouble() * 2 - 1) }
    let c0 = (0..<(batch * strideC)).map { _ in Float(rng.nextDouble() * 2 - 1) }
    var batched = c0, single = c0
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            batched.withUnsafeMutableBufferPointer { pc in
                GEMM.sgemmBatched(transA: false, transB: true, m: m, n: n, k: k, alpha: 0.5,
                                  a: pa.baseAddress!, lda: lda, strideA: strideA, b: pb.baseAddress!, ldb: ldb, strideB: 0,
                                  beta: 2, c: pc.baseAddress!, ldc: ldc, strideC: strideC, batch: batch, threads: 2)
            }
            single.withUnsafeMutableBufferPointer { pc in
                for i in 0..<batch {
                    GEMM.sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 0.5,
                               a: pa.baseAddress! + i * strideA, lda: lda, b: pb.baseAddress!, ldb: ldb,
                               beta: 2, c: pc.baseAddress! + i * strideC, ldc: ldc, threads: 1)
                }
            }
        }
    }
    #expect(batched == single)
    // Entry 3 against the Float64 reference.
    var worst = 0.0
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0, mag = 0.0
            for p in 0..<k {
                let t = Double(a[3 * strideA + i * lda + p]) * Double(b[j * ldb + p])
                sum += t; mag += abs(t)
            }
            let prior = 2 * Double(c0[3 * strideC + i * ldc + j])
            let got = Double(batched[3 * strideC + i * ldc + j])
            worst = max(worst, abs(got - (0.5 * sum + prior)) / (0.5 * mag + abs(prior)))
        }
    }
    #expect(worst <= tolerance(k))
    // Bytes between the C matrices are left alone.
    #expect(batched[m * ldc + 2] == c0[m * ldc + 2])
}

@Test func gemmFewRowsPathMatchesPackedPathExactly() {
    // Up to four rows skip packing; each row must come out bit for bit as in a larger product.
    for m in 1...GEMMProblem.fewRows {
        for (index, (ta, tb)) in transposes.enumerated() {
            let t = GEMMCase(m: m, n: 77, k: 300, transA: ta, transB: tb, alpha: 0.75, beta: index % 2 == 0 ? 0 : 1.5,
                             pad: 1, seed: 200 + UInt64(10 * m + index))
            let direct = t.run(threads: 2, fewRows: true)
            let packed = t.run(threads: 1, kernel: GEMMMicroKernel.best)
            #expect(direct == packed, "m=\(m) tA=\(ta) tB=\(tb)")
            #expect(t.run(threads: 1) == packed, "m=\(m) tA=\(ta) tB=\(tb): public entry")
            let (error, kept) = t.check(direct)
            #expect(error <= tolerance(300) && kept, "m=\(m) tA=\(ta) tB=\(tb)")
        }
    }
}

@Test func packedPanelsOfAHoldOpAInPanelOrderWithZeroPadding() {
    // Depths around the 8- and 16-wide transposes (and their scalar tails), both layouts of A.
    for mr in [6, 12] {
        for kc in [1, 7, 8, 15, 16, 17, 31, 32, 47, 259] {
            for trans in [false, true] {
                let rows = 2 * mr + 5, i0 = 3, p0 = 2
                let m = i0 + rows + 1, k = p0 + kc + 3
                let lda = (trans ? m : k) + 5
                let a = (0..<((trans ? k : m) * lda)).map { Float($0 % 1009) * 0.5 - 7 }
                func opA(_ i: Int, _ p: Int) -> Float { trans ? a[p * lda + i] : a[i * lda + p] }
                let panels = (rows + mr - 1) / mr
                var dst = [Float](repeating: .nan, count: panels * kc * mr)
                a.withUnsafeBufferPointer { pa in
                    dst.withUnsafeMutableBufferPointer { pd in
                        GEMMPack.packA(pa.baseAddress!, lda: lda, trans: trans, i0: i0, rows: rows, p0: p0, kc: kc, mr: mr,
                                       into: pd.baseAddress!)
                    }
                }
                var wrong = 0
                for panel in 0..<panels {
                    for p in 0..<kc {
                        for i in 0..<mr {
                            let row = panel * mr + i
                            let expected: Float = row < rows ? opA(i0 + row, p0 + p) : 0
                            if dst[panel * kc * mr + p * mr + i] != expected { wrong += 1 }
                        }
                    }
                }
                #expect(wrong == 0, "mr=\(mr) kc=\(kc) trans=\(trans): \(wrong) packed values wrong")
            }
        }
    }
}

@Test func packedPanelsOfBHoldOpBWhetherPackedWholeOrInRunsOfRows() {
    // `sgemm` packs a plain B in runs of rows, each into its depth block's panels (`panelStride`).
    for nr in [16, 32] {
        for trans in [false, true] {
            let cols = 2 * nr + 5, j0 = 3, p0 = 2, kc = 37
            let n = j0 + cols + 1, k = p0 + kc + 3
            let ldb = (trans ? k : n) + 5
            let b = (0..<((trans ? n : k) * ldb)).map { Float($0 % 1013) * 0.25 - 9 }
            func opB(_ p: Int, _ j: Int) -> Float { trans ? b[j * ldb + p] : b[p * ldb + j] }
            let panels = (cols + nr - 1) / nr
            var whole = [Float](repeating: .nan, count: panels * kc * nr)
            var runs = whole
            b.withUnsafeBufferPointer { pb in
                whole.withUnsafeMutableBufferPointer { pd in
                    GEMMPack.packB(pb.baseAddress!, ldb: ldb, trans: trans, p0: p0, kc: kc, j0: j0, cols: cols, nr: nr,
                                   into: pd.baseAddress!)
                }
                runs.withUnsafeMutableBufferPointer { pd in
                    var q = 0
                    for run in [1, 8, 5, 16, 7] {  // 37 rows in runs of uneven lengths
                        GEMMPack.packB(pb.baseAddress!, ldb: ldb, trans: trans, p0: p0 + q, kc: run, j0: j0, cols: cols,
                                       nr: nr, into: pd.baseAddress! + q * nr, panelStride: kc * nr)
                        q += run
                    }
                }
            }
            var wrong = 0
            for panel in 0..<panels {
                for p in 0..<kc {
                    for j in 0..<nr {
                        let col = panel * nr + j
                        let expected: Float = col < cols ? opB(p0 + p, j0 + col) : 0
                        if whole[panel * kc * nr + p * nr + j] != expected { wrong += 1 }
                    }
                }
            }
            #expect(wrong == 0, "nr=\(nr) trans=\(trans): \(wrong) packed values wrong")
            #expect(zip(whole, runs).allSatisfy { $0.bitPattern == $1.bitPattern }, "nr=\(nr) trans=\(trans): runs of rows differ")
        }
    }
}

@Test func gemmPackingBInRunsOfRowsKeepsRunsInsideDepthBlocks() {
    // A plain B is packed in runs of rows that must not span two depth blocks, whatever the
    // kernel's depth block (here also odd multiples, which cannot be halved evenly).
    let base = GEMMMicroKernel.avx2
    for kc in [100, 96, 40] {
        let kernel = GEMMMicroKernel(name: "avx2-kc\(kc)", mr: base.mr, nr: base.nr, kc: kc, mc: base.mc, body: base.body)
        let t = GEMMCase(m: 2 * kernel.mr + 1, n: 3 * kernel.nr + 2, k: 3 * kc + 7, transA: true, transB: false,
                         alpha: 1, beta: 0, pad: 1, seed: 31 + UInt64(kc))
        let serial = t.run(threads: 1, kernel: kernel, minParallelWork: 0)
        for threads in [2, 3, 4] {
            let same = t.run(threads: threads, kernel: kernel, minParallelWork: 0) == serial
            #expect(same, "kc=\(kc) threads=\(threads): differs from one thread")
        }
        #expect(t.check(serial).error <= tolerance(t.k), "kc=\(kc)")
    }
}

@Test func gemmCuttingALongDepthIntoSpansIsBitIdentical() {
    // B for one depth block of all columns fits, all of k does not: k is cut into spans.
    for kernel in GEMMMicroKernel.available {
        for (ta, tb) in transposes {
            let n = 3 * kernel.nr + 1, k = 3 * kernel.kc + 5
            let t = GEMMCase(m: kernel.mr + 3, n: n, k: k, transA: ta, transB: tb, alpha: -0.5, beta: 0.75, pad: 1, seed: 21)
            let colPanels = (n + kernel.nr - 1) / kernel.nr
            let whole = t.run(threads: 1, kernel: kernel)
            let spans1 = t.run(threads: 1, kernel: kernel, maxPackedB: kernel.kc * kernel.nr * colPanels)
            let spans2 = t.run(threads: 2, kernel: kernel, maxPackedB: kernel.kc * kernel.nr * colPanels, minParallelWork: 0)
            #expect(spans1 == whole && spans2 == whole, "\(kernel.name) tA=\(ta) tB=\(tb): spans changed the result")
            let (error, kept) = t.check(spans2)
            #expect(error <= tolerance(k) && kept, "\(kernel.name) tA=\(ta) tB=\(tb)")
        }
    }
}

/// Attention's tiles read A in place through `stridedBody`; it must equal packing A and running
/// `body`, bit for bit, in both layouts it is used with (rows contiguous, or depth steps contiguous).
@Test(arguments: GEMMMicroKernel.available.filter { $0.stridedBody != nil }.map(\.name))
func stridedKernelEqualsPackedKernel(kernelName: String) {
    let kernel = GEMMMicroKernel.available.first { $0.name == kernelName }!
    let strided = kernel.stridedBody!
    let mr = kernel.mr, nr = kernel.nr, ldc = nr + 3
    var rng = SeededRandom(seed: 41)
    func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextDouble() * 2 - 1) } }
    for kc in [1, 7, 64, 257] {
        for rowsContiguous in [true, false] {
            for (alpha, beta) in [(Float(1), Float(0)), (-0.75, 1), (0.5, 0.5)] {
                // A stored with padding between rows (or depth steps) that the kernel must skip.
                let (rowStride, depthStride) = rowsContiguous ? (kc + 5, 1) : (1, mr + 3)
                let a = random(rowsContiguous ? mr * rowStride : kc * depthStride)
                let b = random(kc * nr)
                var c = random(mr * ldc)
                if beta == 0 { for i in stride(from: 0, to: c.count, by: 2) { c[i] = .nan } }
                var panel = [Float](repeating: 0, count: kc * mr)
                for p in 0..<kc { for i in 0..<mr { panel[p * mr + i] = a[i * rowStride + p * depthStride] } }
                var packed = c, inPlace = c
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        panel.withUnsafeBufferPointer { pp in
                            packed.withUnsafeMutableBufferPointer { pc in
                                kernel.body(kc, pp.baseAddress!, pb.baseAddress!, pc.baseAddress!, ldc, alpha, beta,
                                            UnsafeRawPointer(pb.baseAddress!))
                            }
                        }
                        inPlace.withUnsafeMutableBufferPointer { pc in
                            strided(kc, pa.baseAddress!, rowStride, depthStride, pb.baseAddress!, pc.baseAddress!, ldc, alpha, beta)
                        }
                    }
                }
                let same = zip(packed, inPlace).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "\(kernelName) kc=\(kc) rowsContiguous=\(rowsContiguous) alpha=\(alpha) beta=\(beta)")
                // Only the tile's nr columns are written, and beta 0 never reads C.
                for i in 0..<mr {
                    for j in 0..<ldc {
                        let x = inPlace[i * ldc + j]
                        if j < nr { #expect(!x.isNaN, "\(kernelName): beta 0 read C") }
                        else { #expect(x.bitPattern == c[i * ldc + j].bitPattern, "\(kernelName): wrote past the tile") }
                    }
                }
                // And the product is right (the packed body is checked against Float64 elsewhere; this
                // catches a strided kernel that reads the wrong element of A in the same wrong way).
                var worst = 0.0
                for i in 0..<mr {
                    for j in 0..<nr {
                        var sum = 0.0, mag = 0.0
                        for p in 0..<kc {
                            let t = Double(a[i * rowStride + p * depthStride]) * Double(b[p * nr + j])
                            sum += t; mag += abs(t)
                        }
                        let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                        let want = Double(alpha) * sum + prior
                        worst = max(worst, abs(Double(inPlace[i * ldc + j]) - want) / (abs(Double(alpha)) * mag + abs(prior) + 1e-30))
                    }
                }
                #expect(worst <= tolerance(kc), "\(kernelName) kc=\(kc): error \(worst)")
            }
        }
    }
}
