/// A register-blocked micro-kernel: `C[mr, nr] = alpha * Apanel · Bpanel + beta * C` on full tiles,
/// with packed panels as laid out by `GEMMPack`. `beta == 0` never reads C.
///
/// Every kernel accumulates each C element over `p` in increasing order with one fused
/// multiply-add per step, then stores `fma(alpha, acc, beta * c)`, so all kernels (and the scalar
/// edge path) give bit-identical results.
@usableFromInline
struct GEMMMicroKernel: Sendable {
    typealias Body = @Sendable (
        _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) -> Void

    let name: String
    let mr: Int
    let nr: Int
    /// Depth of one packed block (B micro-panel `kc * nr` floats should stay in L1).
    let kc: Int
    /// Rows of A packed at a time (`mc * kc` floats should stay in L2).
    let mc: Int
    let body: Body

    /// 6 x 16 tile in 12 ymm accumulators (AVX2 + FMA with `-target-cpu haswell`).
    static let avx2 = GEMMMicroKernel(name: "avx2-6x16", mr: 6, nr: 16, kc: 256, mc: 144, body: kernel6x16)

    /// The fastest kernel this CPU supports.
    static let best: GEMMMicroKernel = available.last!

    /// Every kernel this CPU can run, slowest first.
    static let available: [GEMMMicroKernel] = [avx2]
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

@Sendable
func kernel6x16(
    _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
) {
    var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
    var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
    var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
    var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
    var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
    var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
    var pa = a
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let b0 = pb.loadUnaligned(as: SIMD8<Float>.self)
        let b1 = pb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        var av = SIMD8<Float>(repeating: pa[0])
        c00.addProduct(av, b0); c01.addProduct(av, b1)
        av = SIMD8<Float>(repeating: pa[1])
        c10.addProduct(av, b0); c11.addProduct(av, b1)
        av = SIMD8<Float>(repeating: pa[2])
        c20.addProduct(av, b0); c21.addProduct(av, b1)
        av = SIMD8<Float>(repeating: pa[3])
        c30.addProduct(av, b0); c31.addProduct(av, b1)
        av = SIMD8<Float>(repeating: pa[4])
        c40.addProduct(av, b0); c41.addProduct(av, b1)
        av = SIMD8<Float>(repeating: pa[5])
        c50.addProduct(av, b0); c51.addProduct(av, b1)
        pa += 6
        pb += 64
    }
    let al = SIMD8<Float>(repeating: alpha)
    var row = c
    gemmStoreTile(row, c00, al, beta); gemmStoreTile(row + 8, c01, al, beta); row += ldc
    gemmStoreTile(row, c10, al, beta); gemmStoreTile(row + 8, c11, al, beta); row += ldc
    gemmStoreTile(row, c20, al, beta); gemmStoreTile(row + 8, c21, al, beta); row += ldc
    gemmStoreTile(row, c30, al, beta); gemmStoreTile(row + 8, c31, al, beta); row += ldc
    gemmStoreTile(row, c40, al, beta); gemmStoreTile(row + 8, c41, al, beta); row += ldc
    gemmStoreTile(row, c50, al, beta); gemmStoreTile(row + 8, c51, al, beta)
}
