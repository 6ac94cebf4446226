import ArgumentParser
import Engine
import Evaluation
import FileSupport
import Foundation
import Models

/// What `generate` needs from a tokenizer.
protocol TextTokenizer: TokenTextDecoder {
    /// Ids of `text`, with the tokenizer's special tokens (e.g. BOS) when `addSpecialTokens`.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    var eosTokenIDs: [Int] { get }
}

/// Loads the tokenizer stored with a checkpoint, or nil when the directory has none.
func loadCheckpointTokenizer(_ directory: URL) throws -> TextTokenizer? {
    try loadTokenizerJSON(directory).map { HFTextTokenizer(tokenizer: $0) }
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
        Each non-blank line of the JSONL input is one of
          {"text": "..."}                          every token after the first is scored
          {"prompt": "...", "response": "..."}     only the response's tokens are scored, conditioned
                                                   on the prompt ("completion" works for "response")
          {"input_ids": [...], "labels": [...]}     ids given directly; labels -100 are not scored
                                                   (labels default to input_ids)
        Texts are tokenized exactly as the checkpoint's tokenizer.json defines, special tokens
        from its post-processor included. A prompt and response are encoded together; the tokens
        after the longest common prefix with the prompt's own encoding are the response's. A line
        longer than the model's max_position_embeddings is an error naming it.

        With --json, prints one line per input:
          {"loglik": summed log-probability (natural log) of the scored tokens,
           "tokens": how many were scored, "mean_loglik": loglik / tokens, or null for none}
        Without it, a table with the input line numbers and a total.
        """)

    @Option(help: "HF checkpoint directory (config.json, model.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "JSONL file of texts to score.")
    var input: String

    @Option(help: "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to apply to --model.")
    var adapter: String?

    @Option(help: "Sequences per forward pass.")
    var batchSize = 8

    @Flag(help: "Print one JSON object per input line.")
    var json = false

    func run() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be > 0, got \(batchSize)") }
        let lm = try loadModel(model, adapter: adapter)
        let tokenizer = try loadTokenizerJSON(URL(fileURLWithPath: model))
        let requests: [ScoreRequest]
        do {
            requests = try ScoreFile.read(path: input, tokenizer: tokenizer, vocabSize: lm.config.vocabSize,
                                           context: lm.config.maxPositionEmbeddings)
        } catch { throw ModelCommandError(error.description) }
        var totalLP = 0.0, totalN = 0
        if !json { print(" line   tokens      sum logp   mean logp") }
        for start in stride(from: 0, to: requests.count, by: batchSize) {
            let chunk = Array(requests[start..<min(requests.count, start + batchSize)])
            for (request, result) in zip(chunk, ScoreFile.score(lm, chunk, batchSize: batchSize)) {
                totalLP += result.loglik
                totalN += result.tokens
                if json {
                    print(result.jsonLine)
                } else {
                    let mean = result.meanLoglik.map { String(format: "%11.4f", $0) } ?? String(repeating: " ", count: 10) + "-"
                    print(String(format: "%5d %8d %13.4f ", request.line, result.tokens, result.loglik) + mean)
                }
            }
        }
        if !json {
            print(String(format: "total %8d %13.4f %11.4f", totalN, totalLP, totalN > 0 ? totalLP / Double(totalN) : .nan))
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a model (greedy unless --temperature > 0).",
        discussion: """
        --input FILE.jsonl continues many prompts, in batches of --batch-size (left-padded, each row
        at its own positions): each non-blank line is {"prompt": "..."} or {"prompt_ids": [...]},
        and one JSON object is printed per line, in order. When sampling, the prompt on line i
        (counting prompts from 0) draws from its own stream, seeded --seed + i, so its continuation
        does not depend on the batch size; a single --prompt uses the stream of --seed.
        """)

    @Option(help: "HF checkpoint directory (config.json, model.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to apply to --model.")
    var adapter: String?

    @Option(help: "Prompt text (needs the checkpoint's tokenizer.json).")
    var prompt: String?

    @Option(help: "Prompt as comma-separated token ids instead of text.")
    var promptIds: String?

    @Option(help: "JSONL of prompts ({\"prompt\": ...} or {\"prompt_ids\": [...]}), one JSON result per line.")
    var input: String?

    @Option(help: "Prompts per batch with --input.")
    var batchSize = 8

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

    func validate() throws {
        guard [prompt != nil, promptIds != nil, input != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --prompt, --prompt-ids and --input")
        }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be > 0, got \(batchSize)") }
    }

    func run() throws {
        let lm = try loadModel(model, adapter: adapter)
        let tokenizer = try loadCheckpointTokenizer(URL(fileURLWithPath: model))
        var eos = Set(lm.config.eosTokenIds)  // HF: the config's EOS, plus the tokenizer's
        if let tokenizer { eos.formUnion(tokenizer.eosTokenIDs) }
        var options = GenerationOptions(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK, topP: topP,
                                        seed: seed, eosTokenIds: eos, stopStrings: stopStrings)
        if let input {
            let prompts = try Self.readPrompts(input, tokenizer: tokenizer)
            for start in stride(from: 0, to: prompts.count, by: batchSize) {
                let batch = Array(prompts[start..<min(prompts.count, start + batchSize)])
                options.rowSeeds = batch.indices.map { seed &+ UInt64(start + $0) }
                let results: [GenerationResult]
                do { results = try lm.generate(prompts: batch, options: options, decoder: tokenizer) } catch let e as GenerationError {
                    throw ModelCommandError("\(input): prompts \(start + 1)-\(start + batch.count): \(e.message)")
                }
                for (ids, result) in zip(batch, results) { print(try Self.jsonLine(ids, result, tokenizer)) }
            }
            return
        }
        let ids: [Int]
        if let prompt {
            guard let tokenizer else { throw ValidationError("--prompt needs tokenizer.json in \(model); use --prompt-ids") }
            ids = tokenizer.encode(prompt, addSpecialTokens: true)
        } else {
            ids = try parseIds(promptIds!, option: "--prompt-ids")
        }
        let result: GenerationResult
        do {
            result = try lm.generate(prompts: [ids], options: options, decoder: tokenizer)[0]
        } catch let e as GenerationError { throw ModelCommandError(e.message) }
        if json {
            print(try Self.jsonLine(ids, result, tokenizer))
        } else if let tokenizer {
            print(tokenizer.decode(result.tokens))
        } else {
            print(result.tokens.map(String.init).joined(separator: " "))
        }
    }

    /// The prompts of an --input file, as token ids.
    static func readPrompts(_ path: String, tokenizer: TextTokenizer?) throws -> [[Int]] {
        let lines: [(line: Int, object: [String: Any])]
        do { lines = try readJSONLines(atPath: path) } catch { throw ModelCommandError(error.description) }
        var prompts: [[Int]] = []
        for (line, object) in lines {
            func fail(_ problem: String) -> ModelCommandError { ModelCommandError("\(path):\(line): \(problem)") }
            if let ids = object["prompt_ids"] {
                guard let list = ids as? [Int], !list.isEmpty else { throw fail("\"prompt_ids\" must be a non-empty list of integers") }
                prompts.append(list)
            } else if let p = object["prompt"] {
                guard let s = p as? String else { throw fail("\"prompt\" must be a string") }
                guard let tokenizer else { throw fail("\"prompt\" needs tokenizer.json in the model directory (or give \"prompt_ids\")") }
                prompts.append(tokenizer.encode(s, addSpecialTokens: true))
            } else {
                throw fail("expected \"prompt\" or \"prompt_ids\"; found keys \(object.keys.sorted())")
            }
        }
        guard !prompts.isEmpty else { throw ModelCommandError("\(path): no prompts") }
        return prompts
    }

    /// {"prompt_ids", "tokens", "stop_reason", ..., "text"} on one line.
    static func jsonLine(_ ids: [Int], _ result: GenerationResult, _ tokenizer: TextTokenizer?) throws -> String {
        var o: [String: Any] = ["prompt_ids": ids, "tokens": result.tokens]
        switch result.stopReason {
        case .eos(let t): o["stop_reason"] = "eos"; o["eos_token"] = t
        case .stopString(let s): o["stop_reason"] = "stop_string"; o["stop_string"] = s
        case .maxNewTokens: o["stop_reason"] = "max_new_tokens"
        }
        if let tokenizer { o["text"] = tokenizer.decode(result.tokens) }
        let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
