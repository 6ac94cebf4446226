import Experiments
import Foundation
import Models
import Testing
import Training

@Suite struct StageSequenceTests {
    static let good = """
    stages:
      - name: pretrain
        data: corpus.jsonl
        objective: lm
        epochs: 2
        lr: 1e-3
        batch_size: 8
        replay: old.jsonl
        replay_per_batch: 2
      - {data: /abs/prefs.jsonl, objective: dpo, beta: 0.1}
    """

    func issues(_ yaml: String, defaults: StageDefaults = StageDefaults()) -> [String] {
        do {
            _ = try StageSequence.parse(yaml, file: "s.yaml").resolved(defaults: defaults)
            return []
        } catch let e as SpecError {
            #expect(e.file == "s.yaml")
            #expect(e.description.hasPrefix("s.yaml: "))
            return e.issues.map { "\($0.path): \($0.message)" }
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test func parsesAndResolvesWithDefaults() throws {
        let seq = try StageSequence.parse(Self.good, file: "s.yaml", baseDirectory: URL(fileURLWithPath: "/base"))
        #expect(seq.stages.count == 2)
        #expect(seq.stages[0] == StageEntry(name: "pretrain", data: "/base/corpus.jsonl", objective: .lm, epochs: 2, lr: 1e-3,
                                            batchSize: 8, replay: "/base/old.jsonl", replayPerBatch: 2))
        #expect(seq.stages[1].data == "/abs/prefs.jsonl")
        let r = try seq.resolved(defaults: StageDefaults(objective: .sft, epochs: 3, lr: 5e-5, batchSize: 4))
        #expect(r[0].directoryName == "stage-1-pretrain")
        #expect(r[0].epochs == 2 && r[0].lr == 1e-3 && r[0].batchSize == 8 && r[0].replayPerBatch == 2)
        #expect(r[1].name == "dpo" && r[1].directoryName == "stage-2-dpo")
        #expect(r[1].epochs == 3 && r[1].lr == 5e-5 && r[1].batchSize == 4 && r[1].beta == 0.1 && r[1].replay == nil)
        #expect(r[1].stageObjective == .dpo(beta: 0.1))
        // Beta from the command line.
        let d = try StageSequence.parse("stages:\n  - {data: p.jsonl, objective: dpo}\n", file: "s.yaml")
            .resolved(defaults: StageDefaults(beta: 0.5))
        #expect(d[0].beta == 0.5)
    }

    @Test func everyParseProblemIsReportedWithItsPath() {
        let found = issues("""
        stages:
          - name: "a b"
            data: x.jsonl
            epochs: 0
            lr: -1
            batch_size: two
            replay_per_batch: -1
            colour: red
          - objective: rl
            beta: 0
          - 3
          - {name: dup, data: a}
          - {name: dup, data: b, lr: [1]}
        """)
        #expect(found.contains { $0.hasPrefix("stages[0].name: ") && $0.contains("not a directory name") })
        #expect(found.contains("stages[0].epochs: must be > 0, got 0"))
        #expect(found.contains { $0.hasPrefix("stages[0].lr: must be finite and > 0") })
        #expect(found.contains { $0.hasPrefix("stages[0].batch_size: expected an integer") })
        #expect(found.contains { $0.hasPrefix("stages[0].replay_per_batch: must be >= 0") })
        #expect(found.contains { $0.hasPrefix("stages[0].colour: unknown key") })
        #expect(found.contains { $0.hasPrefix("stages[1].data: missing") })
        #expect(found.contains { $0.hasPrefix("stages[1].objective: expected lm, sft or dpo") })
        #expect(found.contains { $0.hasPrefix("stages[1].beta: must be finite and > 0") })
        #expect(found.contains { $0.hasPrefix("stages[2]: expected a mapping") })
        #expect(found.contains { $0.hasPrefix("stages[4].name: ") && $0.contains("stages[3]") })
        #expect(found.contains { $0.hasPrefix("stages[4].lr: expected a single value") })
        #expect(found.count == 12)
    }

    @Test func fileLevelProblems() {
        #expect(issues("stage: []\n").contains { $0.hasPrefix("stage: unknown key") })
        #expect(issues("stage: []\n").contains { $0.hasPrefix("stages: missing") })
        #expect(issues("stages: []\n") == ["stages: expected a non-empty list of stages"])
        #expect(issues("- a\n") == [": expected a mapping with a `stages` list"])
        #expect(issues("stages: [\n").first?.contains("not valid YAML") == true)
    }

    @Test func combinationProblems() {
        #expect(issues("stages:\n  - {data: p, objective: dpo}\n") == ["stages[0].beta: a dpo stage needs beta > 0 (set beta or --beta)"])
        #expect(issues("stages:\n  - {data: p, objective: dpo, beta: 1, replay: r}\n").first?.hasPrefix("stages[0].replay: replay is not supported") == true)
        #expect(issues("stages:\n  - {data: p, objective: dpo, beta: 1}\n", defaults: StageDefaults(replayPerBatch: 2)).first?.hasPrefix("stages[0].replay:") == true)
        #expect(issues("stages:\n  - {data: p, objective: sft, beta: 1}\n") == ["stages[0].beta: only a dpo stage takes beta (objective is sft)"])
        #expect(issues("stages:\n  - {data: p, replay_per_batch: 2}\n").first?.hasPrefix("stages[0].replay_per_batch: is 2 but no replay file") == true)
        #expect(issues("stages:\n  - {data: p}\n", defaults: StageDefaults(epochs: 0)) == ["stages[0].epochs: must be > 0, got 0 (from --epochs)"])
        #expect(issues("stages:\n  - {data: p}\n", defaults: StageDefaults(replay: "r", replayPerBatch: 1)).isEmpty)
    }

    @Test func missingFileIsNamed() {
        #expect(throws: SpecError.self) { try StageSequence.load(from: URL(fileURLWithPath: "/nonexistent/stages.yaml")) }
    }

    static func options(_ objective: StageObjective, epochs: Int) -> StageOptions {
        StageOptions(epochs: epochs, batching: BatchingOptions(batchSize: 2, maxContext: 16, padId: 0),
                     optimizer: .adamw(AdamWConfig()), schedule: Training.ScheduleSpec(kind: .linear), objective: objective,
                     seed: 3, learningRate: 1e-2)
    }

    @Test func runsSftThenDpoWithAFreshScheduleEachStage() throws {
        let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 16)
        let model = try CausalLM(config: config, seed: 7)
        var sft: [Training.Example] = []
        var pairs: [TokenPreferencePair] = []
        for i: Int32 in 0..<4 {
            let good = Training.Example(prompt: [1, 2 + i], response: [6 + i, 3])
            sft.append(good)
            pairs.append(TokenPreferencePair(chosen: good, rejected: Training.Example(prompt: [1, 2 + i], response: [12, 3])))
        }
        var reports: [[StepReport]] = [[], []]
        var ended: [Int] = []
        let results = try StageSequenceRunner.run(model: model, stages: [
            StageRun(name: "sft", options: Self.options(.sft, epochs: 2), data: .examples(sft)),
            StageRun(name: "dpo", options: Self.options(.dpo(beta: 0.1), epochs: 2), data: .pairs(pairs)),
        ], progress: { i, r in reports[i].append(r) }, afterStage: { i, r in
            #expect(r.steps == reports[i].count)
            ended.append(i)
        })
        #expect(ended == [0, 1])
        let stepCounts: [Int] = results.map { $0.steps }
        #expect(stepCounts == [4, 4])
        for stage in reports {
            // Steps and the linear schedule start again: 1, 2, ... at the full rate, decaying.
            let numbers: [Int] = stage.map { $0.step }
            #expect(numbers == [1, 2, 3, 4])
            #expect(stage.allSatisfy { $0.totalSteps == 4 })
            #expect(stage[0].learningRate == 1e-2)
            #expect(stage[3].learningRate < stage[0].learningRate)
            #expect(stage.allSatisfy { $0.loss.isFinite })
        }
        // The DPO reference is the model after SFT: the first DPO loss is exactly log 2.
        #expect(abs(reports[1][0].loss - log(2.0)) < 1e-5)
    }

    @Test func runnerChecksEveryStageBeforeAnyStep() throws {
        let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 16)
        let model = try CausalLM(config: config, seed: 7)
        let sft = [Training.Example(prompt: [1, 2], response: [3, 4])]
        var steps = 0
        #expect(throws: TrainingError.self) {
            try StageSequenceRunner.run(model: model, stages: [
                StageRun(name: "sft", options: Self.options(.sft, epochs: 1), data: .examples(sft)),
                StageRun(name: "dpo", options: Self.options(.dpo(beta: 0.1), epochs: 1), data: .examples(sft)),
            ], progress: { _, _ in steps += 1 })
        }
        #expect(throws: TrainingError.self) {
            try StageSequenceRunner.run(model: model, stages: [
                StageRun(name: "sft", options: Self.options(.sft, epochs: 1), data: .examples(sft)),
                StageRun(name: "dpo", options: Self.options(.dpo(beta: -1), epochs: 1),
                         data: .pairs([TokenPreferencePair(chosen: sft[0], rejected: sft[0])])),
            ], progress: { _, _ in steps += 1 })
        }
        #expect(steps == 0)
    }
}
