import Testing
@testable import Engine

@Suite struct TensorTests {
    @Test func creationAndAccess() {
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(t.count == 6 && t[1, 2] == 6 && t[0, 1] == 2)
        #expect(Tensor(scalar: 3).item() == 3 && Tensor(scalar: 3).shape == [])
        #expect(Tensor.full([2], value: 7).toArray() == [7, 7])
        #expect(Tensor(zeros: [3]).toArray() == [0, 0, 0])
        #expect(t.coordinates(ofFlatIndex: 4) == [1, 1])
        var r1 = SeededRandom(seed: 5), r2 = SeededRandom(seed: 5)
        #expect(Tensor.randomNormal([4], std: 0.02, rng: &r1).toArray() == Tensor.randomNormal([4], std: 0.02, rng: &r2).toArray())
        let u = Tensor.randomUniform([1000], low: -1, high: 1, rng: &r1).toArray()
        #expect(u.allSatisfy { $0 >= -1 && $0 < 1 })
    }

    @Test func viewsShareStorage() {
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        let r = t.reshaped([2, -1])
        #expect(r.shape == [2, 3] && r.storage === t.storage)
        let s = t.rows(1..<3)
        #expect(s.shape == [2, 2] && s.storage === t.storage && s.offset == 2 && s.toArray() == [3, 4, 5, 6])
        s.withUnsafeMutableBufferPointer { $0[0] = 30 }
        #expect(t[1, 0] == 30)
        // A view of a view keeps the right offset.
        #expect(s.rows(1..<2).toArray() == [5, 6])
        #expect(t.narrow(axis: 1, start: 1, length: 1).toArray() == [2, 4, 6])
        #expect(concat([t, t.scaled(by: 2)], axis: 0).shape == [6, 2])
    }

    @Test func parameterGradientBuffers() {
        let w = Tensor(zeros: [2, 2], requiresGrad: true)
        #expect(w.grad == nil && w.isLeaf)
        w.withUnsafeMutableGradBufferPointer { $0[3] = 5 }
        #expect(w.grad!.toArray() == [0, 0, 0, 5])
        w.zeroGrad()
        #expect(w.grad!.toArray() == [0, 0, 0, 0])
        w.requiresGrad = false   // freezing drops the buffer
        #expect(w.grad == nil)
    }
}
