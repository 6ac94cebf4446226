import Foundation
import Testing
@testable import Training

@Suite struct KernelTests {
    @Test func simdExpIsAccurate() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            var v = SIMD8<Float>()
            for k in 0..<8 { v[k] = x + Float(k) * 0.0137 }
            let e = simdExp(v)
            for k in 0..<8 {
                let ref = exp(Double(v[k]))
                worst = max(worst, abs(Double(e[k]) - ref) / ref)
            }
            x += 0.173
        }
        #expect(worst < 4e-7, "worst relative error \(worst)")
        let tiny = simdExp(SIMD8<Float>(repeating: -.infinity))
        #expect(tiny.max() < 1e-37)
    }

    @Test func logSumExpHandlesSpecialRows() {
        let rows: [[Float]] = [[1, 2, 3], Array(repeating: 0.5, count: 37), [-.infinity, 0, -.infinity, 2, 1, 1, 1, 1, 1, 1],
                               [Float](repeating: -.infinity, count: 9), [1, .nan, 2, 3, 4, 5, 6, 7, 8]]
        for r in rows {
            let got = r.withUnsafeBufferPointer { logSumExp($0.baseAddress!, r.count) }
            let m = r.max()!
            let ref = r.contains(where: \.isNaN) ? Double.nan
                : m == -.infinity ? -Double.infinity : Double(m) + log(r.map { exp(Double($0 - m)) }.reduce(0, +))
            if ref.isNaN { #expect(got.isNaN) } else if ref.isInfinite { #expect(got == ref) } else { #expect(abs(got - ref) < 1e-6) }
        }
    }
}
