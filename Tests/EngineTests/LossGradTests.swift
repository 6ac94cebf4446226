import Foundation
import Testing
@testable import Engine

/// Log-softmax + gather and cross-entropy against Float64.
@Suite struct LossGradTests {
    @Test(arguments: [1, 3, 17, 127])
    func logSoftmaxGatherWithIgnoredTargets(vocab: Int) {
        let logits = randn([2, 3, vocab], std: 3, seed: 1)
        var rng = SeededRandom(seed: 2)
        var targets = (0..<6).map { _ in rng.nextInt(vocab) }
        targets[4] = -100
        let out = GradCheck().run("logSoftmaxGather V\(vocab)", inputs: [logits]) { logSoftmaxGather($0[0], targets: targets) } reference: {
            Ref.logSoftmaxGather($0[0], v: vocab, targets: targets, ignore: -100)
        }
        #expect(out.shape == [2, 3])
        #expect(out[1, 1] == 0)
        // The ignored row gets exactly zero gradient.
        let g = logits.grad!
        for j in 0..<vocab { #expect(g[1, 1, j] == 0) }
    }

    @Test(arguments: [3, 127])
    func crossEntropyMeanOverValidTokens(vocab: Int) {
        let logits = randn([4, vocab], std: 2, seed: 3)
        let targets = [0, -100, vocab - 1, 1 % vocab]
        GradCheck().run("crossEntropy V\(vocab)", inputs: [logits]) { crossEntropy($0[0], targets: targets) } reference: {
            let lp = Ref.logSoftmaxGather($0[0], v: vocab, targets: targets, ignore: -100)
            return [-lp.reduce(0, +) / 3]
        }
    }

    @Test func weightedSequenceLogLikelihood() {
        // Σ_bt w_bt · logp_bt, the shape every training objective takes.
        let logits = randn([2, 3, 5], seed: 4)
        let targets: [Int32] = [1, 2, 3, 4, 0, -100]
        let w = Tensor([1, 0.5, 0, 2, -1, 3], shape: [2, 3])
        GradCheck().run("weighted logp", inputs: [logits]) { mul(logSoftmaxGather($0[0], targets: targets), w).sum() } reference: {
            let lp = Ref.logSoftmaxGather($0[0], v: 5, targets: targets.map(Int.init), ignore: -100)
            let wd = w.toArray().map(Double.init)
            return [zip(lp, wd).reduce(0) { $0 + $1.0 * $1.1 }]
        }
    }

    @Test func crossEntropyEqualsMeanNegativeLogSoftmaxGather() {
        let logits = randn([3, 2, 11], seed: 5, grad: false)
        let targets = [1, 2, 3, -100, 10, 0]
        let ce = crossEntropy(logits, targets: targets).item()
        let lp = logSoftmaxGather(logits, targets: targets).toArray()
        #expect(abs(ce + lp.reduce(0, +) / 5) <= 1e-6 * abs(ce))
    }

    @Test func largeLogitsStayFinite() {
        let logits = Tensor([1000, -1000, 0, 999], shape: [1, 4])
        let lp = logSoftmaxGather(logits, targets: [3]).item()
        // Exact: −1 − log(1 + e⁻¹); Float32 resolves logsumexp ≈ 1000.31 only to 6e-5.
        #expect(abs(lp - (-1.3132616)) < 1.3e-4)
        let ce = crossEntropy(logits.reshaped([1, 4]), targets: [1])
        #expect(abs(ce.item() - 2000.3133) < 0.1 && ce.item().isFinite)
    }
}
