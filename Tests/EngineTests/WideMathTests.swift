import Foundation
import Testing
@testable import Engine
#if arch(x86_64)
import EngineAVX512
#endif

/// The 16-lane AVX-512 row and elementwise loops (`VectorMathAVX512`) must give exactly the bits
/// of Engine's 8-lane loops, so that a result never depends on which CPU computed it.
@Suite struct WideMathTests {
    /// Rows of assorted lengths (around 8, 16 and `sumExp`'s 1024-float blocks) mixing ordinary
    /// values of several scales with IEEE edge cases.
    static func rows(seed: UInt64) -> [[Float]] {
        var rng = SeededRandom(seed: seed)
        let lengths = Array(0...40) + [127, 128, 129, 1000, 1023, 1024, 1025, 2048, 2053, 3000]
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, -200, 100, 89, -104, .leastNonzeroMagnitude, -87.5, 88.7]
        var rows: [[Float]] = []
        for (index, n) in lengths.enumerated() {
            let scale = [0.1, 1, 10, 60][index % 4]
            var row = (0..<n).map { _ in Float(rng.nextGaussian() * scale) }
            // Every third row gets a few edge cases (softmax rows from attention are masked with -inf).
            if index % 3 == 0 && n > 0 {
                for j in 0..<min(3, n) { row[Int(rng.next() % UInt64(n))] = specials[(index + j) % specials.count] }
            }
            rows.append(row)
        }
        return rows
    }

    /// The first index where the two differ in any bit (NaNs match NaNs), or nil.
    static func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
        if a.count != b.count { return min(a.count, b.count) }
        return a.indices.first { !same(a[$0], b[$0]) }
    }

    static func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    #if arch(x86_64)
    @Test(.enabled(if: CPUFeatures.hasAVX512, "needs an AVX-512 CPU"))
    func rowMaxAndSumExpMatchTheEightLaneLoopsBitForBit() {
        for row in Self.rows(seed: 11) {
            row.withUnsafeBufferPointer { x in
                let n = row.count, p = x.baseAddress ?? UnsafePointer(bitPattern: 64)!
                let m8 = SoftmaxKernel.rowMax8(p, n), m16 = VectorMathAVX512.rowMax(p, n)
                #expect(Self.same(m8, m16), "rowMax n=\(n): \(m8) vs \(m16)")
                for shift in [m8, 0, -3.5] where shift.isFinite {
                    var e8 = [Float](repeating: 7, count: n), e16 = [Float](repeating: 7, count: n)
                    let s8 = e8.withUnsafeMutableBufferPointer { SoftmaxKernel.sumExp8(p, n, minus: shift, out: $0.baseAddress) }
                    let s16 = e16.withUnsafeMutableBufferPointer { VectorMathAVX512.sumExp(p, n, minus: shift, out: $0.baseAddress) }
                    let bare = VectorMathAVX512.sumExp(p, n, minus: shift, out: nil)
                    #expect(Self.same(s8, s16) && Self.same(s8, bare), "sumExp n=\(n) m=\(shift): \(s8) vs \(s16), \(bare) without out")
                    let d = Self.firstDifference(e8, e16)
                    #expect(d == nil, "sumExp's exponentials differ, n=\(n) m=\(shift), first at \(d ?? -1)")
                }
            }
        }
    }

    @Test(.enabled(if: CPUFeatures.hasAVX512, "needs an AVX-512 CPU"))
    func paddedSoftmaxRowMatchesTheEightLaneLoopBitForBit() {
        for row in Self.rows(seed: 14) where !row.isEmpty {
            let n = row.count
            // Different garbage in the slack of each copy: it must not reach the first n results.
            var x8 = row + [Float](repeating: .nan, count: 15), x16 = row + [Float](repeating: 3e38, count: 15)
            x8.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRowPadded8($0.baseAddress!, n) }
            x16.withUnsafeMutableBufferPointer { VectorMathAVX512.softmaxRowPadded($0.baseAddress!, n) }
            let d = Self.firstDifference(Array(x8.prefix(n)), Array(x16.prefix(n)))
            #expect(d == nil, "softmaxRowPadded n=\(n): first difference at \(d ?? -1)")
        }
    }
    #endif

    /// Whichever loops this CPU runs: the padded row softmax is a softmax (against Double), reads
    /// nothing past the row but what it masks, zeroes the slack it writes, and gives the same bits
    /// wherever the row starts (so a left-padded attention row equals the unpadded one).
    @Test func paddedSoftmaxRowIsASoftmaxOfItsRowOnly() {
        var rng = SeededRandom(seed: 15)
        for n in Array(1...40) + [63, 64, 65, 127, 128, 129, 300] {
            let row = (0..<n).map { _ in Float(rng.nextGaussian() * 4) }
            var x = row + [Float](repeating: .nan, count: 15)
            x.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRowPadded($0.baseAddress!, n) }
            let m = row.map(Double.init).max()!
            let e = row.map { Foundation.exp(Double($0) - m) }
            let total = e.reduce(0, +)
            for j in 0..<n {
                #expect(abs(Double(x[j]) - e[j] / total) <= 1e-6 * (e[j] / total) + 1e-9, "n=\(n) j=\(j): \(x[j]) vs \(e[j] / total)")
            }
            let lanes = WideMath.enabled ? 16 : 8  // the loops' vector width: how far the last vector writes
            let written = (n + lanes - 1) / lanes * lanes
            #expect(x[n..<written].allSatisfy { $0 == 0 }, "n=\(n): the slack it writes must be zeros")
            #expect(x[written...].allSatisfy { $0.isNaN }, "n=\(n): wrote past \(written)")
            for offset in [1, 5, 13] {
                var y = [Float](repeating: -7, count: offset) + row + [Float](repeating: 1e30, count: 15)
                y.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRowPadded($0.baseAddress! + offset, n) }
                #expect(Self.firstDifference(Array(y[offset..<(offset + n)]), Array(x.prefix(n))) == nil, "n=\(n) shifted by \(offset)")
                #expect(y.prefix(offset).allSatisfy { $0 == -7 }, "n=\(n): wrote before the row")
            }
        }
        var poisoned: [Float] = [1, .nan, 2] + [Float](repeating: 0, count: 15)
        poisoned.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRowPadded($0.baseAddress!, 3) }
        #expect(poisoned.prefix(3).allSatisfy { $0.isNaN }, "a NaN in the row makes the whole row NaN")
    }

    #if arch(x86_64)
    @Test(.enabled(if: CPUFeatures.hasAVX512, "needs an AVX-512 CPU"))
    func crossEntropyBackwardRowMatchesBitForBit() {
        for row in Self.rows(seed: 12) {
            let n = row.count
            var d8 = [Float](repeating: 1, count: n), d16 = [Float](repeating: 2, count: n)
            row.withUnsafeBufferPointer { x in
                let p = x.baseAddress ?? UnsafePointer(bitPattern: 64)!
                d8.withUnsafeMutableBufferPointer { SoftmaxKernel.expScaledRow8(p, minus: 4.25, times: -0.37, into: $0.baseAddress!, count: n) }
                d16.withUnsafeMutableBufferPointer { VectorMathAVX512.expScaledRow(p, minus: 4.25, times: -0.37, into: $0.baseAddress!, count: n) }
            }
            let d = Self.firstDifference(d8, d16)
            #expect(d == nil, "expScaledRow n=\(n): first difference at \(d ?? -1)")
        }
    }

    @Test(.enabled(if: CPUFeatures.hasAVX512, "needs an AVX-512 CPU"))
    func swigluForwardAndBackwardMatchBitForBit() {
        let rows = Self.rows(seed: 13)
        for (gate, up) in zip(rows, rows.reversed()) {
            let n = min(gate.count, up.count)
            let g = Array(gate.prefix(n)), u = Array(up.prefix(n))
            let dy = g.map { $0 * 0.5 + 0.25 }
            var y8 = [Float](repeating: 0, count: n), y16 = [Float](repeating: 1, count: n)
            var dg8 = y8, du8 = y8, dg16 = y16, du16 = y16
            g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in dy.withUnsafeBufferPointer { dp in
                let (gp, up, dp) = (gp.baseAddress ?? UnsafePointer(bitPattern: 64)!, up.baseAddress ?? UnsafePointer(bitPattern: 64)!,
                                    dp.baseAddress ?? UnsafePointer(bitPattern: 64)!)
                y8.withUnsafeMutableBufferPointer { Elementwise.map2(gp, up, $0.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, count: n, SwigluOp()) }
                y16.withUnsafeMutableBufferPointer { VectorMathAVX512.swiglu(gate: gp, up: up, out: $0.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, count: n) }
                dg8.withUnsafeMutableBufferPointer { a in du8.withUnsafeMutableBufferPointer { b in
                    Elementwise.swigluBackward8(dp, gate: gp, up: up, dGate: a.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!,
                                                dUp: b.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, count: n)
                } }
                dg16.withUnsafeMutableBufferPointer { a in du16.withUnsafeMutableBufferPointer { b in
                    VectorMathAVX512.swigluBackward(dp, gate: gp, up: up, dGate: a.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!,
                                                    dUp: b.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, count: n)
                } }
            } } }
            let d = [Self.firstDifference(y8, y16), Self.firstDifference(dg8, dg16), Self.firstDifference(du8, du16)]
            #expect(d == [nil, nil, nil], "swiglu n=\(n): first differences (out, dGate, dUp) at \(d)")
        }
    }
    #endif

    /// The dispatch itself: on an AVX-512 CPU the wide loops are the ones that run (unless
    /// `PALIMPSEST_VECTOR_KERNELS=avx2` asks for the 8-lane ones).
    @Test func wideLoopsRunExactlyWhereTheCPUHasThem() {
        let forced = ProcessInfo.processInfo.environment["PALIMPSEST_VECTOR_KERNELS"] == "avx2"
        #if arch(x86_64)
        #expect(WideMath.enabled == (CPUFeatures.hasAVX512 && !forced))
        #else
        #expect(!WideMath.enabled)
        #endif
    }
}
