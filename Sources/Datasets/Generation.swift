import FileSupport
import Foundation
import JSONSupport

/// The datasets Palimpsest generates.
public enum DatasetKind: String, CaseIterable, Sendable, Codable {
    case instructions, entities, math, safety, mass, pretrain
}

/// Settings of every generator; `.pilot` is the measured demo recipe (docs/datasets.md).
public struct DemoConfig: Sendable, Equatable {
    public var instructions = InstructionConfig()
    public var entities = EntityConfig()
    public var math = MathConfig()
    public var safety = SafetyConfig()
    public var mass = MassConfig()
    public var pretrain = PretrainConfig()

    public init() {}

    /// Instructions 800 (+100 test, 6 tasks); entity QA 30 people x 7 questions (+5 test people);
    /// math 1,200 + 50 test; safety 128 + 32 test in 6 categories; 40 mass prompts; 20,000
    /// pretraining documents, half chat-formatted, with 60 other people.
    public static let pilot = DemoConfig()
}

/// Every dataset of one seed. The pretraining corpus avoids the stages' prompts.
public struct DemoDataset: Sendable, Equatable {
    public var seed: UInt64
    public var config: DemoConfig
    public var instructions: Splits<Example>
    public var entities: EntityDataset
    public var math: Splits<MathProblem>
    public var safety: Splits<Example>
    public var mass: [MassItem]
    public var pretrain: PretrainCorpus

    /// Generates `kinds` (the pretraining corpus also needs the stage prompts, so it generates the
    /// stages too, without keeping those not asked for).
    public static func generate(_ config: DemoConfig = .pilot, seed: UInt64,
                                kinds: Set<DatasetKind> = Set(DatasetKind.allCases)) throws -> DemoDataset {
        let needStages = kinds.contains(.pretrain)
        let ins = kinds.contains(.instructions) || needStages ? try Instructions.generate(config.instructions, seed: seed) : Splits(train: [], test: [])
        let ent = kinds.contains(.entities) || needStages ? try Entities.generate(config.entities, seed: seed)
            : EntityDataset(people: Splits(train: [], test: []), qa: Splits(train: [], test: []))
        let math = kinds.contains(.math) || needStages ? try MathProblems.generate(config.math, seed: seed) : Splits(train: [], test: [])
        let safety = kinds.contains(.safety) || needStages ? try Safety.generate(config.safety, seed: seed) : Splits(train: [], test: [])
        let mass = kinds.contains(.mass) ? try Safety.mass(config.mass, seed: seed) : []
        var stagePrompts = Set<String>()
        for e in ins.train + ins.test + safety.train + safety.test { stagePrompts.insert(e.prompt) }
        for q in ent.qa.train + ent.qa.test { stagePrompts.insert(q.question) }
        for m in math.train + math.test { stagePrompts.insert(m.question) }
        let pre = kinds.contains(.pretrain) ? try Pretraining.generate(config.pretrain, seed: seed, excluding: stagePrompts)
            : PretrainCorpus(documents: [], people: [])
        func keep<T>(_ k: DatasetKind, _ v: T, _ empty: T) -> T { kinds.contains(k) ? v : empty }
        return DemoDataset(
            seed: seed, config: config,
            instructions: keep(.instructions, ins, Splits(train: [], test: [])),
            entities: keep(.entities, ent, EntityDataset(people: Splits(train: [], test: []), qa: Splits(train: [], test: []))),
            math: keep(.math, math, Splits(train: [], test: [])),
            safety: keep(.safety, safety, Splits(train: [], test: [])),
            mass: mass, pretrain: pre)
    }

    /// Writes each of `kinds` into `directory/<kind>/` (JSONL splits, `card.json`, `README.md`) and
    /// returns the cards.
    @discardableResult
    public func write(to directory: URL, kinds: [DatasetKind] = DatasetKind.allCases,
                      tokenizer: TokenCounter? = nil) throws -> [DatasetCard] {
        var cards: [DatasetCard] = []
        for kind in kinds {
            let dir = directory.appendingPathComponent(kind.rawValue)
            switch kind {
            case .instructions:
                let c = config.instructions
                cards.append(try DatasetFiles.write(
                    kind: kind, seed: seed, dir: dir, tokenizer: tokenizer,
                    description: "Templated instruction-following pairs (the S_inst analogue), prompt/response JSONL.",
                    parameters: ["train": "\(c.trainCount)", "test": "\(c.testCount)", "tasks": c.tasks.map(\.rawValue).joined(separator: ",")],
                    splits: [("train", instructions.train), ("test", instructions.test)]))
            case .entities:
                let c = config.entities
                cards.append(try DatasetFiles.write(
                    kind: kind, seed: seed, dir: dir, tokenizer: tokenizer,
                    description: "Questions about invented people (the TOFU analogue) in TOFU's format; train and test hold different people.",
                    parameters: ["train_entities": "\(c.trainEntities)", "test_entities": "\(c.testEntities)",
                                 "questions_per_entity": "\(c.questionsPerEntity)", "perturbed_per_question": "\(c.perturbedCount)"],
                    splits: [("train", entities.qa.train), ("test", entities.qa.test)]))
            case .math:
                let c = config.math
                cards.append(try DatasetFiles.write(
                    kind: kind, seed: seed, dir: dir, tokenizer: tokenizer,
                    description: "Multi-step arithmetic word problems (the GSM8K analogue): solutions end in `#### <number>`.",
                    parameters: ["train": "\(c.trainCount)", "test": "\(c.testCount)", "steps": "\(c.minSteps)...\(c.maxSteps)",
                                 "calculator_annotations": "\(c.calculatorAnnotations)", "division": "\(c.division)"],
                    splits: [("train", math.train), ("test", math.test)]))
            case .safety:
                let c = config.safety
                var refusals = "{\"paraphrases\":["
                refusals += Safety.refusalParaphrases.map { jsonQuoted($0) }.joined(separator: ",")
                refusals += "],\"target\":\(jsonQuoted(Safety.refusalTarget))}\n"
                cards.append(try DatasetFiles.write(
                    kind: kind, seed: seed, dir: dir, tokenizer: tokenizer,
                    description: "Unsafe requests answered with \"\(Safety.refusalTarget)\" and a short explanation (the forget set S_U). `refusals.json` lists the target and its paraphrases for the forget score.",
                    parameters: ["train": "\(c.trainCount)", "test": "\(c.testCount)",
                                 "categories": (c.categories.isEmpty ? Safety.categoryNames : c.categories).joined(separator: ",")],
                    splits: [("train", safety.train), ("test", safety.test)],
                    extra: [("refusals.json", Data(refusals.utf8))]))
            case .mass:
                cards.append(try DatasetFiles.write(
                    kind: kind, seed: seed, dir: dir, tokenizer: tokenizer,
                    description: "Probability-mass experiment: unsafe prompts with compliance C (`compliance`), compliance U (`target`, unlearned) and refusal R (`refusal`).",
                    parameters: ["count": "\(config.mass.count)"],
                    splits: [("items", mass)]))
            case .pretrain:
                let c = config.pretrain
                cards.append(try DatasetFiles.write(
                    kind: kind, seed: seed, dir: dir, tokenizer: tokenizer,
                    description: "Pretraining documents: plain text (`kind: text`) and chat pairs in the stages' formats (`kind: chat`) with other content than the stages, never refusals.",
                    parameters: ["documents": "\(c.documents)", "chat_fraction": "\(c.chatFraction)", "people": "\(c.people)",
                                 "instruction_tasks": c.instructionTasks.map(\.rawValue).joined(separator: ","),
                                 "math_max_steps": "\(c.mathMaxSteps)", "math_division": "\(c.mathDivision)", "benign_request_share": "\(c.benignRequestShare)", "excludes_stage_prompts_of_seed": "\(seed)"],
                    splits: [("train", pretrain.documents)]))
            }
        }
        return cards
    }
}

enum DatasetFiles {
    static func write<R: JSONLineWritable & TextFields>(
        kind: DatasetKind, seed: UInt64, dir: URL, tokenizer: TokenCounter?, description: String,
        parameters: [String: String], splits: [(String, [R])], extra: [(String, Data)] = []
    ) throws -> DatasetCard {
        var card = DatasetCard(kind: kind.rawValue, seed: seed, description: description, parameters: parameters,
                               tokenizer: tokenizer?.name)
        for (name, records) in splits {
            let file = name + ".jsonl"
            let bytes = try writeJSONL(records, to: dir.appendingPathComponent(file))
            card.splits.append(DatasetCard.split(name, file: file, records: records, bytes: bytes, tokenizer: tokenizer))
        }
        for (file, bytes) in extra {
            try writeAtomically(bytes, to: dir.appendingPathComponent(file))
            card.extraFiles[file] = SHA256.hex(bytes)
        }
        try card.write(to: dir)
        return card
    }
}

/// The datasets of a directory written by `DemoDataset.write` (or laid out the same way by hand
/// with real data): each kind is nil when its directory is absent.
public struct DataDirectory: Sendable, Equatable {
    public var instructions: Splits<Example>?
    public var entities: Splits<EntityQA>?
    public var math: Splits<MathProblem>?
    public var safety: Splits<Example>?
    /// The refusal target and its paraphrases from `safety/refusals.json`, when present.
    public var refusalTarget: String?
    public var refusalParaphrases: [String]?
    public var mass: [MassItem]?
    public var pretrain: [Document]?

    /// Reads `directory/<kind>/`: `train.jsonl` and `test.jsonl` (a missing test file is an empty
    /// split), `items.jsonl` for mass. Formats are detected as usual.
    public static func load(from directory: URL, options: LoadOptions = LoadOptions()) throws -> DataDirectory {
        let fm = FileManager.default
        func file(_ kind: DatasetKind, _ name: String) -> URL? {
            let u = directory.appendingPathComponent(kind.rawValue).appendingPathComponent(name)
            return fm.fileExists(atPath: u.path) ? u : nil
        }
        func splits<T>(_ kind: DatasetKind, _ load: (URL) throws -> [T]) throws -> Splits<T>? {
            guard let train = file(kind, "train.jsonl") else { return nil }
            return Splits(train: try load(train), test: try file(kind, "test.jsonl").map(load) ?? [])
        }
        var d = DataDirectory()
        d.instructions = try splits(.instructions) { try loadExamples(from: $0, options: options) }
        d.entities = try splits(.entities) { try loadEntityQA(from: $0, options: options.with(format: .tofu)) }
        d.math = try splits(.math) { try loadMathProblems(from: $0, options: options.with(format: .gsm8k)) }
        d.safety = try splits(.safety) { try loadExamples(from: $0, options: options) }
        if let r = file(.safety, "refusals.json") {
            // A target and a few paraphrases: a few KB.
            let data: Data
            do { data = try readBoundedFile(atPath: r.path, limit: 16 << 20) } catch { throw DataError(file: r.path, message: error.description) }
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            guard let obj, let target = obj["target"] as? String, let para = obj["paraphrases"] as? [String] else {
                throw DataError(file: r.path, message: "expected {\"target\": string, \"paraphrases\": [string]}")
            }
            d.refusalTarget = target
            d.refusalParaphrases = para
        }
        d.mass = try file(.mass, "items.jsonl").map { try loadMassItems(from: $0, options: options.with(format: .mass)) }
        d.pretrain = try file(.pretrain, "train.jsonl").map { try loadDocuments(from: $0, options: options) }
        return d
    }
}

extension LoadOptions {
    /// These options with `format` when none was given.
    func with(format: DataFormat) -> LoadOptions {
        var o = self
        if o.format == nil { o.format = format }
        return o
    }
}
