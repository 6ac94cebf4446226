import Engine
import Foundation
@testable import Models
import Testing

/// `loss` and `tokenLogProbs` skip the positions after each row's last target by packing the
/// rows' prefixes; they must agree with the plain padded forward pass (`logits`).
@Suite struct PackedForwardTests {
    static func model(_ architecture: ModelArchitecture) throws -> CausalLM {
        try CausalLM(config: ModelConfig(architecture: architecture, vocabSize: 37, hiddenSize: 24, intermediateSize: 40,
                                         numHiddenLayers: 2, numAttentionHeads: 6, numKeyValueHeads: 2), seed: 7)
    }

    /// Rows of real lengths 13, 5, 1 (an unscored row) and 9 in a batch of length 13; labels -100 after them.
    static func batch() -> (ids: [Int32], labels: [Int32], batch: Int, length: Int) {
        let (b, t) = (4, 13)
        var rng = SeededRandom(seed: 11)
        let ids = (0..<(b * t)).map { _ in Int32(rng.nextInt(37)) }
        var labels = ids
        for (r, real) in [13, 5, 1, 9].enumerated() {
            for j in real..<t { labels[r * t + j] = -100 }
        }
        labels[3 * t + 2] = -100  // a gap inside a row
        return (ids, labels, b, t)
    }

    @Test(arguments: [ModelArchitecture.llama, .qwen2])
    func tokenLogProbsAndGradientsMatchThePaddedPass(_ architecture: ModelArchitecture) throws {
        let (ids, labels, b, t) = Self.batch()
        let targets = CausalLM.shiftedTargets(labels, batch: b, length: t)
        // The packed path is taken here: 12 + 4 + 0 + 8 needed positions out of 52.
        let m = try Self.model(architecture)
        let lp = m.tokenLogProbs(ids, labels: labels, batch: b, length: t)
        #expect(lp.shape == [b, t])
        lp.sum().backward()
        let packedGrads = m.namedParameters.map { $0.tensor.grad!.toArray() }
        for (_, p) in m.namedParameters { p.zeroGrad() }

        let full = logSoftmaxGather(m.logits(ids, batch: b, length: t), targets: targets)
        let want = full.toArray(), got = lp.toArray()
        for i in 0..<(b * t) {
            #expect(abs(got[i] - want[i]) <= 1e-5 * max(1, abs(want[i])), "position \(i): \(got[i]) vs \(want[i])")
            if targets[i] == -100 { #expect(got[i] == 0) }
        }
        full.sum().backward()
        for ((name, p), g) in zip(m.namedParameters, packedGrads) {
            let w = p.grad!.toArray()
            var diff: Float = 0, norm: Float = 0
            for j in w.indices { diff += (g[j] - w[j]) * (g[j] - w[j]); norm += w[j] * w[j] }
            #expect(diff.squareRoot() <= 1e-5 * max(norm.squareRoot(), 1e-6), "gradient of \(name)")
        }

        // loss agrees with the mean over the scored positions.
        let loss = try Self.model(architecture).loss(ids, labels: labels, batch: b, length: t).item()
        let count = Float(targets.filter { $0 != -100 }.count)
        #expect(abs(loss - (-want.reduce(0, +) / count)) <= 1e-5)
    }

    @Test func packedAttentionEqualsEachSequenceAlone() {
        var rng = SeededRandom(seed: 3)
        let (h, kv, d) = (4, 2, 8)
        let lengths = [5, 1, 70, 3]  // 70 spans two row blocks of the kernel
        let n = lengths.reduce(0, +)
        let q = Tensor.randomNormal([1, n, h * d], rng: &rng, requiresGrad: true)
        let k = Tensor.randomNormal([1, n, kv * d], rng: &rng, requiresGrad: true)
        let v = Tensor.randomNormal([1, n, kv * d], rng: &rng, requiresGrad: true)
        let out = packedCausalAttention(q, k, v, heads: h, kvHeads: kv, headDim: d, sequenceLengths: lengths)
        let seed = Tensor.randomNormal([1, n, h * d], rng: &rng)
        out.backward(seed: seed)
        var start = 0
        for l in lengths {
            let qs = q.detach().narrow(axis: 1, start: start, length: l).clone(requiresGrad: true)
            let ks = k.detach().narrow(axis: 1, start: start, length: l).clone(requiresGrad: true)
            let vs = v.detach().narrow(axis: 1, start: start, length: l).clone(requiresGrad: true)
            let o = causalAttention(qs, ks, vs, heads: h, kvHeads: kv, headDim: d)
            o.backward(seed: seed.narrow(axis: 1, start: start, length: l))
            #expect(o.toArray() == out.detach().narrow(axis: 1, start: start, length: l).toArray())
            #expect(qs.grad!.toArray() == q.grad!.narrow(axis: 1, start: start, length: l).toArray())
            #expect(ks.grad!.toArray() == k.grad!.narrow(axis: 1, start: start, length: l).toArray())
            #expect(vs.grad!.toArray() == v.grad!.narrow(axis: 1, start: start, length: l).toArray())
            start += l
        }
    }
}
