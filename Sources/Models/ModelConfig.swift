import Foundation
import JSONSupport

/// Rotary-embedding frequency scaling, as HF `rope_scaling` / `rope_parameters` describe it.
public enum RopeScaling: Sendable, Equatable {
    /// Position interpolation: every inverse frequency divided by `factor`.
    case linear(factor: Double)
    /// Llama 3.1+ wavelength-dependent scaling.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositionEmbeddings: Int)
}

/// The two decoder families Palimpsest implements.
public enum ModelArchitecture: String, Sendable, Equatable, CaseIterable {
    case llama
    case qwen2

    /// The class name HF writes in `architectures`.
    public var hfClassName: String {
        switch self {
        case .llama: return "LlamaForCausalLM"
        case .qwen2: return "Qwen2ForCausalLM"
        }
    }
}

/// An HF `config.json` for `LlamaForCausalLM` (Llama 2, 3, 3.1, 3.2) or `Qwen2ForCausalLM`
/// (Qwen2, Qwen2.5).
///
/// Decoding reads snake_case keys with HF's defaults for absent optional fields and rejects, by
/// field name, anything the decoder does not implement (other architectures, activations other
/// than SiLU, rope types other than default/linear/llama3, sliding-window attention, dropout).
/// Encoding writes a file transformers 4 and 5 both load.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// Llama's `attention_bias` (bias on q, k, v and o). Qwen2 ignores it: it always has q/k/v bias.
    public var attentionBias: Bool
    /// Llama's `mlp_bias` (bias on gate, up, down).
    public var mlpBias: Bool
    public var bosTokenId: Int?
    /// `eos_token_id`, which HF writes as an integer or a list.
    public var eosTokenIds: [Int]
    public var padTokenId: Int?
    /// Standard deviation of the seeded normal initialisation.
    public var initializerRange: Float

    public init(architecture: ModelArchitecture = .llama, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
                numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil,
                rmsNormEps: Float = 1e-6, ropeTheta: Double = 10000, ropeScaling: RopeScaling? = nil,
                maxPositionEmbeddings: Int = 2048, tieWordEmbeddings: Bool = false, attentionBias: Bool = false,
                mlpBias: Bool = false, bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil,
                initializerRange: Float = 0.02) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
        self.initializerRange = initializerRange
    }

    // MARK: Derived facts

    /// Bias on the q, k and v projections (always for Qwen2).
    public var qkvBias: Bool { architecture == .qwen2 || attentionBias }
    /// Bias on the output projection (Llama's attention_bias only).
    public var outputBias: Bool { architecture == .llama && attentionBias }
    /// Bias on gate, up and down (Llama's mlp_bias only).
    public var feedForwardBias: Bool { architecture == .llama && mlpBias }
    /// Query heads sharing one key/value head.
    public var groupSize: Int { numAttentionHeads / max(numKeyValueHeads, 1) }

    /// RoPE inverse frequencies (`head_dim / 2` of them) with the configured scaling applied,
    /// computed in Double and rounded once, as HF computes them in float32 from float64 powers.
    public var ropeInverseFrequencies: [Float] {
        let d = headDim
        var inv = (0..<(d / 2)).map { i -> Double in 1.0 / Foundation.pow(ropeTheta, Double(2 * i) / Double(d)) }
        switch ropeScaling {
        case nil: break
        case .linear(let factor)?:
            inv = inv.map { $0 / factor }
        case let .llama3(factor, low, high, old)?:
            let lowWavelen = Double(old) / low
            let highWavelen = Double(old) / high
            inv = inv.map { f in
                let wavelen = 2 * Double.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let s = (Double(old) / wavelen - low) / (high - low)
                return (1 - s) * f / factor + s * f
            }
        }
        return inv.map { Float($0) }
    }

    /// Checks the numbers agree with each other; `file` names the source in errors.
    public func validate(file: String = "config.json") throws {
        func bad(_ field: String, _ message: String) -> ModelIOError {
            ModelIOError(.badConfig, file: file, "field \"\(field)\": \(message)")
        }
        for (field, v) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                           ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                           ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
                           ("max_position_embeddings", maxPositionEmbeddings)] where v <= 0 {
            throw bad(field, "expected a positive integer, found \(v)")
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw bad("num_key_value_heads", "expected a divisor of num_attention_heads (\(numAttentionHeads)), found \(numKeyValueHeads)")
        }
        if headDim % 2 != 0 { throw bad("head_dim", "expected an even number for rotary embeddings, found \(headDim)") }
        if !(rmsNormEps > 0) { throw bad("rms_norm_eps", "expected a positive number, found \(rmsNormEps)") }
        if !(ropeTheta > 0) { throw bad("rope_theta", "expected a positive number, found \(ropeTheta)") }
        switch ropeScaling {
        case nil: break
        case .linear(let f)?:
            if !(f > 0) { throw bad("rope_scaling.factor", "expected a positive number, found \(f)") }
        case let .llama3(f, low, high, old)?:
            if !(f > 0) { throw bad("rope_scaling.factor", "expected a positive number, found \(f)") }
            if !(low > 0 && high > low) {
                throw bad("rope_scaling.high_freq_factor", "expected 0 < low_freq_factor < high_freq_factor, found \(low) and \(high)")
            }
            if old <= 0 { throw bad("rope_scaling.original_max_position_embeddings", "expected a positive integer, found \(old)") }
        }
        // Sizes that pass one by one can still multiply past Int (a hostile or mistyped file).
        if checkedParameterCount == nil || parameterTensorCount == nil || parameterBytes == nil {
            throw bad("num_hidden_layers", "vocab_size \(vocabSize), hidden_size \(hiddenSize), intermediate_size \(intermediateSize), "
                      + "num_hidden_layers \(numHiddenLayers) and head_dim \(headDim) imply more parameters than can be counted (overflow)")
        }
        let ids = eosTokenIds.map { ("eos_token_id", $0) } + [("bos_token_id", bosTokenId), ("pad_token_id", padTokenId)].compactMap { f, v in v.map { (f, $0) } }
        for (field, id) in ids where id < 0 || id >= vocabSize {
            throw bad(field, "token id \(id) is outside the vocabulary 0..<\(vocabSize)")
        }
    }

    // MARK: Loading

    /// Reads and validates a `config.json`.
    public static func load(from url: URL) throws -> ModelConfig {
        // A real config.json is a few KB.
        try decode(readSmallFile(url, limit: 16 << 20, what: "config"), file: url.path)
    }

    /// Decodes config JSON; `file` names the source in errors.
    public static func decode(_ data: Data, file: String = "config.json") throws -> ModelConfig {
        do {
            _ = try JSONValue.parse(data)
        } catch {
            throw ModelIOError(.badConfig, file: file, "not valid JSON: \(error)")
        }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let e as ConfigFieldError {
            throw ModelIOError(e.unsupported ? .unsupported : .badConfig, file: file, "field \"\(e.field)\": \(e.message)")
        } catch let e as DecodingError {
            throw ModelIOError(.badConfig, file: file, ConfigFieldError.describe(e))
        }
        try config.validate(file: file)
        return config
    }

    /// The `config.json` text Palimpsest writes (floats always with a decimal point, as Python writes them).
    public func encoded() -> Data {
        Data((jsonObject.serialized(indent: 0) + "\n").utf8)
    }

    // MARK: Codable

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias", mlpBias = "mlp_bias"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
        case initializerRange = "initializer_range", hiddenAct = "hidden_act", attentionDropout = "attention_dropout"
        case useSlidingWindow = "use_sliding_window", layerTypes = "layer_types", dtype = "torch_dtype"
        case useCache = "use_cache"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> T? {
            do { return try c.decodeIfPresent(T.self, forKey: key) } catch {
                throw ConfigFieldError(field: key.rawValue, message: "expected \(ConfigFieldError.typeName(T.self)), found \(Self.found(c, key))")
            }
        }
        func required(_ key: CodingKeys) throws -> Int {
            guard let v = try get(key, Int.self) else { throw ConfigFieldError(field: key.rawValue, message: "required but absent") }
            return v
        }

        let architectures = try get(.architectures, [String].self)
        let modelType = try get(.modelType, String.self)
        var arch: ModelArchitecture?
        if let modelType {
            guard let a = ModelArchitecture(rawValue: modelType) else {
                throw ConfigFieldError(field: "model_type", message: "unsupported model type \"\(modelType)\" (supported: llama, qwen2)", unsupported: true)
            }
            arch = a
        }
        if let architectures {
            for name in architectures {
                guard let a = ModelArchitecture.allCases.first(where: { $0.hfClassName == name }) else {
                    throw ConfigFieldError(field: "architectures", message: "unsupported architecture \"\(name)\" (supported: LlamaForCausalLM, Qwen2ForCausalLM)", unsupported: true)
                }
                if let arch, arch != a {
                    throw ConfigFieldError(field: "architectures", message: "\"\(name)\" disagrees with model_type \"\(arch.rawValue)\"")
                }
                arch = a
            }
        }
        guard let arch else {
            throw ConfigFieldError(field: "model_type", message: "required but absent (and no architectures given)")
        }
        architecture = arch
        vocabSize = try required(.vocabSize)
        hiddenSize = try required(.hiddenSize)
        intermediateSize = try required(.intermediateSize)
        numHiddenLayers = try required(.numHiddenLayers)
        numAttentionHeads = try required(.numAttentionHeads)
        numKeyValueHeads = try get(.numKeyValueHeads, Int.self) ?? numAttentionHeads
        if let h = try get(.headDim, Int.self) {
            headDim = h
        } else {
            guard numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
                throw ConfigFieldError(field: "head_dim", message: "absent, and hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
            }
            headDim = hiddenSize / numAttentionHeads
        }
        rmsNormEps = try get(.rmsNormEps, Float.self) ?? 1e-6
        maxPositionEmbeddings = try get(.maxPositionEmbeddings, Int.self) ?? (arch == .llama ? 2048 : 32768)
        tieWordEmbeddings = try get(.tieWordEmbeddings, Bool.self) ?? false
        attentionBias = try get(.attentionBias, Bool.self) ?? false
        mlpBias = try get(.mlpBias, Bool.self) ?? false
        if arch == .qwen2, mlpBias {
            throw ConfigFieldError(field: "mlp_bias", message: "Qwen2 has no MLP bias; found true", unsupported: true)
        }
        bosTokenId = try get(.bosTokenId, Int.self)
        padTokenId = try get(.padTokenId, Int.self)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenIds = [one]
        } else if let many = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenIds = many
        } else if c.contains(.eosTokenId), (try? c.decodeNil(forKey: .eosTokenId)) == true {
            eosTokenIds = []
        } else if c.contains(.eosTokenId) {
            throw ConfigFieldError(field: "eos_token_id", message: "expected an integer or a list of integers, found \(Self.found(c, .eosTokenId))")
        } else {
            eosTokenIds = []
        }
        initializerRange = try get(.initializerRange, Float.self) ?? 0.02

        if let act = try get(.hiddenAct, String.self), act != "silu" {
            throw ConfigFieldError(field: "hidden_act", message: "unsupported activation \"\(act)\" (supported: silu)", unsupported: true)
        }
        if let p = try get(.attentionDropout, Double.self), p != 0 {
            throw ConfigFieldError(field: "attention_dropout", message: "attention dropout is not implemented; expected 0, found \(p)", unsupported: true)
        }
        if try get(.useSlidingWindow, Bool.self) == true {
            throw ConfigFieldError(field: "use_sliding_window", message: "sliding-window attention is not implemented; expected false, found true", unsupported: true)
        }
        if let types = try get(.layerTypes, [String].self), let other = types.first(where: { $0 != "full_attention" }) {
            throw ConfigFieldError(field: "layer_types", message: "only full_attention layers are implemented; found \"\(other)\"", unsupported: true)
        }

        // Rope: transformers 5 writes `rope_parameters` (theta inside); older files write
        // `rope_theta` and `rope_scaling`. Prefer the newer block when both are present.
        let topTheta = try get(.ropeTheta, Double.self)
        if c.contains(.ropeParameters), (try? c.decodeNil(forKey: .ropeParameters)) != true {
            let p = try Self.ropeBlock(c, .ropeParameters)
            ropeTheta = p.theta ?? topTheta ?? 10000
            ropeScaling = p.scaling
        } else if c.contains(.ropeScaling), (try? c.decodeNil(forKey: .ropeScaling)) != true {
            let p = try Self.ropeBlock(c, .ropeScaling)
            ropeTheta = topTheta ?? p.theta ?? 10000
            ropeScaling = p.scaling
        } else {
            ropeTheta = topTheta ?? 10000
            ropeScaling = nil
        }
    }

    private static func ropeBlock(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> (theta: Double?, scaling: RopeScaling?) {
        let block: [String: RopeValue]
        do { block = try c.decode([String: RopeValue].self, forKey: key) } catch {
            throw ConfigFieldError(field: key.rawValue, message: "expected an object, found \(found(c, key))")
        }
        func number(_ name: String) throws -> Double? {
            guard let v = block[name] else { return nil }
            guard case .number(let d) = v else {
                throw ConfigFieldError(field: "\(key.rawValue).\(name)", message: "expected a number")
            }
            return d
        }
        func requiredNumber(_ name: String) throws -> Double {
            guard let d = try number(name) else {
                throw ConfigFieldError(field: "\(key.rawValue).\(name)", message: "required for this rope_type but absent")
            }
            return d
        }
        let theta = try number("rope_theta")
        var type = "default"
        if case .string(let t)? = block["rope_type"] ?? block["type"] { type = t }
        switch type {
        case "default":
            return (theta, nil)
        case "linear":
            return (theta, .linear(factor: try requiredNumber("factor")))
        case "llama3":
            let old = try requiredNumber("original_max_position_embeddings")
            // Int(exactly:) because a huge integral value (1e30) would trap Int(_:).
            guard old > 0, let oldInt = Int(exactly: old) else {
                throw ConfigFieldError(field: "\(key.rawValue).original_max_position_embeddings", message: "expected a positive integer, found \(old)")
            }
            return (theta, .llama3(factor: try requiredNumber("factor"), lowFreqFactor: try requiredNumber("low_freq_factor"),
                                   highFreqFactor: try requiredNumber("high_freq_factor"), originalMaxPositionEmbeddings: oldInt))
        default:
            throw ConfigFieldError(field: "\(key.rawValue).rope_type", message: "unsupported rope type \"\(type)\" (supported: default, linear, llama3)", unsupported: true)
        }
    }

    private static func found(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) -> String {
        if (try? c.decodeNil(forKey: key)) == true { return "null" }
        if let s = try? c.decode(String.self, forKey: key) { return "the string \"\(s)\"" }
        if let b = try? c.decode(Bool.self, forKey: key) { return "\(b)" }
        if let d = try? c.decode(Double.self, forKey: key) { return "the number \(d)" }
        if (try? c.decode([RopeValue].self, forKey: key)) != nil { return "an array" }
        return "an object"
    }

    /// The fields as HF writes them, in a fixed order.
    var jsonObject: JSONValue {
        var o: [(String, JSONValue)] = [
            ("architectures", .array([.string(architecture.hfClassName)])),
            ("model_type", .string(architecture.rawValue)),
            ("vocab_size", .int(vocabSize)),
            ("hidden_size", .int(hiddenSize)),
            ("intermediate_size", .int(intermediateSize)),
            ("num_hidden_layers", .int(numHiddenLayers)),
            ("num_attention_heads", .int(numAttentionHeads)),
            ("num_key_value_heads", .int(numKeyValueHeads)),
            ("head_dim", .int(headDim)),
            ("rms_norm_eps", .double(Double("\(rmsNormEps)") ?? Double(rmsNormEps))),
            ("max_position_embeddings", .int(maxPositionEmbeddings)),
            ("tie_word_embeddings", .bool(tieWordEmbeddings)),
        ]
        if architecture == .llama {
            o += [("attention_bias", .bool(attentionBias)), ("mlp_bias", .bool(mlpBias))]
        } else {
            o += [("use_sliding_window", .bool(false))]
        }
        o += [
            ("bos_token_id", bosTokenId.map { .int($0) } ?? .null),
            ("eos_token_id", eosTokenIds.count == 1 ? .int(eosTokenIds[0]) : eosTokenIds.isEmpty ? .null : .array(eosTokenIds.map { .int($0) })),
            ("pad_token_id", padTokenId.map { .int($0) } ?? .null),
            ("initializer_range", .double(Double("\(initializerRange)") ?? Double(initializerRange))),
            ("hidden_act", .string("silu")),
            ("attention_dropout", .double(0)),
            ("dtype", .string("float32")),
            ("use_cache", .bool(true)),
        ]
        // Both spellings, so transformers 4 (rope_theta + rope_scaling) and 5 (rope_parameters) agree.
        var scaling: [(String, JSONValue)] = []
        switch ropeScaling {
        case nil: break
        case .linear(let f)?:
            scaling = [("rope_type", .string("linear")), ("factor", .double(f))]
        case let .llama3(f, low, high, old)?:
            scaling = [("rope_type", .string("llama3")), ("factor", .double(f)), ("low_freq_factor", .double(low)),
                       ("high_freq_factor", .double(high)), ("original_max_position_embeddings", .int(old))]
        }
        o.append(("rope_theta", .double(ropeTheta)))
        o.append(("rope_scaling", scaling.isEmpty ? .null : .object(scaling)))
        o.append(("rope_parameters", .object((scaling.isEmpty ? [("rope_type", .string("default"))] : scaling) + [("rope_theta", .double(ropeTheta))])))
        return .object(o)
    }

    public func encode(to encoder: Encoder) throws {
        try jsonObject.encode(to: encoder)
    }
}

/// A scalar in a rope block (numbers, strings, booleans, null; nested values are tolerated).
enum RopeValue: Codable, Equatable {
    case number(Double), string(String), bool(Bool), null, other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .other }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        case .null, .other: try c.encodeNil()
        }
    }
}

/// A config field that is wrong or unsupported; `ModelConfig.decode` adds the file name.
struct ConfigFieldError: Error, CustomStringConvertible {
    let field: String
    let message: String
    var unsupported = false

    var description: String { "field \"\(field)\": \(message)" }

    static func typeName<T>(_ t: T.Type) -> String {
        switch t {
        case is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "a boolean"
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        case is [Int].Type: return "a list of integers"
        default: return "\(t)"
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ ctx: DecodingError.Context) -> String { ctx.codingPath.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            let p = path(ctx)
            return p.isEmpty ? "\(ctx.debugDescription)" : "field \"\(p)\": \(ctx.debugDescription)"
        case .keyNotFound(let key, _):
            return "field \"\(key.stringValue)\": required but absent"
        @unknown default:
            return "\(e)"
        }
    }
}
