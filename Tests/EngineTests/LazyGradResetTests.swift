import Foundation
import Testing
@testable import Engine

/// `resetGrad()` zeroes a gradient lazily: the next backward pass writes over the buffer. Every
/// way of reading the gradient must still see exactly what an eager `zeroGrad()` gives.
@Suite struct LazyGradResetTests {
    /// A small network touching every parameter-gradient writer: linear weight and bias
    /// (overwriting GEMM and row sums), embedding (scatter-add), RMSNorm weight (accumulating).
    struct Net {
        let table = randn([11, 8], seed: 1)
        let norm = randn([8], seed: 2)
        let w1 = randn([12, 8], seed: 3)
        let b1 = randn([12], seed: 4)
        let w2 = randn([8, 12], seed: 5)
        var parameters: [Tensor] { [table, norm, w1, b1, w2] }

        func loss(_ ids: [Int32]) -> Tensor {
            let h = rmsNorm(embedding(table, ids: ids, shape: [ids.count]), weight: norm, eps: 1e-6)
            let y = linear(linear(h, weight: w1, bias: b1).silu(), weight: w2)
            // w1 is used twice, so its gradient gets a second contribution after the first overwrites.
            return add(mul(y, y).mean(), linear(h, weight: w1).mean())
        }
    }

    static func grads(_ net: Net) -> [[Float]] { net.parameters.map { $0.grad!.toArray() } }

    @Test func resetThenBackwardMatchesZeroThenBackward() {
        let lazy = Net(), eager = Net()
        let steps: [[Int32]] = [[1, 4, 4, 9], [0, 10, 3, 3, 7], [2, 2]]
        for (i, ids) in steps.enumerated() {
            if i > 0 {
                for p in lazy.parameters { p.resetGrad() }
                for p in eager.parameters { p.zeroGrad() }
            }
            lazy.loss(ids).backward()
            eager.loss(ids).backward()
            #expect(Self.grads(lazy) == Self.grads(eager), "step \(i)")
        }
        // Two passes after one reset: the second adds to what the first wrote.
        for p in lazy.parameters { p.resetGrad() }
        for p in eager.parameters { p.zeroGrad() }
        for net in [lazy, eager] {
            net.loss([5, 6]).backward()
            net.loss([6, 5, 1]).backward()
        }
        #expect(Self.grads(lazy) == Self.grads(eager))
        // And the stale values really were overwritten: a reset gradient differs from old + new.
        #expect(Self.grads(lazy).allSatisfy { g in g.contains { $0 != 0 } })
    }

    @Test func aResetGradientReadsAsZerosUntilABackwardPassWrites() {
        let net = Net()
        net.loss([1, 2, 3]).backward()
        let kept = net.w2.withUnsafeMutableGradBufferPointer { $0 }
        #expect(kept.contains { $0 != 0 })
        for p in net.parameters { p.resetGrad() }
        // Through `grad`: zeros, written on the spot.
        #expect(net.w1.grad!.toArray().allSatisfy { $0 == 0 })
        #expect(!net.w1.gradIsStale)
        // A kept pointer shows zeros once settled.
        #expect(net.w2.gradIsStale)
        net.w2.settleGrad()
        #expect(kept.allSatisfy { $0 == 0 } && !net.w2.gradIsStale)
        // Through the buffer accessor.
        #expect(net.b1.withUnsafeMutableGradBufferPointer { $0.allSatisfy { $0 == 0 } })
        // A parameter the next pass does not reach still reads as zeros afterwards.
        let unused = randn([3], seed: 9)
        mul(unused, unused).sum().backward()
        unused.resetGrad()
        net.loss([4]).backward()
        #expect(unused.grad!.toArray() == [0, 0, 0])
    }

    @Test func resetOnATensorWithoutGradientIsHarmless() {
        let w = randn([2, 3], seed: 7)
        w.resetGrad()
        #expect(w.grad == nil && !w.gradIsStale)
        linear(randn([1, 3], seed: 8, grad: false), weight: w).sum().backward()
        #expect(w.grad!.toArray() == linearWeightGradient(w))
    }

    /// d/dW of sum(x · Wᵀ) with the same x: every row of W gets x.
    func linearWeightGradient(_ w: Tensor) -> [Float] {
        let x = randn([1, 3], seed: 8, grad: false).toArray()
        return (0..<w.shape[0]).flatMap { _ in x }
    }
}
