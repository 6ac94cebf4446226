import Foundation
import Testing
@testable import Engine

/// Elementwise ops, broadcasting, reductions and views against Float64.
@Suite struct ElementwiseGradTests {
    @Test(arguments: [[3, 17], [1], [2, 3, 5]])
    func addSubMulSameShape(shape: [Int]) {
        let a = randn(shape, seed: 1), b = randn(shape, seed: 2)
        GradCheck().run("add", inputs: [a, b]) { $0[0] + $0[1] } reference: { zip($0[0], $0[1]).map { $0 + $1 } }
        GradCheck().run("sub", inputs: [a, b]) { $0[0] - $0[1] } reference: { zip($0[0], $0[1]).map { $0 - $1 } }
        GradCheck().run("mul", inputs: [a, b]) { $0[0] * $0[1] } reference: { zip($0[0], $0[1]).map { $0 * $1 } }
    }

    @Test(arguments: [[1], [17], [3, 17]])
    func rowBroadcasting(bShape: [Int]) {
        let aShape = [2, 3, 17]
        let a = randn(aShape, seed: 3), b = randn(bShape, seed: 4)
        let n = b.count
        func bc(_ f: @escaping (Double, Double) -> Double) -> ([[Double]]) -> [Double] {
            { xs in xs[0].indices.map { f(xs[0][$0], xs[1][$0 % n]) } }
        }
        GradCheck().run("add bcast \(bShape)", inputs: [a, b], engine: { add($0[0], $0[1]) }, reference: bc(+))
        GradCheck().run("add bcast swapped \(bShape)", inputs: [a, b], engine: { add($0[1], $0[0]) }, reference: bc(+))
        GradCheck().run("sub bcast \(bShape)", inputs: [a, b], engine: { sub($0[0], $0[1]) }, reference: bc(-))
        GradCheck().run("mul bcast \(bShape)", inputs: [a, b], engine: { mul($0[0], $0[1]) }, reference: bc(*))
    }

    @Test func mulByConstantWeights() {
        let a = randn([4, 3], seed: 5), w = randn([4, 3], seed: 6, grad: false)
        GradCheck().run("weighted", inputs: [a, w]) { mul($0[0], $0[1]).sum() } reference: {
            [zip($0[0], $0[1]).reduce(0) { $0 + $1.0 * $1.1 }]
        }
    }

    @Test func scalarOps() {
        let a = randn([3, 5], seed: 7)
        GradCheck().run("scale", inputs: [a]) { $0[0] * 2.5 } reference: { $0[0].map { $0 * 2.5 } }
        GradCheck().run("neg", inputs: [a]) { -$0[0] } reference: { $0[0].map { -$0 } }
        GradCheck().run("addScalar", inputs: [a]) { $0[0] + 1.5 - 0.25 } reference: { $0[0].map { $0 + 1.25 } }
    }

    @Test func unaryFunctions() {
        let a = randn([3, 17], std: 3, seed: 8)
        GradCheck().run("silu", inputs: [a]) { $0[0].silu() } reference: { $0[0].map(Ref.silu) }
        GradCheck().run("exp", inputs: [a]) { $0[0].exp() } reference: { $0[0].map { Foundation.exp($0) } }
        GradCheck().run("logSigmoid", inputs: [a]) { $0[0].logSigmoid() } reference: { $0[0].map(Ref.logSigmoid) }
        var rng = SeededRandom(seed: 9)
        let pos = Tensor.randomUniform([2, 9], low: 0.2, high: 4, rng: &rng, requiresGrad: true)
        GradCheck().run("log", inputs: [pos]) { $0[0].log() } reference: { $0[0].map { Foundation.log($0) } }
    }

    @Test(arguments: [1, 3, 127])
    func swigluProduct(n: Int) {
        let g = randn([2, n], std: 2, seed: 10), u = randn([2, n], seed: 11)
        GradCheck().run("swiglu \(n)", inputs: [g, u]) { swiglu($0[0], $0[1]) } reference: {
            zip($0[0], $0[1]).map { Ref.silu($0) * $1 }
        }
    }

    @Test func swigluBothGradientsInOnePassEqualEachAlone() {
        // Both inputs wanting gradients take the one-pass kernel; one frozen input takes the
        // single-output kernels. The two must agree to the bit.
        func grads(gateGrad: Bool, upGrad: Bool) -> (gate: [Float]?, up: [Float]?) {
            let g = randn([3, 45], std: 2, seed: 20, grad: gateGrad), u = randn([3, 45], seed: 21, grad: upGrad)
            let w = randn([3, 45], seed: 22, grad: false)
            (swiglu(g, u) * w).sum().backward()
            return (g.grad?.toArray(), u.grad?.toArray())
        }
        let both = grads(gateGrad: true, upGrad: true)
        #expect(both.gate != nil && both.gate == grads(gateGrad: true, upGrad: false).gate)
        #expect(both.up != nil && both.up == grads(gateGrad: false, upGrad: true).up)
    }

    @Test(arguments: [1, 3, 17, 127])
    func softmaxLastAxis(n: Int) {
        let x = randn([3, n], std: 2, seed: 12)
        GradCheck().run("softmax \(n)", inputs: [x]) { $0[0].softmax() } reference: { Ref.softmax($0[0], n: n) }
    }

    @Test func reductions() {
        let x = randn([3, 17], seed: 13)
        GradCheck().run("sum", inputs: [x]) { $0[0].sum() } reference: { [$0[0].reduce(0, +)] }
        GradCheck().run("mean", inputs: [x]) { $0[0].mean() } reference: { [$0[0].reduce(0, +) / 51] }
        GradCheck().run("sumLastAxis", inputs: [x]) { $0[0].sumLastAxis() } reference: { xs in
            (0..<3).map { r in xs[0][(r * 17)..<((r + 1) * 17)].reduce(0, +) }
        }
    }

    @Test func viewsAndCopies() {
        let x = randn([4, 3, 5], seed: 14)
        GradCheck().run("reshape", inputs: [x]) { $0[0].reshaped([12, -1]).scaled(by: 3) } reference: { $0[0].map { $0 * 3 } }
        GradCheck().run("rows", inputs: [x]) { $0[0].rows(1..<3) } reference: { Array($0[0][15..<45]) }
        GradCheck().run("narrow", inputs: [x]) { $0[0].narrow(axis: 1, start: 2, length: 1) } reference: { xs in
            (0..<4).flatMap { b in xs[0][(b * 15 + 10)..<(b * 15 + 15)] }
        }
        let y = randn([4, 2, 5], seed: 15)
        func concatRef(_ xs: [[Double]]) -> [Double] {
            var out: [Double] = []
            for b in 0..<4 {
                out += xs[0][(b * 15)..<(b * 15 + 15)]
                out += xs[1][(b * 10)..<(b * 10 + 10)]
            }
            return out
        }
        GradCheck().run("concat", inputs: [x, y], engine: { concat([$0[0], $0[1]], axis: 1) }, reference: concatRef)
        // Several (overlapping) row slices of one tensor, of a leaf and of an intermediate whose
        // gradient is first set by an op that does not own it (`+` passes its gradient on as is):
        // each slice adds only its rows.
        func slicesRef(_ v: [Double]) -> [Double] {
            Array(v[0..<30]).map { $0 * 3 } + Array(v[15..<60]) + Array(v[15..<45]) + Array(v[45..<60])
        }
        GradCheck().run("row slices of a leaf", inputs: [x]) { xs in
            concat([xs[0].rows(0..<2).scaled(by: 3), xs[0].rows(1..<4), xs[0].rows(1..<3), xs[0].rows(3..<4)], axis: 0)
        } reference: { slicesRef($0[0]) }
        GradCheck().run("row slices of an intermediate", inputs: [x]) { xs in
            let h = xs[0].scaled(by: 2)
            let sliced = concat([h.rows(0..<2).scaled(by: 3), h.rows(1..<4), h.rows(1..<3), h.rows(3..<4)], axis: 0)
            return concat([sliced, h + xs[0]], axis: 0)
        } reference: { xs in
            slicesRef(xs[0].map { $0 * 2 }) + xs[0].map { $0 * 3 }
        }
        // The same tensor used twice (a diamond in the graph) accumulates both paths.
        GradCheck().run("diamond", inputs: [x]) { mul($0[0], $0[0].reshaped([60]).reshaped([4, 3, 5])) + $0[0] } reference: {
            $0[0].map { $0 * $0 + $0 }
        }
    }
}
