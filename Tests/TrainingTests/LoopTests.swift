import Engine
import Foundation
import Models
import Testing
@testable import Training

/// A tiny Llama (vocab 40, hidden 16, 2 layers) and small seeded data for the loop tests.
enum LoopFixture {
    static let config = ModelConfig(vocabSize: 40, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2,
                                    numAttentionHeads: 2, numKeyValueHeads: 1, initializerRange: 0.2)

    static func model(seed: UInt64 = 1) throws -> CausalLM { try CausalLM(config: config, seed: seed) }

    /// `count` examples with `prompt` prompt tokens and `response` response tokens.
    static func examples(_ count: Int, prompt: Int = 3, response: Int = 5, seed: UInt64 = 7) -> [Example] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            Example(prompt: (0..<prompt).map { _ in Int32(1 + rng.nextInt(39)) },
                    response: (0..<response).map { _ in Int32(1 + rng.nextInt(39)) })
        }
    }

    /// Parameter values as bit patterns (NaN-safe equality).
    static func bits(_ m: CausalLM) -> [[UInt32]] { m.parameterValues().map { $0.values.map(\.bitPattern) } }

    static func gradients(_ m: CausalLM) -> [Float] {
        m.namedParameters.flatMap { $0.tensor.grad?.toArray() ?? [Float](repeating: 0, count: $0.tensor.count) }
    }

    static func zeroGrad(_ m: CausalLM) { for (_, t) in m.namedParameters { t.zeroGrad() } }

    static func sft(epochs: Int = 1, batch: Int = 4, replay: Int = 0, lr: Double = 1e-2, seed: UInt64 = 3,
                    optimizer: OptimizerChoice = .adamw(AdamWConfig(weightDecay: 0)), objective: StageObjective = .sft) -> StageOptions {
        StageOptions(epochs: epochs, batching: BatchingOptions(batchSize: batch, maxContext: 32, replayPerBatch: replay),
                     optimizer: optimizer, schedule: ScheduleSpec(kind: .constant), objective: objective, seed: seed,
                     learningRate: lr)
    }

    static func unlearning(_ objective: Objective, steps: Int = 3, batch: Int = 4, lr: Double = 1e-2,
                           optimizer: OptimizerChoice = .sgd(SGDConfig())) -> UnlearningOptions {
        UnlearningOptions(steps: steps, batchSize: batch, maxContext: 32, padId: 0, optimizer: optimizer,
                          schedule: ScheduleSpec(kind: .constant), objective: objective, seed: 11, learningRate: lr)
    }

    /// Mean per-token NLL of the responses.
    static func meanNLL(_ m: CausalLM, _ examples: [Example]) throws -> Double {
        let batch = try TokenBatch.collate(examples, padId: 0)
        return -sequenceLogLikelihoods(m, batch).reduce(0, +) / Double(batch.totalLossTokens)
    }
}

@Suite struct LoopTests {
    typealias F = LoopFixture

    @Test func sftGradientEqualsHFLossGradient() throws {
        let model = try F.model()
        // Different prompt/response lengths so padding and prompt masking both matter.
        let examples = F.examples(2, prompt: 2, response: 4) + F.examples(2, prompt: 4, response: 6, seed: 9)
        let batch = try TokenBatch.collate(examples, padId: 0)
        let pass = ObjectivePass(model: model, reference: nil, objective: .sft, padId: 0)
        let result = try pass.run([(.target, batch)], context: "test")
        let ours = F.gradients(model)
        F.zeroGrad(model)
        let hf = model.loss(batch.inputIds, labels: labels(of: batch), batch: batch.batchSize, length: batch.length)
        hf.backward()
        let theirs = F.gradients(model)
        #expect(abs(result.loss - Double(hf.item())) < 1e-5)
        #expect(relativeError(ours.map(Double.init), theirs.map(Double.init)) < 1e-5)
        #expect(theirs.contains { $0 != 0 })
    }

    @Test func npoGradientMatchesFiniteDifferences() throws {
        let model = try F.model()
        let reference = try F.model(seed: 2)
        let examples = F.examples(3)
        let batch = try TokenBatch.collate(examples, padId: 0)
        let objective = Objective.npo(beta: 0.5)
        let pass = ObjectivePass(model: model, reference: reference, objective: objective, padId: 0)
        _ = try pass.run([(.forget, batch)], context: "test")
        func value() throws -> Double {
            let stats = SequenceStats(logLikelihood: sequenceLogLikelihoods(model, batch), tokenCounts: batch.tokenCounts,
                                      referenceLogLikelihood: sequenceLogLikelihoods(reference, batch))
            return try objective.evaluate([.forget: stats]).loss
        }
        // Central differences on a few coordinates of three different tensors.
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight", "lm_head.weight"] {
            let t = model.parameter(name)!
            let g = t.grad!.toArray()
            for i in [0, t.count / 2, t.count - 1] {
                let eps: Float = 1e-2
                let x = t.withUnsafeBufferPointer { $0[i] }
                t.withUnsafeMutableBufferPointer { $0[i] = x + eps }
                let up = try value()
                t.withUnsafeMutableBufferPointer { $0[i] = x - eps }
                let down = try value()
                t.withUnsafeMutableBufferPointer { $0[i] = x }
                let fd = (up - down) / Double(2 * eps)
                #expect(abs(fd - Double(g[i])) <= 2e-3 + 2e-2 * abs(fd), "\(name)[\(i)]: fd \(fd), backward \(g[i])")
            }
        }
    }

    @Test func lossDecreasesOnMemorisation() throws {
        let model = try F.model()
        let result = try StageTrainer.train(model: model, examples: F.examples(4), options: F.sft(epochs: 30))
        #expect(result.steps == 30 && result.losses.count == 30)
        #expect(result.losses.last! < 0.3 * result.losses.first!, "\(result.losses.first!) -> \(result.losses.last!)")
    }

    @Test func lmObjectiveCountsEveryTokenAfterTheFirst() throws {
        let model = try F.model()
        var seen: [Double] = []
        let examples = F.examples(2)
        try StageTrainer.train(model: model, examples: examples, options: F.sft(epochs: 1, lr: 0, objective: .lm)) { seen.append($0.loss) }
        let docs = examples.map { Example(prompt: [], response: $0.prompt + $0.response) }
        #expect(abs(seen[0] - (try F.meanNLL(model, docs))) < 1e-6)
    }

    @Test func sameSeedSameParametersDifferentSeedDiffers() throws {
        func run(_ seed: UInt64) throws -> [[UInt32]] {
            let model = try F.model()
            let docs = F.examples(6, prompt: 0, response: 7, seed: 5)
            var options = F.sft(epochs: 2, batch: 3, replay: 2, seed: seed)
            options.clipNorm = 1
            try StageTrainer.train(model: model, examples: F.examples(7), replayPool: docs, options: options)
            return F.bits(model)
        }
        let a = try run(1), b = try run(1), c = try run(2)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func optimizerIsFreshAtEveryStage() throws {
        let sgd = OptimizerChoice.sgd(SGDConfig(momentum: 0.9))
        let model = try F.model()
        try StageTrainer.train(model: model, examples: F.examples(8), options: F.sft(epochs: 1, optimizer: sgd))
        let stage2 = F.examples(4, seed: 21)
        let twin = try model.copy()
        var options2 = F.sft(epochs: 1, lr: 0.1, optimizer: sgd)
        options2.batching.shuffle = false
        try StageTrainer.train(model: model, examples: stage2, options: options2)
        // A fresh SGD's first step with momentum is p − lr·g (the buffer starts at g): no memory
        // of stage 1's momentum.
        let batch = try TokenBatch.collate(stage2, padId: 0)
        twin.loss(batch.inputIds, labels: labels(of: batch), batch: 4, length: batch.length).backward()
        var maxDiff: Float = 0
        for ((_, a), (_, b)) in zip(model.namedParameters, twin.namedParameters) {
            let g = b.grad!.toArray(), p = b.toArray(), q = a.toArray()
            for i in 0..<p.count { maxDiff = max(maxDiff, abs(q[i] - (p[i] - 0.1 * g[i]))) }
        }
        #expect(maxDiff < 1e-6)
    }

    @Test func gradientAscentRaisesForgetNLL() throws {
        let model = try F.model()
        let forget = F.examples(8)
        let before = try F.meanNLL(model, forget)
        var steps: [Int] = []
        let result = try Unlearner.run(model: model, reference: nil, forget: forget, options: F.unlearning(.ga, steps: 4, lr: 0.5),
                                       evaluate: { steps.append($0) })
        #expect(steps == [0, 1, 2, 3, 4])
        #expect(result.losses.count == 4)
        #expect(try F.meanNLL(model, forget) > before + 0.05)
    }

    @Test func npoAtStepZeroIsGradientAscentTimesResponseLength() throws {
        // With π_ref = π_θ, NPO's weights are (2/N)·σ(0) = 1/N and GA's are 1/Σ|y| = 1/(N·L):
        // the NPO gradient is L times the GA gradient (for any β).
        let model = try F.model()
        let batch = try TokenBatch.collate(F.examples(4, response: 5), padId: 0)
        _ = try ObjectivePass(model: model, reference: nil, objective: .ga, padId: 0).run([(.forget, batch)], context: "ga")
        let ga = F.gradients(model)
        F.zeroGrad(model)
        let npo = Objective.npo(beta: 0.3)
        _ = try ObjectivePass(model: model, reference: try model.copy(), objective: npo, padId: 0).run([(.forget, batch)], context: "npo")
        let g = F.gradients(model)
        #expect(relativeError(g.map(Double.init), ga.map { 5 * Double($0) }) < 1e-6)
    }

    @Test func unlearningBatchOrderDependsOnlyOnSeed() throws {
        // GA and SimNPO (local) with the same seed draw the same forget batches: record them.
        func firstRows(_ objective: Objective) throws -> [Double] {
            var losses: [Double] = []
            let model = try F.model()
            try Unlearner.run(model: model, reference: nil, forget: F.examples(12), options: F.unlearning(objective, steps: 3, lr: 0),
                              progress: { losses.append($0.loss) })
            return losses
        }
        // With lr 0 the model is fixed, so GA's loss per step is −(batch NLL): same batches, same values twice.
        #expect(try firstRows(.ga) == firstRows(.ga))
        #expect(Set(try firstRows(.ga)).count == 3)
    }

    @Test func nonLocalAndReferenceObjectivesRun() throws {
        let forget = F.examples(6), retain = F.examples(6, seed: 30)
        let idk = F.examples(6, response: 3, seed: 31).enumerated().map { Example(prompt: forget[$0.offset].prompt, response: $0.element.response) }
        for objective: Objective in [.gradDiff(), .npoRT(), .simNPOOriginal(), .simNPOPaperCode(), .idkDPO(),
                                     .gradDiff(gamma: 1, alpha: 1, retain: .kl)] {
            let model = try F.model()
            let reference = try model.copy()
            let result = try Unlearner.run(model: model, reference: reference, forget: forget, retain: retain, idk: idk,
                                           options: F.unlearning(objective, steps: 2))
            #expect(result.losses.count == 2 && result.losses.allSatisfy(\.isFinite), "\(objective.name)")
            #expect(F.bits(model) != F.bits(reference), "\(objective.name) did not move the model")
        }
    }

    @Test func dpoStageRaisesChosenOverRejected() throws {
        let model = try F.model()
        let chosen = F.examples(4, seed: 40)
        let pairs = chosen.enumerated().map { i, c in
            TokenPreferencePair(chosen: c, rejected: Example(prompt: c.prompt, response: F.examples(4, seed: 41)[i].response))
        }
        func margin() throws -> Double {
            try F.meanNLL(model, pairs.map(\.rejected)) - F.meanNLL(model, pairs.map(\.chosen))
        }
        let before = try margin()
        let result = try StageTrainer.train(model: model, preferencePairs: pairs, options: F.sft(epochs: 5, objective: .dpo(beta: 0.5)))
        #expect(abs(result.losses[0] - log(2)) < 1e-6)  // reference = model at the start
        #expect(try margin() > before + 0.5)
    }

    @Test func clearErrors() throws {
        let model = try F.model()
        let forget = F.examples(4)
        func context(_ body: () throws -> Void) -> String {
            do { try body() } catch let e as TrainingError { return e.description } catch { return "other: \(error)" }
            return "no error"
        }
        #expect(context { try Unlearner.run(model: model, reference: nil, forget: [], options: F.unlearning(.ga)) }
            .hasPrefix("Unlearner.forget: empty input"))
        #expect(context { try Unlearner.run(model: model, reference: nil, forget: forget, options: F.unlearning(.gradDiff())) }
            .hasPrefix("Unlearner.retain: empty input"))
        #expect(context { try Unlearner.run(model: model, reference: nil, forget: forget, options: F.unlearning(.npo())) }
            .hasPrefix("Unlearner.reference: empty input"))
        #expect(context { try Unlearner.run(model: model, reference: model, forget: forget, options: F.unlearning(.npo())) }
            .hasPrefix("Unlearner.reference: invalid option"))
        #expect(context { try Unlearner.run(model: model, reference: nil, forget: forget, options: F.unlearning(.idkDPO())) }
            .hasPrefix("Unlearner.reference"))
        let masked = [Example(prompt: [1, 2, 3], response: [])]
        #expect(context { try Unlearner.run(model: model, reference: nil, forget: masked, options: F.unlearning(.ga)) }
            .contains("no loss tokens"))
        #expect(context { try StageTrainer.train(model: model, examples: [Example(prompt: [], response: [5])], options: F.sft()) }
            .contains("no loss tokens"))
        #expect(context { try Unlearner.run(model: model, reference: nil, forget: forget, options: F.unlearning(.sft)) }
            .hasPrefix("UnlearningOptions.objective"))
        #expect(context { try StageTrainer.train(model: model, examples: forget, options: F.sft(objective: .dpo(beta: 0.1))) }
            .hasPrefix("StageOptions.objective"))
    }

    @Test func nonFiniteLossNamesTheStepAndWritesNothing() throws {
        let model = try F.model()
        let weight = model.parameter("model.layers.1.mlp.down_proj.weight")!
        var evaluated: [Int] = []
        var snapshot: [[UInt32]] = []
        let message: String
        do {
            try Unlearner.run(model: model, reference: nil, forget: F.examples(8), options: F.unlearning(.ga, steps: 4),
                              evaluate: { k in
                                  evaluated.append(k)
                                  if k == 2 {
                                      weight.withUnsafeMutableBufferPointer { $0[3] = .nan }
                                      snapshot = F.bits(model)
                                  }
                              })
            message = "no error"
        } catch let e as TrainingError {
            guard case .nonFinite = e else { Issue.record("expected nonFinite, got \(e)"); return }
            message = e.description
        }
        #expect(message.hasPrefix("Unlearner step 3/4"), "\(message)")
        #expect(evaluated == [0, 1, 2])
        #expect(F.bits(model) == snapshot)
    }
}

/// 3 SFT steps of AdamW against PyTorch + transformers (scripts/reference/loop_fixtures.py).
@Suite struct LoopParityTests {
    struct Run: Decodable {
        struct Ex: Decodable { var prompt: [Int32]; var response: [Int32] }
        var examples: [Ex]
        var lr, beta1, beta2, eps: Double
        var weight_decay: Double
        var batch_size: Int
        var losses: [Double]
    }

    @Test func threeAdamWStepsMatchPyTorch() throws {
        guard let dir = Bundle.module.url(forResource: "loop_sft", withExtension: nil, subdirectory: "Fixtures") else {
            Issue.record("Fixtures/loop_sft is missing from the test bundle"); return
        }
        let run = try JSONDecoder().decode(Run.self, from: Data(contentsOf: dir.appendingPathComponent("run.json")))
        let model = try CausalLM(directory: dir.appendingPathComponent("initial"))
        let options = StageOptions(
            epochs: 1, batching: BatchingOptions(batchSize: run.batch_size, maxContext: 64, padId: 0, shuffle: false),
            optimizer: .adamw(AdamWConfig(beta1: run.beta1, beta2: run.beta2, eps: run.eps, weightDecay: run.weight_decay)),
            schedule: ScheduleSpec(kind: .constant), seed: 0, learningRate: run.lr)
        let result = try StageTrainer.train(model: model, examples: run.examples.map { Example(prompt: $0.prompt, response: $0.response) },
                                            options: options)
        #expect(result.steps == 3)
        for (a, b) in zip(result.losses, run.losses) { #expect(abs(a - b) <= 1e-5 * abs(b), "loss \(a) vs \(b)") }
        let expected = try CausalLM(directory: dir.appendingPathComponent("final"))
        for ((name, ours), (_, theirs)) in zip(model.namedParameters, expected.namedParameters) {
            let err = relativeError(ours.toArray().map(Double.init), theirs.toArray().map(Double.init))
            #expect(err <= 1e-4, "\(name): relative error \(err)")
        }
    }
}
