import Foundation
import Testing
@testable import Models

@Suite struct ConfigTests {
    func decode(_ text: String) throws -> ModelConfig {
        try ModelConfig.decode(Data(text.utf8), file: "test/config.json")
    }

    let base = #""vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4"#

    @Test func fixtureConfigsParse() throws {
        let linear = try ModelConfig.load(from: Fixtures.url("llama_linear/config.json"))
        #expect(linear.architecture == .llama && linear.numKeyValueHeads == 2 && linear.headDim == 8)
        #expect(linear.ropeScaling == .linear(factor: 2) && linear.ropeTheta == 10000)
        #expect(!linear.tieWordEmbeddings && !linear.qkvBias && !linear.outputBias && linear.rmsNormEps == 1e-5)
        #expect(linear.eosTokenIds == [2] && linear.bosTokenId == 1)

        let tied = try ModelConfig.load(from: Fixtures.url("llama3_tied/config.json"))
        #expect(tied.headDim == 12 && tied.tieWordEmbeddings && tied.qkvBias && tied.outputBias && tied.feedForwardBias)
        #expect(tied.ropeScaling == .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32))
        #expect(tied.ropeTheta == 500000 && tied.eosTokenIds == [2, 3])

        let qwen = try ModelConfig.load(from: Fixtures.url("qwen2_sharded/config.json"))
        #expect(qwen.architecture == .qwen2 && qwen.qkvBias && !qwen.outputBias && !qwen.feedForwardBias)
        #expect(qwen.numKeyValueHeads == 1 && qwen.ropeTheta == 1e6 && qwen.tieWordEmbeddings && qwen.bosTokenId == nil)
    }

    @Test func realModelConfigs() throws {
        // The published config.json of Qwen2.5-0.5B and Llama-3.2-1B (transformers 4.x spelling).
        let qwen = try decode(#"{"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151643,"hidden_act":"silu","hidden_size":896,"initializer_range":0.02,"intermediate_size":4864,"max_position_embeddings":32768,"max_window_layers":24,"model_type":"qwen2","num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.43.1","use_cache":true,"use_sliding_window":false,"vocab_size":151936}"#)
        #expect(qwen.headDim == 64 && qwen.groupSize == 7 && qwen.qkvBias && qwen.tieWordEmbeddings)
        #expect(qwen.parameterCount == 494_032_768)  // HF's count for this config
        let llama = try decode(#"{"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":128000,"eos_token_id":128001,"head_dim":64,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":8192,"max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":16,"num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},"rope_theta":500000.0,"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.45.0.dev0","use_cache":true,"vocab_size":128256}"#)
        #expect(llama.ropeScaling == .llama3(factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        #expect(llama.parameterCount == 1_235_814_400 && llama.eosTokenIds == [128001] && llama.rmsNormEps == 1e-5)
    }

    @Test func defaultsAndLegacyRopeFields() throws {
        let c = try decode("{\"model_type\": \"llama\", \(base)}")
        #expect(c.numKeyValueHeads == 4 && c.headDim == 16 && c.rmsNormEps == 1e-6 && c.ropeTheta == 10000)
        #expect(c.ropeScaling == nil && c.maxPositionEmbeddings == 2048 && !c.tieWordEmbeddings && c.eosTokenIds.isEmpty)
        let q = try decode("{\"architectures\": [\"Qwen2ForCausalLM\"], \(base)}")
        #expect(q.architecture == .qwen2 && q.maxPositionEmbeddings == 32768)

        let old = try decode(#"{"model_type": "llama", "rope_theta": 500000.0, "rope_scaling": {"type": "linear", "factor": 4.0}, "#
                             + base + "}")
        #expect(old.ropeTheta == 500000 && old.ropeScaling == .linear(factor: 4))
        let l3 = try decode(#"{"model_type": "llama", "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "#
                            + base + "}")
        #expect(l3.ropeScaling == .llama3(factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        let newer = try decode(#"{"model_type": "llama", "rope_parameters": {"rope_type": "default", "rope_theta": 250000.0}, "#
                               + base + "}")
        #expect(newer.ropeTheta == 250000 && newer.ropeScaling == nil)
    }

    @Test func ropeFrequenciesFollowTheFormulas() throws {
        var c = ModelConfig(vocabSize: 10, hiddenSize: 64, intermediateSize: 8, numHiddenLayers: 1, numAttentionHeads: 4)
        c.ropeTheta = 10000
        let plain = c.ropeInverseFrequencies
        #expect(plain.count == 8 && plain[0] == 1)
        #expect(abs(plain[1] - Float(1 / pow(10000.0, 2.0 / 16))) < 1e-9)
        c.ropeScaling = .linear(factor: 2)
        #expect(zip(c.ropeInverseFrequencies, plain).allSatisfy { abs($0 - $1 / 2) < 1e-9 })
        // llama3 with original 64: wavelength < 16 kept, > 64 divided by factor, else smoothed.
        c.ropeScaling = .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64)
        let scaled = c.ropeInverseFrequencies
        for (f, s) in zip(plain, scaled) {
            let wavelen = 2 * Double.pi / Double(f)
            if wavelen < 16 { #expect(s == f) } else if wavelen > 64 { #expect(abs(s - f / 8) <= 1e-7 * f) } else {
                let t = (64 / wavelen - 1) / 3
                #expect(abs(Double(s) - ((1 - t) * Double(f) / 8 + t * Double(f))) < 1e-6 * Double(f))
            }
        }
        #expect(scaled != plain && scaled.first == plain.first)
    }

    @Test func errorsNameTheField() throws {
        var e = expectModelIOError(.badConfig) { _ = try decode("{ this is not json") }
        #expect(e?.description.contains("test/config.json") == true && e?.message.contains("not valid JSON") == true)
        e = expectModelIOError(.unsupported) { _ = try decode("{\"architectures\": [\"MistralForCausalLM\"], \(base)}") }
        #expect(e?.message.contains("architectures") == true && e?.message.contains("MistralForCausalLM") == true)
        e = expectModelIOError(.unsupported) { _ = try decode("{\"model_type\": \"gpt2\", \(base)}") }
        #expect(e?.message.contains("model_type") == true)
        e = expectModelIOError(.unsupported) {
            _ = try decode(#"{"model_type": "llama", "rope_parameters": {"rope_type": "yarn", "factor": 4.0}, "# + base + "}")
        }
        #expect(e?.message.contains("rope_parameters.rope_type") == true && e?.message.contains("yarn") == true)
        e = expectModelIOError(.badConfig) {
            _ = try decode(#"{"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}, "# + base + "}")
        }
        #expect(e?.message.contains("rope_scaling.original_max_position_embeddings") == true)
        // An integral value past Int used to trap the conversion (found by the config fuzzer).
        for huge in ["1e30", "9.3e18", "4.5"] {
            e = expectModelIOError(.badConfig) {
                _ = try decode(#"{"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": "# + huge + "}, " + base + "}")
            }
            #expect(e?.message.contains("rope_scaling.original_max_position_embeddings") == true && e?.message.contains("positive integer") == true)
        }
        e = expectModelIOError(.badConfig) {
            _ = try decode(#"{"model_type": "llama", "vocab_size": 100, "hidden_size": "64", "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}"#)
        }
        #expect(e?.message.contains("\"hidden_size\"") == true && e?.message.contains("expected an integer") == true
                && e?.message.contains("\"64\"") == true)
        e = expectModelIOError(.badConfig) {
            _ = try decode(#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}"#)
        }
        #expect(e?.message.contains("vocab_size") == true)
        e = expectModelIOError(.badConfig) { _ = try decode("{\"model_type\": \"llama\", \"num_key_value_heads\": 3, \(base)}") }
        #expect(e?.message.contains("num_key_value_heads") == true && e?.message.contains("found 3") == true)
        e = expectModelIOError(.unsupported) { _ = try decode("{\"model_type\": \"llama\", \"hidden_act\": \"gelu\", \(base)}") }
        #expect(e?.message.contains("hidden_act") == true)
        e = expectModelIOError(.unsupported) { _ = try decode("{\"model_type\": \"qwen2\", \"use_sliding_window\": true, \(base)}") }
        #expect(e?.message.contains("use_sliding_window") == true)
        e = expectModelIOError(.badConfig) { _ = try decode("{\"model_type\": \"llama\", \"eos_token_id\": \"x\", \(base)}") }
        #expect(e?.message.contains("eos_token_id") == true)
        e = expectModelIOError(.badConfig) { _ = try decode("{\"model_type\": \"llama\", \"eos_token_id\": 100, \(base)}") }
        #expect(e?.message.contains("outside the vocabulary") == true)
        e = expectModelIOError(.badConfig) { _ = try decode("[1, 2]") }
        e = expectModelIOError(.unreadable) { _ = try ModelConfig.load(from: URL(fileURLWithPath: "/nonexistent/config.json")) }
        #expect(e?.file == "/nonexistent/config.json")
    }

    @Test func encodeDecodeRoundTrip() throws {
        var configs = ModelPreset.allCases.map(\.config)
        for name in Fixtures.modelNames { configs.append(try ModelConfig.load(from: Fixtures.url("\(name)/config.json"))) }
        for c in configs {
            let back = try ModelConfig.decode(c.encoded())
            #expect(back == c)
        }
        let text = String(decoding: ModelPreset.pilot.config.encoded(), as: UTF8.self)
        #expect(text.contains("\"rms_norm_eps\": 1e-06") && text.contains("\"rope_theta\": 10000.0"))
        #expect(text.contains("\"architectures\": [\n    \"LlamaForCausalLM\"\n  ]"))
    }
}

@Suite struct PresetTests {
    @Test func presetShapes() {
        let table: [(ModelPreset, [Int])] = [
            (.pilot, [768, 128, 352, 4, 4, 2]), (.tiny, [2048, 128, 352, 4, 4, 2]),
            (.small, [8192, 512, 1408, 8, 8, 4]), (.medium, [32000, 1024, 2816, 12, 16, 8]),
        ]
        for (preset, shape) in table {
            let c = preset.config
            #expect([c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads] == shape)
            #expect(c.architecture == .llama && !c.tieWordEmbeddings && c.headDim == c.hiddenSize / c.numAttentionHeads)
            #expect((try? c.validate()) != nil)
        }
        // 2·768·128 embeddings + 4 × (attention 49,152 + MLP 135,168 + norms 256) + final norm 128.
        #expect(ModelPreset.pilot.config.parameterCount == 935_040)
    }

    @Test func seededInitialisationLikeHF() {
        let c = ModelConfig(vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
                            numAttentionHeads: 4, numKeyValueHeads: 2, attentionBias: true)
        let a = c.initialParameters(seed: 7), b = c.initialParameters(seed: 7), other = c.initialParameters(seed: 8)
        #expect(a == b)
        #expect(a != other)
        #expect(a.map(\.name) == c.parameterSpecs.map(\.name))
        for t in a {
            if t.name.hasSuffix("norm.weight") { #expect(t.values.allSatisfy { $0 == 1 }) }
            else if t.name.hasSuffix(".bias") { #expect(t.values.allSatisfy { $0 == 0 }) }
        }
        let all = a.filter { $0.name.hasSuffix("proj.weight") || $0.name.contains("embed") || $0.name.hasPrefix("lm_head") }.flatMap(\.values)
        let mean = all.reduce(0, +) / Float(all.count)
        let std = (all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(all.count)).squareRoot()
        #expect(abs(mean) < 0.001 && abs(std - 0.02) < 0.001)
        // Streams are per name: a deeper model keeps the shallower model's first layers.
        var deeper = c
        deeper.numHiddenLayers = 3
        let d = Dictionary(uniqueKeysWithValues: deeper.initialParameters(seed: 7).map { ($0.name, $0.values) })
        #expect(a.allSatisfy { d[$0.name] == $0.values })
    }
}
