import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Models

/// Inputs that claim sizes the machine cannot hold, and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct HostileInputTests {
    func decode(_ text: String) throws -> ModelConfig { try ModelConfig.decode(Data(text.utf8), file: "hostile/config.json") }

    /// A tiny config with `layers` layers (2 parameters wide), fine by every per-field rule.
    func manyLayers(_ layers: Int) -> String {
        #"{"model_type": "llama", "vocab_size": 4, "hidden_size": 2, "intermediate_size": 2, "num_hidden_layers": \#(layers), "num_attention_heads": 1}"#
    }

    @Test func closedFormCountsAgreeWithTheParameterList() throws {
        for preset in ModelPreset.allCases {
            let c = preset.config
            #expect(c.checkedParameterCount == c.parameterSpecs.reduce(0) { $0 + $1.elementCount })
            #expect(c.parameterTensorCount == c.parameterSpecs.count)
        }
        for name in Fixtures.modelNames {
            let c = try ModelConfig.load(from: Fixtures.url(name).appendingPathComponent("config.json"))
            #expect(c.checkedParameterCount == c.parameterSpecs.reduce(0) { $0 + $1.elementCount }, "\(name)")
            #expect(c.parameterTensorCount == c.parameterSpecs.count, "\(name)")
            #expect(c.parameterBytes == 4 * c.parameterSpecs.reduce(0) { $0 + $1.elementCount })
        }
    }

    @Test func sizesThatOverflowAreRefusedByName() throws {
        let e = expectModelIOError(.badConfig) {
            _ = try decode(#"{"model_type": "llama", "vocab_size": 4611686018427387904, "hidden_size": 4611686018427387904, "intermediate_size": 2, "num_hidden_layers": 1, "num_attention_heads": 1}"#)
        }
        #expect(e?.message.contains("num_hidden_layers") == true && e?.message.contains("overflow") == true)
        expectModelIOError(.badConfig) { _ = try decode(manyLayers(Int.max)) }
    }

    /// 10^15 layers pass every field check but must never be listed one by one.
    @Test func absurdLayerCountsAreRefusedBeforeListingParameters() throws {
        let config = try decode(manyLayers(1_000_000_000_000_000))
        let e = expectModelIOError(.tooLarge) { _ = try CausalLM(config: config, seed: 0) }
        #expect(e?.message.contains("needs") == true && e?.message.contains("available") == true
                && e?.message.contains(MemoryBudget.environmentVariable) == true)

        // A checkpoint directory with that config and a one-tensor file: refused by count.
        let dir = try makeTempDirectory("layers")
        defer { cleanup(dir) }
        try Data(manyLayers(1_000_000_000_000_000).utf8).write(to: dir.appendingPathComponent("config.json"))
        try SafetensorsWriter.write([NamedTensor(name: "model.norm.weight", shape: [2], values: [1, 1])],
                                    to: dir.appendingPathComponent("model.safetensors"))
        let m = expectModelIOError(.missingTensor) { _ = try Checkpoint(directory: dir) }
        #expect(m?.message.contains("hold only 1") == true)
    }

    /// A model too large for the memory is refused with the size it needs, before any allocation.
    @Test func modelLargerThanMemoryIsRefused() throws {
        let config = try decode(#"{"model_type": "llama", "vocab_size": 1073741824, "hidden_size": 1048576, "intermediate_size": 2, "num_hidden_layers": 1, "num_attention_heads": 1}"#)
        let e = expectModelIOError(.tooLarge) { _ = try CausalLM(config: config, seed: 0) }
        #expect(e?.message.contains("PiB") == true, "\(String(describing: e))")
    }

    @Test func headersClaimingHugeSizesAreRefusedWithoutAllocating() throws {
        let dir = try makeTempDirectory("huge")
        defer { cleanup(dir) }
        func open(_ data: Data) -> ModelIOError? {
            let url = dir.appendingPathComponent("h.safetensors")
            try? data.write(to: url)
            do { _ = try SafetensorsFile(url: url); return nil } catch { return error as? ModelIOError }
        }
        // Length prefix of 2^64 − 1.
        #expect(open(rawSafetensors(header: "{}", dataBytes: 0, lengthOverride: UInt64.max))?.message.contains("exceeds the limit") == true)
        // Element count that overflows Int, with offsets that look small.
        let overflow = open(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#, dataBytes: 16))
        #expect(overflow?.kind == .badTensor && overflow?.message.contains("too many elements") == true)
        // Bytes (count × 4) that overflow while the count does not.
        let bytes = open(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}"#, dataBytes: 16))
        #expect(bytes?.kind == .badTensor)
        // Offsets far past the file.
        let past = open(rawSafetensors(header: #"{"a":{"dtype":"U8","shape":[4611686018427387904],"data_offsets":[0,4611686018427387904]}}"#, dataBytes: 16))
        #expect(past?.message.contains("past the end") == true)
        // A number too large for Int in a shape.
        #expect(open(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, dataBytes: 4))?.kind == .badTensor)
    }

    /// Generation refuses to run past max_position_embeddings, which also bounds the KV cache
    /// a huge maxNewTokens would allocate.
    @Test func generationPastTheContextIsRefused() throws {
        let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1,
                                 numAttentionHeads: 2, maxPositionEmbeddings: 8)
        let model = try CausalLM(config: config, seed: 1)
        #expect(try model.generate(prompts: [[1, 2, 3]], options: GenerationOptions(maxNewTokens: 5))[0].tokens.count == 5)
        for (prompt, new) in [([1, 2, 3], 6), (Array(repeating: 1, count: 9), 0), ([1], Int.max)] {
            do {
                _ = try model.generate(prompts: [prompt], options: GenerationOptions(maxNewTokens: new))
                Issue.record("expected a GenerationError for \(prompt.count) + \(new) tokens")
            } catch let e as GenerationError {
                #expect(e.message.contains("max_position_embeddings 8"), "\(e.message)")
            }
        }
    }

    /// /dev/zero never ends: the readers of small JSON files refuse what is not a regular file.
    @Test func endlessFilesAreRefusedUnread() throws {
        let e = expectModelIOError(.unreadable) { _ = try ModelConfig.load(from: URL(fileURLWithPath: "/dev/zero")) }
        #expect(e?.message.contains("not a regular file") == true)
        expectModelIOError(.unreadable) { _ = try SafetensorsFile(path: "/dev/zero") }
    }

    /// Found while adding the `adapter-config` fuzz target: adapter_config.json was read whole with
    /// no size or file-type check, so a link to /dev/zero never returned.
    @Test func endlessAdapterConfigIsRefusedUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-adapter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(LoRA.configFileName).path,
                                                   withDestinationPath: "/dev/zero")
        let model = try CausalLM(config: ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                                     numAttentionHeads: 2, numKeyValueHeads: 1), seed: 0)
        let e = expectModelIOError(.unreadable) { try LoRA.load(from: dir, into: model) }
        #expect(e?.message.contains("not a regular file") == true)
        #expect(model.lora == nil)
    }

    /// config.json and adapter_config.json share one bounded read: a FIFO that no one writes and
    /// a file one byte over 16 MiB are refused quickly, unread, naming the file; a link to a real
    /// config is followed.
    @Test func configFifosAndHugeConfigsAreRefusedUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-configs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try CausalLM(config: ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                                     numAttentionHeads: 2, numKeyValueHeads: 1), seed: 0)
        let loaders: [(String, (URL) throws -> Void)] = [
            ("config.json", { _ = try ModelConfig.load(from: $0.appendingPathComponent("config.json")) }),
            (LoRA.configFileName, { try LoRA.load(from: $0, into: model) }),
        ]
        for (name, load) in loaders {
            let file = dir.appendingPathComponent(name)
            #expect(mkfifo(file.path, 0o600) == 0)
            var start = Date()
            let fifo = expectModelIOError(.unreadable) { try load(dir) }
            #expect(fifo?.file == file.path && fifo?.message.contains("not a regular file (found a FIFO)") == true, "\(String(describing: fifo))")
            #expect(Date().timeIntervalSince(start) < 5)
            try FileManager.default.removeItem(at: file)

            #expect(FileManager.default.createFile(atPath: file.path, contents: nil))
            let handle = try FileHandle(forWritingTo: file)
            try handle.truncate(atOffset: UInt64(16 << 20) + 1)   // sparse: nothing is written
            try handle.close()
            start = Date()
            let huge = expectModelIOError(.tooLarge) { try load(dir) }
            #expect(huge?.file == file.path && huge?.message.contains("is 16777217 bytes; at most 16777216 are read") == true,
                    "\(String(describing: huge))")
            #expect(Date().timeIntervalSince(start) < 5)
            try FileManager.default.removeItem(at: file)
        }
        #expect(model.lora == nil)
        // A link to a real config.json is read through.
        let link = dir.appendingPathComponent("config.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: Fixtures.url("\(Fixtures.modelNames[0])/config.json"))
        #expect(try ModelConfig.load(from: link).vocabSize > 0)
        // The shard index is read the same way.
        let index = dir.appendingPathComponent(Checkpoint.indexFileName)
        #expect(mkfifo(index.path, 0o600) == 0)
        let e = expectModelIOError(.unreadable) { _ = try Checkpoint(directory: dir) }
        #expect(e?.file == index.path && e?.message.contains("the shard index is not a regular file (found a FIFO)") == true,
                "\(String(describing: e))")
    }

    /// A LoRA rank near Int.max (`--lora-rank`, a spec's `lora.rank`) overflowed the default alpha
    /// (2 × rank) and A's element count (rank × in) when attaching.
    @Test func hugeLoRARanksAreRefusedByName() throws {
        let config = LoRAConfig(rank: .max)
        #expect(throws: LoRAError("lora.rank", "must be at most 65536, got 9223372036854775807")) { try config.validate() }
        let model = try CausalLM(config: ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1,
                                                     numAttentionHeads: 2, numKeyValueHeads: 1), seed: 0)
        #expect(throws: LoRAError.self) { try LoRA.attach(to: model, config: config) }
        #expect(model.lora == nil)
        #expect(LoRAConfig(rank: 4).alpha == 8)
        #expect(throws: Never.self) { try LoRAConfig(rank: 65_536).validate() }
    }
}
