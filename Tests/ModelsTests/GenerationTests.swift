import Engine
import Foundation
import Testing
@testable import Models

/// Decodes token t as "<t>", enough to exercise stop strings.
struct BracketDecoder: TokenTextDecoder {
    func decode(_ ids: [Int]) -> String { ids.map { "<\($0)>" }.joined() }
}

@Suite struct GenerationTests {
    func frequencies(_ logits: [Float], _ options: GenerationOptions, draws: Int = 20000) -> [Double] {
        var rng = SeededRandom(seed: options.seed)
        var counts = [Double](repeating: 0, count: logits.count)
        logits.withUnsafeBufferPointer { row in
            for _ in 0..<draws { counts[CausalLM.pick(row, options: options, rng: &rng)] += 1 }
        }
        return counts.map { $0 / Double(draws) }
    }

    @Test func samplingFollowsTemperatureTopKTopP() {
        let logits: [Float] = [0.5, 0.3, 0.2].map { Float(Foundation.log($0)) }
        func close(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 0.015 } }
        #expect(close(frequencies(logits, GenerationOptions(temperature: 1, seed: 1)), [0.5, 0.3, 0.2]))
        // Temperature 2 flattens: p ∝ sqrt(p).
        let s = [0.5, 0.3, 0.2].map { $0.squareRoot() }, z = s.reduce(0, +)
        #expect(close(frequencies(logits, GenerationOptions(temperature: 2, seed: 2)), s.map { $0 / z }))
        #expect(close(frequencies(logits, GenerationOptions(temperature: 1, topK: 2, seed: 3)), [0.625, 0.375, 0]))
        #expect(close(frequencies(logits, GenerationOptions(temperature: 1, topP: 0.7, seed: 4)), [0.625, 0.375, 0]))
        #expect(frequencies(logits, GenerationOptions(temperature: 1, topP: 0.45, seed: 5), draws: 500) == [1, 0, 0])
        #expect(frequencies(logits, GenerationOptions(temperature: 1, topK: 1, seed: 6), draws: 500) == [1, 0, 0])
        // Greedy takes the first of equal maxima; top-k keeps ties at the cut.
        #expect(frequencies([1, 3, 3, 0], GenerationOptions(), draws: 10) == [0, 1, 0, 0])
        let tie = frequencies([3, 1, 1, 0], GenerationOptions(temperature: 1, topK: 2, seed: 7))
        #expect(tie[1] > 0.05 && tie[2] > 0.05 && tie[3] == 0)
    }

    @Test func seededSamplingIsReproducible() throws {
        let model = try CausalLM(directory: Fixtures.url("llama_linear"))
        let prompts = [[5, 9, 12], [40]]
        let o = GenerationOptions(maxNewTokens: 12, temperature: 1.5, topK: 20, topP: 0.95, seed: 42, eosTokenIds: [])
        let a = try model.generate(prompts: prompts, options: o)
        #expect(try model.generate(prompts: prompts, options: o) == a)
        var other = o
        other.seed = 43
        #expect(try model.generate(prompts: prompts, options: other) != a)
        #expect(a.allSatisfy { $0.tokens.count == 12 && $0.tokens.allSatisfy { (0..<96).contains($0) } })
    }

    @Test func rowSeedsMakeEachSampleIndependentOfItsBatch() throws {
        let model = try CausalLM(directory: Fixtures.url("llama_linear"))
        let prompts = [[5, 9, 12], [40], [7, 3]]
        var o = GenerationOptions(maxNewTokens: 10, temperature: 1.2, topP: 0.9, eosTokenIds: [], rowSeeds: [11, 12, 13])
        let batched = try model.generate(prompts: prompts, options: o)
        for (i, p) in prompts.enumerated() {
            o.rowSeeds = [UInt64(11 + i)]
            #expect(try model.generate(prompts: [p], options: o) == [batched[i]], "prompt \(i)")
        }
        // A single row with rowSeeds [s] is the shared stream of seed s.
        o.rowSeeds = nil
        o.seed = 12
        #expect(try model.generate(prompts: [prompts[1]], options: o) == [batched[1]])
        // The shared stream differs: rows draw from it in turn.
        o.seed = 11
        #expect(try model.generate(prompts: prompts, options: o) != batched)
        o.rowSeeds = [1]
        #expect(throws: GenerationError(message: "rowSeeds has 1 seeds for 3 prompts; give one per prompt")) {
            try model.generate(prompts: prompts, options: o)
        }
    }

    @Test func stopsOnEOSAndStopStringsPerRow() throws {
        let ref = try ModelReference("llama3_tied")
        let model = try CausalLM(directory: Fixtures.url("llama3_tied"))
        // Row 0 stops early at a token row 1 never produces; row 1 must still match the reference.
        let k = try #require((1..<ref.maxNewTokens).first { k in
            let t = ref.newTokens[0][k]
            return !ref.newTokens[0][..<k].contains(t) && !ref.newTokens[1].contains(t)
        })
        let eos = ref.newTokens[0][k]
        let r = try model.generate(prompts: ref.prompts, options: GenerationOptions(maxNewTokens: ref.maxNewTokens, eosTokenIds: [eos]))
        #expect(r[0].tokens == Array(ref.newTokens[0].prefix(k + 1)) && r[0].stopReason == .eos(eos))
        #expect(r[1].tokens == ref.newTokens[1] && r[1].stopReason == .maxNewTokens)

        let stop = "<\(ref.newTokens[1][4])>"
        let firstHit = ref.newTokens[1].firstIndex(of: ref.newTokens[1][4])!
        let s = try model.generate(prompts: [ref.prompts[1]], options: GenerationOptions(maxNewTokens: 32, eosTokenIds: [], stopStrings: [stop]),
                                   decoder: BracketDecoder())
        #expect(s[0].tokens == Array(ref.newTokens[1].prefix(firstHit + 1)) && s[0].stopReason == .stopString(stop))
    }

    @Test func rejectsBadRequests() throws {
        let model = try CausalLM(directory: Fixtures.url("qwen2_sharded"))
        func fails(_ prompts: [[Int]], _ o: GenerationOptions, _ needle: String, decoder: TokenTextDecoder? = nil) {
            do {
                _ = try model.generate(prompts: prompts, options: o, decoder: decoder)
                Issue.record("expected a GenerationError mentioning \(needle)")
            } catch let e as GenerationError {
                #expect(e.message.contains(needle), "\(e.message)")
            } catch { Issue.record("unexpected \(error)") }
        }
        fails([[1], []], GenerationOptions(), "prompt 1 is empty")
        fails([[1, 500]], GenerationOptions(), "token id 500")
        fails([[1]], GenerationOptions(temperature: -1), "temperature")
        fails([[1]], GenerationOptions(topK: 0), "topK")
        fails([[1]], GenerationOptions(topP: 1.5), "topP")
        fails([[1]], GenerationOptions(stopStrings: ["x"]), "decoder")
        #expect(try model.generate(prompts: [[1, 2]], options: GenerationOptions(maxNewTokens: 0))[0].tokens.isEmpty)
        // Without explicit EOS ids the config's eos_token_id applies.
        let free = try model.generate(prompts: [[7, 8]], options: GenerationOptions(maxNewTokens: 10, eosTokenIds: []))[0].tokens
        var config = model.config
        config.eosTokenIds = [free[3]]
        let k = free.firstIndex(of: free[3])!
        let withEOS = try CausalLM(config: config, parameters: model.parameterValues())
        let byConfig = try withEOS.generate(prompts: [[7, 8]], options: GenerationOptions(maxNewTokens: 10))[0]
        #expect(byConfig.tokens == Array(free.prefix(k + 1)) && byConfig.stopReason == .eos(free[3]))
        #expect(try model.generate(prompts: []).isEmpty)
    }
}

@Suite struct DecoderTests {
    @Test func tokenLogProbsAgreeWithTheLoss() throws {
        let ref = try ModelReference("qwen2_sharded")
        let model = try CausalLM(directory: Fixtures.url("qwen2_sharded"))
        let lp = model.tokenLogProbs(ref.ids, labels: ref.labels, batch: ref.batch, length: ref.length)
        #expect(lp.shape == [ref.batch, ref.length])
        let values = lp.toArray()
        let targets = CausalLM.shiftedTargets(ref.labels, batch: ref.batch, length: ref.length)
        let counted = targets.filter { $0 != -100 }.count
        #expect(targets.enumerated().allSatisfy { $0.element != -100 || values[$0.offset] == 0 })
        let mean = -values.reduce(0, +) / Float(counted)
        #expect(abs(mean - ref.loss) < 1e-5)
        // Its gradient equals the loss gradient times −count.
        lp.sum().backward()
        let g = model.embedTokens.grad!.toArray()
        model.embedTokens.zeroGrad()
        let loss = model.loss(ref.ids, labels: ref.labels, batch: ref.batch, length: ref.length)
        loss.backward()
        let h = model.embedTokens.grad!.toArray().map { -$0 * Float(counted) }
        #expect(relativeError(g, h) < 1e-5)
    }

    @Test func buildsFromPresetsAndRejectsBadParameters() throws {
        let model = try CausalLM(config: ModelPreset.pilot.config, seed: 3)
        #expect(model.namedParameters.reduce(0) { $0 + $1.tensor.count } == 935_040)
        #expect(model.namedParameters.allSatisfy { $0.tensor.requiresGrad })
        #expect(model.lmHead !== model.embedTokens)
        var tied = ModelPreset.pilot.config
        tied.tieWordEmbeddings = true
        let t = try CausalLM(config: tied, seed: 3)
        #expect(t.lmHead === t.embedTokens && t.parameter("lm_head.weight") == nil)

        #expect(model.linearModules.count == 28 && model.linearModules[3].name == "model.layers.0.self_attn.o_proj")
        #expect(model.linearModules[3].module.weight === model.parameter("model.layers.0.self_attn.o_proj.weight"))
        let twin = try model.copy()
        #expect(twin.parameterValues() == model.parameterValues() && twin.embedTokens !== model.embedTokens)
        // An adapter adds its output to the layer's.
        let lin = model.linearModules[0].module
        let x = Tensor((0..<128).map { Float($0) / 128 }, shape: [1, 128])
        let plain = lin(x).toArray()
        lin.adapter = { $0.scaled(by: 0).sumLastAxis().reshaped([1, 1]) + 1 }
        #expect(zip(lin(x).toArray(), plain).allSatisfy { abs($0 - $1 - 1) < 1e-6 })
        lin.adapter = nil

        var params = ModelPreset.pilot.config.initialParameters(seed: 1)
        params.removeLast()
        var e = expectModelIOError(.missingTensor) { _ = try CausalLM(config: ModelPreset.pilot.config, parameters: params) }
        #expect(e?.message.contains("lm_head.weight") == true)
        params = ModelPreset.pilot.config.initialParameters(seed: 1)
        params[2] = NamedTensor(name: params[2].name, shape: [params[2].values.count], values: params[2].values)
        e = expectModelIOError(.shapeMismatch) { _ = try CausalLM(config: ModelPreset.pilot.config, parameters: params) }
        #expect(e?.message.contains(params[2].name) == true)
    }

    @Test func trainingStepsLowerTheLoss() throws {
        // A few plain SGD steps on one batch: the decoder's gradients point downhill.
        var config = ModelPreset.pilot.config
        config.vocabSize = 64
        config.numHiddenLayers = 2
        let model = try CausalLM(config: config, seed: 9)
        let ids: [Int32] = (0..<32).map { Int32(($0 * 5) % 64) }
        var losses: [Float] = []
        for _ in 0..<5 {
            let loss = model.loss(ids, labels: ids, batch: 2, length: 16)
            losses.append(loss.item())
            loss.backward()
            for (_, p) in model.namedParameters {
                let g = p.grad!.toArray()
                p.withUnsafeMutableBufferPointer { w in for i in w.indices { w[i] -= 0.02 * g[i] } }
                p.zeroGrad()
            }
        }
        #expect(zip(losses, losses.dropFirst()).allSatisfy { $1 < $0 }, "\(losses)")
    }
}
