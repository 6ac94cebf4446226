// The linear-regression impossibility result of the paper (section 3), computed exactly:
// staged proximal ridge training along two paths, gradient ascent on a forget set, the Lemma's
// closed form for the gap between the paths, the Theorem 3.1 lower bound and the corollary.
import Engine
import Foundation

/// A training stage: inputs (one example per row) and targets.
public struct Stage: Sendable, Equatable {
    public var x: Matrix
    public var y: [Double]

    public init(x: Matrix, y: [Double]) {
        precondition(x.rows == y.count, "Stage: \(x.rows) inputs but \(y.count) targets")
        self.x = x
        self.y = y
    }

    public var count: Int { x.rows }

    /// The stage without the given rows (the retrained model's version of it).
    public func removingRows(_ removed: [Int]) -> Stage {
        let drop = Set(removed)
        let keep = (0..<count).filter { !drop.contains($0) }
        return Stage(x: x.selectingRows(keep), y: keep.map { y[$0] })
    }

    public func selectingRows(_ rows: [Int]) -> Stage {
        Stage(x: x.selectingRows(rows), y: rows.map { y[$0] })
    }
}

public struct TheoryError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Parameters of one random instance of the linear setting.
public struct LinearConfig: Sendable, Equatable, Codable {
    /// Dimension d of θ and of the inputs.
    public var dimension: Int = 50
    /// Examples in stage A.
    public var sizeA: Int = 20
    /// Examples in stage B.
    public var sizeB: Int = 20
    /// k: the forget set is the first k rows of stage B.
    public var forget: Int = 5
    /// µ, the proximal (ridge-to-previous) strength of every stage.
    public var mu: Double = 1
    /// η, the gradient-ascent step on the forget loss.
    public var eta: Double = 0.25
    /// m, the number of test points of the distance d.
    public var testPoints: Int = 100
    /// Gradient-ascent steps t = 0 ... steps.
    public var steps: Int = 50
    /// Standard deviation of the label noise.
    public var noise: Double = 0.1
    /// ε of the corollary: the tolerance of "as if retrained" in the distance d.
    public var epsilon: Double = 0.05
    public var seed: UInt64 = 0

    public init() {}

    public init(dimension: Int, sizeA: Int, sizeB: Int, forget: Int, mu: Double, eta: Double, testPoints: Int,
                steps: Int, noise: Double = 0.1, epsilon: Double = 0.05, seed: UInt64) {
        self.dimension = dimension
        self.sizeA = sizeA
        self.sizeB = sizeB
        self.forget = forget
        self.mu = mu
        self.eta = eta
        self.testPoints = testPoints
        self.steps = steps
        self.noise = noise
        self.epsilon = epsilon
        self.seed = seed
    }

    /// Checks the ranges the theory needs; the message names the option and what was found.
    public func validate() throws {
        func need(_ ok: Bool, _ m: String) throws { if !ok { throw TheoryError(m) } }
        try need(dimension >= 1, "dimension d must be ≥ 1, got \(dimension)")
        try need(sizeA >= 1, "size of stage A must be ≥ 1, got \(sizeA)")
        try need(sizeB >= 1, "size of stage B must be ≥ 1, got \(sizeB)")
        try need(forget >= 1 && forget <= sizeB, "forget-set size k must be in 1...\(sizeB) (the size of stage B), got \(forget)")
        try need(testPoints >= forget, "test points m must be ≥ k = \(forget) (Theorem 3.1 needs m ≥ k), got \(testPoints)")
        try need(mu > 0 && mu.isFinite, "µ must be > 0, got \(mu)")
        try need(eta > 0 && eta.isFinite, "η must be > 0, got \(eta)")
        try need(steps >= 0 && steps <= 100_000, "steps must be in 0...100000, got \(steps)")
        try need(noise >= 0 && noise.isFinite, "noise must be ≥ 0, got \(noise)")
        try need(epsilon > 0 && epsilon.isFinite, "ε must be > 0, got \(epsilon)")
        try need(dimension * max(sizeA + sizeB, testPoints) <= 50_000_000, "instance too large: d·max(|A|+|B|, m) = \(dimension * max(sizeA + sizeB, testPoints)) > 5e7")
    }
}

/// A random instance: stages A and B, the forget rows of B, and the test inputs.
///
/// Inputs are i.i.d. N(0, I/d), so examples have norm about 1 and µ = 1 is comparable to one
/// example's curvature; each stage has its own teacher θ*_S ~ N(0, I) (the stages are different
/// tasks), and y = x·θ*_S + noise.
public struct LinearInstance: Sendable, Equatable {
    public var config: LinearConfig
    public var stageA: Stage
    public var stageB: Stage
    /// Rows of stage B that form the forget set U.
    public var forgetRows: [Int]
    public var testInputs: Matrix

    public init(config: LinearConfig, stageA: Stage, stageB: Stage, forgetRows: [Int], testInputs: Matrix) {
        self.config = config
        self.stageA = stageA
        self.stageB = stageB
        self.forgetRows = forgetRows
        self.testInputs = testInputs
    }

    public static func random(_ config: LinearConfig) throws -> LinearInstance {
        try config.validate()
        let d = config.dimension
        var rng = SeededRandom(seed: config.seed)
        let s = 1 / Double(d).squareRoot()
        func inputs(_ n: Int) -> Matrix {
            Matrix(rows: n, cols: d, data: (0..<(n * d)).map { _ in s * rng.nextGaussian() })
        }
        func stage(_ n: Int) -> Stage {
            let teacher = (0..<d).map { _ in rng.nextGaussian() }
            let x = inputs(n)
            let y = (x * teacher).map { $0 + config.noise * rng.nextGaussian() }
            return Stage(x: x, y: y)
        }
        let a = stage(config.sizeA), b = stage(config.sizeB)
        let test = inputs(config.testPoints)
        return LinearInstance(config: config, stageA: a, stageB: b, forgetRows: Array(0..<config.forget),
                              testInputs: test)
    }

    public var forgetSet: Stage { stageB.selectingRows(forgetRows) }
    /// Stage B with the forget rows removed.
    public var retainedB: Stage { stageB.removingRows(forgetRows) }
}

public enum LinearTheory {
    /// One stage of proximal ridge training in closed form:
    /// argmin ‖Xθ − y‖² + µ‖θ − θ_prev‖² = (XᵀX + µI)⁻¹(Xᵀy + µθ_prev), by a Cholesky solve.
    public static func train(_ stage: Stage, from previous: [Double], mu: Double) throws -> [Double] {
        let a = stage.x.gram.addingDiagonal(mu)
        let rhs = add(stage.x.transposeTimes(stage.y), scale(mu, previous))
        return try LinearAlgebra.solveSPD(a, rhs)
    }

    /// Trains the stages in order from θ₀ = 0.
    public static func trainPath(_ stages: [Stage], dimension: Int, mu: Double) throws -> [Double] {
        var theta = [Double](repeating: 0, count: dimension)
        for s in stages { theta = try train(s, from: theta, mu: mu) }
        return theta
    }

    /// The gradient of one stage's objective ‖Xθ − y‖² + µ‖θ − θ_prev‖² (for checking the closed form).
    public static func stageGradient(_ stage: Stage, theta: [Double], previous: [Double], mu: Double) -> [Double] {
        let r = sub(stage.x * theta, stage.y)
        return add(scale(2, stage.x.transposeTimes(r)), scale(2 * mu, sub(theta, previous)))
    }

    /// One step of gradient ascent on the forget loss (1/k)‖X_U θ − y_U‖²:
    /// θ ← θ + η·(2/k)·X_Uᵀ(X_U θ − y_U).
    public static func ascend(_ theta: [Double], on forget: Stage, eta: Double) -> [Double] {
        let r = sub(forget.x * theta, forget.y)
        return add(theta, scale(eta * 2 / Double(forget.count), forget.x.transposeTimes(r)))
    }

    /// The distance d(θ, θ') = (1/m)‖X_test(θ − θ')‖².
    public static func distance(_ a: [Double], _ b: [Double], test: Matrix) -> Double {
        let p = test * sub(a, b)
        let n = norm(p)
        return n * n / Double(test.rows)
    }

    /// The whole analysis of one instance.
    public static func analyze(_ instance: LinearInstance) throws -> LinearAnalysis {
        let c = instance.config
        try c.validate()
        let d = c.dimension
        guard instance.stageA.x.cols == d, instance.stageB.x.cols == d, instance.testInputs.cols == d else {
            throw TheoryError("instance inputs must have d = \(d) columns (A: \(instance.stageA.x.cols), B: \(instance.stageB.x.cols), test: \(instance.testInputs.cols))")
        }
        guard instance.stageA.count == c.sizeA, instance.stageB.count == c.sizeB, instance.testInputs.rows == c.testPoints else {
            throw TheoryError("instance sizes (|A| \(instance.stageA.count), |B| \(instance.stageB.count), m \(instance.testInputs.rows)) do not match the config (|A| \(c.sizeA), |B| \(c.sizeB), m \(c.testPoints))")
        }
        guard instance.forgetRows.count == c.forget, Set(instance.forgetRows).count == c.forget,
              instance.forgetRows.allSatisfy({ (0..<c.sizeB).contains($0) }) else {
            throw TheoryError("forget rows \(instance.forgetRows) must be \(c.forget) distinct rows of stage B (0..<\(c.sizeB))")
        }
        let a = instance.stageA, b = instance.stageB, bRetained = instance.retainedB
        let u = instance.forgetSet
        let k = u.count, m = instance.testInputs.rows
        let test = instance.testInputs

        let thetaAB = try trainPath([a, b], dimension: d, mu: c.mu)
        let thetaBA = try trainPath([b, a], dimension: d, mu: c.mu)
        let retrainedAB = try trainPath([a, bRetained], dimension: d, mu: c.mu)
        let retrainedBA = try trainPath([bRetained, a], dimension: d, mu: c.mu)
        let delta0 = sub(thetaAB, thetaBA)

        // Row space of X_U: P_U = Q Qᵀ.
        let q = LinearAlgebra.rowSpaceBasis(u.x)
        let coords = q.transposeTimes(delta0)
        let inRowSpace = q * coords                 // P_U Δθ₀
        let outside = sub(delta0, inRowSpace)        // (I − P_U) Δθ₀
        let mScale = 2 * c.eta / Double(k)
        func applyM(_ v: [Double]) -> [Double] { scale(mScale, u.x.transposeTimes(u.x * v)) }
        let pNorm = norm(inRowSpace)
        let rhoStar = pNorm > 0 ? dot(inRowSpace, applyM(inRowSpace)) / (pNorm * pNorm) : 0
        let sigmas = q.cols > 0 ? LinearAlgebra.singularValues(test * q) : []
        let sigmaU = sigmas.count == q.cols ? (sigmas.last ?? 0) : 0
        // Non-zero eigenvalues of M_U: those of (2η/k) X_U X_Uᵀ.
        let spectrum = LinearAlgebra.symmetricEigen(mScale * (u.x * u.x.transposed)).values
        let outsideNorm = norm(outside)
        let testOutsideNorm = norm(test * outside)
        let boundScale = sigmaU * sigmaU * pNorm * pNorm / (4 * Double(m))

        var steps: [LinearStep] = []
        var ab = thetaAB, ba = thetaBA
        var lemma = delta0           // (I + M_U)^t Δθ₀
        var grown = inRowSpace       // (I + M_U)^t P_U Δθ₀
        var growth = 1.0             // (1 + ρ*)^t
        var t0: Int? = nil, t0Certified: Int? = nil
        for t in 0...c.steps {
            if t > 0 {
                ab = ascend(ab, on: u, eta: c.eta)
                ba = ascend(ba, on: u, eta: c.eta)
                lemma = add(lemma, applyM(lemma))
                grown = add(grown, applyM(grown))
                growth *= 1 + rhoStar
            }
            let measured = sub(ab, ba)
            let lemmaNorm = norm(lemma)
            let lemmaError = lemmaNorm > 0 ? norm(sub(measured, lemma)) / lemmaNorm : norm(measured)
            let grownNorm = norm(grown)
            // ‖(I+M_U)^t P_U Δθ₀‖ never decreases (I + M_U ⪰ I on the row space), so the first
            // step where the condition holds is the start of a run that lasts.
            if t0 == nil, grownNorm >= 2 * outsideNorm { t0 = t }
            if t0Certified == nil, sigmaU * grownNorm >= 2 * testOutsideNorm { t0Certified = t }
            steps.append(LinearStep(
                t: t,
                distance: distance(ab, ba, test: test),
                bound: boundScale * growth * growth,
                lemmaError: lemmaError,
                lemmaDistance: {
                    let p = norm(test * lemma)
                    return p * p / Double(m)
                }(),
                distanceABToRetrained: distance(ab, retrainedAB, test: test),
                distanceBAToRetrained: distance(ba, retrainedBA, test: test),
                boundApplies: t0 != nil))
        }

        // Corollary. With the same retrained model r for both paths, d(θ_AB, θ_BA) ≤ 2d(θ_AB, r) +
        // 2d(θ_BA, r), so once the bound exceeds 4ε one path is farther than ε from r: that is
        // the paper's t*. Here the two paths have their own retrained models r_AB ≠ r_BA (U lies
        // inside B), and √d is a seminorm, so the threshold becomes (2√ε + √d(r_AB, r_BA))².
        let retrainedGap = distance(retrainedAB, retrainedBA, test: test)
        let logGrowth = 2 * log1p(rhoStar)
        let tStarFormula = (log(16 * Double(m) * c.epsilon) - log(sigmaU * sigmaU * pNorm * pNorm)) / logGrowth
        let threshold = (2 * c.epsilon.squareRoot() + retrainedGap.squareRoot())
        let tStarRetrainedFormula = (log(threshold * threshold) - log(boundScale)) / logGrowth
        // The first step at or after `start` beyond `real`, if within the horizon.
        func firstStep(_ real: Double, strict: Bool, after start: Int?) -> Int? {
            guard let start, !real.isNaN, real < Double(c.steps + 1) else { return nil }
            let r = max(real, -1)  // also keeps Int() in range
            let base = max(0, strict ? Int(r.rounded(.down)) + 1 : Int(r.rounded(.up)))
            let t = max(base, start)
            return t <= c.steps ? t : nil
        }
        return LinearAnalysis(
            config: c, thetaAB: thetaAB, thetaBA: thetaBA, retrainedAB: retrainedAB, retrainedBA: retrainedBA,
            delta0: delta0, projectedDelta: inRowSpace, orthogonalDelta: outside, rowSpaceRank: q.cols,
            rhoStar: rhoStar, sigmaU: sigmaU, spectrumM: spectrum, t0: t0, t0Certified: t0Certified,
            tStarFormula: tStarFormula, tStar: firstStep(tStarFormula, strict: false, after: t0),
            retrainedGap: retrainedGap, tStarRetrainedFormula: tStarRetrainedFormula,
            tStarRetrained: firstStep(tStarRetrainedFormula, strict: true, after: t0Certified), steps: steps)
    }
}

/// The measurements at one gradient-ascent step t.
public struct LinearStep: Sendable, Equatable, Codable {
    public var t: Int
    /// d(θ_AB^(t), θ_BA^(t)) from the two models actually trained and unlearned.
    public var distance: Double
    /// The Theorem 3.1 lower bound σ_U²‖P_U Δθ₀‖²/(4m)·(1+ρ*)^(2t) (valid only for t ≥ t₀).
    public var bound: Double
    /// ‖Δθ_t − (I+M_U)^t Δθ₀‖ / ‖(I+M_U)^t Δθ₀‖: how far the Lemma is from the measured gap.
    public var lemmaError: Double
    /// d computed from the Lemma's Δθ_t instead of the trained models.
    public var lemmaDistance: Double
    public var distanceABToRetrained: Double
    public var distanceBAToRetrained: Double
    /// t ≥ t₀ (the paper's condition in parameter norms).
    public var boundApplies: Bool

    /// The inequality at this step (relative slack 1e-9 for rounding).
    public var holds: Bool { distance >= bound * (1 - 1e-9) }
}

/// Everything computed for one instance.
public struct LinearAnalysis: Sendable, Equatable {
    public var config: LinearConfig
    public var thetaAB: [Double]
    public var thetaBA: [Double]
    public var retrainedAB: [Double]
    public var retrainedBA: [Double]
    /// Δθ₀ = θ_AB − θ_BA.
    public var delta0: [Double]
    /// P_U Δθ₀.
    public var projectedDelta: [Double]
    /// (I − P_U) Δθ₀.
    public var orthogonalDelta: [Double]
    /// Rank of X_U (k for inputs in general position with k ≤ d).
    public var rowSpaceRank: Int
    /// Rayleigh quotient of M_U at P_U Δθ₀.
    public var rhoStar: Double
    /// Smallest non-zero singular value of X_test on the row space of X_U.
    public var sigmaU: Double
    /// Eigenvalues of M_U on the row space of X_U, ascending.
    public var spectrumM: [Double]
    /// First step with ‖(I+M_U)^t P_U Δθ₀‖ ≥ 2‖(I−P_U)Δθ₀‖ (the paper's t₀); nil if not reached.
    public var t0: Int?
    /// First step with σ_U‖(I+M_U)^t P_U Δθ₀‖ ≥ 2‖X_test (I−P_U)Δθ₀‖, which makes the bound
    /// a theorem (the parameter-norm condition alone does not rule out cancellation in X_test).
    public var t0Certified: Int?
    /// [log(16 m ε) − log(σ_U²‖P_U Δθ₀‖²)] / (2 log(1+ρ*)).
    public var tStarFormula: Double
    /// max(t₀, ⌈tStarFormula⌉): the corollary's step when both paths share one retrained model
    /// (nil when it lies beyond the horizon or t₀ is not reached).
    public var tStar: Int?
    /// d(r_AB, r_BA) between the two paths' retrained models.
    public var retrainedGap: Double
    /// The step after which the bound exceeds (2√ε + √d(r_AB, r_BA))².
    public var tStarRetrainedFormula: Double
    /// First integer step ≥ t₀(certified) beyond tStarRetrainedFormula: from it on, at least one
    /// path is farther than ε from its own retrained model (nil beyond the horizon).
    public var tStarRetrained: Int?
    public var steps: [LinearStep]

    /// Does the inequality hold at every step t ≥ start? (Vacuously true when start is nil: the
    /// condition was never reached within the horizon.)
    public func boundHolds(from start: Int?) -> Bool {
        guard let start else { return true }
        return steps.filter { $0.t >= start }.allSatisfy(\.holds)
    }

    /// The largest Lemma error over all steps.
    public var maxLemmaError: Double { steps.map(\.lemmaError).max() ?? 0 }
}

// MARK: - Sweep over random instances

/// One instance of a sweep and what was found on it.
public struct SweepCase: Sendable, Equatable, Codable {
    public var index: Int
    public var config: LinearConfig
    public var t0: Int?
    public var t0Certified: Int?
    public var rhoStar: Double
    public var sigmaU: Double
    /// The inequality at every t with t₀ ≤ t ≤ steps (true when t₀ is beyond the horizon).
    public var holdsFromT0: Bool
    /// The inequality at every t with t₀(certified) ≤ t ≤ steps.
    public var holdsFromCertified: Bool
    /// The inequality at every step, including t < t₀ where the theorem promises nothing.
    public var holdsEverywhere: Bool
    /// Steps t ≥ t₀ where the inequality fails.
    public var failingSteps: [Int]
    /// min over t ≥ t₀ of distance / bound (infinity when no step is checked).
    public var worstRatio: Double
    /// min over t ≥ t₀(certified) of distance / bound.
    public var worstRatioCertified: Double
    /// From the corollary's step on, one path is farther than ε from its retrained model (nil:
    /// the step lies beyond the horizon).
    public var corollaryHolds: Bool?
    public var maxLemmaError: Double
    /// Some value overflowed to ±inf or NaN (η and t too large for Float64).
    public var nonFinite: Bool
}

/// The outcome of a sweep.
public struct LinearSweep: Sendable, Equatable {
    public var cases: [SweepCase]
    public var limits: LinearConfig

    public var count: Int { cases.count }
    /// Instances where t₀ ≤ steps, so the inequality was checked at one step at least.
    public var applicable: Int { cases.filter { $0.t0 != nil }.count }
    public var holdFromT0: Int { cases.filter { $0.t0 != nil && $0.holdsFromT0 }.count }
    public var applicableCertified: Int { cases.filter { $0.t0Certified != nil }.count }
    public var holdFromCertified: Int { cases.filter { $0.t0Certified != nil && $0.holdsFromCertified }.count }
    public var holdEverywhere: Int { cases.filter(\.holdsEverywhere).count }
    public var corollaryChecked: Int { cases.filter { $0.corollaryHolds != nil }.count }
    public var corollaryHeld: Int { cases.filter { $0.corollaryHolds == true }.count }
    public var nonFinite: Int { cases.filter(\.nonFinite).count }
    /// Instances where the inequality fails at some t ≥ t₀ (the paper's t₀).
    public var failures: [SweepCase] { cases.filter { $0.t0 != nil && !$0.holdsFromT0 } }
    public var worstRatio: Double { cases.map(\.worstRatio).min() ?? .infinity }
    public var worstRatioCertified: Double { cases.map(\.worstRatioCertified).min() ?? .infinity }
    public var maxLemmaError: Double { cases.map(\.maxLemmaError).max() ?? 0 }
}

extension LinearTheory {
    /// Draws `count` random instances with parameters up to `limits` and checks the theorem on
    /// each: d ∈ 2...limits.d, |A| ∈ 1...limits.|A|, |B| ∈ 1...limits.|B|, k ∈ 1...min(|B|, limits.k),
    /// m ∈ k...max(k, limits.m), µ and η log-uniform within a factor 10 of the limits' values;
    /// steps, noise and ε as in `limits`.
    public static func sweep(count: Int, limits: LinearConfig, seed: UInt64) throws -> LinearSweep {
        guard count >= 1 else { throw TheoryError("sweep needs at least 1 instance, got \(count)") }
        try limits.validate()
        var rng = SeededRandom(seed: seed)
        var cases: [SweepCase] = []
        cases.reserveCapacity(count)
        for i in 0..<count {
            func uniform(_ lo: Int, _ hi: Int) -> Int { lo + rng.nextInt(max(hi - lo, 0) + 1) }
            var c = limits
            c.dimension = uniform(min(2, limits.dimension), limits.dimension)
            c.sizeA = uniform(1, limits.sizeA)
            c.sizeB = uniform(1, limits.sizeB)
            c.forget = uniform(1, min(c.sizeB, limits.forget))
            c.testPoints = uniform(c.forget, max(c.forget, limits.testPoints))
            c.mu = limits.mu * Foundation.pow(10, 2 * rng.nextDouble() - 1)
            c.eta = limits.eta * Foundation.pow(10, 2 * rng.nextDouble() - 1)
            c.seed = rng.next()
            let a = try analyze(try LinearInstance.random(c))
            let checked = a.steps.filter { a.t0 != nil && $0.t >= a.t0! }
            func ratio(_ s: LinearStep) -> Double { s.bound > 0 ? s.distance / s.bound : .infinity }
            let ratios = checked.map(ratio)
            let certified = a.steps.filter { a.t0Certified != nil && $0.t >= a.t0Certified! }.map(ratio)
            var corollary: Bool? = nil
            if let ts = a.tStarRetrained {
                corollary = a.steps.filter { $0.t >= ts }.allSatisfy {
                    max($0.distanceABToRetrained, $0.distanceBAToRetrained) > c.epsilon
                }
            }
            let finite = a.steps.allSatisfy { $0.distance.isFinite && $0.bound.isFinite && $0.lemmaError.isFinite }
            cases.append(SweepCase(
                index: i, config: c, t0: a.t0, t0Certified: a.t0Certified, rhoStar: a.rhoStar, sigmaU: a.sigmaU,
                holdsFromT0: a.boundHolds(from: a.t0), holdsFromCertified: a.boundHolds(from: a.t0Certified),
                holdsEverywhere: a.steps.allSatisfy(\.holds),
                failingSteps: checked.filter { !$0.holds }.map(\.t),
                worstRatio: ratios.min() ?? .infinity, worstRatioCertified: certified.min() ?? .infinity,
                corollaryHolds: corollary,
                maxLemmaError: a.maxLemmaError, nonFinite: !finite))
        }
        return LinearSweep(cases: cases, limits: limits)
    }
}
