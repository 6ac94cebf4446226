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
        #expect(found.contains("stages[0].epochs: must be > 0, found 0"))
        #expect(found.contains("stages[0].lr: must be finite and > 0, found -1"))
        #expect(found.contains { $0.hasPrefix("stages[0].batch_size: expected an integer") })
        #expect(found.contains("stages[0].replay_per_batch: must be >= 0, found -1"))
        #expect(found.contains { $0.hasPrefix("stages[0].colour: unknown key; allowed: name, data,") })
        #expect(found.contains("stages[1].data: required"))
        #expect(found.contains("stages[1].objective: must be one of lm, sft, dpo, found 'rl'"))
        #expect(found.contains("stages[1].beta: must be finite and > 0, found 0"))
        #expect(found.contains { $0.hasPrefix("stages[2]: expected a mapping") })
        #expect(found.contains { $0.hasPrefix("stages[4].name: ") && $0.contains("stages[3]") })
        #expect(found.contains("stages[4].lr: expected a number"))
        #expect(found.count == 12)
    }

    @Test func fileLevelProblems() {
        #expect(issues("stage: []\n").contains("stage: unknown key (did you mean 'stages'?); allowed: stages"))
        #expect(issues("stage: []\n").contains("stages: required: a list of stages"))
        #expect(issues("stages: []\n") == ["stages: must list at least one stage"])
        #expect(issues("stages: 3\n") == ["stages: expected a list"])
        #expect(issues("- a\n") == [": expected a mapping with a `stages` list"])
        #expect(issues("stages: [\n").first?.contains("not valid YAML") == true)
    }

    @Test func combinationProblems() {
        #expect(issues("stages:\n  - {data: p, objective: dpo}\n") == ["stages[0].beta: a dpo stage needs beta > 0 (set beta or --beta)"])
        #expect(issues("stages:\n  - {data: p, objective: dpo, beta: 1, replay: r}\n").first?.hasPrefix("stages[0].replay: replay is not supported") == true)
        #expect(issues("stages:\n  - {data: p, objective: dpo, beta: 1}\n", defaults: StageDefaults(replayPerBatch: 2)).first?.hasPrefix("stages[0].replay:") == true)
        #expect(issues("stages:\n  - {data: p, objective: sft, beta: 1}\n") == ["stages[0].beta: only a dpo stage takes beta (objective is sft)"])
        #expect(issues("stages:\n  - {data: p, replay_per_batch: 2}\n").first?.hasPrefix("stages[0].replay_per_batch: is 2 but no replay file") == true)
        #expect(issues("stages:\n  - {data: p}\n", defaults: StageDefaults(epochs: 0)) == ["--epochs: must be > 0, found 0"])
        #expect(issues("stages:\n  - {data: p}\n", defaults: StageDefaults(replay: "r", replayPerBatch: 1)).isEmpty)
    }

    /// Stages-file problems read like experiment-file problems: the file, then each problem in
    /// file order with its line and key path, near-miss keys suggested.
    @Test func problemsAreWordedAndLocatedLikeSpecProblems() {
        let yaml = "stages:\n  - data: a.jsonl\n    epochs: 0\n    batch_sise: 8\n"
        do {
            _ = try StageSequence.parse(yaml, file: "stages.yaml")
            Issue.record("expected a SpecError")
        } catch let e as SpecError {
            #expect(e.description == """
            stages.yaml: 2 problems:
              - line 3: stages[0].epochs: must be > 0, found 0
              - line 4: stages[0].batch_sise: unknown key (did you mean 'batch_size'?); allowed: \(["name", "data", "objective", "epochs", "lr", "batch_size", "beta", "replay", "replay_per_batch"].joined(separator: ", "))
            """)
        } catch { Issue.record("unexpected \(error)") }
        // The same key mistake in an experiment file is worded the same way.
        do {
            _ = try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke.replacingOccurrences(of: "\nforget:", with: "\nforgett: x\nforget:"))
            Issue.record("expected a SpecError")
        } catch let e as SpecError {
            #expect(e.issues.map(\.message).contains { $0.hasPrefix("unknown key (did you mean 'forget'?); allowed: ") }, "\(e)")
        } catch { Issue.record("unexpected \(error)") }
    }

    /// Sequences built in code meet the same rules as files, in `resolved`; the defaults are
    /// checked there too, named by their flags, once each and whether or not a stage uses them.
    @Test func defaultsNameTheirFlagsOnTheirOwn() {
        #expect(StageDefaults().problems().isEmpty)
        let found = StageDefaults(epochs: 0, lr: .infinity, batchSize: 4, replay: "").problems().map { "\($0.path): \($0.message)" }
        #expect(found == ["--epochs: must be > 0, found 0", "--lr: must be finite and > 0, found inf", "--replay: must not be empty"])
    }

    @Test func resolutionChecksCodeBuiltStagesAndEveryDefault() {
        let seq = StageSequence(file: "code", stages: [
            StageEntry(name: "../up", data: "d", epochs: 0, lr: .nan),
            StageEntry(name: "a", data: "", batchSize: 0, beta: -1, replayPerBatch: -2),
        ])
        do {
            _ = try seq.resolved(defaults: StageDefaults(epochs: 0, lr: -1, beta: .infinity, replayPerBatch: -1))
            Issue.record("expected a SpecError")
        } catch let e as SpecError {
            #expect(e.file == "code")
            let found = e.issues.map { "\($0.path): \($0.message)" }
            #expect(found.contains("--epochs: must be > 0, found 0"))
            #expect(found.contains("--lr: must be finite and > 0, found -1"))
            #expect(found.contains("--beta: must be finite and > 0, found inf"))
            #expect(found.contains("--replay-per-batch: must be >= 0, found -1"))
            #expect(found.contains { $0.hasPrefix("stages[0].name: \"../up\" is not a directory name") })
            #expect(found.contains("stages[0].epochs: must be > 0, found 0"))
            #expect(found.contains("stages[0].lr: must be finite and > 0, found nan"))
            #expect(found.contains("stages[1].data: must not be empty"))
            #expect(found.contains("stages[1].batch_size: must be > 0, found 0"))
            #expect(found.contains("stages[1].beta: must be finite and > 0, found -1"))
            #expect(found.contains("stages[1].replay_per_batch: must be >= 0, found -2"))
            #expect(found.contains("stages[1].beta: only a dpo stage takes beta (objective is sft)"))
            #expect(found.count == 12, "\(found)")
        } catch { Issue.record("unexpected \(error)") }
        // A bad default that no stage uses is still refused; a good one resolves.
        let one = StageSequence(file: "code", stages: [StageEntry(data: "d", epochs: 2, lr: 1e-3, batchSize: 4)])
        #expect(throws: SpecError.self) { try one.resolved(defaults: StageDefaults(epochs: 0, lr: 0, batchSize: 0)) }
        #expect((try? one.resolved(defaults: StageDefaults()))?.first?.epochs == 2)
    }

    /// Each data or replay file is loaded and tokenised once per plan, however many stages
    /// name it and however its path is spelt.
    @Test func prepareLoadsEachFileOnce() throws {
        let yaml = """
        stages:
          - {name: a, data: corpus.jsonl, objective: lm}
          - {name: b, data: sft1.jsonl, replay: corpus.jsonl, replay_per_batch: 1}
          - {name: c, data: sft2.jsonl, replay: sub/../corpus.jsonl, replay_per_batch: 1}
          - {name: d, data: prefs.jsonl, objective: dpo, beta: 0.1}
          - {name: e, data: sft2.jsonl, replay: ./corpus.jsonl, replay_per_batch: 2}
          - {name: f, data: prefs.jsonl, objective: dpo, beta: 0.2}
        """
        let plan = try StageSequence.parse(yaml, file: "s.yaml", baseDirectory: URL(fileURLWithPath: "/nowhere/run"))
            .resolved(defaults: StageDefaults())
        var exampleLoads: [String] = [], pairLoads: [String] = []
        let runs = try StageRun.prepare(plan, examples: { path in
            exampleLoads.append(path)
            // Content that says which file it came from.
            return [Training.Example(prompt: [], response: [Int32(path.count), 1])]
        }, pairs: { path in
            pairLoads.append(path)
            let e = Training.Example(prompt: [1], response: [2])
            return [TokenPreferencePair(chosen: e, rejected: e)]
        }, options: { s in Self.options(s.stageObjective, epochs: s.epochs) })
        #expect(exampleLoads.sorted() == ["/nowhere/run/corpus.jsonl", "/nowhere/run/sft1.jsonl", "/nowhere/run/sft2.jsonl"])
        #expect(pairLoads == ["/nowhere/run/prefs.jsonl"])
        #expect(runs.map(\.name) == ["a", "b", "c", "d", "e", "f"])
        let corpus = [Training.Example(prompt: [], response: [Int32("/nowhere/run/corpus.jsonl".count), 1])]
        guard case .examples(let first) = runs[0].data else { Issue.record("stage a has no examples"); return }
        #expect(first == corpus)
        #expect(runs[1].replayPool == corpus && runs[2].replayPool == corpus && runs[4].replayPool == corpus)
        #expect(runs[3].replayPool.isEmpty && runs[5].options.objective == .dpo(beta: 0.2))
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

    /// A later stage's example too long for its truncation rule (an SFT example, a DPO rejected
    /// answer) stops the run before the first stage takes a step, naming the stage and the example.
    @Test func runnerChecksEveryExampleAgainstTheContextBeforeAnyStep() throws {
        let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 16)
        let model = try CausalLM(config: config, seed: 7)
        let before = model.namedParameters.map { $0.tensor.toArray() }
        let short = Training.Example(prompt: [1, 2], response: [3, 4])
        let long = Training.Example(prompt: [1, 2], response: Array(repeating: 5, count: 20))
        func run(_ second: StageRun) -> (error: TrainingError?, steps: Int) {
            var steps = 0
            do {
                try StageSequenceRunner.run(model: model, stages: [
                    StageRun(name: "first", options: Self.options(.sft, epochs: 1), data: .examples([short])), second,
                ], progress: { _, _ in steps += 1 })
            } catch let error as TrainingError {
                return (error, steps)
            } catch {
                Issue.record("unexpected \(error)")
            }
            return (nil, steps)
        }
        var strict = Self.options(.sft, epochs: 1)
        strict.batching.truncation = .error
        let sft = run(StageRun(name: "second", options: strict, data: .examples([short, long])))
        #expect(sft.error == .tooLong(context: "stage 2 (second): stage examples",
                                      message: "example 1 has 2 prompt + 20 response tokens, maxContext is 16 (truncation: error)"))
        var dpo = Self.options(.dpo(beta: 0.1), epochs: 1)
        dpo.batching.truncation = .dropPromptStart
        let pairs = run(StageRun(name: "prefs", options: dpo, data: .pairs([TokenPreferencePair(chosen: short, rejected: long)])))
        #expect(pairs.error == .tooLong(context: "stage 2 (prefs): preference pairs (rejected)",
                                        message: "example 0 has 2 prompt + 20 response tokens, maxContext is 16; the response alone does not fit (truncation: drop_prompt_start)"))
        #expect(sft.steps == 0 && pairs.steps == 0)
        let unchanged = model.namedParameters.map { $0.tensor.toArray() } == before
        #expect(unchanged)
        // A rule that can keep the example lets the same stages run.
        var lenient = Self.options(.sft, epochs: 1)
        lenient.batching.truncation = .dropResponseEnd
        let kept = run(StageRun(name: "second", options: lenient, data: .examples([short, long])))
        #expect(kept.error == nil && kept.steps == 2)
        let trained = model.namedParameters.map { $0.tensor.toArray() } != before
        #expect(trained)
    }
}
