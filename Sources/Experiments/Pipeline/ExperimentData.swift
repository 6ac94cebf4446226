import Datasets
import Foundation
import Tokenizers
import Training

/// Generates the spec's datasets into a directory, one sub-directory per dataset name.
enum DataGeneration {
    /// Each built-in generator may appear once: the generators of one seed share a pool of
    /// invented names and the pretraining corpus is built to avoid every stage prompt.
    static func generate(spec: ExperimentSpec, into directory: URL) throws -> [String: String] {
        var config = DemoConfig()
        var kinds: [String: DatasetKind] = [:]
        for (name, source) in spec.datasets.sorted(by: { $0.key < $1.key }) {
            guard case .generator(let kindName, let size, let testSize) = source else { continue }
            guard let kind = DatasetKind(rawValue: kindName) else { throw ExperimentFailure("datasets.\(name): unknown generator \(kindName)") }
            if let other = kinds.first(where: { $0.value == kind }) {
                throw ExperimentFailure("datasets.\(name): the \(kindName) generator is already used by '\(other.key)'; use it once per experiment")
            }
            kinds[name] = kind
            switch kind {
            case .instructions: config.instructions.trainCount = size; config.instructions.testCount = testSize
            case .entities:
                let perEntity = config.entities.questionsPerEntity
                // Rounded up without `size + perEntity - 1`, which overflowed for sizes near Int.max.
                func people(_ n: Int) -> Int { n / perEntity + (n % perEntity > 0 ? 1 : 0) }
                config.entities.trainEntities = max(1, people(size))
                config.entities.testEntities = people(testSize)
            case .math: config.math.trainCount = size; config.math.testCount = testSize
            case .safety: config.safety.trainCount = size; config.safety.testCount = testSize
            case .mass: config.mass.count = size
            case .pretrain: config.pretrain.documents = size
            }
        }
        let data = try DemoDataset.generate(config, seed: UInt64(spec.dataSeed), kinds: Set(kinds.values))
        var outputs: [String: String] = [:]
        for (name, kind) in kinds {
            try data.write(to: directory.appendingPathComponent(name), kinds: [kind])
            outputs["dataset.\(name)"] = "\(name)/\(kind.rawValue)"
        }
        for (name, source) in spec.datasets {
            guard case .file(let path, _, let testPath) = source else { continue }
            outputs["file.\(name)"] = path
            if let testPath { outputs["file.\(name).test"] = testPath }
        }
        return outputs
    }
}

/// The datasets of a run, loaded once and turned into token ids with the run's tokenizer.
final class ExperimentData: @unchecked Sendable {
    let directory: URL
    let outputs: [String: String]
    let spec: ExperimentSpec
    private var cache: [String: DataDirectory] = [:]
    private let lock = NSLock()

    init(spec: ExperimentSpec, directory: URL, outputs: [String: String]) {
        self.spec = spec; self.directory = directory; self.outputs = outputs
    }

    private func generated(_ name: String) throws -> DataDirectory {
        lock.lock(); defer { lock.unlock() }
        if let d = cache[name] { return d }
        guard let relative = outputs["dataset.\(name)"] else { throw ExperimentFailure("dataset '\(name)' was not generated") }
        let d = try DataDirectory.load(from: directory.appendingPathComponent(relative).deletingLastPathComponent())
        cache[name] = d
        return d
    }

    /// How a file dataset is read: in the format its spec states (a record that does not fit is an
    /// error naming the file and line), or detected from its first record.
    func fileOptions(_ name: String) -> LoadOptions {
        guard case .file(_, let format?, _)? = spec.datasets[name] else { return LoadOptions() }
        return LoadOptions(format: DatasetKinds.dataFormat(format))
    }

    /// Splits "NAME.test" into ("NAME", true).
    static func reference(_ ref: String) -> (name: String, test: Bool) {
        ref.hasSuffix(".test") ? (String(ref.dropLast(5)), true) : (ref, false)
    }

    /// Prompt/response pairs of a dataset (documents become pairs with an empty prompt).
    func pairs(_ ref: String, response: String? = nil) throws -> [(prompt: String, response: String)] {
        let (name, test) = Self.reference(ref)
        if let path = outputs["file.\(name)\(test ? ".test" : "")"] {
            return try loadExamples(from: URL(fileURLWithPath: path), options: fileOptions(name)).map { ($0.prompt, $0.response) }
        }
        let d = try generated(name)
        func pick<T>(_ s: Splits<T>?) -> [T] { guard let s else { return [] }; return test ? s.test : s.train }
        if let s = d.instructions { return pick(s).map { ($0.prompt, $0.response) } }
        if let s = d.safety { return pick(s).map { ($0.prompt, $0.response) } }
        if let s = d.entities { return pick(s).map { ($0.question, $0.answer) } }
        if let s = d.math { return pick(s).map { ($0.question, $0.answer) } }
        if let items = d.mass {
            return items.map { item in
                switch response {
                case "compliance": return (item.prompt, item.compliance)
                case "refusal": return (item.prompt, item.refusal)
                default: return (item.prompt, item.target)
                }
            }
        }
        if let docs = d.pretrain {
            return docs.map { doc in
                switch doc {
                case .text(let t): return ("", t)
                case .chat(let p, let r): return (p, r)
                }
            }
        }
        throw ExperimentFailure("dataset '\(name)' holds no records")
    }

    /// Whether the dataset is a pretraining corpus (its chat documents are trained on every token).
    func isDocuments(_ ref: String) throws -> Bool {
        let (name, _) = Self.reference(ref)
        if outputs["file.\(name)"] != nil { return false }
        return try generated(name).pretrain != nil
    }

    func massItems(_ ref: String) throws -> [MassItem] {
        let (name, _) = Self.reference(ref)
        guard let items = try generated(name).mass else { throw ExperimentFailure("dataset '\(name)' is not probability-mass data") }
        return items
    }

    func refusals(_ ref: String) throws -> (target: String, paraphrases: [String]) {
        let (name, _) = Self.reference(ref)
        let d = try generated(name)
        return (d.refusalTarget ?? Safety.refusalTarget, d.refusalParaphrases ?? Safety.refusalParaphrases)
    }

    /// Entity QA records with their paraphrased and perturbed answers (TOFU's metrics).
    func entityQA(_ ref: String) throws -> [EntityQA] {
        let (name, test) = Self.reference(ref)
        if let path = outputs["file.\(name)\(test ? ".test" : "")"] { return try loadEntityQA(from: URL(fileURLWithPath: path)) }
        guard let s = try generated(name).entities else { throw ExperimentFailure("dataset '\(name)' is not entity QA data") }
        return test ? s.test : s.train
    }

    func mathReferences(_ ref: String) throws -> [(question: String, answer: String)] {
        let (name, test) = Self.reference(ref)
        if let path = outputs["file.\(name)\(test ? ".test" : "")"] {
            return try loadMathProblems(from: URL(fileURLWithPath: path)).map { ($0.question, $0.answer) }
        }
        guard let s = try generated(name).math else { throw ExperimentFailure("dataset '\(name)' is not math data") }
        return (test ? s.test : s.train).map { ($0.question, $0.answer) }
    }

    /// All text of a dataset, for tokenizer training.
    func corpus(_ ref: String) throws -> [String] {
        try pairs(ref).map { $0.prompt.isEmpty ? $0.response : "\($0.prompt)\n\($0.response)" }
    }
}

/// Turns text pairs into token ids the way the model is trained and scored: the chat template of
/// a checkpoint's tokenizer, or `User: …\nAssistant: …<eos>` for models trained from scratch.
struct PromptFormatter: @unchecked Sendable {
    let tokenizer: Tokenizer
    let template: ChatTemplate
    let eos: Int

    init(tokenizer: Tokenizer) throws {
        self.tokenizer = tokenizer
        self.template = ChatTemplate(for: tokenizer) ?? ChatTemplate(format: .plain)
        guard let eos = tokenizer.eosTokenIDs.first ?? tokenizer.tokenID(for: "<|endoftext|>") else {
            throw ExperimentFailure("the tokenizer defines no end-of-sequence token")
        }
        self.eos = eos
    }

    /// Prompt ids (everything before the assistant's answer) and response ids (the answer and its end token).
    func encode(prompt: String, response: String) throws -> Training.Example {
        if prompt.isEmpty {
            return Training.Example(prompt: [], response: tokenizer.encode(response, addSpecialTokens: false).map(Int32.init) + [Int32(eos)])
        }
        let pair = try template.encodePair(prompt: prompt, response: response, tokenizer: tokenizer)
        return Training.Example(prompt: pair.prompt.map(Int32.init), response: pair.response.map(Int32.init))
    }

    /// The prompt as the model sees it before it answers.
    func encodePrompt(_ prompt: String) throws -> [Int32] {
        try template.encode([.user(prompt)], tokenizer: tokenizer, addGenerationPrompt: true).ids.map(Int32.init)
    }

    /// A chat document trained on every token: the formatted pair as one sequence.
    func encodeDocument(prompt: String, response: String) throws -> Training.Example {
        let e = try encode(prompt: prompt, response: response)
        return Training.Example(prompt: [], response: e.prompt + e.response)
    }
}

/// An error of the pipeline that names what went wrong.
struct ExperimentFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
