import Datasets
import Evaluation
import Experiments
import Foundation
import Models
import Tokenizers

/// One parser under test. `run` feeds it one input and must return normally whatever the bytes
/// are: a thrown error is the expected answer to bad input, while a trap, a hang or an
/// allocation past libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb` is a finding.
enum FuzzTarget: String, CaseIterable {
    /// A safetensors file: header validation, then every loadable tensor converted to Float32.
    case safetensors
    /// An HF config.json: decoding, validation, the parameter list and RoPE frequencies.
    case config
    /// An HF tokenizer.json: loading, then encoding and decoding a fixed text.
    case tokenizer
    /// tokenizer_config.json, with the chat template it names.
    case tokenizerConfig = "tokenizer-config"
    /// Text through a fixed byte-level tokenizer (Fuzz/data/encode.tokenizer.json).
    case encode
    /// An experiment spec (YAML).
    case spec
    /// A `train --stages` file (YAML), parsed and resolved against default options.
    case stages
    /// A dataset file (JSONL or a JSON array) in every reader mode.
    case dataset
    /// A PEFT adapter_config.json, loaded with fixed adapter weights (rank 2 on q_proj and v_proj)
    /// into a one-layer model.
    case adapterConfig = "adapter-config"
    /// A `palimpsest score` input file, texts encoded with the `encode` target's tokenizer.
    case scoreInput = "score-input"

    /// Files the targets that read from disk write their input to (one process, one file each).
    static let scratch: URL = {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return URL(fileURLWithPath: dir).appendingPathComponent("palimpsest-fuzz-\(getpid())")
    }()

    static func scratchFile(_ name: String, _ data: Data) -> URL {
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let url = scratch.appendingPathComponent(name)
        // A failed write would make every input look the same; better to stop loudly.
        do { try data.write(to: url) } catch { fatalError("fuzz: cannot write \(url.path): \(error)") }
        return url
    }

    func run(_ data: Data) {
        switch self {
        case .safetensors:
            let url = Self.scratchFile("input.safetensors", data)
            guard let file = try? SafetensorsFile(url: url) else { return }
            for e in file.entries where e.dtype.isLoadable {
                _ = try? file.floats(e)
            }
        case .config:
            guard let c = try? ModelConfig.decode(data) else { return }
            _ = c.parameterCount
            // What CausalLM does next only after its memory check; 64 MiB stands in for the budget.
            guard let bytes = c.parameterBytes, bytes <= 64 << 20 else { return }
            _ = c.parameterSpecs.count
            _ = c.ropeInverseFrequencies
            _ = try? ModelConfig.decode(c.encoded())
        case .tokenizer:
            guard let t = try? Tokenizer(data: data) else { return }
            let ids = t.encode("Hello world! 123 héllo\n  <|endoftext|> ü")
            _ = t.decode(ids)
            _ = t.decode(Array(0..<min(t.vocabularySize, 64)) + [-1, t.vocabularySize, Int.max], skipSpecialTokens: true)
            _ = t.encode(bytes: [0xFF, 0x20, 0xC3, 0xA9, 0x41])
        case .tokenizerConfig:
            guard let c = try? TokenizerConfig(data: data) else { return }
            if let source = c.chatTemplate { _ = ChatTemplate(recognizing: source) }
        case .encode:
            guard let t = Self.encodeTokenizer else { return }
            let ids = t.encode(bytes: data)
            _ = t.decode(ids)
            if let text = String(data: data, encoding: .utf8) {
                let again = t.encode(text, addSpecialTokens: false)
                _ = t.decode(again, skipSpecialTokens: true)
            }
        case .spec:
            guard let yaml = String(data: data, encoding: .utf8) else { return }
            _ = try? ExperimentSpec.parse(yaml: yaml, file: "<fuzz>", baseDirectory: URL(fileURLWithPath: "/nonexistent"))
        case .stages:
            guard let yaml = String(data: data, encoding: .utf8),
                  let stages = try? StageSequence.parse(yaml, file: "<fuzz>", baseDirectory: URL(fileURLWithPath: "/nonexistent"))
            else { return }
            _ = try? stages.resolved(defaults: StageDefaults())
            _ = try? stages.resolved(defaults: StageDefaults(objective: .dpo, beta: 0.1, replay: "r.jsonl", replayPerBatch: 2))
        case .dataset:
            let url = Self.scratchFile("input.jsonl", data)
            // Small chunks and a small record limit reach the buffer-boundary code with short inputs.
            for options in [LoadOptions(), LoadOptions(skipBadRecords: true, maxRecordBytes: 256, chunkSize: 7),
                            LoadOptions(format: .dpo, skipBadRecords: true, chunkSize: 3)] {
                _ = try? loadRecords(from: url, options: options)
            }
            _ = try? loadDocuments(from: url)
        case .scoreInput:
            guard let text = String(data: data, encoding: .utf8) else { return }
            _ = try? ScoreFile.parse(text, file: "<fuzz>", tokenizer: Self.encodeTokenizer, vocabSize: 300)
        case .adapterConfig:
            let (directory, model) = Self.adapterFixture
            _ = Self.scratchFile("adapter/" + LoRA.configFileName, data)
            // A config that loads leaves the adapter attached; the next input needs the bare model.
            if let lora = try? LoRA.load(from: directory, into: model) { lora.detach() }
        }
    }

    /// The directory (adapter weights saved once; each input replaces its config) and the model the
    /// `adapter-config` target loads into.
    static let adapterFixture: (URL, CausalLM) = {
        do {
            let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                     numAttentionHeads: 2, numKeyValueHeads: 1)
            let model = try CausalLM(config: config, seed: 0)
            let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2, targets: ["q_proj", "v_proj"]))
            let directory = scratch.appendingPathComponent("adapter")
            try lora.save(to: directory)
            lora.detach()
            return (directory, model)
        } catch { fatalError("fuzz: cannot build the adapter fixture: \(error)") }
    }()

    /// The tokenizer the `encode` target drives, from `PALIMPSEST_FUZZ_TOKENIZER` or
    /// Fuzz/data/encode.tokenizer.json under the working directory.
    static let encodeTokenizer: Tokenizer? = {
        let path = ProcessInfo.processInfo.environment["PALIMPSEST_FUZZ_TOKENIZER"] ?? "Fuzz/data/encode.tokenizer.json"
        do { return try Tokenizer(contentsOf: URL(fileURLWithPath: path)) } catch {
            FileHandle.standardError.write(Data("fuzz: encode target needs a tokenizer: \(error)\n".utf8))
            exit(2)
        }
    }()
}
