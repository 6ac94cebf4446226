import Foundation

/// Which group of sequences a statistic belongs to.
public enum SequenceRole: String, Codable, Hashable, Sendable, CaseIterable {
    /// SFT training sequences.
    case target
    /// DPO preferred / dispreferred responses (index i of each forms a pair).
    case chosen, rejected
    /// Sequences of the forget set S_U (for IdkDPO: the rejected side).
    case forget
    /// Retain-set sequences (GradDiff, +RT variants).
    case retain
    /// IdkDPO: the "I don't know" answer to forget prompt i (the chosen side).
    case alternative
}

/// Per-sequence statistics of one group: everything the objectives need from the model.
///
/// `logLikelihood[i]` = log π_θ(y_i | x_i) summed over the response tokens of sequence i,
/// `tokenCounts[i]` = |y_i|. `referenceLogLikelihood` is the same under the frozen reference
/// model (NPO, DPO, IdkDPO). `klToReference[i]` = Σ_t KL(π_ref(·|ctx_t) ‖ π_θ(·|ctx_t)) over the
/// response positions of sequence i (the GradDiff/RT retain term `.kl`); it needs full
/// distributions, so `TokenLogLikelihood.klToReference` computes it from logits.
public struct SequenceStats: Sendable, Hashable {
    public var logLikelihood: [Double]
    public var tokenCounts: [Int]
    public var referenceLogLikelihood: [Double]?
    public var klToReference: [Double]?

    public init(logLikelihood: [Double], tokenCounts: [Int], referenceLogLikelihood: [Double]? = nil,
                klToReference: [Double]? = nil) {
        self.logLikelihood = logLikelihood; self.tokenCounts = tokenCounts
        self.referenceLogLikelihood = referenceLogLikelihood; self.klToReference = klToReference
    }

    public var count: Int { logLikelihood.count }
    public var totalTokens: Int { tokenCounts.reduce(0, +) }
}

/// d loss / d statistic for each sequence of a group: the weights w_i of
/// d loss / d logits = Σ_i w_i · d logLikelihood_i / d logits (+ Σ_i k_i · d kl_i / d logits).
public struct SequenceGradients: Sendable, Hashable {
    public var logLikelihood: [Double]
    /// Present when the objective uses `klToReference` of this group.
    public var klToReference: [Double]?
}

/// Sizes of the full (logical) batch of one group, when the caller evaluates it in micro-batches.
///
/// Every objective here is a sum over sequences of a term that depends only on that sequence
/// and on the batch's sequence and token counts. Passing the full batch's counts to each
/// micro-batch's `evaluate` makes the micro-batch losses and weights add up exactly to the
/// full batch's.
public struct GroupTotals: Sendable, Hashable {
    public var sequences: Int
    public var tokens: Int
    public init(sequences: Int, tokens: Int) { self.sequences = sequences; self.tokens = tokens }
}

/// What an objective returns: its value and d value / d per-sequence statistics.
public struct ObjectiveResult: Sendable {
    /// The loss to minimise.
    public var loss: Double
    /// Named parts of the loss (e.g. "forget", "retain"), for logging; they add up to `loss`.
    public var terms: [String: Double]
    /// Weights per role, same order as the inputs.
    public var gradients: [SequenceRole: SequenceGradients]
}

/// The retain term of GradDiff and the +RT variants: α times a token-mean over retain response
/// tokens of either the NLL or the KL from the reference model to the current one.
public enum RetainLoss: String, Codable, Hashable, Sendable {
    /// −Σ_i log π_θ(y_i|x_i) / Σ_i |y_i|.
    case nll
    /// Σ_i Σ_t KL(π_ref ‖ π_θ) / Σ_i |y_i| (open-unlearning's "KL" retain loss, but averaged over
    /// response tokens instead of over every position of the padded batch).
    case kl
}

/// Every training and unlearning objective, with its hyper-parameters.
///
/// All of them depend on the model only through per-sequence statistics (`SequenceStats`),
/// so one backward path serves them all: `evaluate` returns the loss and d loss / d statistic
/// per sequence; `TokenLogLikelihood.backward` turns those weights into d loss / d logits.
/// Notation: ℓ_i = log π_θ(y_i|x_i) (summed), ℓ_i^ref under the reference, |y| tokens, N
/// sequences, σ the logistic function. See docs/unlearning.md.
public enum Objective: Hashable, Sendable {
    /// Supervised fine-tuning: −Σ_i ℓ_i / Σ_i |y_i| (token-mean NLL). Roles: target.
    case sft
    /// DPO (sigmoid loss): −mean_i log σ(β·((ℓ_c − ℓ_c^ref) − (ℓ_r − ℓ_r^ref))). Roles: chosen, rejected.
    case dpo(beta: Double)
    /// GA: Σ_i ℓ_i / Σ_i |y_i| over the forget batch (minimising it ascends the NLL). Local.
    case gradientAscent
    /// GradDiff: γ·GA_forget + α·retain term. Not local.
    case gradDiff(gamma: Double, alpha: Double, retain: RetainLoss)
    /// NPO: −(2/β)·mean_i log σ(−β·(ℓ_i − ℓ_i^ref)), summed log-likelihoods. Local.
    case npo(beta: Double)
    /// NPO + α·retain term. Not local.
    case npoRT(beta: Double, alpha: Double, retain: RetainLoss)
    /// SimNPO: −(2/β)·mean_i log σ(β·NLL_i − γ) with NLL_i = −ℓ_i/|y_i| when `lengthNormalized`
    /// (the SimNPO paper) or −ℓ_i (the impossibility paper's code, with γ = 0). Local.
    case simNPO(beta: Double, gamma: Double, lengthNormalized: Bool)
    /// SimNPO + α·retain term. Not local.
    case simNPORT(beta: Double, gamma: Double, lengthNormalized: Bool, alpha: Double, retain: RetainLoss)
    /// IdkDPO: DPO with the "I don't know" answer (role alternative) as chosen and the forget
    /// answer (role forget) as rejected, reference = the model before unlearning,
    /// + α·retain term when α > 0. Local when α = 0.
    case idkDPO(beta: Double, alpha: Double, retain: RetainLoss)

    // Defaults (see docs/unlearning.md for their sources).
    public static let ga = Objective.gradientAscent
    public static func gradDiff() -> Objective { .gradDiff(gamma: 1, alpha: 1, retain: .nll) }
    /// NPO with the paper's β = 0.5.
    public static func npo() -> Objective { .npo(beta: 0.5) }
    public static func npoRT(beta: Double = 0.5, alpha: Double = 1) -> Objective { .npoRT(beta: beta, alpha: alpha, retain: .nll) }
    /// SimNPO as published: length-normalised, β = 2.5, γ = 0.
    public static func simNPOOriginal(beta: Double = 2.5, gamma: Double = 0) -> Objective {
        .simNPO(beta: beta, gamma: gamma, lengthNormalized: true)
    }
    /// SimNPO as in the impossibility paper's code: summed NLL, no margin, β = 1.
    public static func simNPOPaperCode(beta: Double = 1) -> Objective {
        .simNPO(beta: beta, gamma: 0, lengthNormalized: false)
    }
    public static func idkDPO(beta: Double = 0.1) -> Objective { .idkDPO(beta: beta, alpha: 0, retain: .nll) }

    /// Short name used in specs and logs.
    public var name: String {
        switch self {
        case .sft: return "sft"
        case .dpo: return "dpo"
        case .gradientAscent: return "ga"
        case .gradDiff: return "graddiff"
        case .npo: return "npo"
        case .npoRT: return "npo_rt"
        case .simNPO: return "simnpo"
        case .simNPORT: return "simnpo_rt"
        case .idkDPO: return "idkdpo"
        }
    }

    /// Whether this is an unlearning objective (it acts on the forget set).
    public var isUnlearning: Bool {
        switch self {
        case .sft, .dpo: return false
        default: return true
        }
    }

    /// Whether the objective only uses gradients of forget-set sequences (GA, NPO, SimNPO,
    /// IdkDPO without retain term). Training objectives are not local.
    public var isLocal: Bool {
        switch self {
        case .gradientAscent, .npo, .simNPO: return true
        case .idkDPO(_, let alpha, _): return alpha == 0
        default: return false
        }
    }

    /// The roles `evaluate` needs.
    public var roles: [SequenceRole] {
        switch self {
        case .sft: return [.target]
        case .dpo: return [.chosen, .rejected]
        case .gradientAscent, .npo, .simNPO: return [.forget]
        case .gradDiff, .npoRT, .simNPORT: return [.forget, .retain]
        case .idkDPO(_, let alpha, _): return alpha == 0 ? [.forget, .alternative] : [.forget, .alternative, .retain]
        }
    }

    /// Whether `role` needs `referenceLogLikelihood` (a frozen reference model).
    public func needsReferenceLogLikelihood(_ role: SequenceRole) -> Bool {
        switch (self, role) {
        case (.dpo, .chosen), (.dpo, .rejected): return true
        case (.npo, .forget), (.npoRT, .forget): return true
        case (.idkDPO, .forget), (.idkDPO, .alternative): return true
        default: return false
        }
    }

    /// Whether `role` needs `klToReference` (the retain term is `.kl`).
    public func needsKL(_ role: SequenceRole) -> Bool {
        guard role == .retain, let r = retainTerm, r.alpha != 0 else { return false }
        return r.kind == .kl
    }

    var retainTerm: (alpha: Double, kind: RetainLoss)? {
        switch self {
        case .gradDiff(_, let a, let k), .npoRT(_, let a, let k), .simNPORT(_, _, _, let a, let k): return (a, k)
        case .idkDPO(_, let a, let k): return a == 0 ? nil : (a, k)
        default: return nil
        }
    }

    /// Checks the hyper-parameters: β > 0, finite γ, α ≥ 0.
    public func validate() throws {
        func beta(_ b: Double) throws {
            try require(b.isFinite && b > 0, "\(name).beta", "must be finite and > 0, got \(b)")
        }
        func weight(_ x: Double, _ n: String) throws {
            try require(x.isFinite && x >= 0, "\(name).\(n)", "must be finite and >= 0, got \(x)")
        }
        switch self {
        case .sft, .gradientAscent: break
        case .dpo(let b), .npo(let b): try beta(b)
        case .gradDiff(let g, let a, _): try weight(g, "gamma"); try weight(a, "alpha")
        case .npoRT(let b, let a, _): try beta(b); try weight(a, "alpha")
        case .simNPO(let b, let g, _):
            try beta(b); try require(g.isFinite, "\(name).gamma", "must be finite, got \(g)")
        case .simNPORT(let b, let g, _, let a, _):
            try beta(b); try require(g.isFinite, "\(name).gamma", "must be finite, got \(g)"); try weight(a, "alpha")
        case .idkDPO(let b, let a, _): try beta(b); try weight(a, "alpha")
        }
    }

    /// The loss and its derivative with respect to every per-sequence statistic.
    ///
    /// - Parameter totals: sizes of the full batch per role when `inputs` is one micro-batch of
    ///   it (see `GroupTotals`); by default the sizes of `inputs`.
    /// - Throws: a missing or empty role, mismatched lengths, a sequence without response
    ///   tokens, a missing reference or KL statistic, a non-finite statistic, bad hyper-parameters.
    public func evaluate(_ inputs: [SequenceRole: SequenceStats],
                         totals: [SequenceRole: GroupTotals] = [:]) throws -> ObjectiveResult {
        try validate()
        var groups: [SequenceRole: Group] = [:]
        for role in roles {
            guard let stats = inputs[role] else {
                throw TrainingError.empty(context: "\(name)", message: "needs sequences for role '\(role.rawValue)'")
            }
            groups[role] = try Group(stats, role: role, objective: self, totals: totals[role])
        }
        var result = ObjectiveResult(loss: 0, terms: [:], gradients: [:])
        for (role, g) in groups {
            result.gradients[role] = SequenceGradients(logLikelihood: Array(repeating: 0, count: g.s.count),
                                                       klToReference: needsKL(role) ? Array(repeating: 0, count: g.s.count) : nil)
        }
        func add(_ term: String, _ value: Double) {
            result.terms[term, default: 0] += value
            result.loss += value
        }
        // Token-mean log-likelihood term c·Σ ℓ_i / T for one group.
        func tokenMeanLL(_ role: SequenceRole, _ c: Double, _ term: String) {
            let g = groups[role]!
            let inv = 1 / Double(g.totalTokens)
            var value = 0.0
            for i in 0..<g.s.count {
                value += c * g.s.logLikelihood[i] * inv
                result.gradients[role]!.logLikelihood[i] += c * inv
            }
            add(term, value)
        }
        func retain(_ alpha: Double, _ kind: RetainLoss) {
            guard alpha != 0 else { return }
            switch kind {
            case .nll: tokenMeanLL(.retain, -alpha, "retain")
            case .kl:
                let g = groups[.retain]!
                let inv = 1 / Double(g.totalTokens)
                var value = 0.0
                for i in 0..<g.s.count {
                    value += alpha * g.s.klToReference![i] * inv
                    result.gradients[.retain]!.klToReference![i] += alpha * inv
                }
                add("retain", value)
            }
        }
        // −(2/β)·mean log σ(u_i) with u_i = a·ℓ_i + b_i; d/dℓ_i = −(2/β)·a·σ(−u_i)/N.
        func npoLike(_ role: SequenceRole, beta: Double, slope: (Int) -> Double, offset: (Int) -> Double) {
            let g = groups[role]!
            let n = Double(g.totalSequences)
            var value = 0.0
            for i in 0..<g.s.count {
                let a = slope(i)
                let u = a * g.s.logLikelihood[i] + offset(i)
                value += -(2 / beta) * logSigmoid(u) / n
                result.gradients[role]!.logLikelihood[i] += -(2 / beta) * a * sigmoid(-u) / n
            }
            add("forget", value)
        }
        func simNPO(_ beta: Double, _ gamma: Double, _ normalized: Bool) {
            let g = groups[.forget]!
            // β·NLL_i − γ = −(β/L_i)·ℓ_i − γ, with L_i = |y_i| or 1.
            npoLike(.forget, beta: beta,
                    slope: { i in -beta / (normalized ? Double(g.s.tokenCounts[i]) : 1) },
                    offset: { _ in -gamma })
        }
        func npo(_ beta: Double) {
            let g = groups[.forget]!
            npoLike(.forget, beta: beta, slope: { _ in -beta }, offset: { i in beta * g.s.referenceLogLikelihood![i] })
        }
        // −mean log σ(β·((ℓ_w − ℓ_w^ref) − (ℓ_l − ℓ_l^ref))) over pairs.
        func dpo(_ beta: Double, chosen: SequenceRole, rejected: SequenceRole, term: String) {
            let w = groups[chosen]!, l = groups[rejected]!
            let n = Double(w.totalSequences)
            var value = 0.0
            for i in 0..<w.s.count {
                let margin = (w.s.logLikelihood[i] - w.s.referenceLogLikelihood![i])
                    - (l.s.logLikelihood[i] - l.s.referenceLogLikelihood![i])
                let u = beta * margin
                value += -logSigmoid(u) / n
                let d = -beta * sigmoid(-u) / n
                result.gradients[chosen]!.logLikelihood[i] += d
                result.gradients[rejected]!.logLikelihood[i] -= d
            }
            add(term, value)
        }

        switch self {
        case .sft:
            tokenMeanLL(.target, -1, "nll")
        case .dpo(let beta):
            try pairCheck(groups[.chosen]!, groups[.rejected]!, "chosen", "rejected")
            dpo(beta, chosen: .chosen, rejected: .rejected, term: "dpo")
        case .gradientAscent:
            tokenMeanLL(.forget, 1, "forget")
        case .gradDiff(let gamma, let alpha, let kind):
            tokenMeanLL(.forget, gamma, "forget")
            retain(alpha, kind)
        case .npo(let beta):
            npo(beta)
        case .npoRT(let beta, let alpha, let kind):
            npo(beta)
            retain(alpha, kind)
        case .simNPO(let beta, let gamma, let normalized):
            simNPO(beta, gamma, normalized)
        case .simNPORT(let beta, let gamma, let normalized, let alpha, let kind):
            simNPO(beta, gamma, normalized)
            retain(alpha, kind)
        case .idkDPO(let beta, let alpha, let kind):
            try pairCheck(groups[.alternative]!, groups[.forget]!, "alternative", "forget")
            dpo(beta, chosen: .alternative, rejected: .forget, term: "forget")
            retain(alpha, kind)
        }
        return result
    }

    private func pairCheck(_ a: Group, _ b: Group, _ an: String, _ bn: String) throws {
        if a.s.count != b.s.count || a.totalSequences != b.totalSequences {
            throw TrainingError.mismatch(context: "\(name)",
                message: "roles '\(an)' and '\(bn)' must hold the same pairs: \(a.s.count) vs \(b.s.count) sequences (totals \(a.totalSequences) vs \(b.totalSequences))")
        }
    }
}

/// One validated group of sequences with its normalisers.
private struct Group {
    let s: SequenceStats
    let totalSequences: Int
    let totalTokens: Int

    init(_ s: SequenceStats, role: SequenceRole, objective: Objective, totals: GroupTotals?) throws {
        let ctx = "\(objective.name).\(role.rawValue)"
        if s.count == 0 { throw TrainingError.empty(context: ctx, message: "no sequences") }
        if s.tokenCounts.count != s.count {
            throw TrainingError.mismatch(context: ctx, message: "\(s.count) log-likelihoods but \(s.tokenCounts.count) token counts")
        }
        for i in 0..<s.count {
            if s.tokenCounts[i] <= 0 {
                throw TrainingError.noLossTokens(context: ctx, message: "sequence \(i) has \(s.tokenCounts[i]) response tokens")
            }
            if !s.logLikelihood[i].isFinite {
                throw TrainingError.nonFinite(context: ctx, message: "log-likelihood of sequence \(i) is \(s.logLikelihood[i])")
            }
        }
        if objective.needsReferenceLogLikelihood(role) {
            guard let r = s.referenceLogLikelihood else {
                throw TrainingError.empty(context: ctx, message: "needs reference log-likelihoods (a frozen reference model)")
            }
            if r.count != s.count {
                throw TrainingError.mismatch(context: ctx, message: "\(s.count) sequences but \(r.count) reference log-likelihoods")
            }
            if let i = r.firstIndex(where: { !$0.isFinite }) {
                throw TrainingError.nonFinite(context: ctx, message: "reference log-likelihood of sequence \(i) is \(r[i])")
            }
        }
        if objective.needsKL(role) {
            guard let k = s.klToReference else {
                throw TrainingError.empty(context: ctx, message: "the KL retain term needs klToReference per sequence")
            }
            if k.count != s.count {
                throw TrainingError.mismatch(context: ctx, message: "\(s.count) sequences but \(k.count) KL values")
            }
            if let i = k.firstIndex(where: { !$0.isFinite }) {
                throw TrainingError.nonFinite(context: ctx, message: "KL of sequence \(i) is \(k[i])")
            }
        }
        self.s = s
        let tokens = s.totalTokens
        totalSequences = totals?.sequences ?? s.count
        totalTokens = totals?.tokens ?? tokens
        if totalSequences < s.count || totalTokens < tokens {
            throw TrainingError.mismatch(context: ctx,
                message: "totals (\(totalSequences) sequences, \(totalTokens) tokens) are smaller than this micro-batch (\(s.count), \(tokens))")
        }
    }
}

/// log σ(x), stable for large |x|.
@inline(__always) func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }
/// σ(x), stable for large |x|.
@inline(__always) func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
