import Engine
import Foundation
import Testing
@testable import Models

@Suite struct CheckpointTests {
    @Test func opensFixturesSingleAndSharded() throws {
        for name in Fixtures.modelNames {
            let ckpt = try Checkpoint(directory: Fixtures.url(name))
            let params = try ckpt.loadParameters()
            #expect(params.map(\.name) == ckpt.config.parameterSpecs.map(\.name))
            #expect(params.allSatisfy { $0.values.contains { $0 != 0 } })
            #expect(ckpt.files.count == (name == "qwen2_sharded" ? 5 : 1))
            #expect(ckpt.companionFiles.map(\.lastPathComponent) == ["generation_config.json"])
        }
        let tied = try Checkpoint(directory: Fixtures.url("llama3_tied"))
        #expect(!tied.tensorNames.contains("lm_head.weight"))
        #expect(tied.tensorNames.contains("model.layers.1.self_attn.o_proj.bias"))
        #expect(try tied.tensor("model.layers.0.self_attn.q_proj.weight").shape == [48, 32])
    }

    @Test func withoutAnIndexEverySafetensorsFileIsAShard() throws {
        let fm = FileManager.default
        let indexed = try Checkpoint(directory: Fixtures.url("qwen2_sharded")).loadParameters()
        let sharded = try copyFixture("qwen2_sharded")
        defer { cleanup(sharded.deletingLastPathComponent()) }
        try fm.removeItem(at: sharded.appendingPathComponent(Checkpoint.indexFileName))
        var ckpt = try Checkpoint(directory: sharded)
        #expect(ckpt.files.count == 5)
        #expect(try ckpt.loadParameters() == indexed)

        // One file under another name, next to a PEFT adapter's weights (not a shard).
        let single = try copyFixture("llama_linear")
        defer { cleanup(single.deletingLastPathComponent()) }
        let expected = try Checkpoint(directory: single).loadParameters()
        try fm.moveItem(at: single.appendingPathComponent("model.safetensors"), to: single.appendingPathComponent("weights.safetensors"))
        try SafetensorsWriter.write([NamedTensor(name: "x", shape: [1], values: [0])], to: single.appendingPathComponent(LoRA.weightsFileName))
        ckpt = try Checkpoint(directory: single)
        #expect(ckpt.files.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["weights.safetensors"])
        #expect(try ckpt.loadParameters() == expected)

        // A tensor in two files is an error naming both; no safetensors file at all names the directory.
        try fm.copyItem(at: sharded.appendingPathComponent("model-00002-of-00005.safetensors"),
                        to: sharded.appendingPathComponent("extra.safetensors"))
        let twice = expectModelIOError(.unexpectedTensor) { _ = try Checkpoint(directory: sharded) }
        #expect(twice?.message.contains("extra.safetensors") == true && twice?.file.hasSuffix("model-00002-of-00005.safetensors") == true)
        try fm.removeItem(at: single.appendingPathComponent("weights.safetensors"))
        let none = expectModelIOError(.unreadable) { _ = try Checkpoint(directory: single) }
        #expect(none?.message.contains("no model.safetensors, model.safetensors.index.json or other safetensors file") == true)
    }

    @Test func saveRoundTripSingleAndSharded() throws {
        let src = try Checkpoint(directory: Fixtures.url("qwen2_sharded"))
        let params = try src.loadParameters()
        let dir = try makeTempDirectory("save")
        defer { cleanup(dir) }
        try Checkpoint.save(config: src.config, parameters: params.reversed(), to: dir, companionFiles: src.companionFiles)
        var back = try Checkpoint(directory: dir)
        #expect(back.config == src.config && back.files.count == 1)
        #expect(try back.loadParameters() == params)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("generation_config.json").path))

        // Saving again sharded into the same directory replaces the single file.
        try Checkpoint.save(config: src.config, parameters: params, to: dir, maxShardBytes: 16_000)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path))
        back = try Checkpoint(directory: dir)
        #expect(back.files.count > 3)
        #expect(try back.loadParameters() == params)

        try Checkpoint.save(config: src.config, parameters: params, to: dir, dtype: .BF16)
        back = try Checkpoint(directory: dir)
        let bf = try back.loadParameters()
        #expect(zip(bf, params).allSatisfy { a, b in zip(a.values, b.values).allSatisfy { abs($0 - $1) <= abs($1) / 128 } })
        #expect(bf != params)

        var wrong = params
        wrong.removeLast()
        expectModelIOError(.missingTensor) { try Checkpoint.save(config: src.config, parameters: wrong, to: dir) }
        wrong = params
        wrong[0] = NamedTensor(name: wrong[0].name, shape: [wrong[0].values.count], values: wrong[0].values)
        let e = expectModelIOError(.shapeMismatch) { try Checkpoint.save(config: src.config, parameters: wrong, to: dir) }
        #expect(e?.message.contains(params[0].name) == true)
        expectModelIOError(.unexpectedTensor) {
            try Checkpoint.save(config: src.config, parameters: params + [NamedTensor(name: "x", shape: [1], values: [0])], to: dir)
        }
    }

    /// A model whose embedding (1.5M elements) spans more than one 1M-element loading piece.
    static let wideEmbedding = ModelConfig(vocabSize: 3000, hiddenSize: 512, intermediateSize: 64, numHiddenLayers: 1,
                                           numAttentionHeads: 8, numKeyValueHeads: 4, maxPositionEmbeddings: 64)

    /// `loadTensors` converts tensors in pieces on several threads: it must give what converting each
    /// tensor whole gives, for pieces that split tensors (the embedding here has 1.5 pieces) and for
    /// every dtype (Float32 converted too, not borrowed), single and sharded files.
    @Test func piecewiseParallelLoadingEqualsWholeTensors() throws {
        let config = Self.wideEmbedding
        let params = config.initialParameters(seed: 5)
        let dir = try makeTempDirectory("pieces")
        defer { cleanup(dir) }
        for (dtype, shard) in [(SafetensorsDType.F32, nil), (.BF16, nil), (.F16, 2_000_000), (.F32, 2_000_000)] as [(SafetensorsDType, Int?)] {
            try Checkpoint.save(config: config, parameters: params, to: dir, dtype: dtype, maxShardBytes: shard)
            let ckpt = try Checkpoint(directory: dir)
            #expect((ckpt.files.count == 1) == (shard == nil), "\(dtype): \(ckpt.files.count) files")
            let whole = try ckpt.loadParameters()
            #expect(whole.first { $0.name == "model.embed_tokens.weight" }!.values.count > 1 << 20)
            if dtype == .F32 { #expect(whole == params) }
            for threads in [1, 2, 3] {
                let pieces = ckpt.loadTensors(threads: threads, borrow: false)
                #expect(pieces.count == whole.count)
                let same = whole.allSatisfy { p in pieces[p.name].map { $0.shape == p.shape && $0.toArray() == p.values } ?? false }
                #expect(same, "\(dtype), \(threads) threads")
            }
        }
    }

    /// Float32 tensors borrow the file's copy-on-write mapping: the same values as converting, writes
    /// that stay in the process (the file and a fresh load keep the saved values, and converting a
    /// tensor of the same open checkpoint afterwards does not throw the written pages away), and a
    /// file whose data is off a 4-byte boundary is converted instead.
    @Test func float32TensorsBorrowTheMappingCopyOnWrite() throws {
        let config = Self.wideEmbedding
        let params = config.initialParameters(seed: 6)
        let dir = try makeTempDirectory("borrow")
        defer { cleanup(dir) }
        try Checkpoint.save(config: config, parameters: params, to: dir)
        let file = dir.appendingPathComponent(Checkpoint.singleFileName)
        let bytesBefore = try Data(contentsOf: file)
        let ckpt = try Checkpoint(directory: dir)
        let borrowed = ckpt.loadTensors()
        #expect(borrowed.values.allSatisfy { $0.isBorrowed })
        #expect(params.allSatisfy { borrowed[$0.name]?.toArray() == $0.values })
        #expect(!ckpt.loadTensors(borrow: false).values.contains { $0.isBorrowed })

        let name = "model.embed_tokens.weight"
        let embed = borrowed[name]!
        embed.withUnsafeMutableBufferPointer { v in for i in stride(from: 0, to: v.count, by: 1000) { v[i] = 42 } }
        let written = embed.toArray()
        #expect(written[0] == 42 && written[1000] == 42)
        // Converting from the same open checkpoint would drop pages it has read (to keep the
        // resident set small); with a tensor lent it must not, or the writes above would vanish.
        let converted = try ckpt.tensor(name).values
        #expect(converted == written)
        #expect(embed.toArray() == written)
        let bytesAfter = try Data(contentsOf: file)
        #expect(bytesAfter == bytesBefore)
        let reloaded = try Checkpoint(directory: dir).loadTensors()[name]?.toArray()
        #expect(reloaded == params.first { $0.name == name }!.values)

        // Data two bytes past a Float boundary: rebuilt with a header two bytes longer.
        let header = Int(bytesBefore.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var shifted = Data()
        withUnsafeBytes(of: UInt64(header + 2).littleEndian) { shifted.append(contentsOf: $0) }
        shifted.append(bytesBefore[8..<(8 + header)])
        shifted.append(contentsOf: [0x20, 0x20])
        shifted.append(bytesBefore[(8 + header)...])
        try shifted.write(to: file)
        let unaligned = try Checkpoint(directory: dir).loadTensors()
        #expect(!unaligned.values.contains { $0.isBorrowed })
        #expect(params.allSatisfy { unaligned[$0.name]?.toArray() == $0.values })
    }

    /// Rewrites one single-file fixture's weights with `edit` applied, and returns the open error.
    func damaged(_ edit: (inout [NamedTensor]) -> Void, _ kind: ModelIOError.Kind,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> ModelIOError? {
        let dir = try copyFixture("llama_linear")
        defer { cleanup(dir.deletingLastPathComponent()) }
        var tensors = try Checkpoint(directory: dir).loadParameters()
        edit(&tensors)
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        return expectModelIOError(kind, sourceLocation: sourceLocation) { _ = try Checkpoint(directory: dir) }
    }

    @Test func rejectsTensorsThatDisagreeWithTheConfig() throws {
        var e = try damaged({ $0.removeAll { $0.name == "model.layers.1.mlp.up_proj.weight" } }, .missingTensor)
        #expect(e?.message.contains("model.layers.1.mlp.up_proj.weight") == true && e?.file.hasSuffix("model.safetensors") == true)
        e = try damaged({ $0.append(NamedTensor(name: "model.layers.2.mlp.up_proj.weight", shape: [2], values: [1, 2])) }, .unexpectedTensor)
        #expect(e?.message.contains("model.layers.2.mlp.up_proj.weight") == true)
        e = try damaged({ t in
            let i = t.firstIndex { $0.name == "model.layers.0.self_attn.k_proj.weight" }!
            t[i] = NamedTensor(name: t[i].name, shape: [8, 32], values: Array(t[i].values.prefix(256)))
        }, .shapeMismatch)
        #expect(e?.message.contains("model.layers.0.self_attn.k_proj.weight") == true
                && e?.message.contains("[16, 32]") == true && e?.message.contains("[8, 32]") == true)
        // A leftover rotary buffer is ignored.
        let dir = try copyFixture("llama_linear")
        defer { cleanup(dir.deletingLastPathComponent()) }
        var tensors = try Checkpoint(directory: dir).loadParameters()
        tensors.append(NamedTensor(name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [4], values: [1, 2, 3, 4]))
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        #expect(try Checkpoint(directory: dir).loadParameters().count == tensors.count - 1)
    }

    @Test func rejectsBadDirectories() throws {
        let dir = try copyFixture("llama_linear")
        defer { cleanup(dir.deletingLastPathComponent()) }
        let configURL = dir.appendingPathComponent("config.json")
        let original = try Data(contentsOf: configURL)
        try Data("not json".utf8).write(to: configURL)
        var e = expectModelIOError(.badConfig) { _ = try Checkpoint(directory: dir) }
        #expect(e?.file == configURL.path)
        // A config with a different intermediate size disagrees with every MLP weight.
        var config = try ModelConfig.decode(original)
        config.intermediateSize = 60
        try config.encoded().write(to: configURL)
        e = expectModelIOError(.shapeMismatch) { _ = try Checkpoint(directory: dir) }
        #expect(e?.message.contains("mlp") == true && e?.message.contains("config.json implies shape") == true)
        try original.write(to: configURL)
        // Truncate the weights: the header's offsets now run past the end.
        let weights = dir.appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count - 100).write(to: weights)
        e = expectModelIOError(.badTensor) { _ = try Checkpoint(directory: dir) }
        #expect(e?.file == weights.path && e?.message.contains("past the end") == true)
        try FileManager.default.removeItem(at: weights)
        e = expectModelIOError(.unreadable) { _ = try Checkpoint(directory: dir) }
        #expect(e?.message.contains("model.safetensors") == true)
        e = expectModelIOError(.unreadable) { _ = try Checkpoint(directory: dir.appendingPathComponent("nope")) }
    }

    @Test func rejectsInconsistentShardIndex() throws {
        let dir = try copyFixture("qwen2_sharded")
        defer { cleanup(dir.deletingLastPathComponent()) }
        let indexURL = dir.appendingPathComponent(Checkpoint.indexFileName)
        let original = try String(contentsOf: indexURL, encoding: .utf8)
        // Point one tensor at the wrong shard.
        let name = "model.norm.weight"
        let json = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
        var map = json["weight_map"] as! [String: String]
        let right = map[name]!
        map[name] = right == "model-00001-of-00005.safetensors" ? "model-00002-of-00005.safetensors" : "model-00001-of-00005.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: indexURL)
        // Whichever of the two shards is checked first reports it: one lacks it, the other has it unlisted.
        do {
            _ = try Checkpoint(directory: dir)
            Issue.record("a tensor in the wrong shard was accepted")
        } catch let e as ModelIOError {
            #expect(e.kind == .unexpectedTensor || e.kind == .missingTensor)
            #expect(e.message.contains(name))
        }
        var e: ModelIOError?
        map[name] = "model-00009-of-00005.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: indexURL)
        e = expectModelIOError(.unreadable) { _ = try Checkpoint(directory: dir) }
        #expect(e?.file.hasSuffix("model-00009-of-00005.safetensors") == true)
        map[name] = "../evil.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: indexURL)
        e = expectModelIOError(.malformedHeader) { _ = try Checkpoint(directory: dir) }
        #expect(e?.message.contains(name) == true)
        try Data("{}".utf8).write(to: indexURL)
        e = expectModelIOError(.malformedHeader) { _ = try Checkpoint(directory: dir) }
        #expect(e?.message.contains("weight_map") == true)
    }
}
