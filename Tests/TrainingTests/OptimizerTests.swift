import Foundation
import Testing
@testable import Training
import Engine

private struct ParamFixture: Decodable { let name: String; let shape: [Int]; let initial: [Float]; let decay: Bool }
private struct OptimizerCase: Decodable {
    let optimizer: String
    let config: [String: Double]
    let final: [String: [Float]]
}
private struct OptimizersFixture: Decodable {
    let parameters: [ParamFixture]
    let givenGradients: [[String: [Float]]]
    let gradientParameterFactor: Float
    let learningRates: [Double]
    let cases: [OptimizerCase]
}
private struct ClipCase: Decodable { let maxNorm: Double; let norm: String; let totalNorm: Double; let clipped: [String: [Float]] }
private struct ClipFixture: Decodable { let gradients: [String: [Float]]; let cases: [ClipCase] }

/// Runs the fixture's 5 steps (g = given + 0.5·p) with `optimizer`; returns the final values.
private func run(_ f: OptimizersFixture, _ optimizer: Optimizer, buffers: Buffers) throws -> [String: [Float]] {
    let slots = f.parameters.map { p in
        ParameterSlot(name: p.name, shape: p.shape, value: buffers.make(p.initial), grad: buffers.make(count: p.initial.count))
    }
    for (t, lr) in f.learningRates.enumerated() {
        for s in slots {
            let given = f.givenGradients[t][s.name]!
            for i in 0..<s.count { s.grad![i] = given[i] + f.gradientParameterFactor * s.value[i] }
        }
        try optimizer.step(slots, learningRate: lr)
    }
    return Dictionary(uniqueKeysWithValues: slots.map { ($0.name, Array($0.value)) })
}

private func maxRelative(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).map { Double(abs($0 - $1)) / max(Double(abs($1)), 1e-3) }.max() ?? 0
}

@Suite struct OptimizerTests {
    private let fixture: OptimizersFixture
    init() throws { fixture = try loadFixture("optimizers") }

    private func make(_ c: OptimizerCase) throws -> Optimizer {
        if c.optimizer == "adamw" {
            return try AdamW(AdamWConfig(beta1: c.config["beta1"]!, beta2: c.config["beta2"]!, eps: c.config["eps"]!,
                                         weightDecay: c.config["weightDecay"]!, amsgrad: c.config["amsgrad"]! != 0))
        }
        return try SGD(SGDConfig(momentum: c.config["momentum"]!, dampening: c.config["dampening"]!,
                                 nesterov: c.config["nesterov"]! != 0, weightDecay: c.config["weightDecay"]!))
    }

    @Test func defaultDecayRule() {
        for p in fixture.parameters { #expect(ParameterSlot.defaultDecay(name: p.name, shape: p.shape) == p.decay, "\(p.name)") }
        #expect(!ParameterSlot.defaultDecay(name: "model.norm.weight", shape: [2, 2]))
        #expect(!ParameterSlot.defaultDecay(name: "q_proj.bias", shape: [4, 1]))
        #expect(ParameterSlot.defaultDecay(name: "q_proj.weight", shape: [4, 4]))
    }

    @Test func fiveStepsMatchTorch() throws {
        #expect(fixture.cases.count == 6)
        for c in fixture.cases {
            let buffers = Buffers()
            let final = try run(fixture, try make(c), buffers: buffers)
            for p in fixture.parameters {
                let err = maxRelative(final[p.name]!, c.final[p.name]!)
                #expect(err <= 1e-5, "\(c.optimizer) \(c.config) \(p.name): relative error \(err)")
                #expect(final[p.name]! != p.initial)
            }
        }
    }

    @Test func resetGivesAFreshOptimizer() throws {
        let c = fixture.cases[0]
        let opt = try make(c)
        let b1 = Buffers(), b2 = Buffers()
        _ = try run(fixture, opt, buffers: b1)
        #expect((opt as! AdamW).stepCount(of: fixture.parameters[0].name) == 5)
        opt.reset()
        #expect((opt as! AdamW).stepCount(of: fixture.parameters[0].name) == 0)
        let again = try run(fixture, opt, buffers: b2)
        for p in fixture.parameters { #expect(maxRelative(again[p.name]!, c.final[p.name]!) <= 1e-5) }
    }

    @Test func slotsWithoutGradientAreSkipped() throws {
        let b = Buffers()
        let v = b.make([1, 2, 3])
        let opt = try AdamW()
        try opt.step([ParameterSlot(name: "w", shape: [3], value: v, grad: nil)], learningRate: 0.1)
        #expect(Array(v) == [1, 2, 3])
        #expect(opt.stepCount(of: "w") == 0)
    }

    @Test func largeBuffersUseTheSameArithmetic() throws {
        // Above the parallel threshold, with a ragged tail: must equal the small-buffer path element-wise.
        let n = (1 << 16) + 13
        let b = Buffers()
        let values = (0..<n).map { Float(sin(Double($0))) }, grads = (0..<n).map { Float(cos(Double($0) * 0.7)) }
        let big = ParameterSlot(name: "big.weight", shape: [n, 1], value: b.make(values), grad: b.make(grads))
        let small = (0..<3).map { k in
            ParameterSlot(name: "small\(k).weight", shape: [1, 7], value: b.make(Array(values[(k * 7)..<(k * 7 + 7)])),
                          grad: b.make(Array(grads[(k * 7)..<(k * 7 + 7)])))
        }
        let cfg = AdamWConfig(weightDecay: 0.1, amsgrad: true)
        let o1 = try AdamW(cfg), o2 = try AdamW(cfg)
        for _ in 0..<3 { try o1.step([big], learningRate: 1e-2); try o2.step(small, learningRate: 1e-2) }
        for k in 0..<3 { #expect(Array(small[k].value) == Array(big.value[(k * 7)..<(k * 7 + 7)])) }
    }

    @Test func oneStepOverManyTensorsEqualsEachTensorAlone() throws {
        // Many tensors each below a thread's share (the parallel pass cuts the run of all of them,
        // mid-tensor), of ragged sizes, with and without decay, one joining a step late (its own
        // step count): stepped together on 4 threads they must equal each stepped alone on 1.
        let sizes = [3, 40_000, 1, 17, 65_536, 9, 30_001, 8, 12_345, 7]
        let b = Buffers()
        func slots(_ tag: String) -> [ParameterSlot] {
            sizes.enumerated().map { k, n in
                let values = (0..<n).map { Float(sin(Double($0 * (k + 1)) * 0.37)) }
                let grads = (0..<n).map { Float(cos(Double($0 + k) * 0.71)) }
                return ParameterSlot(name: "p\(k)", shape: [n], value: b.make(values), grad: b.make(grads), decay: k % 3 != 0)
            }
        }
        let together = slots("together"), alone = slots("alone")
        let cfg = AdamWConfig(weightDecay: 0.1, amsgrad: true)
        let joint = try AdamW(cfg)
        let separate = try sizes.indices.map { _ in try AdamW(cfg) }
        for step in 0..<3 {
            let active = step == 0 ? Array(sizes.indices.dropFirst(2)) : Array(sizes.indices)
            try Parallel.withThreads(4) { try joint.step(active.map { together[$0] }, learningRate: 1e-2) }
            for k in active { try Parallel.withThreads(1) { try separate[k].step([alone[k]], learningRate: 1e-2) } }
        }
        for k in sizes.indices {
            #expect(Array(together[k].value) == Array(alone[k].value), "tensor \(k) of \(sizes[k]) elements")
        }
        #expect(joint.stepCount(of: "p0") == 2 && joint.stepCount(of: "p2") == 3)
    }

    @Test func badOptionsAndMismatchesAreErrors() throws {
        #expect(throws: TrainingError.self) { try AdamW(AdamWConfig(beta1: 1)) }
        #expect(throws: TrainingError.self) { try AdamW(AdamWConfig(weightDecay: -1)) }
        #expect(throws: TrainingError.self) { try SGD(SGDConfig(momentum: 0, nesterov: true)) }
        #expect(throws: TrainingError.self) { try SGD(SGDConfig(momentum: 0.9, dampening: 0.1, nesterov: true)) }
        let b = Buffers()
        let opt = try AdamW()
        #expect(throws: TrainingError.self) {
            try opt.step([ParameterSlot(name: "w", shape: [2, 2], value: b.make(count: 3), grad: b.make(count: 3))], learningRate: 0.1)
        }
        #expect(throws: TrainingError.self) {
            try opt.step([ParameterSlot(name: "w", shape: [3], value: b.make(count: 3), grad: b.make(count: 2))], learningRate: 0.1)
        }
        let s = ParameterSlot(name: "w", shape: [3], value: b.make(count: 3), grad: b.make(count: 3))
        #expect(throws: TrainingError.self) { try opt.step([s, s], learningRate: 0.1) }
        #expect(throws: TrainingError.self) { try opt.step([s], learningRate: .nan) }
        try opt.step([s], learningRate: 0.1)
        // Same name, different size: the state no longer fits.
        #expect(throws: TrainingError.self) {
            try opt.step([ParameterSlot(name: "w", shape: [4], value: b.make(count: 4), grad: b.make(count: 4))], learningRate: 0.1)
        }
    }
}

@Suite struct GradientToolTests {
    @Test func clippingMatchesTorch() throws {
        let f: ClipFixture = try loadFixture("clipping")
        #expect(f.cases.count == 3)
        let names = f.gradients.keys.sorted()
        for c in f.cases {
            let b = Buffers()
            let slots = names.map { n in
                ParameterSlot(name: n, shape: [f.gradients[n]!.count], value: b.make(count: f.gradients[n]!.count),
                              grad: b.make(f.gradients[n]!))
            }
            let total = try GradientClipping.clipByGlobalNorm(slots, maxNorm: c.maxNorm, norm: c.norm == "l2" ? .l2 : .infinity)
            #expect(abs(total - c.totalNorm) <= 1e-6 * c.totalNorm, "\(c.norm) total \(total) vs \(c.totalNorm)")
            for s in slots { #expect(maxRelative(Array(s.grad!), c.clipped[s.name]!) <= 1e-6, "\(s.name)") }
        }
    }

    @Test func clippingErrors() throws {
        let b = Buffers()
        let s = ParameterSlot(name: "w", shape: [2], value: b.make(count: 2), grad: b.make([.nan, 1]))
        #expect(throws: TrainingError.self) { try GradientClipping.clipByGlobalNorm([s], maxNorm: 1, errorIfNonFinite: true) }
        #expect(throws: TrainingError.self) { try GradientClipping.clipByGlobalNorm([s], maxNorm: -1) }
        #expect(try GradientClipping.clipByGlobalNorm([], maxNorm: 1) == 0)
    }

    @Test func accumulatorSumsWeightedMicroBatches() throws {
        let b = Buffers()
        let g = b.make(count: 11)
        let slot = ParameterSlot(name: "w", shape: [11], value: b.make(count: 11), grad: g)
        let acc = GradientAccumulator()
        for k in 0..<3 {
            for i in 0..<11 { g[i] = Float(i * (k + 1)) }
            try acc.add([slot], weight: 0.5)
        }
        #expect(acc.microBatches == 3)
        for i in 0..<11 { g[i] = -1 }
        try acc.write(into: [slot])
        #expect(Array(g) == (0..<11).map { Float($0 * 6) * 0.5 })
        acc.reset()
        #expect(throws: TrainingError.self) { try acc.write(into: [slot]) }
        try acc.add([slot], weight: 1)
        try acc.write(into: [slot])
        #expect(Array(g) == (0..<11).map { Float($0 * 3) })
    }
}
