import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Experiments

/// Hostile experiment files and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct SpecHostileInputTests {
    /// /dev/zero never ends: refused unread.
    @Test func endlessFilesAreRefusedUnread() {
        do {
            _ = try ExperimentSpec.load(contentsOf: URL(fileURLWithPath: "/dev/zero"))
            Issue.record("expected a refusal")
        } catch let e as SpecError {
            #expect(e.file == "/dev/zero" && e.description.contains("not a regular file"), "\(e)")
        } catch { Issue.record("unexpected \(error)") }
    }

    /// Experiment and stages files share one bounded read: a link to /dev/zero, a FIFO (which
    /// no one writes) and a file over 16 MiB are refused unread, quickly, naming the file; a
    /// link to a real file is followed.
    @Test func linksToEndlessFilesFifosAndHugeFilesAreRefusedUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let zero = dir.appendingPathComponent("zero.yaml")
        try FileManager.default.createSymbolicLink(atPath: zero.path, withDestinationPath: "/dev/zero")
        let fifo = dir.appendingPathComponent("fifo.yaml")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let huge = dir.appendingPathComponent("huge.yaml")
        #expect(FileManager.default.createFile(atPath: huge.path, contents: nil))
        let handle = try FileHandle(forWritingTo: huge)
        try handle.truncate(atOffset: UInt64(16 << 20) + 1)   // sparse: nothing is written
        try handle.close()
        let loaders: [(String, (URL) throws -> Void)] = [
            ("experiment", { _ = try ExperimentSpec.load(contentsOf: $0) }),
            ("stages", { _ = try StageSequence.load(from: $0) }),
        ]
        for (what, load) in loaders {
            for (url, expected) in [(zero, "not a regular file (found a character device)"), (fifo, "not a regular file (found a FIFO)"),
                                    (huge, "the file is 16777217 bytes; at most 16777216 (16 MiB)")] {
                let start = Date()
                do {
                    try load(url)
                    Issue.record("\(what) \(url.lastPathComponent): expected a refusal")
                } catch let e as SpecError {
                    #expect(e.file == url.path && e.issues.count == 1, "\(e)")
                    #expect(e.description.contains(expected), "\(e)")
                } catch { Issue.record("\(what): unexpected \(error)") }
                #expect(Date().timeIntervalSince(start) < 5)
            }
        }
        // A link to a real stages file is read through.
        let real = dir.appendingPathComponent("real.yaml")
        try "stages:\n  - {data: d.jsonl}\n".write(to: real, atomically: true, encoding: .utf8)
        let link = dir.appendingPathComponent("link.yaml")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: real.path)
        #expect(try StageSequence.load(from: link).stages.count == 1)
    }

    /// Fuzz finding: `unlearning.steps: 4444444444444441` with the default evaluation schedule
    /// (every step) made the reader allocate 35 PB for the list of evaluation steps.
    @Test func hugeStepCountsGiveABoundedEvaluationSchedule() throws {
        func parse(_ evaluation: String) throws -> ExperimentSpec {
            try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke.replacingOccurrences(of: "  steps: 3\n", with: "  steps: 4444444444444441\n")
                                     .replacingOccurrences(of: "\nevaluation:\n", with: "\nevaluation:\n" + evaluation))
        }
        for evaluation in ["", "  every: 1\n"] {
            do {
                _ = try parse(evaluation)
                Issue.record("expected a SpecError")
            } catch let e as SpecError {
                #expect(e.description.contains("more than 100000 evaluations"), "\(e)")
            }
        }
        let spec = try parse("  every: 1000000000000\n")
        #expect(spec.evaluation.steps.count == 4446 && spec.evaluation.steps.last == 4444444444444441)
    }

    /// The problems a spec gives, or [] when it parses.
    private func problems(_ yaml: String) -> [String] {
        do { _ = try ExperimentSpec.parse(yaml: yaml, file: "x.yaml"); return [] } catch let e as SpecError {
            return e.issues.map(\.description)
        } catch { return ["unexpected \(error)"] }
    }

    /// YAML 1.1 reads `1:30` as the integer 90; Yams computed such a value unchecked, so twelve
    /// components (60^11 > Int.max) trapped the reader of any integer key, in a spec or a stages file.
    @Test func sexagesimalIntegersThatOverflowAreRefused() throws {
        let huge = "1:1:1:1:1:1:1:1:1:1:1:1"
        let spec = problems(BuiltinSpecs.smoke.replacingOccurrences(of: "  steps: 3\n", with: "  steps: \(huge)\n"))
        #expect(spec.contains { $0.contains("unlearning.steps") && $0.contains("expected an integer, found '\(huge)'") }, "\(spec)")
        #expect(problems(BuiltinSpecs.smoke.replacingOccurrences(of: "lr: 2e-3", with: "lr: -\(huge)")).contains {
            $0.contains("pretraining.optimizer.lr") }, "a double key reads integers first")
        do {
            _ = try StageSequence.parse("stages:\n  - {data: a.jsonl, epochs: \(huge)}\n", file: "stages.yaml")
            Issue.record("expected a SpecError")
        } catch let e as SpecError {
            #expect(e.file == "stages.yaml" && e.issues.map(\.path) == ["stages[0].epochs"], "\(e)")
        }
        // In range, the YAML 1.1 reading is unchanged.
        let ok = try StageSequence.parse("stages:\n  - {data: a.jsonl, epochs: 1:30, batch_size: +1:0}\n", file: "stages.yaml")
        #expect(ok.stages[0].epochs == 90 && ok.stages[0].batchSize == 60)
        #expect(try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke.replacingOccurrences(of: "  steps: 3\n", with: "  steps: 1:0\n"))
            .unlearning.steps == 60)
    }

    /// Seeds become UInt64 random streams: a negative seed or data_seed parsed, then trapped the
    /// conversion when the run started. Dataset sizes near Int.max overflowed the generators' counts.
    @Test func negativeSeedsAndHugeDatasetSizesAreRefusedByKey() {
        let seeds = problems(BuiltinSpecs.smoke.replacingOccurrences(of: "seeds: [1]", with: "seeds: [1, -1]\ndata_seed: -3"))
        #expect(seeds.contains { $0.contains("seeds: seeds must be >= 0, found -1") }, "\(seeds)")
        #expect(seeds.contains { $0.contains("data_seed: must be >= 0, found -3") }, "\(seeds)")
        let sizes = problems(BuiltinSpecs.smoke.replacingOccurrences(of: "{generator: entities, size: 14}",
                                                                     with: "{generator: entities, size: 9223372036854775807, test_size: 10000001}"))
        #expect(sizes.contains { $0.contains("datasets.entities.size: must be at most 10000000, found 9223372036854775807") }, "\(sizes)")
        #expect(sizes.contains { $0.contains("datasets.entities.test_size: must be at most 10000000, found 10000001") }, "\(sizes)")
    }

    /// A run's spec.json skips the YAML reader: one naming a path through an unknown stage trapped
    /// the plan's lookup when `status` or `report` opened the run; a negative seed trapped later.
    @Test func damagedStoredSpecsAreRefusedWhenTheRunIsOpened() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-spec-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try ExperimentRun(spec: try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke), directory: root)
        try run.prepare()
        #expect(try ExperimentRun.open(root).plan.units.count == run.plan.units.count)
        let stored = try JSONDecoder().decode(ExperimentSpec.self, from: Data(contentsOf: run.store.specURL))
        var unknownStage = stored, negativeSeed = stored
        unknownStage.paths = .explicit([["nowhere", "safety"]])
        negativeSeed.seeds = [-1]
        for (damaged, expected) in [(unknownStage, "paths[0]: names no stage: 'nowhere'"), (negativeSeed, "seeds must be >= 0, found -1")] {
            try JSONEncoder().encode(damaged).write(to: run.store.specURL)
            do {
                _ = try ExperimentRun.open(root)
                Issue.record("expected a refusal: \(expected)")
            } catch let e as StoreError {
                #expect(e.path == run.store.specURL.path && e.message.contains("unusable spec") && e.message.contains(expected), "\(e)")
            }
        }
    }

    /// The memory estimate of `run --concurrency auto` multiplied a spec's batch size unchecked.
    @Test func memoryEstimatesSaturateInsteadOfOverflowing() throws {
        let spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke.replacingOccurrences(of: "  batch_size: 8\n  algorithms",
                                                                                          with: "  batch_size: 9223372036854775807\n  algorithms"))
        #expect(spec.unlearning.batchSize == .max)
        #expect(UnitMemory.peakBytes(spec: spec) == .max)
        #expect(UnitMemory.autoConcurrency(cores: 4, budgetBytes: 1 << 30, unitPeakBytes: .max) == 1)
        let normal = try #require(UnitMemory.peakBytes(spec: try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke)))
        #expect(normal > UnitMemory.overheadBytes && normal < 1 << 34)
    }

    /// The ETA of a run with a huge step count is beyond Int (or infinite): `Int(_:)` trapped.
    @Test func etasBeyondIntArePrintedNotTrapped() {
        #expect(ProgressDisplay.duration(1e30) == ">1000000h")
        #expect(ProgressDisplay.duration(.infinity) == ">1000000h")
        #expect(ProgressDisplay.duration(.nan) == "?")
        #expect(ProgressDisplay.duration(3725) == "1h02m")
    }

    /// A LoRA rank near Int.max overflowed the default alpha (2 × rank) while the spec was read.
    @Test func hugeLoRARanksAreRefusedByKey() {
        let found = problems(BuiltinSpecs.smoke.replacingOccurrences(of: "  algorithms: [ga,", with: "  lora: {rank: 9223372036854775807}\n  algorithms: [ga,"))
        #expect(found.contains { $0.contains("unlearning.lora.rank: must be at most 65536, found 9223372036854775807") }, "\(found)")
    }

    /// The report indexes a comparison's rows and divergence matrix by its labels: a damaged
    /// `comparisons.jsonl` with fewer rows than labels trapped `palimpsest report` out of range.
    @Test func comparisonsWhoseShapesDisagreeWithTheirLabelsAreRefused() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-cmp-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        let good = #"{"seed":1,"algorithm":"ga","labels":["p=1","p=2"],"divergence":[[0,1],[1,0]],"toRetrained":[{"kl":1},{"kl":2}]}"#
        for (bad, expected) in [
            (#"{"seed":1,"algorithm":"ga","labels":["p=1","p=2","p=3"],"divergence":[],"toRetrained":[{"kl":1}]}"#, "1 rows for 3 labels"),
            (#"{"seed":1,"algorithm":"ga","labels":["p=1","p=2"],"divergence":[[0,1],[1]],"toRetrained":[{},{}]}"#, "found rows of [2, 1]"),
        ] {
            try Data((good + "\n" + bad + "\n").utf8).write(to: file)
            do {
                _ = try MetricFiles.readJSONL(ComparisonRecord.self, from: file)
                Issue.record("expected a refusal: \(expected)")
            } catch let e as StoreError {
                #expect(e.path == file.path && e.message.contains("line 2 is not a valid record") && e.message.contains(expected), "\(e)")
            }
        }
        try Data((good + "\n").utf8).write(to: file)
        let read = try MetricFiles.readJSONL(ComparisonRecord.self, from: file)
        #expect(read == [ComparisonRecord(seed: 1, algorithm: "ga", labels: ["p=1", "p=2"], divergence: [[0, 1], [1, 0]], toRetrained: [["kl": 1], ["kl": 2]])])

        // Seeds whose paths differ (a mixed run directory): the table keeps the first seed's paths.
        let other = ComparisonRecord(seed: 2, algorithm: "ga", labels: ["p=1"], divergence: [], toRetrained: [["kl": 5]])
        let records = [MetricRecord(seed: 1, path: [], position: 1, algorithm: "ga", step: 0, metrics: ["forget_score": 1])]
        let md = MarkdownReport(title: "t", analysis: ExperimentAnalysis(records: records, comparisons: read + [other])).render()
        #expect(md.contains("| p=2 | 2.000 |"), "\(md)")
    }

    /// YAML reads `.nan` and `.inf` as numbers, and every range check of the reader was false for
    /// NaN: such a learning rate or LoRA alpha passed, to fail (or train on NaN) only at run time.
    @Test func nanAndInfiniteNumbersAreRefusedByKey() {
        let yaml = BuiltinSpecs.smoke
            .replacingOccurrences(of: "lr: 2e-3, betas: [0.9, 0.95], weight_decay: 0.01", with: "lr: .nan, betas: [.nan, 0.95], weight_decay: .inf, eps: .nan, momentum: .nan")
            .replacingOccurrences(of: "schedule: {kind: linear, warmup: 0.05}\n  clip_norm: 1.0", with: "schedule: {kind: cosine, warmup: .nan, floor: .nan}\n  clip_norm: .nan\n  dpo_beta: .inf")
            .replacingOccurrences(of: "algorithms: [ga, {name: npo, beta: 0.5}]", with: "lora: {alpha: .inf, dropout: .nan}\n  algorithms: [ga, {name: npo, beta: .nan}, {name: graddiff, gamma: .nan}]")
        let found = problems(yaml)
        for expected in ["pretraining.optimizer.lr: must be finite and > 0, found nan", "pretraining.optimizer.betas: must be two numbers in [0, 1)",
                         "pretraining.optimizer.weight_decay: must be finite and >= 0, found inf", "pretraining.optimizer.eps: must be finite and > 0, found nan",
                         "pretraining.optimizer.momentum: must be in [0, 1), found nan", "pretraining.schedule.warmup: must be a fraction in [0, 1], found nan",
                         "pretraining.schedule.floor: must be a fraction of the peak in [0, 1], found nan", "pretraining.clip_norm: must be finite and > 0, found nan",
                         "pretraining.dpo_beta: must be finite and > 0, found inf", "unlearning.lora.alpha: must be > 0 and finite, found inf",
                         "unlearning.lora.dropout: must be in [0, 1), found nan", "unlearning.algorithms[1].beta: must be > 0 and finite, found nan",
                         "unlearning.algorithms[2].gamma: must be finite, found nan"] {
            #expect(found.contains { $0.contains(expected) }, "\(expected) in \(found)")
        }
    }
}
