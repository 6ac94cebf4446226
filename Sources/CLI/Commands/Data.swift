import ArgumentParser
import Datasets
import Foundation
import Tokenizers

/// `palimpsest data`: generate the stages' datasets, inspect data files.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Generate the synthetic datasets of every stage, or inspect a data file.",
        subcommands: [DataGenerate.self, DataInspect.self]
    )
}

/// Token counting for `--tokenizer`. `utf8-bytes` is built in (one token per UTF-8 byte, an upper
/// bound for byte-level BPE); any other value is a tokenizer path.
enum TokenizerHook {
    static func counter(_ spec: String) throws -> TokenCounter {
        if spec == "utf8-bytes" { return TokenCounter(name: "utf8-bytes") { $0.utf8.count } }
        let tokenizer = try Tokenizer.load(from: URL(fileURLWithPath: spec))
        return TokenCounter(name: spec) { tokenizer.encode($0, addSpecialTokens: false).count }
    }
}

struct DataGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a dataset (JSONL splits, card.json, README.md) into OUT/KIND/.",
        discussion: """
        KIND: instructions, entities, math, safety, mass, pretrain, or all (every kind at the demo \
        recipe's sizes). --size is the number of training records: examples (instructions, math, \
        safety), people (entities), prompts (mass) or documents (pretrain). The pretraining corpus \
        avoids the prompts of the stages generated with the same seed at their default sizes.
        """
    )

    @Argument(help: "instructions, entities, math, safety, mass, pretrain or all.")
    var kind: String

    @Option(help: "Random seed; the same seed gives the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Training records (default: the demo recipe's size).")
    var size: Int?

    @Option(name: .customLong("test-size"), help: "Test records (people for entities).")
    var testSize: Int?

    @Option(help: "Output directory; files go to OUT/KIND/.")
    var out: String = "data"

    @Option(help: "Instruction tasks, comma-separated (default: the demo's six; 'all' for every task).")
    var tasks: String?

    @Option(name: .customLong("questions-per-entity"), help: "Questions per person (1-11).")
    var questionsPerEntity: Int?

    @Option(name: .customLong("min-steps"), help: "Fewest arithmetic steps of a math problem.")
    var minSteps: Int?

    @Option(name: .customLong("max-steps"), help: "Most arithmetic steps of a math problem.")
    var maxSteps: Int?

    @Flag(name: .customLong("calculator-annotations"), help: "Write GSM8K's <<a+b=c>> annotations in math solutions.")
    var calculatorAnnotations = false

    @Flag(help: "Allow an exact division as the last step of math problems.")
    var division = false

    @Option(name: .customLong("chat-fraction"), help: "Share of chat-formatted pretraining documents.")
    var chatFraction: Double?

    @Option(help: "Count tokens in the cards with this tokenizer ('utf8-bytes' or a tokenizer path).")
    var tokenizer: String?

    func run() throws {
        let kinds: [DatasetKind]
        if kind == "all" {
            if size != nil || testSize != nil { throw ValidationError("--size and --test-size apply to one kind, not to 'all'") }
            kinds = DatasetKind.allCases
        } else {
            guard let k = DatasetKind(rawValue: kind) else {
                throw ValidationError("unknown KIND '\(kind)'; expected one of \((DatasetKind.allCases.map(\.rawValue) + ["all"]).joined(separator: ", "))")
            }
            kinds = [k]
        }
        if let size, size < 0 { throw ValidationError("--size must be >= 0, got \(size)") }
        if let testSize, testSize < 0 { throw ValidationError("--test-size must be >= 0, got \(testSize)") }
        var c = DemoConfig.pilot
        if let tasks {
            c.instructions.tasks = try tasks == "all" ? InstructionTask.allCases : tasks.split(separator: ",").map { t in
                guard let task = InstructionTask(rawValue: String(t)) else {
                    throw ValidationError("unknown task '\(t)'; known: \(InstructionTask.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return task
            }
        }
        if let q = questionsPerEntity { c.entities.questionsPerEntity = q }
        if let m = minSteps { c.math.minSteps = m }
        if let m = maxSteps { c.math.maxSteps = m }
        c.math.calculatorAnnotations = calculatorAnnotations
        if division { c.math.division = true }
        if let f = chatFraction { c.pretrain.chatFraction = f }
        if let k = kinds.first, kinds.count == 1 {
            switch k {
            case .instructions:
                if let size { c.instructions.trainCount = size }
                if let testSize { c.instructions.testCount = testSize }
            case .entities:
                if let size { c.entities.trainEntities = size }
                if let testSize { c.entities.testEntities = testSize }
            case .math:
                if let size { c.math.trainCount = size }
                if let testSize { c.math.testCount = testSize }
            case .safety:
                if let size { c.safety.trainCount = size }
                if let testSize { c.safety.testCount = testSize }
            case .mass:
                if let size { c.mass.count = size }
                if testSize != nil { throw ValidationError("mass has no test split") }
            case .pretrain:
                if let size { c.pretrain.documents = size }
                if testSize != nil { throw ValidationError("pretrain has no test split") }
            }
        }
        let counter = try tokenizer.map(TokenizerHook.counter)
        let t0 = Date()
        let data = try DemoDataset.generate(c, seed: seed, kinds: Set(kinds))
        let genSeconds = Date().timeIntervalSince(t0)
        let outURL = URL(fileURLWithPath: out)
        let cards = try data.write(to: outURL, kinds: kinds, tokenizer: counter)
        for card in cards {
            let splits = card.splits.map { "\($0.split) \($0.records)" + ($0.total.tokens.map { " (\($0) tokens)" } ?? "") }
            print("\(card.kind): \(splits.joined(separator: ", ")) -> \(outURL.appendingPathComponent(card.kind).path)/")
        }
        print(String(format: "generated in %.2f s (seed %llu)", genSeconds, seed))
    }
}

struct DataInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Counts, fields, a sample and length statistics of a JSON or JSONL data file."
    )

    @Argument(help: "A .jsonl file, or a .json file holding an array of records.")
    var file: String

    @Option(help: "Record format (default: detected from the first record): \(DataFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: String?

    @Flag(name: .customLong("skip-bad"), help: "Skip records that cannot be read and report how many.")
    var skipBad = false

    @Option(help: "Samples to print.")
    var samples: Int = 1

    @Option(help: "Token statistics with this tokenizer ('utf8-bytes' or a tokenizer path).")
    var tokenizer: String?

    func run() throws {
        var options = LoadOptions(skipBadRecords: skipBad)
        if let format {
            guard let f = DataFormat(rawValue: format) else {
                throw ValidationError("unknown --format '\(format)'; expected one of \(DataFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.format = f
        }
        guard samples >= 0 else { throw ValidationError("--samples must be >= 0") }
        let counter = try tokenizer.map(TokenizerHook.counter)
        let i = try Inspection.inspect(URL(fileURLWithPath: file), options: options, tokenizer: counter, samples: samples)
        print(i.text(formatGiven: format != nil), terminator: "")
    }
}
