import Testing
@testable import Engine

/// matmul (every transpose, batched and shared right operand) and linear against Float64.
@Suite struct MatmulGradTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmulBatchedAllTransposes(tA: Bool, tB: Bool) {
        let (batch, m, k, n) = (2, 3, 17, 5)
        let a = randn(tA ? [batch, k, m] : [batch, m, k], seed: 1)
        let b = randn(tB ? [batch, n, k] : [batch, k, n], seed: 2)
        GradCheck().run("matmul tA=\(tA) tB=\(tB)", inputs: [a, b]) {
            matmul($0[0], $0[1], transposeA: tA, transposeB: tB)
        } reference: {
            Ref.matmul($0[0], $0[1], batch: batch, m: m, k: k, n: n, tA: tA, tB: tB, bShared: false)
        }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmulSharedRightOperand(tA: Bool, tB: Bool) {
        let (batch, m, k, n) = (3, 1, 4, 7)
        let a = randn(tA ? [batch, k, m] : [batch, m, k], seed: 3)
        let b = randn(tB ? [n, k] : [k, n], seed: 4)
        GradCheck().run("matmul shared tA=\(tA) tB=\(tB)", inputs: [a, b]) {
            matmul($0[0], $0[1], transposeA: tA, transposeB: tB)
        } reference: {
            Ref.matmul($0[0], $0[1], batch: batch, m: m, k: k, n: n, tA: tA, tB: tB, bShared: true)
        }
    }

    @Test func matmulPlain2DOddSizes() {
        let a = randn([1, 127], seed: 5), b = randn([127, 3], seed: 6)
        GradCheck().run("matmul 1x127x3", inputs: [a, b]) { matmul($0[0], $0[1]) } reference: {
            Ref.matmul($0[0], $0[1], batch: 1, m: 1, k: 127, n: 3, tA: false, tB: false, bShared: false)
        }
    }

    @Test(arguments: [[1, 1, 3], [2, 3, 17], [17, 1]])
    func linearWithBias(leading: [Int]) {
        let inF = leading.last!, outF = 5
        let xShape = Array(leading.dropLast()) + [inF]
        let rows = xShape.dropLast().reduce(1, *)
        let x = randn(xShape, seed: 7), w = randn([outF, inF], seed: 8), b = randn([outF], seed: 9)
        let out = GradCheck().run("linear \(xShape)", inputs: [x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) } reference: {
            Ref.linear($0[0], $0[1], $0[2], rows: rows, inF: inF, outF: outF)
        }
        #expect(out.shape == Array(xShape.dropLast()) + [outF])
    }

    @Test func linearWithoutBiasFrozenWeight() {
        let x = randn([3, 4], seed: 10), w = randn([2, 4], seed: 11, grad: false)
        GradCheck().run("linear frozen W", inputs: [x, w]) { linear($0[0], weight: $0[1]) } reference: {
            Ref.linear($0[0], $0[1], nil, rows: 3, inF: 4, outF: 2)
        }
        #expect(w.grad == nil)
    }
}
