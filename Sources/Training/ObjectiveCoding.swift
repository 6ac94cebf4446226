import Foundation

/// YAML/JSON form of an objective: a map with `name` and its hyper-parameters, e.g.
/// `{name: npo, beta: 0.5}`, `{name: graddiff, gamma: 1, alpha: 1, retain: kl}`,
/// `{name: simnpo, beta: 2.5, gamma: 0, length_normalized: true}`. Missing hyper-parameters take
/// the defaults of docs/unlearning.md; unknown keys and names are errors. `simnpo_code` and
/// `simnpo_code_rt` are the impossibility paper's SimNPO (summed NLL, no margin, β = 1).
extension Objective: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let name = try c.decode(String.self, forKey: AnyKey("name"))
        func keys(_ k: Set<String>) throws { try c.checkKeys(k.union(["name"]), "objective \(name)") }
        switch name {
        case "sft":
            try keys([]); self = .sft
        case "dpo":
            try keys(["beta"]); self = .dpo(beta: try c.value("beta", default: 0.1))
        case "ga", "gradient_ascent":
            try keys([]); self = .gradientAscent
        case "graddiff":
            try keys(["gamma", "alpha", "retain"])
            self = .gradDiff(gamma: try c.value("gamma", default: 1), alpha: try c.value("alpha", default: 1),
                             retain: try c.value("retain", default: RetainLoss.nll))
        case "npo":
            try keys(["beta"]); self = .npo(beta: try c.value("beta", default: 0.5))
        case "npo_rt":
            try keys(["beta", "alpha", "retain"])
            self = .npoRT(beta: try c.value("beta", default: 0.5), alpha: try c.value("alpha", default: 1),
                          retain: try c.value("retain", default: RetainLoss.nll))
        case "simnpo", "simnpo_code":
            let code = name == "simnpo_code"
            try keys(["beta", "gamma", "length_normalized"])
            self = .simNPO(beta: try c.value("beta", default: code ? 1 : 2.5), gamma: try c.value("gamma", default: 0),
                           lengthNormalized: try c.value("length_normalized", default: !code))
        case "simnpo_rt", "simnpo_code_rt":
            let code = name == "simnpo_code_rt"
            try keys(["beta", "gamma", "length_normalized", "alpha", "retain"])
            self = .simNPORT(beta: try c.value("beta", default: code ? 1 : 2.5), gamma: try c.value("gamma", default: 0),
                             lengthNormalized: try c.value("length_normalized", default: !code),
                             alpha: try c.value("alpha", default: 1), retain: try c.value("retain", default: RetainLoss.nll))
        case "idkdpo":
            try keys(["beta", "alpha", "retain"])
            self = .idkDPO(beta: try c.value("beta", default: 0.1), alpha: try c.value("alpha", default: 0),
                           retain: try c.value("retain", default: RetainLoss.nll))
        default:
            throw DecodingError.dataCorruptedError(forKey: AnyKey("name"), in: c,
                debugDescription: "objective: unknown name '\(name)'; expected one of sft, dpo, ga, graddiff, npo, npo_rt, simnpo, simnpo_rt, simnpo_code, simnpo_code_rt, idkdpo")
        }
        do { try validate() } catch {
            throw DecodingError.dataCorruptedError(forKey: AnyKey("name"), in: c, debugDescription: "\(error)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        func put<T: Encodable>(_ k: String, _ v: T) throws { try c.encode(v, forKey: AnyKey(k)) }
        switch self {
        case .sft, .gradientAscent: break
        case .dpo(let b), .npo(let b): try put("beta", b)
        case .gradDiff(let g, let a, let r): try put("gamma", g); try put("alpha", a); try put("retain", r)
        case .npoRT(let b, let a, let r): try put("beta", b); try put("alpha", a); try put("retain", r)
        case .simNPO(let b, let g, let n): try put("beta", b); try put("gamma", g); try put("length_normalized", n)
        case .simNPORT(let b, let g, let n, let a, let r):
            try put("beta", b); try put("gamma", g); try put("length_normalized", n); try put("alpha", a); try put("retain", r)
        case .idkDPO(let b, let a, let r): try put("beta", b); try put("alpha", a); try put("retain", r)
        }
    }
}

extension Objective {
    /// The objective called `name` (as in specs: "npo", "simnpo_code", ...) with every hyper-parameter
    /// at its default; nil for an unknown name.
    public static func named(_ name: String) -> Objective? {
        guard let json = try? JSONEncoder().encode(["name": name]) else { return nil }
        return try? JSONDecoder().decode(Objective.self, from: json)
    }

    /// The numeric hyper-parameters under their spec keys (`retain` and `length_normalized` are not numbers).
    public var numericParameters: [String: Double] {
        switch self {
        case .sft, .gradientAscent: return [:]
        case .dpo(let b), .npo(let b): return ["beta": b]
        case .gradDiff(let g, let a, _): return ["gamma": g, "alpha": a]
        case .npoRT(let b, let a, _): return ["beta": b, "alpha": a]
        case .simNPO(let b, let g, _): return ["beta": b, "gamma": g]
        case .simNPORT(let b, let g, _, let a, _): return ["beta": b, "gamma": g, "alpha": a]
        case .idkDPO(let b, let a, _): return ["beta": b, "alpha": a]
        }
    }
}
