import Engine
import Foundation
import Models
import Testing
@testable import Training

/// Interval checkpoints, divergence and the non-finite guard of the checkpoint writer.
@Suite struct CheckpointingTests {
    typealias F = LoopFixture

    func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-ckpt-\(UUID().uuidString)")
    }

    func hidden(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix(".") }
    }

    @Test func savesAtStepAndEpochIntervalsWithTheWeightsOfThatStep() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try F.model()
        // 10 examples, batch 4: 3 steps per epoch, 9 steps in 3 epochs.
        let saver = try IntervalCheckpoints(directory: dir, everySteps: 4, everyEpochs: 2)
        var weights: [Int: [[UInt32]]] = [:], epochs: [Int] = [], ends: [Int] = []
        try StageTrainer.train(model: model, examples: F.examples(10), options: F.sft(epochs: 3, batch: 4)) { r in
            weights[r.step] = F.bits(model)
            epochs.append(r.epoch)
            if r.endsEpoch { ends.append(r.step) }
            try saver.save(after: r, model: model)
        }
        #expect(epochs == [1, 1, 1, 2, 2, 2, 3, 3, 3])
        #expect(ends == [3, 6, 9])
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        // Every 4 steps (4, 8) and at the end of epoch 2 (step 6).
        #expect(names == ["checkpoint-4", "checkpoint-6", "checkpoint-8"])
        #expect(saver.last?.step == 8)
        for step in [4, 6, 8] {
            let loaded = try CausalLM(directory: dir.appendingPathComponent("checkpoint-\(step)"))
            #expect(F.bits(loaded) == weights[step])
        }
        #expect(throws: TrainingError.self) { try IntervalCheckpoints(directory: dir, everySteps: 0) }
    }

    @Test func unlearningReportsPassesOverTheForgetSet() throws {
        // 10 examples, batch 4: 3 batches per pass; 4 steps end mid-way through the second pass.
        var epochs: [Int] = [], ends: [Int] = []
        try Unlearner.run(model: try F.model(), reference: nil, forget: F.examples(10), options: F.unlearning(.ga, steps: 4),
                          progress: { r in epochs.append(r.epoch); if r.endsEpoch { ends.append(r.step) } })
        #expect(epochs == [1, 1, 1, 2])
        #expect(ends == [3])
    }

    @Test func divergenceStopsTheRunAndKeepsTheLastGoodCheckpoint() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try F.model()
        let saver = try IntervalCheckpoints(directory: dir, everySteps: 1)
        // Adam moves every weight by about the learning rate: 1e30 overflows the next forward pass.
        var options = F.sft(epochs: 2, batch: 4, lr: 1e30)
        options.optimizer = .adamw(AdamWConfig(weightDecay: 0))
        var steps: [Int] = []
        var failure: TrainingError?
        do {
            try StageTrainer.train(model: model, examples: F.examples(8), options: options) { r in
                steps.append(r.step)
                try saver.save(after: r, model: model)
            }
        } catch let e as TrainingError { failure = e }
        guard case .nonFinite = failure else { Issue.record("expected a non-finite error, got \(String(describing: failure))"); return }
        let message = failure!.description
        let failedStep = steps.count + 1
        #expect(message.hasPrefix("StageTrainer step \(failedStep)/4"), "\(message)")
        #expect(!steps.isEmpty && saver.last?.step == steps.last)
        // Every checkpoint written is complete and finite; nothing half-written is left.
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where !name.hasPrefix(".") {
            let loaded = try CausalLM(directory: dir.appendingPathComponent(name))
            #expect(loaded.parameterValues().allSatisfy { $0.values.allSatisfy(\.isFinite) })
        }
        #expect(hidden(dir).isEmpty)
    }

    @Test func checkpointWriterRefusesNonFiniteTensorsAndKeepsTheOldCheckpoint() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try F.model()
        try model.save(to: dir)
        let good = F.bits(model)
        model.parameter("model.layers.1.mlp.down_proj.weight")!.withUnsafeMutableBufferPointer { $0[5] = .infinity }
        do {
            try model.save(to: dir)
            Issue.record("a checkpoint with infinity was written")
        } catch let e as ModelIOError {
            #expect(e.kind == .nonFinite)
            #expect(e.message.contains("\"model.layers.1.mlp.down_proj.weight\"") && e.message.contains("flat index 5"), "\(e)")
        }
        #expect(F.bits(try CausalLM(directory: dir)) == good)
        // The atomic form leaves neither a partial directory nor a changed checkpoint.
        #expect(throws: ModelIOError.self) { try IntervalCheckpoints.saveAtomically(model, to: dir) }
        #expect(F.bits(try CausalLM(directory: dir)) == good)
        #expect(hidden(dir.deletingLastPathComponent()).filter { $0.contains(dir.lastPathComponent) }.isEmpty)
        // The raw writer refuses too, unless told otherwise.
        let nan = NamedTensor(name: "w", shape: [2], values: [1, .nan])
        #expect(throws: ModelIOError.self) { try SafetensorsWriter.write([nan], to: dir.appendingPathComponent("x.safetensors")) }
        try SafetensorsWriter.write([nan], allowNonFinite: true, to: dir.appendingPathComponent("x.safetensors"))
    }

    @Test func aFailingCheckpointStopsTheRunWithTheWriteError() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A regular file where the checkpoint directory's parent should be.
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let blocker = dir.appendingPathComponent("out")
        try Data("x".utf8).write(to: blocker)
        let saver = try IntervalCheckpoints(directory: blocker, everySteps: 1)
        let model = try F.model()
        var steps = 0
        #expect(throws: ModelIOError.self) {
            try StageTrainer.train(model: model, examples: F.examples(8), options: F.sft(epochs: 2, batch: 4)) { r in
                steps += 1
                try saver.save(after: r, model: model)
            }
        }
        #expect(steps == 1)
        #expect(hidden(dir).isEmpty)
    }
}

/// Issue 5's bad inputs not covered elsewhere: each is refused before any step changes the model.
@Suite struct LongRunBadInputTests {
    typealias F = LoopFixture

    @Test func contextLongerThanTheModelsAndTooLongSequencesAreRefusedBeforeAnyStep() throws {
        var config = F.config
        config.maxPositionEmbeddings = 16
        let model = try CausalLM(config: config, seed: 1)
        let before = F.bits(model)
        var steps = 0
        // maxContext 32 > the model's 16 positions.
        #expect(throws: TrainingError.self) {
            try StageTrainer.train(model: model, examples: F.examples(4), options: F.sft()) { _ in steps += 1 }
        }
        #expect(throws: TrainingError.self) {
            try Unlearner.run(model: model, reference: nil, forget: F.examples(4), options: F.unlearning(.ga), progress: { _ in steps += 1 })
        }
        // A sequence longer than the context, with truncation `error`.
        var options = F.unlearning(.ga)
        options.maxContext = 16
        let long = F.examples(3) + [Example(prompt: [1, 2, 3], response: Array(repeating: 4, count: 20))]
        do {
            try Unlearner.run(model: model, reference: nil, forget: long, options: options, progress: { _ in steps += 1 })
            Issue.record("a 23-token sequence was accepted with a 16-token context")
        } catch let e as TrainingError {
            guard case .tooLong = e else { Issue.record("expected tooLong, got \(e)"); return }
            #expect(e.description.contains("example 3"), "\(e)")
        }
        #expect(steps == 0 && F.bits(model) == before)
    }
}

/// Gradient accumulation over micro-batches: the same update as the whole batch, up to rounding.
@Suite struct MicroBatchTests {
    typealias F = LoopFixture

    func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
        var d = 0.0, n = 0.0
        for (x, y) in zip(a, b) { d += Double(x - y) * Double(x - y); n += Double(y) * Double(y) }
        return (d / max(n, 1e-30)).squareRoot()
    }

    @Test func microBatchGradientsEqualTheWholeBatchsForEveryKindOfObjective() throws {
        let model = try F.model()
        let reference = try F.model(seed: 2)
        let forget = try TokenBatch.collate(F.examples(3, prompt: 2, response: 4) + F.examples(2, prompt: 4, response: 6, seed: 9), padId: 0)
        let retain = try TokenBatch.collate(F.examples(3, seed: 5), padId: 0)
        let cases: [(Objective, [(role: SequenceRole, batch: TokenBatch)])] = [
            (.sft, [(.target, forget)]),
            (.npo(beta: 0.5), [(.forget, forget)]),
            (.gradDiff(gamma: 1, alpha: 0.5, retain: .kl), [(.forget, forget), (.retain, retain)]),
        ]
        for (objective, groups) in cases {
            F.zeroGrad(model)
            let whole = try ObjectivePass(model: model, reference: reference, objective: objective, padId: 0).run(groups, context: "whole")
            let g = F.gradients(model)
            #expect(g.contains { $0 != 0 })
            for m in [1, 3] {
                F.zeroGrad(model)
                let split = try ObjectivePass(model: model, reference: reference, objective: objective, padId: 0, microBatch: m)
                    .run(groups, context: "micro")
                #expect(abs(split.loss - whole.loss) <= 1e-6 * max(1, abs(whole.loss)), "\(objective.name) micro \(m)")
                #expect(relativeDifference(F.gradients(model), g) < 1e-5, "\(objective.name) micro \(m)")
            }
        }
    }

    @Test func trainingAndUnlearningWithMicroBatchesMatchWholeBatches() throws {
        let examples = F.examples(10)
        var options = F.sft(epochs: 2, batch: 4)
        let a = try F.model(), b = try F.model()
        try StageTrainer.train(model: a, examples: examples, options: options)
        options.microBatchSize = 3
        try StageTrainer.train(model: b, examples: examples, options: options)
        let pa = a.parameterValues().flatMap(\.values), pb = b.parameterValues().flatMap(\.values)
        let initial = try F.model().parameterValues().flatMap(\.values)
        #expect(pa != initial)
        #expect(relativeDifference(pb, pa) < 1e-5)

        var u = F.unlearning(.npo(beta: 0.5), steps: 3, batch: 4)
        let c = try F.model(), d = try F.model()
        let ref = try F.model()
        try Unlearner.run(model: c, reference: ref, forget: examples, options: u)
        u.microBatchSize = 1
        try Unlearner.run(model: d, reference: ref, forget: examples, options: u)
        #expect(relativeDifference(d.parameterValues().flatMap(\.values), c.parameterValues().flatMap(\.values)) < 1e-5)
        u.microBatchSize = 0
        #expect(throws: TrainingError.self) { try Unlearner.run(model: d, reference: ref, forget: examples, options: u) }
    }
}
