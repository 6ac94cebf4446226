import Engine
import Foundation
import Testing
@testable import Models

/// What the reference script recorded for one fixture model.
struct ModelReference {
    let ids: [Int32], mask: [Int32], labels: [Int32]
    let batch: Int, length: Int
    let loss: Float
    let prompts: [[Int]], newTokens: [[Int]], maxNewTokens: Int
    let tensors: SafetensorsFile

    init(_ name: String, root: URL = Fixtures.root) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("\(name).reference.json"))) as! [String: Any]
        let ids = json["input_ids"] as! [[Int]]
        batch = ids.count
        length = ids[0].count
        self.ids = ids.flatMap { $0 }.map { Int32($0) }
        mask = (json["attention_mask"] as! [[Int]]).flatMap { $0 }.map { Int32($0) }
        labels = (json["labels"] as! [[Int]]).flatMap { $0 }.map { Int32($0) }
        loss = (json["loss"] as! NSNumber).floatValue
        let gen = json["generate"] as! [String: Any]
        prompts = gen["prompts"] as! [[Int]]
        newTokens = gen["new_tokens"] as! [[Int]]
        maxNewTokens = gen["max_new_tokens"] as! Int
        tensors = try SafetensorsFile(url: root.appendingPathComponent("\(name).reference.safetensors"))
    }
}

func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num += Double(x - y) * Double(x - y)
        den += Double(y) * Double(y)
    }
    return (num / max(den, 1e-30)).squareRoot()
}

@Suite struct DecoderParityTests {
    @Test(arguments: Fixtures.modelNames)
    func logitsLossAndGradientsMatchTransformers(_ name: String) throws {
        try Self.checkForwardBackward(name, root: Fixtures.root)
    }

    /// Logits (real positions), loss, every gradient, and tokenLogProbs against the reference.
    static func checkForwardBackward(_ name: String, root: URL) throws {
        let ref = try ModelReference(name, root: root)
        let model = try CausalLM(directory: root.appendingPathComponent(name))
        let logits = Autograd.withNoGrad { model.logits(ref.ids, batch: ref.batch, length: ref.length) }
        let loss = model.loss(ref.ids, labels: ref.labels, batch: ref.batch, length: ref.length)
        let want = try ref.tensors.floats("logits")
        let got = logits.toArray()
        #expect(logits.shape == [ref.batch, ref.length, model.config.vocabSize])
        let v = model.config.vocabSize
        var maxDelta: Float = 0, maxLogit: Float = 0
        for row in 0..<(ref.batch * ref.length) where ref.mask[row] == 1 {
            for j in 0..<v {
                maxDelta = max(maxDelta, abs(got[row * v + j] - want[row * v + j]))
                maxLogit = max(maxLogit, abs(want[row * v + j]))
            }
        }
        #expect(maxDelta <= 1e-4 * maxLogit, "\(name): logits max|Δ| \(maxDelta), max|logit| \(maxLogit)")
        #expect(abs(loss.item() - ref.loss) <= 1e-5, "\(name): loss \(loss.item()) vs \(ref.loss)")

        loss.backward()
        for (pname, p) in model.namedParameters {
            let g = try #require(p.grad, "\(name): no gradient for \(pname)")
            let wantGrad = try ref.tensors.floats("grad." + pname)
            let err = relativeError(g.toArray(), wantGrad)
            #expect(err <= 1e-3, "\(name): gradient of \(pname) relative error \(err)")
        }

        // Per-token log-likelihoods give the same value and gradient: Σ logp = −count · loss.
        for (_, p) in model.namedParameters { p.zeroGrad() }
        let lp = model.tokenLogProbs(ref.ids, labels: ref.labels, batch: ref.batch, length: ref.length)
        let count = Float(CausalLM.shiftedTargets(ref.labels, batch: ref.batch, length: ref.length).filter { $0 != -100 }.count)
        #expect(lp.shape == [ref.batch, ref.length])
        #expect(abs(-lp.toArray().reduce(0, +) / count - ref.loss) <= 1e-5)
        lp.sum().backward()
        for (pname, p) in model.namedParameters {
            let err = relativeError(p.grad!.toArray().map { -$0 / count }, try ref.tensors.floats("grad." + pname))
            #expect(err <= 1e-3, "\(name): gradient of \(pname) through tokenLogProbs, relative error \(err)")
        }
    }

    @Test(arguments: Fixtures.modelNames)
    func greedyGenerationMatchesTransformers(_ name: String) throws {
        try Self.checkGreedy(name, root: Fixtures.root)
    }

    static func checkGreedy(_ name: String, root: URL) throws {
        let ref = try ModelReference(name, root: root)
        let model = try CausalLM(directory: root.appendingPathComponent(name))
        let results = try model.generate(prompts: ref.prompts, options: GenerationOptions(maxNewTokens: ref.maxNewTokens, eosTokenIds: []))
        #expect(results.map(\.tokens) == ref.newTokens)
        #expect(results.allSatisfy { $0.stopReason == .maxNewTokens })
        // One prompt at a time gives the same continuations as the padded batch.
        for (p, want) in zip(ref.prompts, ref.newTokens) {
            #expect(try model.generate(prompts: [p], options: GenerationOptions(maxNewTokens: ref.maxNewTokens, eosTokenIds: []))[0].tokens == want)
        }
    }

    @Test(arguments: Fixtures.modelNames)
    func kvCacheDecodingEqualsFullRecomputation(_ name: String) throws {
        let model = try CausalLM(directory: Fixtures.url(name))
        let v = model.config.vocabSize
        // Two rows, the second left-padded by 3; fed as a 5-token prefill, then 1, 2 and 1 tokens.
        let t = 9, pad = [0, 3]
        var ids = [Int32](repeating: 0, count: 2 * t)
        for i in 0..<t { ids[i] = Int32((i * 7 + 3) % v) }
        for i in pad[1]..<t { ids[t + i] = Int32((i * 11 + 5) % v) }
        try Autograd.withNoGrad {
            let full = model.logits(ids, batch: 2, length: t, leftPadding: pad).toArray()
            let cache = KVCache(config: model.config, batch: 2, capacity: 12, leftPadding: pad)
            var incremental: [Float] = []
            var stepLogits: [[Float]] = [[], []]
            var start = 0
            for n in [5, 1, 2, 1] {
                let chunk = (0..<2).flatMap { b in ids[(b * t + start)..<(b * t + start + n)] }
                let out = model.logits(Array(chunk), batch: 2, length: n, cache: cache).toArray()
                for b in 0..<2 { stepLogits[b] += out[(b * n * v)..<((b + 1) * n * v)] }
                start += n
            }
            #expect(cache.length == t)
            incremental = stepLogits[0] + stepLogits[1]
            try #require(incremental.count == 2 * t * v, "\(name): \(incremental.count) incremental logits, expected \(2 * t * v)")
            var maxDelta: Float = 0
            for b in 0..<2 {
                for i in pad[b]..<t {
                    for j in 0..<v { maxDelta = max(maxDelta, abs(full[(b * t + i) * v + j] - incremental[(b * t + i) * v + j])) }
                }
            }
            #expect(maxDelta <= 1e-5, "\(name): cached vs full logits max|Δ| \(maxDelta)")
            // A left-padded row equals the same tokens unpadded.
            let alone = model.logits(Array(ids[(t + 3)..<(2 * t)]), batch: 1, length: t - 3).toArray()
            let padded = Array(full[((t + 3) * v)..<(2 * t * v)])
            let d = zip(alone, padded).map { abs($0 - $1) }.max()!
            #expect(d <= 1e-5, "\(name): left-padded vs unpadded max|Δ| \(d)")
        }
    }
}
