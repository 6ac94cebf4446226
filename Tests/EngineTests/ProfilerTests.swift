import Testing
@testable import Engine

@Suite struct ProfilerTests {
    /// A small step: rmsNorm, linear, attention, loss, backward.
    func step(_ x: Tensor, _ w: Tensor, _ norm: Tensor) -> Tensor {
        let h = rmsNorm(x, weight: norm, eps: 1e-5)
        let qkv = linear(h, weight: w)  // [1, 14, 12]
        let q = qkv.narrow(axis: 2, start: 0, length: 4), k = qkv.narrow(axis: 2, start: 4, length: 4)
        let v = qkv.narrow(axis: 2, start: 8, length: 4)
        let o = causalAttention(q, k, v, heads: 2, kvHeads: 2, headDim: 2)
        return crossEntropy(o.reshaped([14, 4]), targets: Array(repeating: Int32(1), count: 14))
    }

    @Test func profilerNamesEveryOpOfAStepAndChangesNothing() {
        let x = randn([1, 14, 6], seed: 1, grad: false), w = randn([12, 6], seed: 2), norm = randn([6], seed: 3)
        let plain = step(x, w, norm)
        plain.backward()
        let plainGrad = w.grad!.toArray()
        w.grad = nil

        let profiler = OpProfiler()
        let profiled = profiler.collect { () -> Tensor in
            let loss = step(x, w, norm)
            loss.backward()
            return loss
        }
        #expect(profiled.item() == plain.item())
        #expect(w.grad!.toArray() == plainGrad)
        let byKey = Dictionary(uniqueKeysWithValues: profiler.entries.map { ("\($0.phase) \($0.op)", $0) })
        for key in ["forward rmsNorm", "forward linear [12, 6] on 14 rows", "forward attention 2/2 heads × 2",
                    "forward crossEntropy [14, 4]", "backward linear [12, 6] on 14 rows", "backward attention 2/2 heads × 2",
                    "backward rmsNorm"] {
            #expect(byKey[key]?.calls == 1, "\(key) missing from \(byKey.keys.sorted())")
        }
        #expect(byKey["forward narrow axis 2"]?.calls == 3)
        #expect(profiler.entries.allSatisfy { $0.seconds >= 0 })
        // Most expensive first.
        #expect(zip(profiler.entries, profiler.entries.dropFirst()).allSatisfy { $0.seconds >= $1.seconds })
    }

    @Test func unrecordedOpsAreNamedToo() {
        // Without recording, rmsNorm and attention keep no saved tensors; naming them must not need any.
        let x = randn([1, 14, 6], seed: 1, grad: false), w = randn([12, 6], seed: 2), norm = randn([6], seed: 3)
        let profiler = OpProfiler()
        let loss = Autograd.withNoGrad { profiler.collect { step(x, w, norm) } }
        #expect(loss.item().isFinite)
        let names = Set(profiler.entries.map(\.op))
        #expect(names.isSuperset(of: ["rmsNorm", "attention 2/2 heads × 2", "linear [12, 6] on 14 rows"]))
        #expect(profiler.entries.allSatisfy { $0.phase == "forward" })
        profiler.reset()
        #expect(profiler.entries.isEmpty)
    }
}
