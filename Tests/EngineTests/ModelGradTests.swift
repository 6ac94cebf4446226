import Foundation
import Testing
@testable import Engine

/// A whole Llama-style decoder layer built from the ops, checked end to end against a
/// Float64 composition of the reference ops (every parameter's gradient).
struct TinyModel {
    static let (vocab, c, heads, kvHeads, headDim, inter, batch, length) = (7, 8, 2, 1, 4, 12, 2, 3)
    static let ids: [Int32] = [1, 4, 6, 0, 0, 3]
    static let targets: [Int32] = [4, 6, -100, 0, 3, 5]
    static let invFreq = ropeInverseFrequencies(headDim: headDim, theta: 10000)

    var params: [Tensor]

    init(seed: UInt64) {
        let C = Self.c, D = Self.headDim
        let shapes = [[Self.vocab, C], [C], [Self.heads * D, C], [Self.heads * D], [Self.kvHeads * D, C], [Self.kvHeads * D, C],
                      [C, Self.heads * D], [C], [Self.inter, C], [Self.inter, C], [C, Self.inter], [C], [Self.vocab, C]]
        params = shapes.enumerated().map { randn($0.element, std: 0.5, seed: seed + UInt64($0.offset)) }
        // Norm weights near 1, like a trained model.
        for i in [1, 7, 11] { params[i] = Tensor(params[i].toArray().map { 1 + 0.2 * $0 }, shape: params[i].shape, requiresGrad: true) }
    }

    func logits(_ p: [Tensor]) -> Tensor {
        let (B, T, H, KV, D) = (Self.batch, Self.length, Self.heads, Self.kvHeads, Self.headDim)
        let x = embedding(p[0], ids: Self.ids, shape: [B, T])
        let n1 = rmsNorm(x, weight: p[1], eps: 1e-5)
        let q = rope(linear(n1, weight: p[2], bias: p[3]), heads: H, headDim: D, invFreq: Self.invFreq)
        let k = rope(linear(n1, weight: p[4]), heads: KV, headDim: D, invFreq: Self.invFreq)
        let v = linear(n1, weight: p[5])
        let a = causalAttention(q, k, v, heads: H, kvHeads: KV, headDim: D)
        let h = x + linear(a, weight: p[6])
        let n2 = rmsNorm(h, weight: p[7], eps: 1e-5)
        let out = h + linear(swiglu(linear(n2, weight: p[8]), linear(n2, weight: p[9])), weight: p[10])
        return linear(rmsNorm(out, weight: p[11], eps: 1e-5), weight: p[12])
    }

    func loss() -> Tensor { crossEntropy(logits(params), targets: Self.targets) }

    static func referenceLoss(_ p: [[Double]]) -> Double {
        let (B, T, H, KV, D, C, I, V) = (batch, length, heads, kvHeads, headDim, c, inter, vocab)
        let rows = B * T
        let x = ids.flatMap { Array(p[0][(Int($0) * C)..<(Int($0) * C + C)]) }
        let n1 = Ref.rmsNorm(x, p[1], c: C, eps: 1e-5)
        let pos = (0..<B).flatMap { _ in Array(0..<T) }
        let q = Ref.rope(Ref.linear(n1, p[2], p[3], rows: rows, inF: C, outF: H * D), batch: B, length: T, heads: H, headDim: D,
                         invFreq: invFreq, positions: pos)
        let k = Ref.rope(Ref.linear(n1, p[4], nil, rows: rows, inF: C, outF: KV * D), batch: B, length: T, heads: KV, headDim: D,
                         invFreq: invFreq, positions: pos)
        let v = Ref.linear(n1, p[5], nil, rows: rows, inF: C, outF: KV * D)
        let a = Ref.attention(q: q, k: k, v: v, batch: B, tq: T, tk: T, heads: H, kvHeads: KV, headDim: D, offset: 0, pad: nil,
                              scale: 1 / Double(D).squareRoot())
        let h = zip(x, Ref.linear(a, p[6], nil, rows: rows, inF: H * D, outF: C)).map { $0 + $1 }
        let n2 = Ref.rmsNorm(h, p[7], c: C, eps: 1e-5)
        let g = Ref.linear(n2, p[8], nil, rows: rows, inF: C, outF: I), u = Ref.linear(n2, p[9], nil, rows: rows, inF: C, outF: I)
        let m = zip(g, u).map { Ref.silu($0) * $1 }
        let out = zip(h, Ref.linear(m, p[10], nil, rows: rows, inF: I, outF: C)).map { $0 + $1 }
        let logits = Ref.linear(Ref.rmsNorm(out, p[11], c: C, eps: 1e-5), p[12], nil, rows: rows, inF: C, outF: V)
        let lp = Ref.logSoftmaxGather(logits, v: V, targets: targets.map(Int.init), ignore: -100)
        return -lp.reduce(0, +) / 5
    }
}

@Suite struct ModelGradTests {
    @Test func decoderLayerGradientsMatchFloat64() {
        let model = TinyModel(seed: 21)
        GradCheck(forwardTolerance: 1e-5, gradientTolerance: 2e-4).run("decoder layer", inputs: model.params) {
            crossEntropy(model.logits($0), targets: TinyModel.targets)
        } reference: { [TinyModel.referenceLoss($0)] }
    }

    @Test func frozenBaseWithTrainableNormStillMatches() {
        let model = TinyModel(seed: 31)
        for i in [0, 2, 4, 5, 8, 12] { model.params[i].requiresGrad = false }
        GradCheck(forwardTolerance: 1e-5, gradientTolerance: 2e-4).run("partly frozen layer", inputs: model.params) {
            crossEntropy(model.logits($0), targets: TinyModel.targets)
        } reference: { [TinyModel.referenceLoss($0)] }
    }
}
