import Foundation

/// Single-precision general matrix multiply on row-major matrices.
///
/// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`, where `op(X)` is `X` or its
/// transpose. `lda`, `ldb`, `ldc` are row strides (elements) of the matrices as stored:
/// `A` is stored `[m, k]` (or `[k, m]` when `transA`), `B` is stored `[k, n]` (or `[n, k]` when `transB`).
///
/// Blocked as in BLIS: B is packed into `kc x nr` micro-panels, A into `mr x kc` micro-panels, and a
/// SIMD micro-kernel computes each `mr x nr` tile of C. Every element of C is accumulated in the
/// same order whatever the thread count or the tile it falls in, so results are bit-identical
/// across thread counts and runs. `beta == 0` never reads C (NaNs there are overwritten);
/// `alpha == 0` or `k == 0` never reads A or B.
public enum GEMM {
    public static func sgemm(
        transA: Bool, transB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        threads: Int = Parallel.threads
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m=\(m) n=\(n) k=\(k)")
        precondition(threads > 0, "sgemm: threads must be > 0, got \(threads)")
        if m == 0 || n == 0 { return }
        precondition(ldc >= n, "sgemm: ldc=\(ldc) must be >= n=\(n)")
        if k == 0 || alpha == 0 {
            scale(c, m: m, n: n, ldc: ldc, beta: beta)
            return
        }
        precondition(lda >= (transA ? m : k), "sgemm: lda=\(lda) must be >= \(transA ? "m" : "k")=\(transA ? m : k)")
        precondition(ldb >= (transB ? k : n), "sgemm: ldb=\(ldb) must be >= \(transB ? "k" : "n")=\(transB ? k : n)")
        let problem = GEMMProblem(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        if GEMMProblem.prefersFewRows(m: m, transB: transB) {
            problem.runFewRows(kc: GEMMMicroKernel.best.kc, threads: threads, minParallelWork: GEMMProblem.minParallelWork)
        } else {
            problem.run(kernel: GEMMMicroKernel.best, threads: threads)
        }
    }

    /// `batch` independent products `C_i = alpha * op(A_i) · op(B_i) + beta * C_i`, where matrix `i`
    /// starts `i * strideA` (`strideB`, `strideC`) elements after `a` (`b`, `c`); a stride of 0 shares
    /// one operand across the batch (not allowed for C). Small products run whole on separate
    /// threads, large ones one after another with all threads. Each `C_i` is bit-identical to what
    /// `sgemm` gives for it alone.
    public static func sgemmBatched(
        transA: Bool, transB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int, strideA: Int,
        b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int,
        batch: Int,
        threads: Int = Parallel.threads
    ) {
        precondition(batch >= 0, "sgemmBatched: negative batch \(batch)")
        precondition(strideA >= 0 && strideB >= 0, "sgemmBatched: negative stride (strideA=\(strideA), strideB=\(strideB))")
        precondition(threads > 0, "sgemmBatched: threads must be > 0, got \(threads)")
        if batch == 0 || m == 0 || n == 0 { return }
        precondition(batch == 1 || strideC >= (m - 1) * ldc + n,
                     "sgemmBatched: strideC=\(strideC) makes the C matrices overlap (needs >= \((m - 1) * ldc + n))")
        let a = UncheckedPointer(a), b = UncheckedPointer(b), c = UncheckedPointer(c)
        @Sendable func one(_ i: Int, _ t: Int) {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a.pointer + i * strideA, lda: lda, b: b.pointer + i * strideB, ldb: ldb,
                  beta: beta, c: c.pointer + i * strideC, ldc: ldc, threads: t)
        }
        let workers = min(threads, batch)
        if workers == 1 || m * n * k >= 4 * GEMMProblem.minParallelWork {
            for i in 0..<batch { one(i, threads) }
            return
        }
        GEMMWorkCounter(batch).run(threads: workers) { i in one(i, 1) }
    }

    /// The micro-kernel `sgemm` runs on this CPU (e.g. `avx512-12x32`, `avx2-6x16`).
    public static var kernelName: String { GEMMMicroKernel.best.name }

    /// `C = beta * C`, with `beta == 0` writing zeros without reading C.
    static func scale(_ c: UnsafeMutablePointer<Float>, m: Int, n: Int, ldc: Int, beta: Float) {
        if beta == 1 { return }
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 {
                row.update(repeating: 0, count: n)
            } else {
                for j in 0..<n { row[j] *= beta }
            }
        }
    }
}

/// One sgemm call, validated, with its blocking plan.
struct GEMMProblem: @unchecked Sendable {
    let transA: Bool, transB: Bool
    let m: Int, n: Int, k: Int
    let alpha: Float
    let a: UnsafePointer<Float>, lda: Int
    let b: UnsafePointer<Float>, ldb: Int
    let beta: Float
    let c: UnsafeMutablePointer<Float>, ldc: Int

    /// Largest packed-B chunk (floats): all of `k` for as many `nr` panels as fit.
    static let maxPackedB = 1 << 22
    /// Largest row block of A (floats) packed over all of `k` at once (per thread).
    static let maxPackedA = 1 << 20
    /// Largest A (floats) packed once and shared by every thread (see `run`).
    static let maxSharedA = 1 << 22
    /// Below this many multiply-adds a single thread is faster than waking others.
    static let minParallelWork = 1 << 20

    /// `maxPackedB`, `minParallelWork` and `cBlockFloats` are parameters only so that tests can reach every path.
    func run(kernel: GEMMMicroKernel, threads requested: Int,
             maxPackedB: Int = GEMMProblem.maxPackedB, minParallelWork: Int = GEMMProblem.minParallelWork,
             cBlockFloats: Int = GEMMProblem.cBlockFloats) {
        let mr = kernel.mr, nr = kernel.nr, kcMax = kernel.kc
        let rowPanels = (m + mr - 1) / mr
        let colPanels = (n + nr - 1) / nr
        let threads = m * n * k < minParallelWork ? 1 : requested
        // B is packed over all of k for a chunk of columns, shared by every thread.
        let chunkPanels = max(1, min(colPanels, maxPackedB / (k * nr)))

        // With a long k (the output layer's input gradient: k = vocabulary) B fits only a few
        // columns at a time, and every chunk of columns packs all of A again. Then k is cut into
        // spans (whole depth blocks) over which B fits for all columns, and C is revisited once
        // per span instead: cheaper when C is smaller than the A copies saved. Every element
        // still sums the same depth blocks in the same order, so the result is bit-identical.
        let chunks = (colPanels + chunkPanels - 1) / chunkPanels
        if chunks > 1 && k > kcMax {
            let span = max(kcMax, maxPackedB / (colPanels * nr) / kcMax * kcMax)
            let spans = (k + span - 1) / span
            if spans > 1 && m * k * (chunks - 1) > 2 * m * n * (spans - 1) {
                var k0 = 0
                while k0 < k {
                    let depth = min(span, k - k0)
                    let part = GEMMProblem(
                        transA: transA, transB: transB, m: m, n: n, k: depth, alpha: alpha,
                        a: transA ? a + k0 * lda : a + k0, lda: lda,
                        b: transB ? b + k0 : b + k0 * ldb, ldb: ldb,
                        beta: k0 == 0 ? beta : 1, c: c, ldc: ldc)
                    part.run(kernel: kernel, threads: requested, maxPackedB: maxPackedB,
                             minParallelWork: minParallelWork, cBlockFloats: cBlockFloats)
                    k0 += depth
                }
                return
            }
        }

        // Work items: row blocks of about `mc` rows (a multiple of the thread count), times
        // column groups (below); threads take them in order as they become free.
        let mc = threads == 1 ? kernel.mcOneThread ?? kernel.mc : kernel.mc
        let blocksForCache = max(1, (m + mc - 1) / mc)
        let cacheRowBlocks = min(rowPanels, threads > 1 ? (blocksForCache + threads - 1) / threads * threads : blocksForCache)
        // Narrow products (n < 16 panels) cannot split their columns: four items per thread come
        // from the rows instead, so a thread that starts late still gets a share. Each item
        // packs only its own rows of A, so this costs no extra copying.
        let rowBlocks = threads > 1 && colPanels < 16 ? min(rowPanels, max(cacheRowBlocks, 4 * threads)) : cacheRowBlocks
        let maxPanelsPerBlock = (rowPanels + rowBlocks - 1) / rowBlocks

        let bBuffer = GEMMScratch.take(chunkPanels * nr * k)
        defer { GEMMScratch.give(bBuffer) }
        let bShared = UncheckedPointer(bBuffer.pointer)

        // With few row blocks the items split the columns, and each column group would pack its
        // rows of A again; with a long k (weight gradients: k = batch × tokens) that copying rivals
        // the arithmetic. Then A is packed once for all rows and all of k, shared by every item:
        // depth block p0 at `p0 * rowPanels * mr`, its row panels `kc * mr` apart.
        let aShared: GEMMBuffer?
        if threads > 1 && rowBlocks < 2 * threads && min(chunkPanels, colPanels) >= 2
            && rowPanels * mr * k <= Self.maxSharedA {
            let buffer = GEMMScratch.take(rowPanels * mr * k)
            let dst = UncheckedPointer(buffer.pointer)
            let depthBlocks = (k + kcMax - 1) / kcMax
            GEMMWorkCounter(depthBlocks).run(threads: threads) { block in
                let p0 = block * kcMax, kc = min(kcMax, k - p0)
                GEMMPack.packA(a, lda: lda, trans: transA, i0: 0, rows: m, p0: p0, kc: kc, mr: mr,
                               into: dst.pointer + p0 * rowPanels * mr)
            }
            aShared = buffer
        } else {
            aShared = nil
        }
        defer { if let aShared { GEMMScratch.give(aShared) } }
        let aSharedPointer = aShared.map { UncheckedPointer($0.pointer) }

        var chunkStart = 0  // first column panel of the chunk
        while chunkStart < colPanels {
            let panels = min(chunkPanels, colPanels - chunkStart)
            let j0 = chunkStart * nr
            let cols = min(n, (chunkStart + panels) * nr) - j0

            // Pack this chunk of B in pieces that threads claim as they arrive, so a thread the OS
            // starts late delays nothing. A transposed B is cut into a few panels at a time (each
            // panel reads its own stored rows). A plain B is cut into runs of its stored rows, each
            // row read whole across every panel: cut into panels, each piece read only its panel's
            // 64 bytes of every row, a stride the copy waited on (with 8 panels, 39% of a 64 × 1024
            // × 128 weight-gradient product went to packing its B).
            if transB {
                let panelsPerPack = max(1, min(8, panels / (4 * threads)))
                let packItems = (panels + panelsPerPack - 1) / panelsPerPack
                GEMMWorkCounter(packItems).run(threads: threads) { item in
                    let first = item * panelsPerPack, last = min(panels, first + panelsPerPack)
                    let jLo = first * nr, jHi = min(cols, last * nr)
                    var p0 = 0
                    while p0 < k {
                        let kc = min(kcMax, k - p0)
                        GEMMPack.packB(b, ldb: ldb, trans: true, p0: p0, kc: kc, j0: j0 + jLo, cols: jHi - jLo, nr: nr,
                                       into: bShared.pointer + p0 * panels * nr + first * kc * nr)
                        p0 += kc
                    }
                }
            } else {
                // Runs that divide the depth block (halved from it while even), at least four per
                // thread when the depth allows, so that no run spans two blocks.
                var rows = kcMax
                while rows > 8 && rows % 2 == 0 && (k + rows - 1) / rows < 4 * threads { rows /= 2 }
                let runRows = rows
                GEMMWorkCounter((k + runRows - 1) / runRows).run(threads: threads) { item in
                    let q0 = item * runRows, q1 = min(k, q0 + runRows)
                    let p0 = q0 / kcMax * kcMax, kc = min(kcMax, k - p0)
                    GEMMPack.packB(b, ldb: ldb, trans: false, p0: q0, kc: q1 - q0, j0: j0, cols: cols, nr: nr,
                                   into: bShared.pointer + p0 * panels * nr + (q0 - p0) * nr, panelStride: kc * nr)
                }
            }

            // With several threads, at least four items each keeps the wait for the last one short;
            // extra items split the columns (groups of at least 8 panels, or fewer when there are
            // few rows), which costs only repacking A once more per group.
            let colGroups: Int
            if threads > 1 {
                let wanted = (4 * threads + rowBlocks - 1) / rowBlocks
                let widest = rowBlocks < 2 * threads ? panels : max(1, panels / 8)
                colGroups = max(1, min(wanted, widest))
            } else {
                colGroups = 1
            }
            let items = rowBlocks * colGroups
            // A for all of k when an item's columns span several C sub-blocks, else one depth block.
            let maxCols = (panels + colGroups - 1) / colGroups
            let panelsPerSub = max(1, cBlockFloats / (maxPanelsPerBlock * mr * nr))
            let wholeK = maxCols > panelsPerSub && maxPanelsPerBlock * mr * k <= Self.maxPackedA
            let aFloats = aSharedPointer != nil ? 0 : maxPanelsPerBlock * mr * (wholeK ? k : kcMax)
            GEMMWorkCounter(items).run(threads: threads) { item in
                let aBuffer = GEMMScratch.take(aFloats + mr * nr)
                defer { GEMMScratch.give(aBuffer) }
                let rows = Parallel.range(item / colGroups, of: rowBlocks, total: rowPanels)
                let group = Parallel.range(item % colGroups, of: colGroups, total: panels)
                macroKernel(kernel, rowPanels: rows, colPanels: group, chunkPanels: panels, j0: j0,
                            bPack: bShared.pointer, aPack: aBuffer.pointer, edge: aBuffer.pointer + aFloats,
                            wholeK: wholeK, panelsPerSub: panelsPerSub, aShared: aSharedPointer?.pointer,
                            aSharedStride: rowPanels * mr)
            }
            chunkStart += panels
        }
    }

    /// All of k for rows `rowPanels` and columns `colPanels` (within the current packed B chunk).
    ///
    /// When the columns are many, A is packed for all of k at once and C is walked in column
    /// sub-blocks of about `cBlockFloats`, so each sub-block of C stays in L2 across the depth blocks.
    private func macroKernel(
        _ kernel: GEMMMicroKernel, rowPanels: Range<Int>, colPanels: Range<Int>, chunkPanels: Int, j0: Int,
        bPack: UnsafeMutablePointer<Float>, aPack: UnsafeMutablePointer<Float>, edge: UnsafeMutablePointer<Float>,
        wholeK: Bool, panelsPerSub: Int, aShared: UnsafeMutablePointer<Float>? = nil, aSharedStride: Int = 0
    ) {
        if rowPanels.isEmpty || colPanels.isEmpty { return }
        let mr = kernel.mr, nr = kernel.nr, kcMax = kernel.kc
        let i0 = rowPanels.lowerBound * mr
        let rows = min(m, rowPanels.upperBound * mr) - i0
        if let aShared {
            var sub = colPanels.lowerBound
            while sub < colPanels.upperBound {
                let subEnd = min(colPanels.upperBound, sub + panelsPerSub)
                var p0 = 0
                while p0 < k {
                    let kc = min(kcMax, k - p0)
                    tiles(kernel, kc: kc, p0: p0, aBlock: aShared + p0 * aSharedStride + rowPanels.lowerBound * kc * mr,
                          bBlock: bPack + p0 * chunkPanels * nr, i0: i0, rows: rows, colPanels: sub..<subEnd, j0: j0, edge: edge)
                    p0 += kc
                }
                sub = subEnd
            }
            return
        }
        if colPanels.count <= panelsPerSub || !wholeK {
            var p0 = 0
            while p0 < k {
                let kc = min(kcMax, k - p0)
                GEMMPack.packA(a, lda: lda, trans: transA, i0: i0, rows: rows, p0: p0, kc: kc, mr: mr, into: aPack)
                tiles(kernel, kc: kc, p0: p0, aBlock: aPack, bBlock: bPack + p0 * chunkPanels * nr,
                      i0: i0, rows: rows, colPanels: colPanels, j0: j0, edge: edge)
                p0 += kc
            }
            return
        }
        let aStride = rowPanels.count * mr  // floats of packed A per unit of depth
        var p0 = 0
        while p0 < k {
            let kc = min(kcMax, k - p0)
            GEMMPack.packA(a, lda: lda, trans: transA, i0: i0, rows: rows, p0: p0, kc: kc, mr: mr,
                           into: aPack + p0 * aStride)
            p0 += kc
        }
        var sub = colPanels.lowerBound
        while sub < colPanels.upperBound {
            let subEnd = min(colPanels.upperBound, sub + panelsPerSub)
            var p0 = 0
            while p0 < k {
                let kc = min(kcMax, k - p0)
                tiles(kernel, kc: kc, p0: p0, aBlock: aPack + p0 * aStride, bBlock: bPack + p0 * chunkPanels * nr,
                      i0: i0, rows: rows, colPanels: sub..<subEnd, j0: j0, edge: edge)
                p0 += kc
            }
            sub = subEnd
        }
    }

    /// C sub-block size (floats) that stays in L2 with the packed A and B panels around it.
    static let cBlockFloats = 1 << 17

    /// One depth block: every micro-tile of `colPanels` x the packed rows.
    @inline(__always)
    private func tiles(
        _ kernel: GEMMMicroKernel, kc: Int, p0: Int, aBlock: UnsafeMutablePointer<Float>,
        bBlock: UnsafeMutablePointer<Float>, i0: Int, rows: Int, colPanels: Range<Int>, j0: Int,
        edge: UnsafeMutablePointer<Float>
    ) {
        let mr = kernel.mr, nr = kernel.nr, body = kernel.body
        let betaHere: Float = p0 == 0 ? beta : 1
        let panelFloats = kc * nr
        // The next B micro-panel is prefetched into L1 a slice per tile (the kernel spreads its
        // slice over its loop) while this one is in use; once all of it is asked for, the tiles
        // point the kernel at the panel in use, already in L1.
        let sliceFloats = (kc + 3) / 4 * 16  // kc / 4 lines of 16 floats
        for jp in colPanels {
            let bPanel = UnsafePointer(bBlock + jp * panelFloats)
            let hasNext = jp + 1 < colPanels.upperBound
            let col = j0 + jp * nr
            let w = min(nr, n - col)
            var aPanel = UnsafePointer(aBlock)
            var row = i0
            var prefetchAt = 0
            while row < i0 + rows {
                let ahead = UnsafeRawPointer(hasNext && prefetchAt < panelFloats ? bPanel + panelFloats + prefetchAt : bPanel)
                prefetchAt += sliceFloats
                let h = min(mr, m - row)
                let cTile = c + row * ldc + col
                if h == mr && w == nr {
                    body(kc, aPanel, bPanel, cTile, ldc, alpha, betaHere, ahead)
                } else {
                    body(kc, aPanel, bPanel, edge, nr, 1, 0, ahead)
                    storeEdgeTile(edge, nr: nr, into: cTile, ldc: ldc, rows: h, cols: w, alpha: alpha, beta: betaHere)
                }
                aPanel += kc * mr
                row += mr
            }
        }
    }
}

/// Stores the `h x w` corner of a micro-tile computed into `edge` (row stride `nr`, alpha 1, beta 0)
/// as a full tile would be stored: `c = alpha · edge`, or `fma(alpha, edge, beta · c)`.
@inline(__always)
func storeEdgeTile(_ edge: UnsafePointer<Float>, nr: Int, into c: UnsafeMutablePointer<Float>, ldc: Int,
                   rows h: Int, cols w: Int, alpha: Float, beta: Float) {
    for r in 0..<h {
        let src = edge + r * nr, dst = c + r * ldc
        if beta == 0 {
            for j in 0..<w { dst[j] = alpha * src[j] }
        } else {
            for j in 0..<w { dst[j] = (beta * dst[j]).addingProduct(alpha, src[j]) }
        }
    }
}

/// Hands out work items to threads in order; which thread gets an item never changes a result.
///
/// `run` lets the caller and up to `threads - 1` pool threads take items as they come, and
/// returns once every item is finished. A helper the OS starts late finds no work left and
/// leaves, so the caller never waits for a thread that did not start: on a loaded machine a
/// small product simply runs on the calling thread.
final class GEMMWorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var nextItem = 0
    private var finished = 0
    private let count: Int
    private let allDone = DispatchSemaphore(value: 0)

    init(_ count: Int) { self.count = count }

    func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        if nextItem >= count { return nil }
        nextItem += 1
        return nextItem - 1
    }

    private func finish() {
        lock.lock()
        finished += 1
        let last = finished == count
        lock.unlock()
        if last { allDone.signal() }
    }

    /// Runs `body(item)` for every item on up to `threads` threads. `body` must only write memory
    /// owned by its item. Returns after the last item, with no thread of this call still inside `body`.
    func run(threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
        if count == 0 { return }
        if threads > 1 && count > 1, #available(macOS 15, *),
           WorkerPool.shared.run(count: count, threads: threads, body) { return }
        let work: @Sendable () -> Void = { [self] in
            while let item = next() {
                body(item)
                finish()
            }
        }
        for _ in 1..<max(1, min(threads, count)) {
            DispatchQueue.global(qos: .userInitiated).async(execute: work)
        }
        work()
        allDone.wait()
    }
}

/// A pointer handed to worker threads; the caller guarantees the memory outlives the work.
struct UncheckedPointer<P>: @unchecked Sendable {
    let pointer: P
    init(_ pointer: P) { self.pointer = pointer }
}

/// A 64-byte aligned float buffer, recycled between calls so that packing never hits `mmap`.
final class GEMMBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, capacity) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(1, capacity))
    }

    deinit { pointer.deallocate() }
}

/// A small pool of packing buffers shared by all threads and calls.
enum GEMMScratch {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var free: [GEMMBuffer] = []
    /// Buffers above this size (floats) are freed rather than kept.
    private static let maxKept = 1 << 23

    static func take(_ count: Int) -> GEMMBuffer {
        lock.lock()
        if let i = free.firstIndex(where: { $0.capacity >= count }) {
            let buffer = free.remove(at: i)
            lock.unlock()
            return buffer
        }
        lock.unlock()
        return GEMMBuffer(capacity: count)
    }

    static func give(_ buffer: GEMMBuffer) {
        if buffer.capacity > maxKept { return }
        lock.lock(); defer { lock.unlock() }
        free.append(buffer)
        free.sort { $0.capacity < $1.capacity }
        if free.count > 8 { free.removeFirst() }
    }
}
