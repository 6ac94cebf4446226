import Engine
import Foundation
import Testing
@testable import Models

/// LoRA against PEFT 0.21 (fixtures from scripts/reference/lora_fixtures.py) and its own rules.
@Suite struct LoRATests {
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) { num += Double(x - y) * Double(x - y); den += Double(y) * Double(y) }
        return (num / max(den, 1e-30)).squareRoot()
    }

    static func maxAbs(_ a: [Float]) -> Float { a.reduce(0) { max($0, abs($1)) } }
    static func maxDelta(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

    @Test(arguments: ["llama", "qwen2"])
    func peftAdapterMatchesLogitsLossAndGradients(_ name: String) throws {
        let info = try Fixtures.json("lora_\(name).reference.json")
        let reference = try SafetensorsFile(url: Fixtures.url("lora_\(name).reference.safetensors"))
        let model = try CausalLM(directory: Fixtures.url(info["base"] as! String))
        let baseIds = (info["input_ids"] as! [[Int]])
        let b = baseIds.count, t = baseIds[0].count
        let ids = baseIds.flatMap { $0.map(Int32.init) }
        let labels = (info["labels"] as! [[Int]]).flatMap { $0.map(Int32.init) }
        let baseLogits = Autograd.withNoGrad { model.logits(ids, batch: b, length: t).toArray() }

        let lora = try LoRA.load(from: Fixtures.url("lora_\(name)"), into: model)
        #expect(abs(Double(lora.config.scaling) - (info["scaling"] as! Double)) < 1e-7)
        let expected = try reference.floats("logits")
        let logits = Autograd.withNoGrad { model.logits(ids, batch: b, length: t).toArray() }
        let tol = 1e-4 * Self.maxAbs(expected)
        #expect(Self.maxDelta(logits, expected) <= tol, "logits max|Δ| \(Self.maxDelta(logits, expected))")
        #expect(Self.maxDelta(baseLogits, expected) > 100 * tol, "the adapter must change the output")

        let loss = model.loss(ids, labels: labels, batch: b, length: t)
        let refLoss = info["loss"] as! Double
        #expect(abs(Double(loss.item()) - refLoss) <= 1e-5 * abs(refLoss), "loss \(loss.item()) vs \(refLoss)")
        loss.backward()
        let trainable = model.trainableParameters
        #expect(trainable.count == lora.layers.count * 2)
        #expect(Set(trainable.map(\.name)) == Set(reference.names.filter { $0 != "logits" }))
        for (pname, p) in trainable {
            let g = try #require(p.grad, "\(pname) has no gradient").toArray()
            let ref = try reference.floats(pname)
            #expect(Self.relativeError(g, ref) <= 1e-3, "\(pname): ‖Δ‖/‖ref‖ = \(Self.relativeError(g, ref))")
        }
        for (pname, p) in model.namedParameters {
            #expect(!p.requiresGrad && p.grad == nil, "base parameter \(pname) must be frozen")
        }

        // Merged: same function without the hooks; unmerged: the base weights come back.
        let before = model.parameterValues()
        try lora.merge()
        #expect(lora.layers.allSatisfy { $0.linear.adapter == nil })
        #expect(model.trainableParameters.isEmpty)
        let merged = Autograd.withNoGrad { model.logits(ids, batch: b, length: t).toArray() }
        #expect(Self.maxDelta(merged, logits) <= tol, "merged logits max|Δ| \(Self.maxDelta(merged, logits))")
        #expect(Self.maxDelta(merged, expected) <= tol)
        try lora.unmerge()
        for (x, y) in zip(model.parameterValues(), before) { #expect(Self.maxDelta(x.values, y.values) <= 1e-6, "\(x.name)") }
        let again = Autograd.withNoGrad { model.logits(ids, batch: b, length: t).toArray() }
        #expect(Self.maxDelta(again, logits) <= tol)
        #expect(throws: LoRAError.self) { try lora.unmerge() }
    }

    static func pilotModel() throws -> CausalLM {
        try CausalLM(config: ModelConfig(vocabSize: 50, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2,
                                         numAttentionHeads: 4, numKeyValueHeads: 2), seed: 3)
    }

    static let ids: [Int32] = (0..<20).map { Int32(($0 * 7 + 3) % 50) }

    @Test func freshAdaptersStartAtTheBaseModelAndFreezeIt() throws {
        let model = try Self.pilotModel()
        let base = Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() }
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 3, targets: ["q", "v", "down_proj"], seed: 5))
        #expect(lora.layers.map(\.module) == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                              "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj",
                                              "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj"])
        #expect(lora.parameters[0].name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        #expect(lora.parameters[1].name == "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
        #expect(lora.config.alpha == 6 && lora.config.scaling == 2)
        // A: kaiming-uniform(a = √5) on [r, in] is uniform in ±1/√in; B: zeros.
        for l in lora.layers {
            let bound = 1 / Float(l.linear.weight.shape[1]).squareRoot()
            let a = l.a.toArray()
            #expect(l.a.shape == [3, l.linear.weight.shape[1]] && l.b.shape == [l.linear.weight.shape[0], 3])
            #expect(a.allSatisfy { abs($0) <= bound } && Self.maxAbs(a) > bound / 2)
            #expect(l.b.toArray().allSatisfy { $0 == 0 })
        }
        #expect(Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() } == base)
        #expect(model.namedParameters.allSatisfy { !$0.tensor.requiresGrad })
        #expect(model.trainableParameters.map(\.name) == lora.parameters.map(\.name))

        // Same seed, same A; another seed, another A.
        let twin = try Self.pilotModel()
        let same = try LoRA.attach(to: twin, config: LoRAConfig(rank: 3, targets: ["q_proj", "v_proj", "down"], seed: 5))
        #expect(same.layers.map { $0.a.toArray() } == lora.layers.map { $0.a.toArray() })
        let other = try Self.pilotModel()
        let different = try LoRA.attach(to: other, config: LoRAConfig(rank: 3, targets: ["q", "v", "down"], seed: 6))
        #expect(different.layers[0].a.toArray() != lora.layers[0].a.toArray())

        lora.detach()
        #expect(model.lora == nil && model.namedParameters.allSatisfy { $0.tensor.requiresGrad })
        #expect(model.linearModules.allSatisfy { $0.module.adapter == nil })
    }

    @Test func badSettingsFailBeforeAnythingChanges() throws {
        let model = try Self.pilotModel()
        let bad: [(LoRAConfig, String)] = [
            (LoRAConfig(rank: 0), "lora.rank"), (LoRAConfig(rank: -2), "lora.rank"),
            (LoRAConfig(rank: 4, alpha: 0), "lora.alpha"), (LoRAConfig(rank: 4, alpha: -.infinity), "lora.alpha"),
            (LoRAConfig(rank: 4, dropout: 1), "lora.dropout"), (LoRAConfig(rank: 4, dropout: -0.1), "lora.dropout"),
            (LoRAConfig(rank: 4, targets: []), "lora.targets"), (LoRAConfig(rank: 4, targets: ["q", "qkv_proj"]), "lora.targets"),
            (LoRAConfig(rank: 4, targets: ["lm_head"]), "lora.targets"),
        ]
        for (config, field) in bad {
            #expect { try LoRA.attach(to: model, config: config) } throws: { ($0 as? LoRAError)?.context == field }
        }
        #expect(model.lora == nil && model.namedParameters.allSatisfy { $0.tensor.requiresGrad })
        #expect(model.linearModules.allSatisfy { $0.module.adapter == nil })
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2))
        #expect(lora.layers.count == 14)
        #expect(throws: LoRAError.self) { try LoRA.attach(to: model, config: LoRAConfig(rank: 2)) }
        try lora.merge()
        #expect(throws: LoRAError.self) { try lora.merge() }
    }

    @Test func dropoutOnlyWhileTrainingAndSeeded() throws {
        func run(seed: UInt64) throws -> (eval: [Float], train: [Float], train2: [Float]) {
            let model = try Self.pilotModel()
            let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2, dropout: 0.5, seed: seed))
            for l in lora.layers { l.b.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = 0.2 } } }
            let eval = Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() }
            lora.isTraining = true
            let train = Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() }
            let train2 = Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() }
            lora.isTraining = false
            #expect(Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() } == eval)
            return (eval, train, train2)
        }
        let a = try run(seed: 1), b = try run(seed: 1), c = try run(seed: 2)
        #expect(a.eval == b.eval, "evaluation ignores dropout")
        #expect(a.train != a.eval && a.train2 != a.train, "training draws a fresh mask at every call")
        #expect(a.train == b.train && a.train2 == b.train2, "masks are seeded")
        #expect(c.train != c.eval && a.train != c.train)
    }

    @Test func referenceSharesTheFrozenBase() throws {
        let model = try Self.pilotModel()
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2, targets: ["q", "o", "up"]))
        let fresh = try model.frozenReference()
        #expect(fresh.lora == nil, "B = 0: the reference is the base itself")
        for ((n1, t1), (n2, t2)) in zip(model.namedParameters, fresh.namedParameters) {
            #expect(n1 == n2 && t1.storage === t2.storage, "\(n1) must be shared, not copied")
        }
        for l in lora.layers { l.b.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = Float(i % 3) * 0.1 - 0.1 } } }
        let now = Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() }
        let reference = try model.frozenReference()
        let snapshot = try #require(reference.lora)
        // No full copy: every base tensor shared; the only new memory is the adapters' snapshot.
        var shared = 0, own = 0
        for ((_, t1), (_, t2)) in zip(model.namedParameters, reference.namedParameters) {
            if t1.storage === t2.storage { shared += t1.count * 4 } else { own += t2.count * 4 }
        }
        #expect(own == 0 && shared == model.config.parameterCount * 4)
        #expect(snapshot.byteCount == lora.byteCount && snapshot.byteCount < shared / 4)
        #expect(reference.trainableParameters.isEmpty)
        #expect(Autograd.withNoGrad { reference.logits(Self.ids, batch: 2, length: 10).toArray() } == now)
        // Training the adapters moves the model, not the reference.
        for l in lora.layers { l.a.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] *= 2 } } }
        #expect(Autograd.withNoGrad { reference.logits(Self.ids, batch: 2, length: 10).toArray() } == now)
        #expect(Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() } != now)
        // Disabling the adapters gives the base model.
        lora.isEnabled = false
        #expect(Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() }
                == Autograd.withNoGrad { fresh.logits(Self.ids, batch: 2, length: 10).toArray() })
        #expect(model.trainableParameters.isEmpty)
    }

    @Test func saveLoadRoundTripAndBadFiles() throws {
        let dir = try makeTempDirectory("lora")
        defer { cleanup(dir) }
        let model = try Self.pilotModel()
        let lora = try LoRA.attach(to: model, config: LoRAConfig(rank: 2, alpha: 5, targets: ["k", "gate"], seed: 9))
        for l in lora.layers { l.b.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = Float(i) * 0.01 } } }
        let adapter = dir.appendingPathComponent("adapter")
        try lora.save(to: adapter, baseModel: "base")
        let text = try String(contentsOf: adapter.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        for needle in ["\"peft_type\": \"LORA\"", "\"task_type\": \"CAUSAL_LM\"", "\"r\": 2", "\"lora_alpha\": 5",
                       "\"fan_in_fan_out\": false", "\"bias\": \"none\"", "\"gate_proj\"", "\"k_proj\""] {
            #expect(text.contains(needle), "adapter_config.json lacks \(needle)")
        }
        let back = try Self.pilotModel()
        let loaded = try LoRA.load(from: adapter, into: back)
        #expect(loaded.config.rank == 2 && loaded.config.alpha == 5 && loaded.config.canonicalTargets.sorted() == ["gate_proj", "k_proj"])
        #expect(loaded.parameters.map { $0.tensor.toArray() } == lora.parameters.map { $0.tensor.toArray() })
        #expect(Autograd.withNoGrad { back.logits(Self.ids, batch: 2, length: 10).toArray() }
                == Autograd.withNoGrad { model.logits(Self.ids, batch: 2, length: 10).toArray() })

        // Damaged copies: each fails naming the file and the tensor or field, and attaches nothing.
        func damaged(_ label: String, config: ((String) -> String)? = nil, tensors: (([NamedTensor]) -> [NamedTensor])? = nil) throws -> URL {
            let d = dir.appendingPathComponent(label)
            try FileManager.default.copyItem(at: adapter, to: d)
            if let config {
                let url = d.appendingPathComponent("adapter_config.json")
                try config(try String(contentsOf: url, encoding: .utf8)).write(to: url, atomically: true, encoding: .utf8)
            }
            if let tensors {
                let file = try SafetensorsFile(url: d.appendingPathComponent("adapter_model.safetensors"))
                let all = try file.entries.map { NamedTensor(name: $0.name, shape: $0.shape, values: try file.floats($0)) }
                try SafetensorsWriter.write(tensors(all), to: d.appendingPathComponent("adapter_model.safetensors"))
            }
            return d
        }
        let cases: [(URL, ModelIOError.Kind, String)] = [
            (try damaged("missing", tensors: { Array($0.dropFirst()) }), .missingTensor, "lora_A.weight"),
            (try damaged("extra", tensors: { $0 + [NamedTensor(name: "base_model.model.lm_head.lora_A.weight", shape: [1], values: [0])] }),
             .unexpectedTensor, "lm_head"),
            (try damaged("shape", tensors: { ts in ts.map { NamedTensor(name: $0.name, shape: [$0.values.count], values: $0.values) } }),
             .shapeMismatch, "imply shape"),
            (try damaged("rank", config: { $0.replacingOccurrences(of: "\"r\": 2", with: "\"r\": 3") }), .shapeMismatch, "r = 3"),
            (try damaged("dora", config: { $0.replacingOccurrences(of: "\"use_dora\": false", with: "\"use_dora\": true") }), .badConfig, "use_dora"),
            (try damaged("target", config: { $0.replacingOccurrences(of: "\"k_proj\"", with: "\"kk_proj\"") }), .badConfig, "kk_proj"),
            (try damaged("alpha", config: { $0.replacingOccurrences(of: "\"lora_alpha\": 5", with: "\"lora_alpha\": 0") }), .badConfig, "lora.alpha"),
            (try damaged("json", config: { String($0.dropLast(3)) }), .badConfig, "not valid JSON"),
        ]
        for (d, kind, needle) in cases {
            let fresh = try Self.pilotModel()
            let e = expectModelIOError(kind) { try LoRA.load(from: d, into: fresh) }
            #expect(e?.description.contains(needle) == true, "\(d.lastPathComponent): \(e?.description ?? "no error")")
            #expect(e?.file.hasPrefix(d.path) == true)
            #expect(fresh.lora == nil && fresh.namedParameters.allSatisfy { $0.tensor.requiresGrad })
        }
        expectModelIOError(.unreadable) { try LoRA.load(from: dir.appendingPathComponent("nowhere"), into: try Self.pilotModel()) }
    }
}

/// Adapters Palimpsest saves, for PEFT to load. With `PALIMPSEST_EXPORT_DIR` set, each case is
/// written there (base checkpoint, adapter, logits) so `scripts/reference/lora_fixtures.py
/// verify DIR/*` can compare `PeftModel.from_pretrained` logits.
@Suite struct LoRAExportTests {
    @Test func savedAdaptersReloadWithTheSameLogits() throws {
        let keep = ProcessInfo.processInfo.environment["PALIMPSEST_EXPORT_DIR"]
        let root = try keep.map { URL(fileURLWithPath: $0) } ?? makeTempDirectory("lora-export")
        defer { if keep == nil { cleanup(root) } }
        let cases: [(String, String, LoRAConfig)] = [
            ("lora_llama3_export", "llama3_tied", LoRAConfig(rank: 4, alpha: 8, targets: LoRAConfig.moduleNames, seed: 1)),
            ("lora_qwen2_export", "qwen2_sharded", LoRAConfig(rank: 3, alpha: 4, dropout: 0.1, targets: ["q", "k", "o", "up"], seed: 2)),
        ]
        for (name, base, config) in cases {
            let model = try CausalLM(directory: Fixtures.url(base))
            let lora = try LoRA.attach(to: model, config: config)
            var rng = SeededRandom(seed: 42)
            for l in lora.layers {
                l.b.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] = Float(rng.nextGaussian() * 0.2) } }
            }
            let dir = root.appendingPathComponent(name)
            try model.save(to: dir.appendingPathComponent("base"))
            try lora.save(to: dir.appendingPathComponent("adapter"), baseModel: "../base")
            let ids: [Int32] = (0..<24).map { Int32(($0 * 11 + 5) % model.config.vocabSize) }
            let logits = Autograd.withNoGrad { model.logits(ids, batch: 2, length: 12).toArray() }
            let record: [String: Any] = ["input_ids": [Array(ids[0..<12]), Array(ids[12..<24])].map { $0.map(Int.init) },
                                         "logits": logits.map(Double.init)]
            try JSONSerialization.data(withJSONObject: record).write(to: dir.appendingPathComponent("palimpsest_logits.json"))

            let back = try CausalLM(directory: dir.appendingPathComponent("base"))
            try LoRA.load(from: dir.appendingPathComponent("adapter"), into: back)
            #expect(Autograd.withNoGrad { back.logits(ids, batch: 2, length: 12).toArray() } == logits)
        }
    }
}
