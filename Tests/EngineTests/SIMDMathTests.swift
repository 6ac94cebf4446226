import Foundation
import Testing
@testable import Engine

@Suite struct SIMDMathTests {
    @Test func expAccuracyAcrossTheRange() {
        var worst = 0.0
        var x: Float = -87
        while x < 88.7 {
            let v = simdExp(F8(x, x + 0.001, x + 0.01, x + 0.1, x + 0.25, x + 0.3, x + 0.37, x + 0.49))
            for l in 0..<8 {
                let xl = [x, x + 0.001, x + 0.01, x + 0.1, x + 0.25, x + 0.3, x + 0.37, x + 0.49][l]
                let e = Foundation.exp(Double(xl))
                if e < Double(Float.greatestFiniteMagnitude) {
                    worst = max(worst, abs(Double(v[l]) - e) / e)
                }
            }
            x += 0.173
        }
        #expect(worst < 4e-7, "simdExp max relative error \(worst)")
    }

    @Test func expEdgeCasesFollowIEEE() {
        let v = simdExp(F8(.nan, .infinity, -.infinity, 0, 89, -88, -200, 88.72))
        #expect(simdExp(F8(repeating: 1e30))[0] == .infinity && simdExp(F8(repeating: -1e30))[0] == 0)
        #expect(simdExp(F8(repeating: -Float.nan))[0].isNaN)
        #expect(v[0].isNaN)
        #expect(v[1] == .infinity)
        #expect(v[2] == 0)
        #expect(v[3] == 1)
        #expect(v[4] == .infinity)
        #expect(abs(Double(v[5]) - Foundation.exp(-88.0)) < 1e-44)   // gradual underflow (subnormal)
        #expect(v[6] == 0)
        #expect(v[7].isFinite && abs(Double(v[7]) / Foundation.exp(Double(Float(88.72))) - 1) < 1e-6)
        #expect(fastExp(1) == simdExp(F8(repeating: 1))[0])
    }
}

/// The AVX-512 paths of the exp-heavy loops must give the AVX2 paths' bits.
@Suite struct AVX512MathTests {
    static var values: [Float] {
        var rng = SeededRandom(seed: 31)
        var v = (0..<203).map { _ in Float(rng.nextGaussian() * 30) }
        v += [0, -0.0, 88.7, 89.5, -103.9, -150, .infinity, -.infinity, .nan, 1e-30, -1e-30]
        return v
    }

    @Test func sumExpMatchesEightLanes() throws {
        try #require(CPUFeatures.hasAVX512, "this machine has no AVX-512")
        let x = Self.values.filter { !$0.isNaN }
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 64, x.count] {
            var a = [Float](repeating: 0, count: n), b = a
            let (sa, sb) = x.withUnsafeBufferPointer { xp in
                (a.withUnsafeMutableBufferPointer { SoftmaxKernel.sumExp(xp.baseAddress!, n, minus: 3.5, out: $0.baseAddress) },
                 b.withUnsafeMutableBufferPointer { SoftmaxKernel.sumExp8(xp.baseAddress!, n, minus: 3.5, out: $0.baseAddress) })
            }
            #expect(sa.bitPattern == sb.bitPattern, "n \(n)")
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "n \(n)")
        }
    }

    @Test func swigluMatchesEightLanes() throws {
        try #require(CPUFeatures.hasAVX512, "this machine has no AVX-512")
        let g = Self.values, u = Self.values.reversed().map { $0 / 7 }, dy = Self.values.map { $0 / 3 }
        for n in [1, 7, 16, 33, g.count] {
            var z = [Float](repeating: 0, count: n), z8 = z
            var dg = z, du = z, dg8 = z, du8 = z
            Elementwise.swiglu(g, u, &z, count: n)
            Elementwise.map2(g, u, &z8, count: n, SwigluOp())
            Elementwise.swigluBackward(dy, gate: g, up: u, dGate: &dg, dUp: &du, count: n)
            Elementwise.swigluBackward8(dy, gate: g, up: u, dGate: &dg8, dUp: &du8, count: n)
            #expect(z.map(\.bitPattern) == z8.map(\.bitPattern), "forward n \(n)")
            #expect(dg.map(\.bitPattern) == dg8.map(\.bitPattern) && du.map(\.bitPattern) == du8.map(\.bitPattern), "backward n \(n)")
        }
    }
}
