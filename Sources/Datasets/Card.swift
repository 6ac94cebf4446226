import Foundation

/// Counts the tokens of a text. The Datasets module does not depend on a particular tokenizer:
/// callers wrap theirs (`TokenCounter(name: "bpe-768") { tok.encode($0).count }`).
public struct TokenCounter: Sendable {
    public let name: String
    public let count: @Sendable (String) -> Int

    public init(name: String, count: @escaping @Sendable (String) -> Int) {
        self.name = name
        self.count = count
    }
}

/// The named text fields of a record, for statistics and token counts.
public protocol TextFields {
    var textFields: [(name: String, text: String)] { get }
}

extension Example: TextFields {
    public var textFields: [(name: String, text: String)] { [("prompt", prompt), ("response", response)] }
}

extension EntityQA: TextFields {
    public var textFields: [(name: String, text: String)] {
        var f: [(name: String, text: String)] = [("question", question), ("answer", answer)]
        if let p = paraphrasedQuestion { f.append(("paraphrased_question", p)) }
        if let p = paraphrasedAnswer { f.append(("paraphrased_answer", p)) }
        for p in perturbedAnswers { f.append(("perturbed_answer", p)) }
        return f
    }
}

extension MathProblem: TextFields {
    public var textFields: [(name: String, text: String)] { [("question", question), ("answer", answer)] }
}

extension MassItem: TextFields {
    public var textFields: [(name: String, text: String)] {
        [("prompt", prompt), ("compliance", compliance), ("target", target), ("refusal", refusal)]
    }
}

extension PreferencePair: TextFields {
    public var textFields: [(name: String, text: String)] { [("prompt", prompt), ("chosen", chosen), ("rejected", rejected)] }
}

extension Conversation: TextFields {
    public var textFields: [(name: String, text: String)] { messages.map { ($0.role, $0.content) } }
}

extension TextRecord: TextFields {
    public var textFields: [(name: String, text: String)] { [("text", text)] }
}

extension Document: TextFields {
    public var textFields: [(name: String, text: String)] {
        switch self {
        case .text(let t): return [("text", t)]
        case .chat(let p, let r): return [("prompt", p), ("response", r)]
        }
    }
}

extension PretrainDocument: TextFields {
    public var textFields: [(name: String, text: String)] { document.textFields }
}

/// Sizes of one field summed over a split.
public struct FieldStats: Codable, Equatable, Sendable {
    public var characters = 0
    public var words = 0
    /// Present only when the card was made with a tokenizer.
    public var tokens: Int?

    public init(characters: Int = 0, words: Int = 0, tokens: Int? = nil) {
        self.characters = characters
        self.words = words
        self.tokens = tokens
    }

    mutating func add(_ text: String, counter: TokenCounter?) {
        characters += text.count
        words += whitespaceWords(text)
        if let counter { tokens = (tokens ?? 0) + counter.count(text) }
    }
}

/// The number of whitespace-separated words in `text`.
public func whitespaceWords(_ text: String) -> Int {
    var n = 0, inWord = false
    for b in text.utf8 {
        let space = b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D
        if !space && !inWord { n += 1 }
        inWord = !space
    }
    return n
}

/// One file of a dataset: its size, its content hash and the sizes of its fields.
public struct SplitCard: Codable, Equatable, Sendable {
    public var split: String
    public var file: String
    public var records: Int
    public var bytes: Int
    public var sha256: String
    /// Totals over every field.
    public var total: FieldStats
    public var fields: [String: FieldStats]
}

/// What a generated dataset holds and how it was made; written next to the data as `card.json`
/// and `README.md`.
public struct DatasetCard: Codable, Equatable, Sendable {
    public var kind: String
    public var generator = "palimpsest-datasets/1"
    public var seed: UInt64
    public var description: String
    /// The generator's settings, as text.
    public var parameters: [String: String]
    /// The tokenizer the token counts were made with; nil when the card counts only characters and
    /// whitespace words.
    public var tokenizer: String?
    public var splits: [SplitCard]
    /// Extra files (paraphrase lists, ...) with their SHA-256.
    public var extraFiles: [String: String]

    public init(kind: String, seed: UInt64, description: String, parameters: [String: String],
                tokenizer: String? = nil, splits: [SplitCard] = [], extraFiles: [String: String] = [:]) {
        self.kind = kind
        self.seed = seed
        self.description = description
        self.parameters = parameters
        self.tokenizer = tokenizer
        self.splits = splits
        self.extraFiles = extraFiles
    }

    /// Statistics of one split's records and the bytes of its file.
    public static func split<R: TextFields>(_ name: String, file: String, records: [R], bytes: Data,
                                           tokenizer: TokenCounter?) -> SplitCard {
        var total = FieldStats(tokens: tokenizer == nil ? nil : 0)
        var fields: [String: FieldStats] = [:]
        for r in records {
            for (n, t) in r.textFields {
                fields[n, default: FieldStats(tokens: tokenizer == nil ? nil : 0)].add(t, counter: tokenizer)
                total.add(t, counter: tokenizer)
            }
        }
        return SplitCard(split: name, file: file, records: records.count, bytes: bytes.count,
                         sha256: SHA256.hex(bytes), total: total, fields: fields)
    }

    public func json() -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return (try? enc.encode(self)).map { $0 + Data("\n".utf8) } ?? Data()
    }

    /// A human-readable card.
    public func markdown() -> String {
        var s = "# \(kind)\n\n\(description)\n\n"
        s += "Generated by `\(generator)` with seed \(seed).\n\n"
        s += "| split | file | records | bytes | characters | words | tokens | sha256 |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for sp in splits {
            s += "| \(sp.split) | `\(sp.file)` | \(sp.records) | \(sp.bytes) | \(sp.total.characters) | \(sp.total.words) | "
            s += "\(sp.total.tokens.map(String.init) ?? "-") | `\(sp.sha256)` |\n"
        }
        s += "\nToken counts: " + (tokenizer.map { "`\($0)`" } ?? "none (no tokenizer given)") + ".\n"
        if !parameters.isEmpty {
            s += "\n## Parameters\n\n"
            for (k, v) in parameters.sorted(by: { $0.key < $1.key }) { s += "- `\(k)`: \(v)\n" }
        }
        if !extraFiles.isEmpty {
            s += "\n## Other files\n\n"
            for (k, v) in extraFiles.sorted(by: { $0.key < $1.key }) { s += "- `\(k)` (sha256 `\(v)`)\n" }
        }
        for sp in splits {
            s += "\n## \(sp.split): fields\n\n| field | characters | words | tokens |\n| --- | --- | --- | --- |\n"
            for (k, v) in sp.fields.sorted(by: { $0.key < $1.key }) {
                s += "| \(k) | \(v.characters) | \(v.words) | \(v.tokens.map(String.init) ?? "-") |\n"
            }
        }
        return s
    }

    /// Writes `card.json` and `README.md` into `directory`, atomically.
    public func write(to directory: URL) throws {
        try writeAtomically(json(), to: directory.appendingPathComponent("card.json"))
        try writeAtomically(Data(markdown().utf8), to: directory.appendingPathComponent("README.md"))
    }
}
