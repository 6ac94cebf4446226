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
