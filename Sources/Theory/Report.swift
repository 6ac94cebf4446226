// Text renderings of the theory results: JSON lines, CSV and an aligned table.
import Foundation

/// A JSON number (shortest round-trip form), or null for NaN and infinities.
public func jsonNumber(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }

func jsonInt(_ v: Int?) -> String { v.map(String.init) ?? "null" }

/// `v` in %.4e style, deterministic and locale-free.
func sci(_ v: Double) -> String {
    guard v.isFinite else { return v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf") }
    return String(format: "%.4e", v)
}

extension LinearConfig {
    var jsonFields: String {
        "\"d\":\(dimension),\"size_a\":\(sizeA),\"size_b\":\(sizeB),\"k\":\(forget),\"mu\":\(jsonNumber(mu)),"
            + "\"eta\":\(jsonNumber(eta)),\"m\":\(testPoints),\"steps\":\(steps),\"noise\":\(jsonNumber(noise)),"
            + "\"epsilon\":\(jsonNumber(epsilon)),\"seed\":\(seed)"
    }

    /// A one-line description of the parameters, e.g. for failures in a sweep.
    public var summary: String {
        "d=\(dimension) |A|=\(sizeA) |B|=\(sizeB) k=\(forget) µ=\(sci(mu)) η=\(sci(eta)) m=\(testPoints) steps=\(steps) seed=\(seed)"
    }
}

extension LinearAnalysis {
    /// One JSON object per step (keys t, distance, bound, lemma_error, ...), then a final object
    /// with rho_star, sigma_u, t_star and the other instance-level quantities.
    public func jsonLines() -> [String] {
        var out = steps.map { s in
            "{\"t\":\(s.t),\"distance\":\(jsonNumber(s.distance)),\"bound\":\(jsonNumber(s.bound)),"
                + "\"lemma_error\":\(jsonNumber(s.lemmaError)),\"lemma_distance\":\(jsonNumber(s.lemmaDistance)),"
                + "\"bound_applies\":\(s.boundApplies),\"holds\":\(s.holds),"
                + "\"distance_ab_retrained\":\(jsonNumber(s.distanceABToRetrained)),"
                + "\"distance_ba_retrained\":\(jsonNumber(s.distanceBAToRetrained))}"
        }
        out.append(
            "{\"model\":\"linear\",\"rho_star\":\(jsonNumber(rhoStar)),\"sigma_u\":\(jsonNumber(sigmaU)),"
                + "\"t_star\":\(jsonInt(tStar)),\"t_star_formula\":\(jsonNumber(tStarFormula)),"
                + "\"t_star_retrained\":\(jsonInt(tStarRetrained)),"
                + "\"t_star_retrained_formula\":\(jsonNumber(tStarRetrainedFormula)),"
                + "\"t0\":\(jsonInt(t0)),\"t0_certified\":\(jsonInt(t0Certified)),"
                + "\"rank_u\":\(rowSpaceRank),\"delta0_norm\":\(jsonNumber(norm(delta0))),"
                + "\"projected_delta0_norm\":\(jsonNumber(norm(projectedDelta))),"
                + "\"orthogonal_delta0_norm\":\(jsonNumber(norm(orthogonalDelta))),"
                + "\"m_u_eigenvalues\":[\(spectrumM.map(jsonNumber).joined(separator: ","))],"
                + "\"retrained_gap\":\(jsonNumber(retrainedGap)),"
                + "\"bound_holds_from_t0\":\(boundHolds(from: t0)),"
                + "\"bound_holds_from_t0_certified\":\(boundHolds(from: t0Certified)),"
                + "\"max_lemma_error\":\(jsonNumber(maxLemmaError)),\(config.jsonFields)}")
        return out
    }

    /// CSV with a header row, one row per step.
    public func csv() -> String {
        var s = "t,distance,bound,lemma_error,lemma_distance,bound_applies,holds,distance_ab_retrained,distance_ba_retrained\n"
        for r in steps {
            s += "\(r.t),\(jsonNumber(r.distance)),\(jsonNumber(r.bound)),\(jsonNumber(r.lemmaError)),"
                + "\(jsonNumber(r.lemmaDistance)),\(r.boundApplies),\(r.holds),"
                + "\(jsonNumber(r.distanceABToRetrained)),\(jsonNumber(r.distanceBAToRetrained))\n"
        }
        return s
    }

    /// A human-readable report: instance-level quantities, then the per-step table.
    public func table() -> String {
        func opt(_ v: Int?) -> String { v.map(String.init) ?? "not reached by t=\(config.steps)" }
        var s = "Linear instance: \(config.summary)\n"
        s += "  ‖Δθ₀‖ = \(sci(norm(delta0)))   ‖P_U Δθ₀‖ = \(sci(norm(projectedDelta)))   ‖(I−P_U)Δθ₀‖ = \(sci(norm(orthogonalDelta)))   rank X_U = \(rowSpaceRank)\n"
        s += "  ρ* = \(sci(rhoStar))   σ_U = \(sci(sigmaU))   eigenvalues of M_U on row(X_U): \(sci(spectrumM.first ?? .nan)) … \(sci(spectrumM.last ?? .nan))\n"
        s += "  t₀ (‖(I+M_U)^t P_U Δθ₀‖ ≥ 2‖(I−P_U)Δθ₀‖) = \(opt(t0))   t₀ certified (in X_test norms) = \(opt(t0Certified))\n"
        s += "  corollary, ε = \(sci(config.epsilon)): t* formula = \(sci(tStarFormula)), t* = \(opt(tStar)); "
        s += "with the two paths' own retrained models (d(r_AB, r_BA) = \(sci(retrainedGap))): t* = \(opt(tStarRetrained))\n"
        s += "  max Lemma relative error = \(sci(maxLemmaError)); bound holds for all t ≥ t₀: \(boundHolds(from: t0) ? "yes" : "NO")\n\n"
        s += "   t      distance         bound   dist/bound   lemma_err   d(AB,retr)   d(BA,retr)\n"
        for r in steps {
            let mark = r.boundApplies ? (r.holds ? " " : "!") : "·"
            let ratio = r.bound > 0 ? r.distance / r.bound : .infinity
            s += String(format: "%4d", r.t) + mark + " " + sci(r.distance).padded(12) + "  " + sci(r.bound).padded(12)
                + "  " + String(format: "%10.3f", ratio) + "  " + sci(r.lemmaError).padded(10)
                + "  " + sci(r.distanceABToRetrained).padded(11) + "  " + sci(r.distanceBAToRetrained).padded(11) + "\n"
        }
        s += "  (· : t < t₀, the bound is not claimed there; ! : the inequality fails)\n"
        return s
    }
}

extension TwoLayerAnalysis {
    public func jsonLines() -> [String] {
        var out = steps.map { s in
            "{\"t\":\(s.t),\"distance\":\(jsonNumber(s.distance)),\"bound\":null,\"lemma_error\":null,"
                + "\"distance_ab_retrained\":\(jsonNumber(s.distanceABToRetrained)),"
                + "\"distance_ba_retrained\":\(jsonNumber(s.distanceBAToRetrained)),"
                + "\"parameter_gap\":\(jsonNumber(s.parameterGap))}"
        }
        out.append("{\"model\":\"two-layer\",\"rho_star\":null,\"sigma_u\":null,\"t_star\":null,"
                   + "\"hidden\":\(config.hidden),\"train_steps\":\(config.trainSteps),"
                   + "\"worst_stage_gradient\":\(jsonNumber(worstStageGradient)),"
                   + "\"retrained_gap\":\(jsonNumber(retrainedGap)),\(config.data.jsonFields)}")
        return out
    }

    public func csv() -> String {
        var s = "t,distance,distance_ab_retrained,distance_ba_retrained,parameter_gap\n"
        for r in steps {
            s += "\(r.t),\(jsonNumber(r.distance)),\(jsonNumber(r.distanceABToRetrained)),"
                + "\(jsonNumber(r.distanceBAToRetrained)),\(jsonNumber(r.parameterGap))\n"
        }
        return s
    }

    public func table() -> String {
        var s = "Two-layer tanh network (hidden \(config.hidden)): \(config.data.summary)\n"
        s += "  stages trained by backtracking gradient descent (≤ \(config.trainSteps) steps); worst final gradient norm \(sci(worstStageGradient))\n"
        s += "  d(r_AB, r_BA) between the retrained models = \(sci(retrainedGap)); ε = \(sci(config.data.epsilon))\n"
        s += "  no closed-form bound: the theorem assumes a linear model\n\n"
        s += "   t      distance   d(AB,retr)   d(BA,retr)   ‖θ_AB−θ_BA‖\n"
        for r in steps {
            s += String(format: "%4d  ", r.t) + sci(r.distance).padded(12) + "  " + sci(r.distanceABToRetrained).padded(11)
                + "  " + sci(r.distanceBAToRetrained).padded(11) + "  " + sci(r.parameterGap).padded(11) + "\n"
        }
        return s
    }
}

extension LinearSweep {
    /// The summary and every instance where the inequality failed for some t ≥ t₀.
    public func report() -> String {
        var s = "Sweep: \(count) random instances, parameters up to \(limits.summary)\n"
        s += "  t₀ (parameter norms) reached within \(limits.steps) steps: \(applicable) of \(count)\n"
        s += "  inequality holds at every t ≥ t₀: \(holdFromT0) of \(applicable)\n"
        s += "  t₀ certified (X_test norms) reached: \(applicableCertified); inequality holds at every t ≥ t₀ certified: \(holdFromCertified) of \(applicableCertified)\n"
        s += "  inequality holds at every step, t < t₀ included: \(holdEverywhere) of \(count)\n"
        s += "  corollary (one path farther than ε from its retrained model from t* on): \(corollaryHeld) of \(corollaryChecked) checked\n"
        s += "  smallest distance/bound for t ≥ t₀: \(sci(worstRatio)); for t ≥ t₀ certified: \(sci(worstRatioCertified)); largest Lemma error: \(sci(maxLemmaError))\n"
        if nonFinite > 0 { s += "  instances that overflowed Float64: \(nonFinite)\n" }
        let f = failures
        if f.isEmpty {
            s += "  no instance violates the inequality for t ≥ t₀\n"
        } else {
            let beforeCertified = f.filter { c in c.failingSteps.allSatisfy { t in c.t0Certified.map { t < $0 } ?? true } }.count
            s += "  instances violating the inequality for some t ≥ t₀ (\(beforeCertified) of \(f.count) only at steps before the certified t₀,\n"
            s += "  where ‖(I−P_U)Δθ₀‖ is small in parameter norm but X_test maps it onto the growing part and cancels it):\n"
            for c in f {
                s += "    #\(c.index): \(c.config.summary) t₀=\(jsonInt(c.t0)) t₀cert=\(jsonInt(c.t0Certified)) failing t=\(c.failingSteps.map(String.init).joined(separator: ",")) worst ratio \(sci(c.worstRatio))\n"
            }
        }
        return s
    }

    /// One JSON object per failing instance, then a summary object.
    public func jsonLines() -> [String] {
        var out = failures.map { c in
            "{\"failure\":\(c.index),\(c.config.jsonFields),\"t0\":\(jsonInt(c.t0)),\"t0_certified\":\(jsonInt(c.t0Certified)),"
                + "\"failing_steps\":[\(c.failingSteps.map(String.init).joined(separator: ","))],"
                + "\"worst_ratio\":\(jsonNumber(c.worstRatio)),\"rho_star\":\(jsonNumber(c.rhoStar)),\"sigma_u\":\(jsonNumber(c.sigmaU))}"
        }
        out.append("{\"instances\":\(count),\"applicable\":\(applicable),\"hold\":\(holdFromT0),"
                   + "\"applicable_certified\":\(applicableCertified),\"hold_certified\":\(holdFromCertified),"
                   + "\"hold_everywhere\":\(holdEverywhere),\"corollary_checked\":\(corollaryChecked),"
                   + "\"corollary_held\":\(corollaryHeld),\"non_finite\":\(nonFinite),"
                   + "\"worst_ratio\":\(jsonNumber(worstRatio)),\"worst_ratio_certified\":\(jsonNumber(worstRatioCertified)),"
                   + "\"max_lemma_error\":\(jsonNumber(maxLemmaError))}")
        return out
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
