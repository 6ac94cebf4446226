import Engine
import Foundation
import Models
import Testing
@testable import Training

/// Stage training and unlearning through LoRA adapters.
@Suite struct LoRATrainingTests {
    typealias F = LoopFixture

    static func adapterValues(_ lora: LoRA) -> [[Float]] { lora.parameters.map { $0.tensor.toArray() } }

    @Test func stageTrainsOnlyTheAdapters() throws {
        let model = try F.model()
        let base = F.bits(model)
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 4, alpha: 8, targets: ["q", "v", "up", "down"], seed: 2))
        let slots = ModelSlots(model: model)
        #expect(slots.slots.map(\.name) == lora.parameters.map(\.name))
        let decays = slots.slots.map(\.decay)
        #expect(decays.allSatisfy { $0 }, "A and B are matrices: AdamW decays them as PEFT + HF Trainer do")
        let examples = F.examples(8)
        let before = try F.meanNLL(model, examples)
        let start = Self.adapterValues(lora)
        let result = try StageTrainer.train(model: model, examples: examples,
                                            options: F.sft(epochs: 6, lr: 2e-2, optimizer: .adamw(AdamWConfig(weightDecay: 0.01))))
        #expect(result.steps == 12)
        #expect(F.bits(model) == base, "base weights must stay bit-identical")
        #expect(Self.adapterValues(lora) != start)
        #expect(model.namedParameters.allSatisfy { $0.tensor.grad == nil }, "frozen weights get no gradient buffer")
        let after = try F.meanNLL(model, examples)
        #expect(after < before - 0.1, "SFT through LoRA: NLL \(before) -> \(after)")
        // Merge and detach: a plain model computing the same function, fully trainable again.
        try lora.mergeAndDetach()
        #expect(model.lora == nil && model.namedParameters.allSatisfy { $0.tensor.requiresGrad })
        #expect(abs(try F.meanNLL(model, examples) - after) < 1e-4)
        #expect(F.bits(model) != base)
    }

    @Test func npoReferenceSharesTheBaseAndStartsEqual() throws {
        let model = try F.model()
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2, seed: 4))
        let reference = try model.frozenReference()
        for ((name, mine), (_, theirs)) in zip(model.namedParameters, reference.namedParameters) {
            #expect(mine.storage === theirs.storage, "\(name): the reference must share the frozen base, not copy it")
        }
        let base = F.bits(model)
        let beta = 0.4
        let forget = F.examples(8)
        let nll = try F.meanNLL(model, forget)
        let result = try Unlearner.run(model: model, reference: reference, forget: forget, options: F.unlearning(.npo(beta: beta), steps: 3, lr: 0.2))
        // Step 1: π_θ = π_ref, so NPO's loss is (2/β)·log 2.
        #expect(abs(result.losses[0] - 2 / beta * log(2)) < 1e-6, "first NPO loss \(result.losses[0])")
        #expect(try F.meanNLL(model, forget) > nll + 0.01, "NPO through the adapters raises the forget NLL")
        #expect(abs(try F.meanNLL(reference, forget) - nll) < 1e-9, "the reference stays the model before unlearning")
        #expect(F.bits(model) == base && F.bits(reference) == base)
        #expect(lora.layers.contains { $0.b.toArray().contains { $0 != 0 } })

        // KL retain term and IdkDPO with the shared reference.
        for objective: Objective in [.gradDiff(gamma: 1, alpha: 1, retain: .kl), .idkDPO(), .simNPOOriginal()] {
            let m = try F.model()
            try LoRA.attach(to: m, config: LoRAConfig(rank: 2, targets: ["o", "gate"], seed: 4))
            let forget = F.examples(6)
            let idk = F.examples(6, response: 3, seed: 31).enumerated().map { Example(prompt: forget[$0.offset].prompt, response: $0.element.response) }
            let r = try Unlearner.run(model: m, reference: try m.frozenReference(), forget: forget, retain: F.examples(6, seed: 30), idk: idk,
                                      options: F.unlearning(objective, steps: 2))
            let finite = r.losses.allSatisfy { $0.isFinite }
            #expect(finite, "\(objective.name)")
        }
    }

    @Test func dpoDefaultReferenceIsSharedAndDropoutIsSeeded() throws {
        func run() throws -> ([Double], [[Float]]) {
            let model = try F.model()
            let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2, dropout: 0.3, seed: 8))
            let chosen = F.examples(4, seed: 40)
            let pairs = chosen.enumerated().map { i, c in
                TokenPreferencePair(chosen: c, rejected: Example(prompt: c.prompt, response: F.examples(4, seed: 41)[i].response))
            }
            let result = try StageTrainer.train(model: model, preferencePairs: pairs, options: F.sft(epochs: 3, objective: .dpo(beta: 0.5)))
            #expect(!lora.isTraining, "dropout is off outside the update")
            return (result.losses, Self.adapterValues(lora))
        }
        let (losses, values) = try run()
        // Step 1: the policy and the reference agree except for dropout, which only perturbs the policy.
        #expect(abs(losses[0] - log(2)) < 0.05)
        let (again, values2) = try run()
        #expect(losses == again && values == values2, "same seed, same dropout masks, same result")
    }

    @Test func mergedOrMissingAdaptersFailBeforeAnyStep() throws {
        let model = try F.model()
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2))
        try lora.merge()
        let base = F.bits(model)
        #expect { try StageTrainer.train(model: model, examples: F.examples(4), options: F.sft()) } throws: {
            "\($0)".contains("merged")
        }
        #expect(F.bits(model) == base)
        lora.isEnabled = false
        try lora.unmerge()
        // Disabled adapters and a frozen base: nothing to train.
        #expect { try Unlearner.run(model: model, reference: nil, forget: F.examples(4), options: F.unlearning(.ga)) } throws: {
            "\($0)".contains("no trainable parameter")
        }
    }
}
