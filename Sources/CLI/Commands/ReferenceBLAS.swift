import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A system BLAS loaded at run time, only for side-by-side benchmarks (`bench gemm --reference`).
///
/// Nothing else in Palimpsest uses it. Both the usual 32-bit-integer CBLAS (`cblas_sgemm`) and
/// the 64-bit-integer builds that numpy ships (`scipy_cblas_sgemm64_`, `cblas_sgemm64_`) work.
struct ReferenceBLAS {
    private typealias Sgemm32 = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>, Int32,
        UnsafePointer<Float>, Int32, Float, UnsafeMutablePointer<Float>, Int32) -> Void
    private typealias Sgemm64 = @convention(c) (
        Int32, Int32, Int32, Int64, Int64, Int64, Float, UnsafePointer<Float>, Int64,
        UnsafePointer<Float>, Int64, Float, UnsafeMutablePointer<Float>, Int64) -> Void
    private typealias SetThreads = @convention(c) (Int32) -> Void

    let path: String
    /// The sgemm symbol found, e.g. `cblas_sgemm` or `scipy_cblas_sgemm64_`.
    let symbol: String
    private let sgemm32: Sgemm32?
    private let sgemm64: Sgemm64?
    private let setThreadsFunction: SetThreads?

    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String) throws {
        // OpenBLAS's idle threads otherwise spin for about 2^28 cycles after every call, which
        // would take a core from the Palimpsest call that follows it (2^4 cycles is its minimum).
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw LoadError(description: "--reference \(path): cannot load: \(String(cString: dlerror()))")
        }
        self.path = path
        func find(_ names: [String]) -> (String, UnsafeMutableRawPointer)? {
            for name in names { if let p = dlsym(handle, name) { return (name, p) } }
            return nil
        }
        if let (name, p) = find(["cblas_sgemm"]) {
            symbol = name; sgemm32 = unsafeBitCast(p, to: Sgemm32.self); sgemm64 = nil
        } else if let (name, p) = find(["scipy_cblas_sgemm64_", "cblas_sgemm64_"]) {
            symbol = name; sgemm64 = unsafeBitCast(p, to: Sgemm64.self); sgemm32 = nil
        } else {
            throw LoadError(description: "--reference \(path): no cblas_sgemm (nor its 64-bit-integer variants) in this library")
        }
        setThreadsFunction = find(["openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                                   "openblas_set_num_threads64_", "MKL_Set_Num_Threads"])
            .map { unsafeBitCast($0.1, to: SetThreads.self) }
    }

    /// Whether the library lets us set its thread count (OpenBLAS and MKL do).
    var canSetThreads: Bool { setThreadsFunction != nil }

    func setThreads(_ n: Int) { setThreadsFunction?(Int32(n)) }

    /// Row-major `C = alpha * op(A) · op(B) + beta * C`, the same contract as `GEMM.sgemm`.
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let rowMajor: Int32 = 101, noTrans: Int32 = 111, trans: Int32 = 112
        let ta = transA ? trans : noTrans, tb = transB ? trans : noTrans
        if let f = sgemm32 {
            f(rowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        } else if let f = sgemm64 {
            f(rowMajor, ta, tb, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
        }
    }
}
