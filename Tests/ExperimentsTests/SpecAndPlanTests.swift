import Foundation
import Testing
import Training
@testable import Experiments

@Suite struct SpecTests {
    @Test func builtinSpecsParse() throws {
        for (name, yaml) in BuiltinSpecs.all {
            let spec = try ExperimentSpec.parse(yaml: yaml, file: name)
            #expect(spec.name == name)
        }
        let demo = try ExperimentSpec.parse(yaml: BuiltinSpecs.demo)
        #expect(demo.stages.map(\.name) == ["instructions", "entities", "math", "safety"])
        #expect(demo.stages[3].replay == ReplaySpec(dataset: "pretrain", perBatch: 16))
        #expect(demo.pretraining?.optimizer.lr == 2e-3)
        #expect(demo.pretraining?.optimizer.betas == [0.9, 0.95])
        #expect(demo.unlearning.algorithms.map(\.label) == ["ga", "npo", "simnpo(beta=1)"])
        #expect(demo.unlearning.algorithms[2].parameters == ["beta": 1, "gamma": 0])
        #expect(demo.evaluation.steps == [0, 1, 2, 4, 6, 8, 10])
    }

    @Test func everyProblemIsReportedWithItsKeyPath() {
        let yaml = """
        name: bad
        model: {preset: pilot}
        tokenizer: {train: {dataset: corpus, vocab_size: 100}}
        datasets:
          corpus: {generator: pretrain, size: 10}
          qa: {generator: entitys, size: 5}
        pretraining: {data: corpus}
        stages:
          - {name: a, data: qa, epochs: 0}
          - {name: b, data: missing, schedule: {kind: wsd, warmup: 0.6, decay: 0.5}}
          - {name: a, data: qa, lora: {rank: 4, targets: [q, attn]}, epoch: 3}
        forget: c
        unlearning:
          algorithms: [ga, {name: npo, beta: -1}, graddiff]
        """
        do {
            _ = try ExperimentSpec.parse(yaml: yaml, file: "bad.yaml")
            Issue.record("an invalid spec was accepted")
        } catch let error as SpecError {
            let text = error.description
            for expected in ["tokenizer.train.vocab_size: must be at least 257",
                             "datasets.qa.generator: must be one of",
                             "stages[0].epochs: must be > 0",
                             "stages[1].schedule: warmup + decay must be at most 1",
                             "stages[2].lora.targets[1]: 'attn' names no module",
                             "stages[2].epoch: unknown key (did you mean 'epochs'?)",
                             "unlearning.algorithms[1].beta: must be > 0"] {
                #expect(text.contains(expected), "missing: \(expected)\n\(text)")
            }
            #expect(error.issues.allSatisfy { $0.line != nil })
        } catch { Issue.record("unexpected error \(error)") }
    }

    @Test func crossReferencesAreChecked() {
        let yaml = """
        name: refs
        model: {preset: pilot}
        tokenizer: {train: {dataset: corpus, vocab_size: 300}}
        datasets:
          corpus: {generator: pretrain, size: 10}
          qa: {generator: entities, size: 5}
        pretraining: {data: corpus}
        stages:
          - {name: a, data: qa}
          - {name: a, data: missing}
        forget: c
        unlearning:
          retain_data: qa.test
          algorithms: [graddiff]
        evaluation: {facts: nothere}
        """
        #expect {
            try ExperimentSpec.parse(yaml: yaml)
        } throws: { error in
            let text = "\(error)"
            return text.contains("stages[1].name: duplicate stage name 'a'")
                && text.contains("stages[1].data: names no dataset: 'missing'")
                && text.contains("forget: names no stage: 'c'")
                && text.contains("unlearning.retain_data: dataset 'qa' has no test split")
                && text.contains("evaluation.facts: names no dataset: 'nothere'")
        }
    }

    /// A one-stage spec on a pretraining corpus: `qa` and `unlearning` are the YAML flow values given.
    static func oneStage(qa: String = "{generator: entities, size: 5}", unlearning: String) throws -> ExperimentSpec {
        try ExperimentSpec.parse(yaml: """
        name: one-stage
        model: {preset: pilot}
        tokenizer: {train: {dataset: corpus, vocab_size: 300}}
        datasets:
          corpus: {generator: pretrain, size: 10}
          qa: \(qa)
        pretraining: {data: corpus}
        stages:
          - {name: a, data: qa}
        forget: a
        unlearning: \(unlearning)
        """)
    }

    @Test func algorithmsWithARetainTermChooseIt() throws {
        func spec(_ algorithms: String) throws -> ExperimentSpec {
            try Self.oneStage(unlearning: "{retain_data: corpus, algorithms: \(algorithms)}")
        }
        let parsed = try spec("[graddiff, {name: graddiff, retain: kl}, {name: npo_rt, retain: nll}, {name: simnpo_rt, retain: kl, alpha: 2}]")
        #expect(parsed.unlearning.algorithms.map(\.label) == ["graddiff", "graddiff(retain=kl)", "npo_rt", "simnpo_rt(alpha=2,retain=kl)"])
        #expect(parsed.unlearning.algorithms.map(\.retain) == [nil, .kl, .nll, .kl])
        // The unit's objective carries the choice through to Training.
        let objectives = try parsed.unlearning.algorithms.map(PipelineWorker.objective)
        #expect(objectives[0] == .gradDiff(gamma: 1, alpha: 1, retain: .nll))
        #expect(objectives[1] == .gradDiff(gamma: 1, alpha: 1, retain: .kl))
        #expect(objectives[2] == .npoRT(beta: 0.5, alpha: 1, retain: .nll))
        #expect(objectives[3] == .simNPORT(beta: 2.5, gamma: 0, lengthNormalized: true, alpha: 2, retain: .kl))
        // Only algorithms with a retain term take one, and only nll or kl.
        #expect { try spec("[{name: npo, retain: kl}]") } throws: { "\($0)".contains("unlearning.algorithms[0].retain: unknown key") }
        #expect { try spec("[{name: graddiff, retain: l2}]") } throws: {
            "\($0)".contains("unlearning.algorithms[0].retain: must be one of nll, kl, found 'l2'")
        }
    }

    @Test func aFileDatasetIsReadInTheFormatItsSpecStates() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-format-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("qa.jsonl")
        // Records that fit two formats: detected, they are TOFU QA (question and answer come first).
        try Data("""
        {"question": "Who wrote it?", "answer": "Ann.", "prompt": "Write it.", "response": "Done."}
        {"question": "Who read it?", "answer": "Bob.", "prompt": "Read it.", "response": "Read."}

        """.utf8).write(to: file)
        func pairs(format: String?) throws -> [String] {
            let spec = try Self.oneStage(qa: "{file: \(file.path)\(format.map { ", format: \($0)" } ?? "")}",
                                         unlearning: "{algorithms: [ga]}")
            let data = ExperimentData(spec: spec, directory: dir, outputs: ["file.qa": file.path])
            return try data.pairs("qa").map(\.response)
        }
        #expect(try pairs(format: nil) == ["Ann.", "Bob."])
        #expect(try pairs(format: "tofu") == ["Ann.", "Bob."])
        // Stated, the format decides which fields are read, and records that do not fit are errors.
        #expect(try pairs(format: "pairs") == ["Done.", "Read."])
        #expect(try pairs(format: "prompt-response") == ["Done.", "Read."])
        #expect { try pairs(format: "gsm8k") } throws: { "\($0)".contains(file.path) && "\($0)".contains("####") }
        #expect { try pairs(format: "text") } throws: { "\($0)".contains(file.path) && "\($0)".contains("text") }
        #expect { try pairs(format: "csv") } throws: { "\($0)".contains("datasets.qa.format: must be one of") }
    }

    @Test func notYAMLAndEmptyFiles() {
        #expect(throws: SpecError.self) { try ExperimentSpec.parse(yaml: "name: [unclosed") }
        #expect(throws: SpecError.self) { try ExperimentSpec.parse(yaml: "") }
        #expect(throws: SpecError.self) { try ExperimentSpec.parse(yaml: "- a\n- b\n") }
    }
}

@Suite struct PlanTests {
    @Test func insertForgetSharesPrefixesAndRetrainsOnce() throws {
        let spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.demo)
        let plan = ExperimentPlan(spec: spec)
        #expect(plan.paths == [["safety", "instructions", "entities", "math"],
                               ["instructions", "safety", "entities", "math"],
                               ["instructions", "entities", "safety", "math"],
                               ["instructions", "entities", "math", "safety"]])
        #expect(plan.retrainedPaths == [["instructions", "entities", "math"]])
        let stages = plan.units.filter { $0.kind == .stage }
        // 16 stage trainings without sharing; prefixes s, si, sie, siem, i, is, ise, isem, ie, ies, iesm, iem, iems.
        #expect(stages.count == 13)
        #expect(Set(stages.map(\.prefix)).count == stages.count)
        #expect(plan.units.filter { $0.kind == .unlearn }.count == 4 * 3)
        #expect(Set(plan.units.map(\.hash)).count == plan.units.count)
        // Every dependency comes before its dependant, so the list is a valid execution order.
        var seen = Set<String>()
        for unit in plan.units { #expect(unit.dependencies.allSatisfy(seen.contains)); seen.insert(unit.id) }
    }

    @Test func hashesChangeOnlyDownstreamOfAnEdit() throws {
        let spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.demo)
        var edited = spec
        edited.stages[2].epochs = 3  // math
        let a = ExperimentPlan(spec: spec), b = ExperimentPlan(spec: edited)
        for (u, v) in zip(a.units, b.units) {
            #expect(u.id == v.id)
            let downstream = u.prefix.contains("math") || u.kind == .compare
            #expect((u.hash != v.hash) == downstream, "\(u.id)")
        }
        #expect(ExperimentPlan(spec: spec) == a)  // deterministic
    }

    @Test func permutationsAndSeeds() throws {
        var spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.mass)
        spec.seeds = [1, 2]
        let plan = ExperimentPlan(spec: spec)
        #expect(plan.paths.count == 6 && Set(plan.paths).count == 6)
        #expect(plan.retrainedPaths.isEmpty)
        // 3 + 6 + 6 prefixes per seed.
        #expect(plan.units.filter { $0.kind == .stage }.count == 2 * 15)
        #expect(plan.ready(done: []).map(\.id) == ["data"])
        #expect(plan.ready(done: ["data"]).map(\.id) == ["tokenizer"])
    }
}
