import Foundation
import Testing
@testable import Engine

/// RMSNorm, RoPE and embedding against Float64.
@Suite struct NormRoPEEmbeddingGradTests {
    @Test(arguments: [1, 3, 17, 127])
    func rmsNormAllInputs(c: Int) {
        // With C = 1 the normalised value is ±1 and ∂y/∂x ∝ eps: a tiny eps leaves only Float32
        // cancellation noise to compare, so that case uses a large one.
        let eps: Float = c == 1 ? 0.1 : 1e-5
        let x = randn([2, 3, c], seed: 1), w = randn([c], seed: 2)
        GradCheck().run("rmsNorm \(c)", inputs: [x, w]) { rmsNorm($0[0], weight: $0[1], eps: eps) } reference: {
            Ref.rmsNorm($0[0], $0[1], c: c, eps: Double(eps))
        }
    }

    @Test func rmsNormFrozenWeight() {
        let x = randn([5, 8], seed: 3), w = randn([8], seed: 4, grad: false)
        GradCheck().run("rmsNorm frozen", inputs: [x, w]) { rmsNorm($0[0], weight: $0[1], eps: 1e-6) } reference: {
            Ref.rmsNorm($0[0], $0[1], c: 8, eps: 1e-6)
        }
    }

    @Test(arguments: [(1, 1, 1, 2, 0), (2, 3, 2, 4, 0), (2, 5, 3, 18, 7), (1, 17, 1, 32, 100)])
    func ropeWithOffset(batch: Int, length: Int, heads: Int, headDim: Int, offset: Int) {
        let inv = ropeInverseFrequencies(headDim: headDim, theta: 10000)
        let x = randn([batch, length, heads * headDim], seed: 5)
        let positions = (0..<batch).flatMap { _ in (offset..<(offset + length)).map { $0 } }
        GradCheck().run("rope B\(batch) T\(length) H\(heads) D\(headDim) +\(offset)", inputs: [x]) {
            rope($0[0], heads: heads, headDim: headDim, invFreq: inv, offset: offset)
        } reference: {
            Ref.rope($0[0], batch: batch, length: length, heads: heads, headDim: headDim, invFreq: inv, positions: positions)
        }
    }

    @Test func ropeExplicitPositionsAndScaledFrequencies() {
        // Arbitrary (e.g. Llama-3-scaled) frequencies and per-row positions (left padding).
        let inv: [Float] = [1, 0.31, 0.05, 0.0007]
        let positions = [0, 0, 0, 1, 2, 5, 6, 7, 8, 9]
        let x = randn([2, 5, 3 * 8], seed: 6)
        GradCheck().run("rope positions", inputs: [x]) {
            rope($0[0], heads: 3, headDim: 8, invFreq: inv, positions: positions)
        } reference: {
            Ref.rope($0[0], batch: 2, length: 5, heads: 3, headDim: 8, invFreq: inv, positions: positions)
        }
    }

    @Test func ropeInverseFrequenciesMatchHF() {
        // HF: 1 / theta^(arange(0, d, 2) / d)
        let inv = ropeInverseFrequencies(headDim: 8, theta: 10000)
        let expect = (0..<4).map { 1 / Foundation.pow(10000.0, Double(2 * $0) / 8) }
        for (a, e) in zip(inv, expect) { #expect(abs(Double(a) - e) <= 1e-6 * e) }
    }

    @Test(arguments: [(1, 1), (3, 17), (11, 127)])
    func embeddingGatherScatter(vocab: Int, dim: Int) {
        let table = randn([vocab, dim], seed: 7)
        var rng = SeededRandom(seed: 8)
        let ids = (0..<6).map { _ in Int32(rng.nextInt(vocab)) }  // repeats scatter-add into one row
        GradCheck().run("embedding V\(vocab) C\(dim)", inputs: [table]) { embedding($0[0], ids: ids, shape: [2, 3]) } reference: { xs in
            ids.flatMap { id in xs[0][(Int(id) * dim)..<(Int(id) * dim + dim)] }
        }
    }

    @Test func embeddingThroughNonLeafTable() {
        // A table that is itself computed (e.g. scaled) takes the non-direct gradient path.
        let table = randn([5, 3], seed: 9)
        let ids: [Int32] = [4, 0, 4]
        GradCheck().run("embedding of scaled table", inputs: [table]) { embedding($0[0].scaled(by: 2), ids: ids, shape: [3]) } reference: { xs in
            ids.flatMap { id in xs[0][(Int(id) * 3)..<(Int(id) * 3 + 3)].map { $0 * 2 } }
        }
    }
}
