import Engine
import FileSupport
import Foundation
import Models
import Tokenizers

/// One input line of `palimpsest score`, as the token ids the model sees and the labels scored.
public struct ScoreRequest: Equatable, Sendable {
    /// 1-based line number in the input file.
    public var line: Int
    /// Tokens fed to the model.
    public var ids: [Int]
    /// The token scored at each position, or -100 where none is. Position 0 is never scored:
    /// nothing precedes it.
    public var labels: [Int]

    public init(line: Int, ids: [Int], labels: [Int]) {
        self.line = line
        self.ids = ids
        self.labels = labels
    }

    /// How many tokens are scored.
    public var scoredCount: Int { labels.dropFirst().filter { $0 != -100 }.count }
}

/// The log-likelihood of one request's scored tokens.
public struct ScoreResult: Equatable, Sendable {
    /// Summed natural-log probability of the scored tokens (0 when none is scored).
    public var loglik: Double
    /// How many tokens were scored.
    public var tokens: Int

    public init(loglik: Double, tokens: Int) {
        self.loglik = loglik
        self.tokens = tokens
    }

    /// `loglik / tokens`, nil when no token was scored.
    public var meanLoglik: Double? { tokens > 0 ? loglik / Double(tokens) : nil }

    /// `{"loglik": ..., "tokens": ..., "mean_loglik": ...}`, the line `score --json` prints.
    /// Numbers print in their shortest exact form; a non-finite value or a missing mean is null.
    public var jsonLine: String {
        func number(_ x: Double?) -> String { x.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        return "{\"loglik\":\(number(loglik)),\"tokens\":\(tokens),\"mean_loglik\":\(number(meanLoglik))}"
    }
}

/// A line of a score input file that cannot be scored, or a file that cannot be read: names the
/// file, the line and the problem.
public typealias ScoreInputError = JSONLinesError

/// The JSONL input of `palimpsest score`: each non-blank line is one of
///
///     {"text": "..."}                         every token after the first is scored
///     {"prompt": "...", "response": "..."}    only the response's tokens, conditioned on the prompt
///                                             ("completion" is accepted for "response")
///     {"input_ids": [...], "labels": [...]}   ids given directly; labels -100 are not scored
///                                             (labels default to input_ids)
///
/// Texts are encoded exactly as the checkpoint's tokenizer.json defines (its post-processor's
/// special tokens included). A prompt and response are encoded together, `prompt + response`,
/// and the tokens after the longest common prefix with the prompt's own encoding are scored, so a
/// token that straddles the seam belongs to the response.
public enum ScoreFile {
    /// Reads and parses a score input file (at most 1 GiB). A line longer than `context` tokens
    /// (the model's max_position_embeddings) is an error: the model has no positions for it.
    public static func read(path: String, tokenizer: Tokenizer?, vocabSize: Int, context: Int = .max) throws(ScoreInputError) -> [ScoreRequest] {
        try requests(readJSONLines(atPath: path), file: path, tokenizer: tokenizer, vocabSize: vocabSize, context: context)
    }

    /// Parses the lines of a score input file; blank lines are skipped. `file` names it in errors.
    public static func parse(_ text: String, file: String, tokenizer: Tokenizer?, vocabSize: Int,
                             context: Int = .max) throws(ScoreInputError) -> [ScoreRequest] {
        try requests(parseJSONLines(text, file: file), file: file, tokenizer: tokenizer, vocabSize: vocabSize, context: context)
    }

    /// Parses one line of a score input file.
    public static func parseLine(_ raw: Substring, line: Int, file: String, tokenizer: Tokenizer?,
                                 vocabSize: Int, context: Int = .max) throws(ScoreInputError) -> ScoreRequest {
        guard let object = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
            throw ScoreInputError(file: file, line: line, "not a JSON object")
        }
        return try request(object, line: line, file: file, tokenizer: tokenizer, vocabSize: vocabSize, context: context)
    }

    static func requests(_ lines: [(line: Int, object: [String: Any])], file: String, tokenizer: Tokenizer?, vocabSize: Int,
                         context: Int) throws(ScoreInputError) -> [ScoreRequest] {
        var requests: [ScoreRequest] = []
        for (line, object) in lines {
            requests.append(try request(object, line: line, file: file, tokenizer: tokenizer, vocabSize: vocabSize, context: context))
        }
        return requests
    }

    /// The request one line's JSON object describes.
    static func request(_ object: [String: Any], line: Int, file: String, tokenizer: Tokenizer?,
                        vocabSize: Int, context: Int) throws(ScoreInputError) -> ScoreRequest {
        func fail(_ problem: String) -> ScoreInputError { ScoreInputError(file: file, line: line, problem) }
        func string(_ key: String) throws(ScoreInputError) -> String {
            guard let s = object[key] as? String else { throw fail("\"\(key)\" must be a string") }
            return s
        }
        func needTokenizer() throws(ScoreInputError) -> Tokenizer {
            guard let tokenizer else {
                throw fail("text input needs tokenizer.json in the model directory (or give \"input_ids\")")
            }
            return tokenizer
        }
        func integers(_ key: String) throws(ScoreInputError) -> [Int] {
            guard let list = object[key] as? [Int] else { throw fail("\"\(key)\" must be a list of integers") }
            return list
        }
        let ids: [Int], labels: [Int]
        if object["input_ids"] != nil {
            ids = try integers("input_ids")
            guard !ids.isEmpty else { throw fail("\"input_ids\" is empty") }
            if object["labels"] != nil {
                labels = try integers("labels")
                guard labels.count == ids.count else {
                    throw fail("\"labels\" has \(labels.count) entries but \"input_ids\" has \(ids.count); they must match")
                }
            } else {
                labels = ids
            }
        } else if object["text"] != nil {
            ids = try needTokenizer().encode(try string("text"), addSpecialTokens: true)
            labels = ids
        } else if object["prompt"] != nil, object["response"] != nil || object["completion"] != nil {
            let prompt = try string("prompt")
            let response = try string(object["response"] != nil ? "response" : "completion")
            let tokenizer = try needTokenizer()
            let promptIds = tokenizer.encode(prompt, addSpecialTokens: true)
            ids = tokenizer.encode(prompt + response, addSpecialTokens: true)
            var common = 0
            while common < promptIds.count, common < ids.count, promptIds[common] == ids[common] { common += 1 }
            labels = ids.enumerated().map { $0.offset < common ? -100 : $0.element }
        } else {
            throw fail("expected \"text\", \"prompt\" + \"response\", or \"input_ids\"; found keys \(object.keys.sorted())")
        }
        guard !ids.isEmpty else { throw fail("the text encodes to no tokens (a tokenizer without a start token), so nothing can be scored") }
        guard ids.count <= context else {
            throw fail("\(ids.count) tokens, more than the model's context (max_position_embeddings \(context))")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocabSize }) {
            throw fail("token id \(bad) outside the model's vocabulary 0..<\(vocabSize)")
        }
        if let bad = labels.first(where: { $0 != -100 && ($0 < 0 || $0 >= vocabSize) }) {
            throw fail("label \(bad) outside the model's vocabulary 0..<\(vocabSize)")
        }
        return ScoreRequest(line: line, ids: ids, labels: labels)
    }

    /// Scores requests in batches of `batchSize` consecutive lines (right-padded; padding is never
    /// seen by a real token under causal attention), without recording gradients.
    public static func score(_ model: CausalLM, _ requests: [ScoreRequest], batchSize: Int = 8) -> [ScoreResult] {
        precondition(batchSize > 0, "batchSize must be positive")
        var results: [ScoreResult] = []
        results.reserveCapacity(requests.count)
        for start in stride(from: 0, to: requests.count, by: batchSize) {
            let chunk = requests[start..<min(requests.count, start + batchSize)]
            let length = chunk.map(\.ids.count).max()!
            var ids = [Int32](repeating: 0, count: chunk.count * length)
            var labels = [Int32](repeating: -100, count: chunk.count * length)
            for (b, request) in chunk.enumerated() {
                for t in request.ids.indices {
                    ids[b * length + t] = Int32(request.ids[t])
                    labels[b * length + t] = Int32(request.labels[t])
                }
            }
            let lp = Autograd.withNoGrad {
                model.tokenLogProbs(ids, labels: labels, batch: chunk.count, length: length).toArray()
            }
            for (b, request) in chunk.enumerated() {
                // Unscored positions hold 0.
                let row = lp[(b * length)..<((b + 1) * length)]
                results.append(ScoreResult(loglik: row.reduce(0.0) { $0 + Double($1) }, tokens: request.scoredCount))
            }
        }
        return results
    }
}
