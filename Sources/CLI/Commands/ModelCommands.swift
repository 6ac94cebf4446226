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
