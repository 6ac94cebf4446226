import Foundation
import Testing
@testable import Engine

@Suite struct AutogradTests {
    @Test func gradientsAccumulateUntilZeroed() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        mul(w, w).sum().backward()
        #expect(w.grad!.toArray() == [2, 4, 6])
        mul(w, w).sum().backward()
        #expect(w.grad!.toArray() == [4, 8, 12])
        w.zeroGrad()
        w.sum().backward()
        #expect(w.grad!.toArray() == [1, 1, 1])
    }

    @Test func noGradRecordsNothing() {
        let w = randn([4, 3], seed: 1)
        let x = randn([2, 3], seed: 2, grad: false)
        let y = Autograd.withNoGrad { () -> Tensor in
            #expect(!Autograd.isRecording)
            let inner = Autograd.withGrad { linear(x, weight: w) }
            #expect(inner.requiresGrad)  // withGrad turns recording back on inside
            return linear(x, weight: w).silu().sum()
        }
        #expect(Autograd.isRecording)
        #expect(!y.requiresGrad && y.isLeaf)
        #expect(w.grad == nil)
    }

    @Test func noGradIsScopedToItsTask() async {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await Autograd.withNoGrad { () async -> Bool in
                try? await Task.sleep(nanoseconds: 20_000_000)
                return Autograd.isRecording
            } }
            group.addTask { Autograd.isRecording }
            var results: [Bool] = []
            for await r in group { results.append(r) }
            #expect(results.sorted { !$0 && $1 } == [false, true])
        }
    }

    @Test func frozenParametersGetNoGradient() {
        let x = randn([2, 5], seed: 3, grad: false)
        let frozen = randn([4, 5], seed: 4, grad: false)
        let a = randn([2, 5], seed: 5), b = randn([4, 2], seed: 6)   // LoRA-style adapters
        let base = linear(x, weight: frozen)
        let lora = linear(linear(x, weight: a), weight: b).scaled(by: 0.5)
        (base + lora).sum().backward()
        #expect(frozen.grad == nil && a.grad != nil && b.grad != nil)
        // Nothing requires grad: the output is a constant and backward refuses it.
        #expect(!linear(x, weight: frozen).requiresGrad)
    }

    @Test func graphIsReleasedAfterBackwardUnlessRetained() {
        let w = randn([3], seed: 7)
        let h = w.exp()
        let loss = h.sum()
        loss.backward(retainGraph: true)
        #expect(h.requiresGrad && !h.isLeaf)
        loss.backward()
        #expect(!h.requiresGrad && h.isLeaf)
        let g = w.grad!.toArray(), e = w.exp().toArray()
        for i in 0..<3 { #expect(abs(g[i] - 2 * e[i]) <= 1e-6 * e[i]) }
    }

    @Test func seededBackwardOfNonScalar() {
        let w = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = w.scaled(by: 3)
        y.backward(seed: Tensor([1, 10], shape: [2]))
        #expect(w.grad!.toArray() == [3, 30])
    }

    @Test func resultsAreBitwiseReproducible() {
        func step() -> ([Float], [Float]) {
            let m = TinyModel(seed: 11)
            let loss = m.loss()
            loss.backward()
            return ([loss.item()], m.params.flatMap { $0.grad!.toArray() })
        }
        let a = step(), b = step()
        #expect(a.0 == b.0 && a.1 == b.1)
    }
}
