import Engine

/// One parameter a config implies: its checkpoint name, shape and how it starts.
public struct ParameterSpec: Sendable, Equatable {
    public enum Initialization: Sendable, Equatable {
        /// Normal with mean 0 and the config's `initializer_range` as standard deviation.
        case normal
        /// All ones (RMSNorm weights).
        case ones
        /// All zeros (biases).
        case zeros
    }

    public let name: String
    public let shape: [Int]
    public let initialization: Initialization

    public var elementCount: Int { shape.reduce(1, *) }
}

extension ModelConfig {
    /// Every parameter, named as in HF checkpoints, in HF's order. `lm_head.weight` is absent
    /// when the embeddings are tied.
    public var parameterSpecs: [ParameterSpec] {
        let d = hiddenSize, q = numAttentionHeads * headDim, kv = numKeyValueHeads * headDim, f = intermediateSize
        var specs: [ParameterSpec] = [ParameterSpec(name: "model.embed_tokens.weight", shape: [vocabSize, d], initialization: .normal)]
        func linear(_ name: String, out: Int, in inDim: Int, bias: Bool) {
            specs.append(ParameterSpec(name: name + ".weight", shape: [out, inDim], initialization: .normal))
            if bias { specs.append(ParameterSpec(name: name + ".bias", shape: [out], initialization: .zeros)) }
        }
        for i in 0..<numHiddenLayers {
            let p = "model.layers.\(i)."
            specs.append(ParameterSpec(name: p + "input_layernorm.weight", shape: [d], initialization: .ones))
            linear(p + "self_attn.q_proj", out: q, in: d, bias: qkvBias)
            linear(p + "self_attn.k_proj", out: kv, in: d, bias: qkvBias)
            linear(p + "self_attn.v_proj", out: kv, in: d, bias: qkvBias)
            linear(p + "self_attn.o_proj", out: d, in: q, bias: outputBias)
            specs.append(ParameterSpec(name: p + "post_attention_layernorm.weight", shape: [d], initialization: .ones))
            linear(p + "mlp.gate_proj", out: f, in: d, bias: feedForwardBias)
            linear(p + "mlp.up_proj", out: f, in: d, bias: feedForwardBias)
            linear(p + "mlp.down_proj", out: d, in: f, bias: feedForwardBias)
        }
        specs.append(ParameterSpec(name: "model.norm.weight", shape: [d], initialization: .ones))
        if !tieWordEmbeddings {
            specs.append(ParameterSpec(name: "lm_head.weight", shape: [vocabSize, d], initialization: .normal))
        }
        return specs
    }

    /// Total parameter count (tied embeddings counted once).
    public var parameterCount: Int { checkedParameterCount ?? parameterSpecs.reduce(0) { $0 + $1.elementCount } }

    /// Number of tensors in `parameterSpecs`, computed without listing them (a hostile config
    /// may claim 10^12 layers), or nil when it does not fit in an Int.
    public var parameterTensorCount: Int? {
        let perLayer = 9 + (qkvBias ? 3 : 0) + (outputBias ? 1 : 0) + (feedForwardBias ? 3 : 0)
        let (layers, o) = max(numHiddenLayers, 0).multipliedReportingOverflow(by: perLayer)
        return o ? nil : checkedSum([layers, 2, tieWordEmbeddings ? 0 : 1])
    }

    /// The parameter count computed in closed form with overflow checks; nil when the sizes
    /// imply more parameters than an Int holds. Agrees with `parameterSpecs` when not nil.
    public var checkedParameterCount: Int? {
        let d = hiddenSize, q = numAttentionHeads &* headDim, kv = numKeyValueHeads &* headDim, f = intermediateSize
        guard [d, f, numAttentionHeads, numKeyValueHeads, headDim, vocabSize, numHiddenLayers].allSatisfy({ $0 >= 0 }),
              let qn = checkedProduct([numAttentionHeads, headDim]), let kvn = checkedProduct([numKeyValueHeads, headDim]),
              qn == q, kvn == kv else { return nil }
        guard let layer = checkedSum([
            checkedProduct([2, d]),
            checkedProduct([q, d]), checkedProduct([kv, d]), checkedProduct([kv, d]), checkedProduct([d, q]),
            checkedProduct([3, f, d]),
            qkvBias ? checkedSum([q, kv, kv]) : 0, outputBias ? d : 0, feedForwardBias ? checkedSum([f, f, d]) : 0,
        ]) else { return nil }
        let embedding = checkedProduct([vocabSize, d])
        return checkedSum([embedding, checkedProduct([layer, numHiddenLayers]), d, tieWordEmbeddings ? 0 : embedding])
    }

    /// Bytes of the parameters as Float32 (nil on overflow): what loading the model allocates.
    public var parameterBytes: Int? { checkedParameterCount.flatMap { checkedProduct([$0, MemoryLayout<Float>.size]) } }

    /// Fresh parameters initialised as HF does (normal with std `initializer_range` for linear
    /// and embedding weights, ones for norms, zeros for biases), reproducible from `seed`.
    /// Each parameter draws from its own stream derived from its name, so adding a layer does
    /// not change the others.
    public func initialParameters(seed: UInt64) -> [NamedTensor] {
        let root = SeededRandom(seed: seed)
        let std = Double(initializerRange)
        return parameterSpecs.map { spec in
            var values = [Float](repeating: 0, count: spec.elementCount)
            switch spec.initialization {
            case .zeros: break
            case .ones: values = [Float](repeating: 1, count: spec.elementCount)
            case .normal:
                var rng = root.derived(spec.name)
                for i in values.indices { values[i] = Float(rng.nextGaussian() * std) }
            }
            return NamedTensor(name: spec.name, shape: spec.shape, values: values)
        }
    }
}

private func checkedProduct(_ xs: [Int?]) -> Int? {
    var p = 1
    for x in xs {
        guard let x else { return nil }
        let (m, o) = p.multipliedReportingOverflow(by: x)
        if o { return nil }
        p = m
    }
    return p
}

private func checkedSum(_ xs: [Int?]) -> Int? {
    var s = 0
    for x in xs {
        guard let x else { return nil }
        let (m, o) = s.addingReportingOverflow(x)
        if o { return nil }
        s = m
    }
    return s
}

/// Built-in shapes for from-scratch experiments (Llama architecture, untied embeddings).
public enum ModelPreset: String, CaseIterable, Sendable {
    /// 0.94M parameters: the demo's measured recipe (vocab 768).
    case pilot
    /// vocab 2048, hidden 128, 4 layers.
    case tiny
    /// vocab 8192, hidden 512, 8 layers.
    case small
    /// vocab 32000, hidden 1024, 12 layers.
    case medium

    public var config: ModelConfig {
        switch self {
        case .pilot:
            return ModelConfig(vocabSize: 768, hiddenSize: 128, intermediateSize: 352, numHiddenLayers: 4,
                               numAttentionHeads: 4, numKeyValueHeads: 2)
        case .tiny:
            return ModelConfig(vocabSize: 2048, hiddenSize: 128, intermediateSize: 352, numHiddenLayers: 4,
                               numAttentionHeads: 4, numKeyValueHeads: 2)
        case .small:
            return ModelConfig(vocabSize: 8192, hiddenSize: 512, intermediateSize: 1408, numHiddenLayers: 8,
                               numAttentionHeads: 8, numKeyValueHeads: 4)
        case .medium:
            return ModelConfig(vocabSize: 32000, hiddenSize: 1024, intermediateSize: 2816, numHiddenLayers: 12,
                               numAttentionHeads: 16, numKeyValueHeads: 8)
        }
    }
}
