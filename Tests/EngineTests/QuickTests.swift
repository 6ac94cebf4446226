import Testing
@testable import Engine

@Test func quickLinearCrossEntropy() {
    var rng = SeededRandom(seed: 1)
    let x = Tensor.randomNormal([2, 3, 5], rng: &rng)
    let w = Tensor.randomNormal([7, 5], rng: &rng, requiresGrad: true)
    let b = Tensor.randomNormal([7], rng: &rng, requiresGrad: true)
    let y = linear(x, weight: w, bias: b)
    let loss = crossEntropy(y, targets: [1, 2, -100, 4, 5, 6] as [Int32])
    loss.backward()
    print(loss.item(), w.grad!.toArray().prefix(5), b.grad!.toArray())
    #expect(w.grad != nil)
}
