import Foundation
import Testing
@testable import Training

private struct GroupFixture: Decodable {
    let batch: Int, length: Int, vocab: Int
    let logits: [Float], referenceLogits: [Float], targets: [Int32]
    let logLikelihood: [Double], referenceLogLikelihood: [Double], tokenCounts: [Int], klToReference: [Double]
}
private struct CaseFixture: Decodable {
    let objective: Objective
    let loss: Double
    let logitGradients: [String: [Double]]
}
private struct ObjectivesFixture: Decodable {
    let groups: [String: GroupFixture]
    let cases: [CaseFixture]
}

/// Per-sequence statistics computed by the Swift kernels from the fixture's logits.
private func stats(_ g: GroupFixture) throws -> SequenceStats {
    let (lp, n) = try g.logits.withUnsafeBufferPointer {
        try TokenLogLikelihood.sequenceLogLikelihoods(logits: $0, targets: g.targets, batch: g.batch, length: g.length, vocab: g.vocab)
    }
    let (ref, _) = try g.referenceLogits.withUnsafeBufferPointer {
        try TokenLogLikelihood.sequenceLogLikelihoods(logits: $0, targets: g.targets, batch: g.batch, length: g.length, vocab: g.vocab)
    }
    let kl = try g.logits.withUnsafeBufferPointer { x in
        try g.referenceLogits.withUnsafeBufferPointer { r in
            try TokenLogLikelihood.klToReference(logits: x, reference: r, targets: g.targets, batch: g.batch, length: g.length, vocab: g.vocab)
        }
    }
    return SequenceStats(logLikelihood: lp, tokenCounts: n, referenceLogLikelihood: ref, klToReference: kl)
}

/// d loss / d logits of one group from the objective's per-sequence weights.
private func logitGradient(_ g: GroupFixture, _ w: SequenceGradients) throws -> [Double] {
    var out = [Float](repeating: .nan, count: g.logits.count)
    try g.logits.withUnsafeBufferPointer { x in
        try out.withUnsafeMutableBufferPointer { o in
            try TokenLogLikelihood.backward(logits: x, targets: g.targets, batch: g.batch, length: g.length,
                                            vocab: g.vocab, weights: w.logLikelihood, into: o)
            if let k = w.klToReference {
                try g.referenceLogits.withUnsafeBufferPointer { r in
                    try TokenLogLikelihood.klBackward(logits: x, reference: r, targets: g.targets, batch: g.batch,
                                                      length: g.length, vocab: g.vocab, weights: k, into: o, accumulate: true)
                }
            }
        }
    }
    return out.map(Double.init)
}

@Suite struct ObjectiveTests {
    private let fixture: ObjectivesFixture

    init() throws { fixture = try loadFixture("objectives") }

    @Test func sequenceStatisticsMatchTorch() throws {
        for (role, g) in fixture.groups {
            let s = try stats(g)
            #expect(s.tokenCounts == g.tokenCounts, "\(role)")
            #expect(relativeError(s.logLikelihood, g.logLikelihood) < 1e-6, "\(role) log-likelihood")
            #expect(relativeError(s.referenceLogLikelihood!, g.referenceLogLikelihood) < 1e-6, "\(role) reference")
            #expect(relativeError(s.klToReference!, g.klToReference) < 1e-5, "\(role) KL")
        }
    }

    @Test func lossesAndLogitGradientsMatchTorch() throws {
        #expect(fixture.cases.count == 15)
        var inputs: [SequenceRole: SequenceStats] = [:]
        for (role, g) in fixture.groups { inputs[SequenceRole(rawValue: role)!] = try stats(g) }
        for c in fixture.cases {
            let r = try c.objective.evaluate(inputs)
            let name = c.objective.name
            #expect(abs(r.loss - c.loss) <= 1e-5 * max(abs(c.loss), 1e-3), "\(name) loss \(r.loss) vs \(c.loss)")
            #expect(abs(r.terms.values.reduce(0, +) - r.loss) < 1e-12, "\(name) terms")
            #expect(Set(r.gradients.keys) == Set(c.objective.roles), "\(name) roles")
            for role in SequenceRole.allCases {
                let g = fixture.groups[role.rawValue]!
                let expected = c.logitGradients[role.rawValue] ?? [Double](repeating: 0, count: g.logits.count)
                guard let w = r.gradients[role] else {
                    #expect(c.logitGradients[role.rawValue] == nil, "\(name): torch has a gradient for \(role)")
                    continue
                }
                let got = try logitGradient(g, w)
                #expect(relativeError(got, expected) <= 1e-3, "\(name) d/dlogits of \(role): \(relativeError(got, expected))")
            }
        }
    }

    @Test func microBatchesAddUpToTheFullBatch() throws {
        let forget = try stats(fixture.groups["forget"]!), retain = try stats(fixture.groups["retain"]!)
        func slice(_ s: SequenceStats, _ r: Range<Int>) -> SequenceStats {
            SequenceStats(logLikelihood: Array(s.logLikelihood[r]), tokenCounts: Array(s.tokenCounts[r]),
                          referenceLogLikelihood: s.referenceLogLikelihood.map { Array($0[r]) },
                          klToReference: s.klToReference.map { Array($0[r]) })
        }
        let totals: [SequenceRole: GroupTotals] = [
            .forget: GroupTotals(sequences: forget.count, tokens: forget.totalTokens),
            .retain: GroupTotals(sequences: retain.count, tokens: retain.totalTokens)]
        for objective in [Objective.ga, .npoRT(), .simNPOOriginal(), .gradDiff(gamma: 1, alpha: 2, retain: .kl)] {
            let full = try objective.evaluate([.forget: forget, .retain: retain])
            let a = try objective.evaluate([.forget: slice(forget, 0..<1), .retain: slice(retain, 0..<2)], totals: totals)
            let b = try objective.evaluate([.forget: slice(forget, 1..<4), .retain: slice(retain, 2..<3)], totals: totals)
            #expect(abs(a.loss + b.loss - full.loss) < 1e-12, "\(objective.name)")
            let w = a.gradients[.forget]!.logLikelihood + b.gradients[.forget]!.logLikelihood
            #expect(relativeError(w, full.gradients[.forget]!.logLikelihood) < 1e-14, "\(objective.name)")
        }
        #expect(throws: TrainingError.self) {
            try Objective.ga.evaluate([.forget: forget], totals: [.forget: GroupTotals(sequences: 1, tokens: 1)])
        }
    }

    @Test func weightsMatchFiniteDifferences() throws {
        let s = SequenceStats(logLikelihood: [-3.2, -0.4, -7.9], tokenCounts: [4, 1, 6],
                              referenceLogLikelihood: [-2.5, -1.0, -8.5], klToReference: [0.3, 0.1, 0.7])
        let pairs = SequenceStats(logLikelihood: [-1.2, -2.4, -3.9], tokenCounts: [2, 3, 4],
                                  referenceLogLikelihood: [-1.0, -2.0, -4.5])
        let objectives: [Objective] = [.sft, .dpo(beta: 0.3), .ga, .gradDiff(gamma: 0.5, alpha: 2, retain: .kl), .npo(beta: 0.5),
                                       .npoRT(beta: 0.2, alpha: 0.7, retain: .nll), .simNPOOriginal(beta: 2.5, gamma: 0.4),
                                       .simNPOPaperCode(), .simNPORT(beta: 1, gamma: 0, lengthNormalized: false, alpha: 1, retain: .nll),
                                       .idkDPO(beta: 0.1, alpha: 1, retain: .nll)]
        for o in objectives {
            var inputs: [SequenceRole: SequenceStats] = [:]
            for role in o.roles { inputs[role] = role == .alternative || role == .chosen ? pairs : s }
            let r = try o.evaluate(inputs)
            for role in o.roles {
                for i in 0..<3 {
                    let h = 1e-6
                    var up = inputs, down = inputs
                    up[role]!.logLikelihood[i] += h; down[role]!.logLikelihood[i] -= h
                    let fd = (try o.evaluate(up).loss - o.evaluate(down).loss) / (2 * h)
                    #expect(abs(fd - r.gradients[role]!.logLikelihood[i]) < 1e-6, "\(o.name) \(role) \(i)")
                    if let k = r.gradients[role]!.klToReference {
                        up = inputs; down = inputs
                        up[role]!.klToReference![i] += h; down[role]!.klToReference![i] -= h
                        let fdk = (try o.evaluate(up).loss - o.evaluate(down).loss) / (2 * h)
                        #expect(abs(fdk - k[i]) < 1e-6, "\(o.name) \(role) KL \(i)")
                    }
                }
            }
        }
    }

    @Test func localityAndRoles() {
        #expect(Objective.ga.isLocal && Objective.npo().isLocal && Objective.simNPOOriginal().isLocal)
        #expect(Objective.simNPOPaperCode().isLocal && Objective.idkDPO().isLocal)
        #expect(!Objective.gradDiff().isLocal && !Objective.npoRT().isLocal)
        #expect(!Objective.simNPORT(beta: 1, gamma: 0, lengthNormalized: true, alpha: 1, retain: .nll).isLocal)
        #expect(!Objective.idkDPO(beta: 0.1, alpha: 1, retain: .nll).isLocal)
        #expect(!Objective.sft.isLocal && !Objective.sft.isUnlearning && Objective.ga.isUnlearning)
        #expect(Objective.npo().needsReferenceLogLikelihood(.forget) && !Objective.ga.needsReferenceLogLikelihood(.forget))
        #expect(Objective.gradDiff(gamma: 1, alpha: 1, retain: .kl).needsKL(.retain))
        #expect(Objective.idkDPO().roles == [.forget, .alternative])
    }

    @Test func badInputsAreClearErrors() throws {
        let s = SequenceStats(logLikelihood: [-1, -2], tokenCounts: [1, 2], referenceLogLikelihood: [-1, -1])
        for bad in [Objective.npo(beta: 0), .npo(beta: -1), .dpo(beta: 0), .simNPOOriginal(beta: 0),
                    .gradDiff(gamma: 1, alpha: -1, retain: .nll), .simNPO(beta: 1, gamma: .nan, lengthNormalized: true)] {
            #expect(throws: TrainingError.self) { try bad.evaluate([.forget: s, .retain: s, .chosen: s, .rejected: s]) }
        }
        // Missing role, empty role, missing reference, zero-token sequence, length mismatch, NaN.
        #expect(throws: TrainingError.self) { try Objective.gradDiff().evaluate([.forget: s]) }
        #expect(throws: TrainingError.self) {
            try Objective.ga.evaluate([.forget: SequenceStats(logLikelihood: [], tokenCounts: [])])
        }
        #expect(throws: TrainingError.self) {
            try Objective.npo().evaluate([.forget: SequenceStats(logLikelihood: [-1], tokenCounts: [1])])
        }
        #expect(throws: TrainingError.self) {
            try Objective.ga.evaluate([.forget: SequenceStats(logLikelihood: [-1, 0], tokenCounts: [1, 0])])
        }
        #expect(throws: TrainingError.self) {
            try Objective.ga.evaluate([.forget: SequenceStats(logLikelihood: [-1, -1], tokenCounts: [1])])
        }
        #expect(throws: TrainingError.self) {
            try Objective.ga.evaluate([.forget: SequenceStats(logLikelihood: [.nan], tokenCounts: [1])])
        }
        #expect(throws: TrainingError.self) {
            try Objective.dpo(beta: 0.1).evaluate([.chosen: s, .rejected: SequenceStats(logLikelihood: [-1], tokenCounts: [1], referenceLogLikelihood: [-1])])
        }
        #expect(throws: TrainingError.self) {
            try Objective.gradDiff(gamma: 1, alpha: 1, retain: .kl).evaluate([.forget: s, .retain: s])
        }
    }

    @Test func codableRoundTripsAndRejectsTypos() throws {
        let all: [Objective] = [.sft, .dpo(beta: 0.2), .ga, .gradDiff(), .gradDiff(gamma: 2, alpha: 0.5, retain: .kl), .npo(),
                                .npoRT(), .simNPOOriginal(), .simNPOPaperCode(),
                                .simNPORT(beta: 2, gamma: 0.1, lengthNormalized: true, alpha: 1, retain: .nll), .idkDPO()]
        for o in all {
            let data = try JSONEncoder().encode(o)
            #expect(try JSONDecoder().decode(Objective.self, from: data) == o)
        }
        func decode(_ s: String) throws -> Objective { try JSONDecoder().decode(Objective.self, from: Data(s.utf8)) }
        #expect(try decode(#"{"name":"npo"}"#) == .npo(beta: 0.5))
        #expect(try decode(#"{"name":"simnpo"}"#) == .simNPO(beta: 2.5, gamma: 0, lengthNormalized: true))
        #expect(try decode(#"{"name":"simnpo_code"}"#) == .simNPO(beta: 1, gamma: 0, lengthNormalized: false))
        #expect(try decode(#"{"name":"graddiff","retain":"kl"}"#) == .gradDiff(gamma: 1, alpha: 1, retain: .kl))
        #expect(throws: DecodingError.self) { try decode(#"{"name":"npo","beat":0.5}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"name":"nop"}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"name":"npo","beta":-0.5}"#) }
    }
}
