import ArgumentParser
import Engine
import FileSupport
import Foundation
import Models

/// What `score` and `generate` need from a tokenizer.
protocol TextTokenizer: TokenTextDecoder {
    /// Ids of `text`, with the tokenizer's special tokens (e.g. BOS) when `addSpecialTokens`.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    var eosTokenIDs: [Int] { get }
}

/// Loads the tokenizer stored with a checkpoint, or nil when the directory has none.
/// `TokenizerBridge.swift` supplies the implementation.
func loadCheckpointTokenizer(_ directory: URL) throws -> TextTokenizer? {
    let file = directory.appendingPathComponent("tokenizer.json")
    guard FileManager.default.fileExists(atPath: file.path) else { return nil }
    return try makeTextTokenizer(directory: directory)
}

/// A failure reading a command's input files (printed without the usage text).
struct ModelCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Loads a model directory, turning errors into messages naming the file.
func loadModel(_ path: String) throws -> CausalLM {
    do { return try CausalLM(directory: URL(fileURLWithPath: path)) } catch let e as ModelIOError {
        throw ModelCommandError(e.description)
    }
}

/// Loads a model directory and, with `adapter`, attaches the PEFT LoRA adapter saved there.
func loadModel(_ path: String, adapter: String?) throws -> CausalLM {
    let lm = try loadModel(path)
    guard let adapter else { return lm }
    do { try LoRA.load(from: URL(fileURLWithPath: adapter), into: lm) } catch let e as ModelIOError {
        throw ModelCommandError(e.description)
    }
    return lm
}

func parseIds(_ text: String, option: String) throws -> [Int] {
    let parts = text.split(whereSeparator: { $0 == "," || $0 == " " })
    let ids = parts.compactMap { Int($0) }
    guard ids.count == parts.count, !ids.isEmpty else {
        throw ValidationError("\(option): expected comma-separated token ids, found \"\(text)\"")
    }
    return ids
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log-likelihood of texts under a model.",
        discussion: """
        Each line of the JSONL input is one of
          {"text": "..."}                              every token after the first is scored
          {"prompt": "...", "completion": "..."}       only the completion's tokens are scored
          {"input_ids": [...], "labels": [...]}         ids given directly; labels -100 are not scored
                                                       (labels default to input_ids)
        Texts need the checkpoint's tokenizer.json. Prints, per line, the summed and mean
        log-probability (natural log) of the scored tokens and their count.
        """)

    @Option(help: "HF checkpoint directory (config.json, model.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "JSONL file of texts to score.")
    var input: String

    @Option(help: "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to apply to --model.")
    var adapter: String?

    @Option(help: "Sequences per forward pass.")
    var batchSize = 8

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func run() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be > 0, got \(batchSize)") }
        let lm = try loadModel(model, adapter: adapter)
        let tokenizer = try loadCheckpointTokenizer(URL(fileURLWithPath: model))
        let lines: [Substring]
        do {
            // Bounded: a FIFO or a link to /dev/zero would never end.
            guard let text = String(data: try readBoundedFile(atPath: input, limit: 1 << 30), encoding: .utf8) else {
                throw ModelCommandError("\(input): not UTF-8 text")
            }
            lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        } catch let e as ModelCommandError { throw e } catch { throw ModelCommandError("\(input): cannot read (\(error))") }
        var items: [(line: Int, ids: [Int], labels: [Int])] = []
        for (i, raw) in lines.enumerated() where !raw.trimmingCharacters(in: .whitespaces).isEmpty {
            items.append(try Self.parse(raw, line: i + 1, file: input, tokenizer: tokenizer, vocab: lm.config.vocabSize))
        }
        var totalLP = 0.0, totalN = 0
        if !json { print(" line   tokens      sum logp   mean logp") }
        for start in stride(from: 0, to: items.count, by: batchSize) {
            let chunk = Array(items[start..<min(items.count, start + batchSize)])
            let scores = Self.score(lm, chunk.map { ($0.ids, $0.labels) })
            for (item, s) in zip(chunk, scores) {
                totalLP += s.sum
                totalN += s.count
                let mean = s.count > 0 ? s.sum / Double(s.count) : .nan
                if json {
                    print("{\"line\":\(item.line),\"tokens\":\(s.count),\"sum_logprob\":\(Self.num(s.sum)),\"mean_logprob\":\(Self.num(mean))}")
                } else {
                    print(String(format: "%5d %8d %13.4f %11.4f", item.line, s.count, s.sum, mean))
                }
            }
        }
        if !json {
            print(String(format: "total %8d %13.4f %11.4f", totalN, totalLP, totalN > 0 ? totalLP / Double(totalN) : .nan))
        }
    }

    static func num(_ x: Double) -> String { x.isFinite ? String(format: "%.6f", x) : "null" }

    /// Summed log-probability and count of the scored tokens of each (ids, labels) pair.
    static func score(_ lm: CausalLM, _ batch: [([Int], [Int])]) -> [(sum: Double, count: Int)] {
        let length = batch.map(\.0.count).max()!
        var ids = [Int32](repeating: 0, count: batch.count * length)
        var labels = [Int32](repeating: -100, count: batch.count * length)
        for (b, (i, l)) in batch.enumerated() {
            for t in i.indices {
                ids[b * length + t] = Int32(i[t])
                labels[b * length + t] = Int32(l[t])
            }
        }
        let lp = Autograd.withNoGrad { lm.tokenLogProbs(ids, labels: labels, batch: batch.count, length: length).toArray() }
        return batch.indices.map { b in
            let row = lp[(b * length)..<((b + 1) * length)]
            let count = batch[b].1.dropFirst().filter { $0 != -100 }.count
            return (row.reduce(0.0) { $0 + Double($1) }, count)
        }
    }

    static func parse(_ raw: Substring, line: Int, file: String, tokenizer: TextTokenizer?, vocab: Int) throws -> (line: Int, ids: [Int], labels: [Int]) {
        func fail(_ message: String) -> ModelCommandError { ModelCommandError("\(file):\(line): \(message)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        func needTokenizer() throws -> TextTokenizer {
            guard let tokenizer else { throw fail("text input needs tokenizer.json in the model directory (or give \"input_ids\")") }
            return tokenizer
        }
        var ids: [Int], labels: [Int]
        if let given = object["input_ids"] {
            guard let list = given as? [Int], !list.isEmpty else { throw fail("\"input_ids\" must be a non-empty list of integers") }
            ids = list
            if let l = object["labels"] {
                guard let ll = l as? [Int], ll.count == list.count else { throw fail("\"labels\" must be a list of \(list.count) integers") }
                labels = ll
            } else { labels = list }
        } else if let text = object["text"] {
            guard let s = text as? String else { throw fail("\"text\" must be a string") }
            ids = try needTokenizer().encode(s, addSpecialTokens: true)
            labels = ids
        } else if let prompt = object["prompt"], let completion = object["completion"] {
            guard let p = prompt as? String, let c = completion as? String else { throw fail("\"prompt\" and \"completion\" must be strings") }
            let t = try needTokenizer()
            let promptIds = t.encode(p, addSpecialTokens: true)
            let full = t.encode(p + c, addSpecialTokens: true)
            // Score what the completion adds, even if the join merges tokens at the seam.
            var common = 0
            while common < promptIds.count, common < full.count, promptIds[common] == full[common] { common += 1 }
            ids = full
            labels = full.enumerated().map { $0.offset < common ? -100 : $0.element }
        } else {
            throw fail("expected \"text\", \"prompt\" + \"completion\", or \"input_ids\"")
        }
        guard ids.count >= 2 else { throw fail("needs at least 2 tokens to score, found \(ids.count)") }
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) { throw fail("token id \(bad) outside the vocabulary 0..<\(vocab)") }
        if let bad = labels.first(where: { $0 != -100 && ($0 < 0 || $0 >= vocab) }) { throw fail("label \(bad) outside the vocabulary 0..<\(vocab)") }
        return (line, ids, labels)
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a model (greedy unless --temperature > 0).")

    @Option(help: "HF checkpoint directory (config.json, model.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to apply to --model.")
    var adapter: String?

    @Option(help: "Prompt text (needs the checkpoint's tokenizer.json).")
    var prompt: String?

    @Option(help: "Prompt as comma-separated token ids instead of text.")
    var promptIds: String?

    @Option(help: "Tokens to generate at most.")
    var maxNewTokens = 64

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Sample among the k most likely tokens.")
    var topK: Int?

    @Option(help: "Sample from the smallest set of tokens with this much probability.")
    var topP: Float?

    @Option(help: "Seed of the sampling stream.")
    var seed: UInt64 = 0

    @Option(name: .customLong("stop"), help: "Stop when the continuation contains this string (repeatable).")
    var stopStrings: [String] = []

    @Flag(help: "Print a JSON object with the tokens and the text.")
    var json = false

    func run() throws {
        let lm = try loadModel(model, adapter: adapter)
        let tokenizer = try loadCheckpointTokenizer(URL(fileURLWithPath: model))
        let ids: [Int]
        switch (prompt, promptIds) {
        case (let text?, nil):
            guard let tokenizer else { throw ValidationError("--prompt needs tokenizer.json in \(model); use --prompt-ids") }
            ids = tokenizer.encode(text, addSpecialTokens: true)
        case (nil, let list?):
            ids = try parseIds(list, option: "--prompt-ids")
        default:
            throw ValidationError("give exactly one of --prompt and --prompt-ids")
        }
        var eos = Set(lm.config.eosTokenIds)  // HF: the config's EOS, plus the tokenizer's
        if let tokenizer { eos.formUnion(tokenizer.eosTokenIDs) }
        let options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK, topP: topP,
                                        seed: seed, eosTokenIds: eos, stopStrings: stopStrings)
        let result: GenerationResult
        do {
            result = try lm.generate(prompts: [ids], options: options, decoder: tokenizer)[0]
        } catch let e as GenerationError { throw ModelCommandError(e.message) }
        let text = tokenizer?.decode(result.tokens)
        if json {
            var o: [String: Any] = ["prompt_ids": ids, "tokens": result.tokens]
            switch result.stopReason {
            case .eos(let t): o["stop_reason"] = "eos"; o["eos_token"] = t
            case .stopString(let s): o["stop_reason"] = "stop_string"; o["stop_string"] = s
            case .maxNewTokens: o["stop_reason"] = "max_new_tokens"
            }
            if let text { o["text"] = text }
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else if let text {
            print(text)
        } else {
            print(result.tokens.map(String.init).joined(separator: " "))
        }
    }
}
