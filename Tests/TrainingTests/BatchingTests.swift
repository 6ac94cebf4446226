import Engine
import Testing
@testable import Training

private func ex(_ p: [Int32], _ r: [Int32]) -> Example { Example(prompt: p, response: r) }

@Suite struct BatchingTests {
    @Test func collateShiftsTargetsAndMasksThePrompt() throws {
        let b = try TokenBatch.collate([ex([1, 2], [3, 4, 5]), ex([6], [7])], padId: 0)
        #expect(b.batchSize == 2 && b.length == 5)
        #expect(b.inputIds == [1, 2, 3, 4, 5, 6, 7, 0, 0, 0])
        #expect(b.targets == [-100, 3, 4, 5, -100, 7, -100, -100, -100, -100])
        #expect(b.tokenCounts == [3, 1] && b.sequenceLengths == [5, 2] && b.totalLossTokens == 4)
        #expect(b.lossMask == b.targets.map { $0 != -100 })
        // Prompt-less (plain-text) example: all but the first token are predicted.
        let lm = try TokenBatch.collate([ex([], [9, 8, 7])], padId: 0)
        #expect(lm.targets == [8, 7, -100] && lm.tokenCounts == [2])
        #expect(throws: TrainingError.self) { try TokenBatch.collate([], padId: 0) }
        #expect(throws: TrainingError.self) { try TokenBatch.collate([ex([1, 2], []), ex([], [5])], padId: 0) }
    }

    @Test func packingCutsTheStreamIntoRows() throws {
        let rows = try packDocuments([[1, 2, 3], [4, 5], [6, 7, 8, 9]], contextLength: 4, separator: 0)
        #expect(rows.map(\.response) == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]])
        #expect(rows.allSatisfy { $0.prompt.isEmpty })
        let rows2 = try packDocuments([[1, 2, 3, 4, 5]], contextLength: 4)
        #expect(rows2.map(\.response) == [[1, 2, 3, 4]])  // a 1-token remainder predicts nothing
        #expect(throws: TrainingError.self) { try packDocuments([[1]], contextLength: 4) }
        #expect(throws: TrainingError.self) { try packDocuments([[1, 2]], contextLength: 1) }
    }

    private func stage(_ n: Int) -> [Example] {
        (0..<n).map { i in ex([Int32(100 + i)], Array(repeating: Int32(i), count: 1 + i % 4)) }
    }

    @Test func shufflingIsSeededPerEpochAndCoversEveryExample() throws {
        let opts = BatchingOptions(batchSize: 4, maxContext: 16)
        let a = try Batcher(examples: stage(10), options: opts, seed: 7)
        let b = try Batcher(examples: stage(10), options: opts, seed: 7)
        let c = try Batcher(examples: stage(10), options: opts, seed: 8)
        #expect(a.order(epoch: 0) == b.order(epoch: 0))
        #expect(a.order(epoch: 0) != a.order(epoch: 1))
        #expect(a.order(epoch: 0) != c.order(epoch: 0))
        #expect(a.order(epoch: 3).sorted() == Array(0..<10))
        let plans = try a.plan(epoch: 2)
        #expect(plans.map(\.stage.count) == [4, 4, 2])
        #expect(plans.flatMap(\.stage) == a.order(epoch: 2))
        #expect(try a.plan(epochs: 3).count == 9)
        #expect(try a.plan(epochs: 3).suffix(3) == plans[...])
        let unshuffled = try Batcher(examples: stage(10), options: BatchingOptions(batchSize: 4, maxContext: 16, shuffle: false), seed: 7)
        #expect(unshuffled.order(epoch: 5) == Array(0..<10))
        let dropped = try Batcher(examples: stage(10), options: BatchingOptions(batchSize: 4, maxContext: 16, dropLast: true), seed: 7)
        #expect(try dropped.plan(epoch: 0).map(\.stage.count) == [4, 4])
    }

    @Test func replayAddsSeededRowsToEveryBatch() throws {
        let pool = (0..<5).map { i in ex([], [Int32(50 + i), 1, 2]) }
        let opts = BatchingOptions(batchSize: 3, maxContext: 16, replayPerBatch: 2)
        let batcher = try Batcher(examples: stage(9), replayPool: pool, options: opts, seed: 1)
        let plans = try batcher.plan(epoch: 0)
        #expect(plans.count == 3 && plans.allSatisfy { $0.replay.count == 2 })
        // Without replacement until the pool is used up: the first 5 draws are distinct.
        #expect(Set(plans.flatMap(\.replay).prefix(5)).count == 5)
        #expect(try batcher.plan(epoch: 0) == plans)
        let batch = try batcher.batch(plans[0])
        #expect(batch.batchSize == 5)
        #expect(batch.sources.prefix(3) == plans[0].stage.map { .stage($0) }[...])
        #expect(batch.sources.suffix(2) == plans[0].replay.map { .replay($0) }[...])
        #expect(throws: TrainingError.self) { try Batcher(examples: stage(3), options: opts, seed: 1) }
    }

    @Test func companionBatchesFollowTheStagePlan() throws {
        let forget = stage(6)
        let idk = (0..<6).map { i in ex([Int32(100 + i)], [7, 7, Int32(i)]) }
        let batcher = try Batcher(examples: forget, options: BatchingOptions(batchSize: 4, maxContext: 8), seed: 5)
        let plan = try batcher.plan(epoch: 0)[0]
        let alt = try batcher.companionBatch(plan, idk)
        #expect(alt.sources == plan.stage.map { .stage($0) })
        #expect(alt.batchSize == 4 && alt.tokenCounts == [3, 3, 3, 3])
        #expect(alt.inputIds[0] == 100 + Int32(plan.stage[0]))
        #expect(throws: TrainingError.self) { try batcher.companionBatch(plan, Array(idk.prefix(5))) }
        #expect(try batcher.stepCount(epochs: 2) == 4)
    }

    /// `checkCompanions` refuses up front what `companionBatch` would refuse only in the batch
    /// that draws the example (here the last one, which no first-epoch batch of 4 may hold).
    @Test func companionsAreCheckedUpFront() throws {
        let forget = stage(6)
        var idk = (0..<6).map { i in ex([Int32(100 + i)], [7, 7, Int32(i)]) }
        let batcher = try Batcher(examples: forget, options: BatchingOptions(batchSize: 4, maxContext: 8), seed: 5)
        try batcher.checkCompanions(idk, name: "idk answers")
        idk[5] = ex([100], Array(repeating: 7, count: 9))
        #expect(throws: TrainingError.tooLong(context: "idk answers",
                                              message: "example 5 has 1 prompt + 9 response tokens, maxContext is 8 (truncation: error)")) {
            try batcher.checkCompanions(idk, name: "idk answers")
        }
        #expect(throws: TrainingError.mismatch(context: "idk answers", message: "5 companion examples for 6 stage examples")) {
            try batcher.checkCompanions(Array(idk.prefix(5)), name: "idk answers")
        }
    }

    @Test func tokenBudgetBoundsPaddedBatches() throws {
        let examples = (0..<12).map { i in ex([1], Array(repeating: 2, count: (i * 5) % 7 + 1)) }
        let batcher = try Batcher(examples: examples, options: BatchingOptions(batchSize: 8, maxTokens: 20, maxContext: 8), seed: 3)
        let plans = try batcher.plan(epoch: 0)
        #expect(plans.flatMap(\.stage).sorted() == Array(0..<12))
        for p in plans {
            let b = try batcher.batch(p)
            #expect(b.batchSize * b.length <= 20)
            #expect(p.stage.count <= 8)
        }
        #expect(throws: TrainingError.self) {
            try Batcher(examples: examples, options: BatchingOptions(batchSize: 8, maxTokens: 5, maxContext: 8), seed: 3)
        }
    }

    @Test func truncationRules() throws {
        let long = ex([1, 2, 3, 4], [5, 6, 7, 8])
        #expect(throws: TrainingError.self) { try Batcher(examples: [long], options: BatchingOptions(batchSize: 1, maxContext: 6), seed: 0) }
        let r = try Batcher(examples: [long], options: BatchingOptions(batchSize: 1, maxContext: 6, truncation: .dropResponseEnd), seed: 0)
        #expect(r.examples == [ex([1, 2, 3, 4], [5, 6])])
        let p = try Batcher(examples: [long], options: BatchingOptions(batchSize: 1, maxContext: 6, truncation: .dropPromptStart), seed: 0)
        #expect(p.examples == [ex([3, 4], [5, 6, 7, 8])])
        #expect(throws: TrainingError.self) {
            try Batcher(examples: [long], options: BatchingOptions(batchSize: 1, maxContext: 4, truncation: .dropResponseEnd), seed: 0)
        }
        #expect(throws: TrainingError.self) {
            try Batcher(examples: [long], options: BatchingOptions(batchSize: 1, maxContext: 3, truncation: .dropPromptStart), seed: 0)
        }
    }

    @Test func emptyAndMaskedInputsAreErrors() throws {
        let opts = BatchingOptions(batchSize: 2, maxContext: 8)
        #expect(throws: TrainingError.self) { try Batcher(examples: [], options: opts, seed: 0) }
        #expect(throws: TrainingError.self) { try Batcher(examples: [ex([1], [])], options: opts, seed: 0) }
        #expect(throws: TrainingError.self) { try Batcher(examples: [ex([], [1])], options: opts, seed: 0) }
        #expect(throws: TrainingError.self) { try Batcher(examples: stage(2), options: BatchingOptions(batchSize: 0, maxContext: 8), seed: 0) }
        #expect(throws: TrainingError.self) {
            try Batcher(examples: stage(2), options: BatchingOptions(batchSize: 4, maxContext: 8, dropLast: true), seed: 0).plan(epoch: 0)
        }
    }

    @Test func batchStatisticsFeedObjectives() throws {
        // End to end on plain buffers: batch -> logits -> per-sequence statistics -> GA weights -> d/dlogits.
        let batch = try TokenBatch.collate([ex([1, 2], [3, 0]), ex([2], [1, 1, 3])], padId: 0)
        let vocab = 4
        var rng = SeededRandom(seed: 11)
        let logits = (0..<(batch.batchSize * batch.length * vocab)).map { _ in Float(rng.nextGaussian()) }
        let (lp, n) = try logits.withUnsafeBufferPointer {
            try TokenLogLikelihood.sequenceLogLikelihoods(logits: $0, targets: batch.targets, batch: batch.batchSize,
                                                          length: batch.length, vocab: vocab)
        }
        #expect(n == batch.tokenCounts)
        let r = try Objective.ga.evaluate([.forget: SequenceStats(logLikelihood: lp, tokenCounts: n)])
        var grad = [Float](repeating: 0, count: logits.count)
        try logits.withUnsafeBufferPointer { x in
            try grad.withUnsafeMutableBufferPointer {
                try TokenLogLikelihood.backward(logits: x, targets: batch.targets, batch: batch.batchSize, length: batch.length,
                                                vocab: vocab, weights: r.gradients[.forget]!.logLikelihood, into: $0)
            }
        }
        // Finite differences of the GA loss in Double on a few logits.
        func loss(_ l: [Double]) -> Double {
            var total = 0.0
            for row in 0..<(batch.batchSize * batch.length) where batch.targets[row] != -100 {
                let xs = l[(row * vocab)..<(row * vocab + vocab)]
                let m = xs.max()!
                let lse = m + log(xs.map { exp($0 - m) }.reduce(0, +))
                total += l[row * vocab + Int(batch.targets[row])] - lse
            }
            return total / Double(batch.totalLossTokens)
        }
        let base = logits.map(Double.init)
        for i in stride(from: 0, to: logits.count, by: 3) {
            var up = base, down = base
            up[i] += 1e-5; down[i] -= 1e-5
            #expect(abs((loss(up) - loss(down)) / 2e-5 - Double(grad[i])) < 1e-5, "logit \(i)")
        }
        #expect(throws: TrainingError.self) {
            try logits.withUnsafeBufferPointer {
                try TokenLogLikelihood.sequenceLogLikelihoods(logits: $0, targets: batch.targets, batch: batch.batchSize,
                                                              length: batch.length, vocab: vocab + 1)
            }
        }
    }
}

import Foundation
