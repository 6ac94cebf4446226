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
        problem.run(kernel: GEMMMicroKernel.best, threads: threads)
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
        func one(_ i: Int, _ t: Int) {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                  beta: beta, c: c + i * strideC, ldc: ldc, threads: t)
        }
        let workers = min(threads, batch)
        if workers == 1 || m * n * k >= 4 * GEMMProblem.minParallelWork {
            for i in 0..<batch { one(i, threads) }
            return
        }
        let claim = GEMMWorkCounter(batch)
        Parallel.forEach(workers, threads: workers) { _ in
            while let i = claim.next() { one(i, 1) }
        }
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
    /// Below this many multiply-adds a single thread is faster than waking others.
    static let minParallelWork = 1 << 20

    /// `maxPackedB` and `minParallelWork` are parameters only so that tests can reach every path.
    func run(kernel: GEMMMicroKernel, threads requested: Int,
             maxPackedB: Int = GEMMProblem.maxPackedB, minParallelWork: Int = GEMMProblem.minParallelWork) {
        let mr = kernel.mr, nr = kernel.nr, kcMax = kernel.kc
        let rowPanels = (m + mr - 1) / mr
        let colPanels = (n + nr - 1) / nr
        let threads = m * n * k < minParallelWork ? 1 : requested
        // B is packed over all of k for a chunk of columns, shared by every thread.
        let chunkPanels = max(1, min(colPanels, maxPackedB / (k * nr)))

        // Work items: row blocks of about `mc` rows (a multiple of the thread count so the
        // static share is balanced), times column groups when there are too few rows.
        var rowBlocks = max(1, (m + kernel.mc - 1) / kernel.mc)
        if threads > 1 { rowBlocks = (rowBlocks + threads - 1) / threads * threads }
        rowBlocks = min(rowBlocks, rowPanels)
        let maxPanelsPerBlock = (rowPanels + rowBlocks - 1) / rowBlocks

        let bBuffer = GEMMScratch.take(chunkPanels * nr * k)
        defer { GEMMScratch.give(bBuffer) }
        let bPack = bBuffer.pointer

        var chunkStart = 0  // first column panel of the chunk
        while chunkStart < colPanels {
            let panels = min(chunkPanels, colPanels - chunkStart)
            let j0 = chunkStart * nr
            let cols = min(n, (chunkStart + panels) * nr) - j0

            // Pack this chunk of B, a few panels at a time. Threads claim work as they arrive, so a
            // thread the OS starts late delays nothing.
            let panelsPerPack = max(1, min(8, panels / (4 * threads)))
            let packItems = (panels + panelsPerPack - 1) / panelsPerPack
            let packClaim = GEMMWorkCounter(packItems)
            let packThreads = min(threads, packItems)
            Parallel.forEach(packThreads, threads: packThreads) { _ in
                while let item = packClaim.next() {
                    let first = item * panelsPerPack, last = min(panels, first + panelsPerPack)
                    let jLo = first * nr, jHi = min(cols, last * nr)
                    var p0 = 0
                    while p0 < k {
                        let kc = min(kcMax, k - p0)
                        GEMMPack.packB(b, ldb: ldb, trans: transB, p0: p0, kc: kc, j0: j0 + jLo, cols: jHi - jLo, nr: nr,
                                       into: bPack + p0 * panels * nr + first * kc * nr)
                        p0 += kc
                    }
                }
            }

            var colGroups = 1
            if threads > 1 && rowBlocks < 2 * threads { colGroups = min(panels, 2 * threads) }
            let items = rowBlocks * colGroups
            let claim = GEMMWorkCounter(items)
            let workers = min(threads, items)
            Parallel.forEach(workers, threads: workers) { _ in
                let aBuffer = GEMMScratch.take(maxPanelsPerBlock * mr * kcMax + mr * nr)
                defer { GEMMScratch.give(aBuffer) }
                while let item = claim.next() {
                    let rows = Parallel.range(item / colGroups, of: rowBlocks, total: rowPanels)
                    let group = Parallel.range(item % colGroups, of: colGroups, total: panels)
                    macroKernel(kernel, rowPanels: rows, colPanels: group, chunkPanels: panels, j0: j0,
                                bPack: bPack, aPack: aBuffer.pointer)
                }
            }
            chunkStart += panels
        }
    }

    /// All of k for rows `rowPanels` and columns `colPanels` (within the current packed B chunk).
    private func macroKernel(
        _ kernel: GEMMMicroKernel, rowPanels: Range<Int>, colPanels: Range<Int>, chunkPanels: Int, j0: Int,
        bPack: UnsafeMutablePointer<Float>, aPack: UnsafeMutablePointer<Float>
    ) {
        if rowPanels.isEmpty || colPanels.isEmpty { return }
        let mr = kernel.mr, nr = kernel.nr, kcMax = kernel.kc
        let body = kernel.body
        let i0 = rowPanels.lowerBound * mr
        let rows = min(m, rowPanels.upperBound * mr) - i0
        let edge = aPack + rowPanels.count * mr * kcMax  // mr x nr scratch for partial tiles
        var p0 = 0
        while p0 < k {
            let kc = min(kcMax, k - p0)
            GEMMPack.packA(a, lda: lda, trans: transA, i0: i0, rows: rows, p0: p0, kc: kc, mr: mr, into: aPack)
            let betaHere: Float = p0 == 0 ? beta : 1
            let bBlock = bPack + p0 * chunkPanels * nr
            for jp in colPanels {
                let bPanel = UnsafePointer(bBlock + jp * kc * nr)
                let col = j0 + jp * nr
                let w = min(nr, n - col)
                var aPanel = UnsafePointer(aPack)
                var row = i0
                while row < i0 + rows {
                    let h = min(mr, m - row)
                    let cTile = c + row * ldc + col
                    if h == mr && w == nr {
                        body(kc, aPanel, bPanel, cTile, ldc, alpha, betaHere)
                    } else {
                        body(kc, aPanel, bPanel, edge, nr, 1, 0)
                        for r in 0..<h {
                            let src = edge + r * nr, dst = cTile + r * ldc
                            if betaHere == 0 {
                                for j in 0..<w { dst[j] = alpha * src[j] }
                            } else {
                                for j in 0..<w { dst[j] = (betaHere * dst[j]).addingProduct(alpha, src[j]) }
                            }
                        }
                    }
                    aPanel += kc * mr
                    row += mr
                }
            }
            p0 += kc
        }
    }
}

/// Hands out work items to threads in order; which thread gets an item never changes a result.
final class GEMMWorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var nextItem = 0
    private let count: Int

    init(_ count: Int) { self.count = count }

    func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        if nextItem >= count { return nil }
        nextItem += 1
        return nextItem - 1
    }
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
