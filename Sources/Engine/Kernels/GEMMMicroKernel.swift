import Foundation
#if arch(x86_64)
import EngineAVX512
#endif

/// A register-blocked micro-kernel: `C[mr, nr] = alpha * Apanel · Bpanel + beta * C` on full tiles,
/// with packed panels as laid out by `GEMMPack`. `beta == 0` never reads C.
///
/// Every kernel accumulates each C element over `p` in increasing order with one fused
/// multiply-add per step, then stores `fma(alpha, acc, beta * c)`, so all kernels (and the scalar
/// edge path) give bit-identical results.
@usableFromInline
struct GEMMMicroKernel: @unchecked Sendable {
    /// `ahead`: memory the caller will want next (the next B micro-panel); the kernel asks for one
    /// 64-byte line of it every 4 depth steps, `kc / 4` lines in all. A hint, never dereferenced.
    typealias Body = (
        _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
        _ ahead: UnsafeRawPointer) -> Void

    /// The same kernel with A read in place, element (row i, depth p) at
    /// `a[i * rowStride + p * depthStride]`: (kc, a, rowStride, depthStride, b, c, ldc, alpha, beta).
    typealias StridedBody = (
        _ kc: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ depthStride: Int, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) -> Void

    let name: String
    let mr: Int
    let nr: Int
    /// Depth of one packed block (B micro-panel `kc * nr` floats should stay in L1).
    let kc: Int
    /// Rows of A packed at a time (`mc * kc` floats should stay in L2).
    let mc: Int
    /// `mc` for a product computed on one thread. Measured on the AVX-512 kernel: 240 rather than
    /// 432 rows took the one-thread products with n = 1024 (2048x2816x1024 NN, 2816x2048x1024 TN)
    /// from 87-89% to 94-95% of OpenBLAS, the others no slower, while two-thread training steps
    /// were 1.5% slower with it, so each thread count keeps its own (docs/performance.md).
    var mcOneThread: Int? = nil
    let body: Body
    /// A read in place (attention's tiles); callers pack A for `body` where a kernel has none.
    var stridedBody: StridedBody? = nil

    /// 6 x 16 tile in 12 ymm accumulators (AVX2 + FMA with `-target-cpu haswell`).
    static let avx2 = GEMMMicroKernel(name: "avx2-6x16", mr: 6, nr: 16, kc: 256, mc: 144, body: kernel6x16,
                                      stridedBody: kernel6x16StridedA)

    /// The fastest kernel this CPU supports.
    /// 12 x 32 tile in 24 zmm accumulators, compiled in the EngineAVX512 module.
    static let avx512: GEMMMicroKernel? = {
        #if arch(x86_64)
        return GEMMMicroKernel(name: "avx512-12x32", mr: GEMMKernelsAVX512.mr, nr: GEMMKernelsAVX512.nr,
                               kc: 256, mc: 432, mcOneThread: 240, body: GEMMKernelsAVX512.kernel12x32,
                               stridedBody: GEMMKernelsAVX512.kernel12x32StridedA)
        #else
        return nil
        #endif
    }()

    /// Every kernel this CPU can run, slowest first.
    static let available: [GEMMMicroKernel] = {
        var kernels = [avx2]
        if let k = avx512, CPUFeatures.hasAVX512 { kernels.append(k) }
        return kernels
    }()

    /// The kernel `sgemm` uses: the fastest available, or the one named by
    /// `PALIMPSEST_GEMM_KERNEL` (e.g. `avx2-6x16`) when that is available.
    static let best: GEMMMicroKernel = {
        if let name = ProcessInfo.processInfo.environment["PALIMPSEST_GEMM_KERNEL"],
           let k = available.first(where: { $0.name == name }) { return k }
        return available.last!
    }()
}

@inline(__always)
func gemmStoreTile(_ p: UnsafeMutablePointer<Float>, _ acc: SIMD8<Float>, _ alpha: SIMD8<Float>, _ beta: Float) {
    let raw = UnsafeMutableRawPointer(p)
    if beta == 0 {
        raw.storeBytes(of: alpha * acc, as: SIMD8<Float>.self)
    } else {
        let old = raw.loadUnaligned(as: SIMD8<Float>.self)
        var r = SIMD8<Float>(repeating: beta) * old
        r.addProduct(alpha, acc)
        raw.storeBytes(of: r, as: SIMD8<Float>.self)
    }
}

/// The 6 x 16 accumulators of `kernel6x16`, one fused multiply-add step at a time.
struct Tile6x16 {
    var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
    var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
    var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
    var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
    var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
    var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()

    /// One depth step: six A values (rows 0...5) times the 16 B values at `b`.
    @inline(__always)
    mutating func step(_ a0: Float, _ a1: Float, _ a2: Float, _ a3: Float, _ a4: Float, _ a5: Float,
                       _ b: UnsafeRawPointer) {
        let b0 = b.loadUnaligned(as: SIMD8<Float>.self)
        let b1 = b.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        var av = SIMD8<Float>(repeating: a0)
        c00.addProduct(av, b0); c01.addProduct(av, b1)
        av = SIMD8<Float>(repeating: a1)
        c10.addProduct(av, b0); c11.addProduct(av, b1)
        av = SIMD8<Float>(repeating: a2)
        c20.addProduct(av, b0); c21.addProduct(av, b1)
        av = SIMD8<Float>(repeating: a3)
        c30.addProduct(av, b0); c31.addProduct(av, b1)
        av = SIMD8<Float>(repeating: a4)
        c40.addProduct(av, b0); c41.addProduct(av, b1)
        av = SIMD8<Float>(repeating: a5)
        c50.addProduct(av, b0); c51.addProduct(av, b1)
    }

    @inline(__always)
    func store(_ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        let al = SIMD8<Float>(repeating: alpha)
        var row = c
        gemmStoreTile(row, c00, al, beta); gemmStoreTile(row + 8, c01, al, beta); row += ldc
        gemmStoreTile(row, c10, al, beta); gemmStoreTile(row + 8, c11, al, beta); row += ldc
        gemmStoreTile(row, c20, al, beta); gemmStoreTile(row + 8, c21, al, beta); row += ldc
        gemmStoreTile(row, c30, al, beta); gemmStoreTile(row + 8, c31, al, beta); row += ldc
        gemmStoreTile(row, c40, al, beta); gemmStoreTile(row + 8, c41, al, beta); row += ldc
        gemmStoreTile(row, c50, al, beta); gemmStoreTile(row + 8, c51, al, beta)
    }
}

func kernel6x16(
    _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
    _ ahead: UnsafeRawPointer
) {
    var t = Tile6x16()
    // C's lines, for after the loop (see the AVX-512 kernel): a 64-byte row spans at most two.
    var line = UnsafeRawPointer(c)
    for _ in 0..<6 {
        llvmPrefetch(line, 1, 3, 1); llvmPrefetch(line + 63, 1, 3, 1)
        line += ldc &* 4
    }
    var pa = a
    var pb = UnsafeRawPointer(b)
    var pf = ahead
    // Four depth steps per pass, one prefetch line each: no per-step test for the prefetch.
    var p = 0
    while p &+ 4 <= kc {
        llvmPrefetch(pf, 0, 3, 1); pf += 64
        t.step(pa[0], pa[1], pa[2], pa[3], pa[4], pa[5], pb)
        t.step(pa[6], pa[7], pa[8], pa[9], pa[10], pa[11], pb + 64)
        t.step(pa[12], pa[13], pa[14], pa[15], pa[16], pa[17], pb + 128)
        t.step(pa[18], pa[19], pa[20], pa[21], pa[22], pa[23], pb + 192)
        pa += 24; pb += 256; p &+= 4
    }
    if p < kc { llvmPrefetch(pf, 0, 3, 1) }
    while p < kc {
        t.step(pa[0], pa[1], pa[2], pa[3], pa[4], pa[5], pb)
        pa += 6; pb += 64; p &+= 1
    }
    t.store(c, ldc, alpha, beta)
}

/// `kernel6x16` with A read where it lies: element (row i, depth p) at `a[i * rowStride + p * depthStride]`.
/// The same fused multiply-adds in the same order, so the result equals packing A first, bit for bit.
func kernel6x16StridedA(
    _ kc: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ depthStride: Int, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
) {
    var t = Tile6x16()
    // Two base pointers and offsets of one and two rows keep the six addresses in x86's
    // base + index form, so the loop needs no more general registers than it has.
    let rs = rowStride, rs2 = 2 &* rowStride
    var p0 = a, p3 = a + 3 &* rs
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        t.step(p0[0], p0[rs], p0[rs2], p3[0], p3[rs], p3[rs2], pb)
        p0 += depthStride; p3 += depthStride
        pb += 64
    }
    t.store(c, ldc, alpha, beta)
}

/// LLVM's prefetch intrinsic, called by its name because Swift has no prefetch of its own:
/// (address, write ? 1 : 0, locality 0...3, data cache 1). A hint that never faults, whatever the address.
@_silgen_name("llvm.prefetch.p0")
func llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ dataCache: Int32)

/// Run-time CPU checks for kernels compiled beyond the package's baseline target.
enum CPUFeatures {
    /// AVX-512 F, CD, BW, DQ and VL (what `-target-cpu skylake-avx512` may emit), enabled by the OS.
    static let hasAVX512: Bool = {
        #if arch(x86_64) && os(Linux)
        // The kernel lists a feature only when it also saves the state, so the flags suffice.
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(line.split(separator: " ").map(String.init))
        return ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        #elseif arch(x86_64) && canImport(Darwin)
        func has(_ name: String) -> Bool {
            var value: Int32 = 0
            var size = MemoryLayout<Int32>.size
            return sysctlbyname(name, &value, &size, nil, 0) == 0 && value != 0
        }
        return ["hw.optional.avx512f", "hw.optional.avx512cd", "hw.optional.avx512bw", "hw.optional.avx512dq",
                "hw.optional.avx512vl"].allSatisfy(has)
        #else
        return false
        #endif
    }()
}
