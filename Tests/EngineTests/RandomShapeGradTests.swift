import Foundation
import Testing
@testable import Engine

/// Gradient checks on shapes drawn at random (seeded) from sizes that stress SIMD tails and
/// thread splits: 1, 2, 3, 5, 8, 17 and occasionally 127.
@Suite struct RandomShapeGradTests {
    static func size(_ rng: inout SeededRandom, allowLarge: Bool = true) -> Int {
        let sizes = allowLarge ? [1, 2, 3, 5, 8, 17, 127] : [1, 2, 3, 5, 8, 17]
        return sizes[rng.nextInt(sizes.count)]
    }

    @Test(arguments: 0..<6)
    func linearRmsNormSoftmaxLogSoftmax(seed: Int) {
        var rng = SeededRandom(seed: UInt64(1000 + seed))
        let rows = Self.size(&rng, allowLarge: false), inF = Self.size(&rng), outF = Self.size(&rng, allowLarge: false)
        let x = randn([rows, inF], seed: UInt64(seed * 10 + 1))
        let w = randn([outF, inF], seed: UInt64(seed * 10 + 2)), b = randn([outF], seed: UInt64(seed * 10 + 3))
        GradCheck().run("linear \(rows)x\(inF)->\(outF)", inputs: [x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) } reference: {
            Ref.linear($0[0], $0[1], $0[2], rows: rows, inF: inF, outF: outF)
        }
        let nw = randn([inF], seed: UInt64(seed * 10 + 4))
        let eps: Float = inF == 1 ? 0.1 : 1e-5
        GradCheck().run("rmsNorm \(rows)x\(inF)", inputs: [x, nw]) { rmsNorm($0[0], weight: $0[1], eps: eps) } reference: {
            Ref.rmsNorm($0[0], $0[1], c: inF, eps: Double(eps))
        }
        GradCheck().run("softmax \(rows)x\(inF)", inputs: [x]) { $0[0].softmax() } reference: { Ref.softmax($0[0], n: inF) }
        let targets = (0..<rows).map { _ in rng.nextInt(4) == 0 ? -100 : rng.nextInt(inF) }
        GradCheck().run("logSoftmaxGather \(rows)x\(inF)", inputs: [x]) { logSoftmaxGather($0[0], targets: targets) } reference: {
            Ref.logSoftmaxGather($0[0], v: inF, targets: targets, ignore: -100)
        }
    }

    @Test(arguments: 0..<6)
    func attentionWithRandomLayout(seed: Int) {
        var rng = SeededRandom(seed: UInt64(2000 + seed))
        let kvHeads = [1, 2][rng.nextInt(2)], ratio = [1, 2, 7][rng.nextInt(3)]
        let heads = kvHeads * ratio
        let headDim = [1, 2, 3, 5, 8][rng.nextInt(5)]
        let batch = 1 + rng.nextInt(2), tq = [1, 2, 3, 5][rng.nextInt(4)]
        let offset = rng.nextInt(4), tk = tq + offset + rng.nextInt(2)
        let pad: [Int]? = rng.nextInt(2) == 0 ? nil : (0..<batch).map { _ in rng.nextInt(tk + 1) }
        let q = randn([batch, tq, heads * headDim], seed: UInt64(seed * 10 + 1))
        let k = randn([batch, tk, kvHeads * headDim], seed: UInt64(seed * 10 + 2))
        let v = randn([batch, tk, kvHeads * headDim], seed: UInt64(seed * 10 + 3))
        let label = "attention B\(batch) Tq\(tq) Tk\(tk) H\(heads)/\(kvHeads) D\(headDim) off\(offset) pad\(pad ?? [])"
        GradCheck().run(label, inputs: [q, k, v]) {
            causalAttention($0[0], $0[1], $0[2], heads: heads, kvHeads: kvHeads, headDim: headDim, queryOffset: offset, leftPadding: pad)
        } reference: {
            Ref.attention(q: $0[0], k: $0[1], v: $0[2], batch: batch, tq: tq, tk: tk, heads: heads, kvHeads: kvHeads, headDim: headDim,
                          offset: offset, pad: pad, scale: 1 / Double(headDim).squareRoot())
        }
    }
}
