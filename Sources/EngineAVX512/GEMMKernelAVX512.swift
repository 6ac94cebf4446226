// This module is compiled for AVX-512 (see Package.swift). Nothing here may run before the caller
// has checked that the CPU supports AVX-512F/BW/DQ/VL/CD: Engine does that check and only then calls in.

#if arch(x86_64)
/// LLVM's prefetch intrinsic, called by its name because Swift has no prefetch of its own:
/// (address, write ? 1 : 0, locality 0...3, data cache 1). A hint that never faults, whatever the address.
@_silgen_name("llvm.prefetch.p0")
func llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ dataCache: Int32)

/// AVX-512 sgemm micro-kernels over panels packed by Engine's `GEMMPack`.
public enum GEMMKernelsAVX512 {
    public static let mr = 12
    public static let nr = 32

    /// `C[12, 32] = alpha * A · B + beta * C` on a full tile, from a packed `12 x kc` panel of A
    /// (`a[p * 12 + i]`) and a packed `kc x 32` panel of B (`b[p * 32 + j]`). `beta == 0` never
    /// reads C. Each element is one fused multiply-add per `p` in increasing order, then
    /// `fma(alpha, acc, beta * c)`, exactly like Engine's other kernels.
    ///
    /// `ahead` is prefetched, one line every 4 depth steps (`kc / 4` lines): the caller's next B
    /// panel, usually in L3. Asked for in one burst before the call, those lines filled the L1
    /// miss buffers and stalled the prefetches themselves; spread over the loop they overlap it.
    @inline(never)
    public static func kernel12x32(
        _ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
        _ ahead: UnsafeRawPointer
    ) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var c60 = V(), c61 = V(), c70 = V(), c71 = V(), c80 = V(), c81 = V()
        var c90 = V(), c91 = V(), ca0 = V(), ca1 = V(), cb0 = V(), cb1 = V()
        // C's lines are needed only after the loop: asked for now, a miss (C larger than L2)
        // overlaps the arithmetic instead of stalling the stores (5-8% on one thread). A row is
        // 128 bytes, so at most three lines.
        var line = UnsafeRawPointer(c)
        for _ in 0..<12 {
            llvmPrefetch(line, 1, 3, 1); llvmPrefetch(line + 64, 1, 3, 1); llvmPrefetch(line + 127, 1, 3, 1)
            line += ldc &* 4
        }
        var pa = a
        var pb = UnsafeRawPointer(b)
        var pf = ahead
        for p in 0..<kc {
            if p & 3 == 0 { llvmPrefetch(pf, 0, 3, 1); pf += 64 }
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: V.self)
            var av = V(repeating: pa[0]); c00.addProduct(av, b0); c01.addProduct(av, b1)
            av = V(repeating: pa[1]); c10.addProduct(av, b0); c11.addProduct(av, b1)
            av = V(repeating: pa[2]); c20.addProduct(av, b0); c21.addProduct(av, b1)
            av = V(repeating: pa[3]); c30.addProduct(av, b0); c31.addProduct(av, b1)
            av = V(repeating: pa[4]); c40.addProduct(av, b0); c41.addProduct(av, b1)
            av = V(repeating: pa[5]); c50.addProduct(av, b0); c51.addProduct(av, b1)
            av = V(repeating: pa[6]); c60.addProduct(av, b0); c61.addProduct(av, b1)
            av = V(repeating: pa[7]); c70.addProduct(av, b0); c71.addProduct(av, b1)
            av = V(repeating: pa[8]); c80.addProduct(av, b0); c81.addProduct(av, b1)
            av = V(repeating: pa[9]); c90.addProduct(av, b0); c91.addProduct(av, b1)
            av = V(repeating: pa[10]); ca0.addProduct(av, b0); ca1.addProduct(av, b1)
            av = V(repeating: pa[11]); cb0.addProduct(av, b0); cb1.addProduct(av, b1)
            pa += 12
            pb += 128
        }
        let al = V(repeating: alpha)
        var row = c
        store(row, c00, c01, al, beta); row += ldc
        store(row, c10, c11, al, beta); row += ldc
        store(row, c20, c21, al, beta); row += ldc
        store(row, c30, c31, al, beta); row += ldc
        store(row, c40, c41, al, beta); row += ldc
        store(row, c50, c51, al, beta); row += ldc
        store(row, c60, c61, al, beta); row += ldc
        store(row, c70, c71, al, beta); row += ldc
        store(row, c80, c81, al, beta); row += ldc
        store(row, c90, c91, al, beta); row += ldc
        store(row, ca0, ca1, al, beta); row += ldc
        store(row, cb0, cb1, al, beta)
    }

    /// `kernel12x32` with A read where it lies: element (row i, depth p) at
    /// `a[i * rowStride + p * depthStride]`, for operands too small to be worth packing (one
    /// attention head's scores). Same arithmetic, in the same order, as `kernel12x32`.
    @inline(never)
    public static func kernel12x32StridedA(
        _ kc: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ depthStride: Int, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
    ) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var c60 = V(), c61 = V(), c70 = V(), c71 = V(), c80 = V(), c81 = V()
        var c90 = V(), c91 = V(), ca0 = V(), ca1 = V(), cb0 = V(), cb1 = V()
        let rs = rowStride, rs2 = 2 &* rowStride
        var p0 = a, p3 = a + 3 &* rs, p6 = a + 6 &* rs, p9 = a + 9 &* rs
        var pb = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: V.self)
            var av = V(repeating: p0[0]); c00.addProduct(av, b0); c01.addProduct(av, b1)
            av = V(repeating: p0[rs]); c10.addProduct(av, b0); c11.addProduct(av, b1)
            av = V(repeating: p0[rs2]); c20.addProduct(av, b0); c21.addProduct(av, b1)
            av = V(repeating: p3[0]); c30.addProduct(av, b0); c31.addProduct(av, b1)
            av = V(repeating: p3[rs]); c40.addProduct(av, b0); c41.addProduct(av, b1)
            av = V(repeating: p3[rs2]); c50.addProduct(av, b0); c51.addProduct(av, b1)
            av = V(repeating: p6[0]); c60.addProduct(av, b0); c61.addProduct(av, b1)
            av = V(repeating: p6[rs]); c70.addProduct(av, b0); c71.addProduct(av, b1)
            av = V(repeating: p6[rs2]); c80.addProduct(av, b0); c81.addProduct(av, b1)
            av = V(repeating: p9[0]); c90.addProduct(av, b0); c91.addProduct(av, b1)
            av = V(repeating: p9[rs]); ca0.addProduct(av, b0); ca1.addProduct(av, b1)
            av = V(repeating: p9[rs2]); cb0.addProduct(av, b0); cb1.addProduct(av, b1)
            p0 += depthStride; p3 += depthStride; p6 += depthStride; p9 += depthStride
            pb += 128
        }
        let al = V(repeating: alpha)
        var row = c
        store(row, c00, c01, al, beta); row += ldc
        store(row, c10, c11, al, beta); row += ldc
        store(row, c20, c21, al, beta); row += ldc
        store(row, c30, c31, al, beta); row += ldc
        store(row, c40, c41, al, beta); row += ldc
        store(row, c50, c51, al, beta); row += ldc
        store(row, c60, c61, al, beta); row += ldc
        store(row, c70, c71, al, beta); row += ldc
        store(row, c80, c81, al, beta); row += ldc
        store(row, c90, c91, al, beta); row += ldc
        store(row, ca0, ca1, al, beta); row += ldc
        store(row, cb0, cb1, al, beta)
    }

    @inline(__always)
    static func store(_ p: UnsafeMutablePointer<Float>, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                      _ alpha: SIMD16<Float>, _ beta: Float) {
        let raw = UnsafeMutableRawPointer(p)
        if beta == 0 {
            raw.storeBytes(of: alpha * x0, as: SIMD16<Float>.self)
            raw.storeBytes(of: alpha * x1, toByteOffset: 64, as: SIMD16<Float>.self)
        } else {
            let bv = SIMD16<Float>(repeating: beta)
            var r0 = bv * raw.loadUnaligned(as: SIMD16<Float>.self)
            var r1 = bv * raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            r0.addProduct(alpha, x0)
            r1.addProduct(alpha, x1)
            raw.storeBytes(of: r0, as: SIMD16<Float>.self)
            raw.storeBytes(of: r1, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }
}
#endif
