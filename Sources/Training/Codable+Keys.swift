/// A coding key built from any string, to read "name + hyper-parameters" maps from YAML/JSON.
struct AnyKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

extension KeyedDecodingContainer where K == AnyKey {
    /// Rejects keys outside `allowed`, so a misspelt hyper-parameter is an error, not a silent default.
    func checkKeys(_ allowed: Set<String>, _ what: String) throws {
        for key in allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self,
                debugDescription: "\(what): unknown key '\(key.stringValue)'; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func value<T: Decodable>(_ key: String, default d: T) throws -> T {
        try decodeIfPresent(T.self, forKey: AnyKey(key)) ?? d
    }
}

// Spec-friendly decoding (defaults for missing keys, unknown keys rejected) for the option structs.

extension AdamWConfig {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        try c.checkKeys(["beta1", "beta2", "eps", "weightDecay", "amsgrad"], "adamw")
        let d = AdamWConfig()
        self.init(beta1: try c.value("beta1", default: d.beta1), beta2: try c.value("beta2", default: d.beta2),
                  eps: try c.value("eps", default: d.eps), weightDecay: try c.value("weightDecay", default: d.weightDecay),
                  amsgrad: try c.value("amsgrad", default: d.amsgrad))
    }
}

extension SGDConfig {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        try c.checkKeys(["momentum", "dampening", "nesterov", "weightDecay"], "sgd")
        self.init(momentum: try c.value("momentum", default: 0), dampening: try c.value("dampening", default: 0),
                  nesterov: try c.value("nesterov", default: false), weightDecay: try c.value("weightDecay", default: 0))
    }
}

extension BatchingOptions {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        try c.checkKeys(["batchSize", "maxTokens", "maxContext", "truncation", "padId", "replayPerBatch", "shuffle", "dropLast"],
                        "batching")
        self.init(batchSize: try c.decode(Int.self, forKey: AnyKey("batchSize")),
                  maxTokens: try c.decodeIfPresent(Int.self, forKey: AnyKey("maxTokens")),
                  maxContext: try c.decode(Int.self, forKey: AnyKey("maxContext")),
                  truncation: try c.value("truncation", default: Truncation.error),
                  padId: try c.value("padId", default: 0), replayPerBatch: try c.value("replayPerBatch", default: 0),
                  shuffle: try c.value("shuffle", default: true), dropLast: try c.value("dropLast", default: false))
    }
}
