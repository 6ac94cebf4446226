import Engine
import Foundation
import Testing
@testable import Theory

// MARK: - Linear algebra

@Test func choleskySolvesAKnownSystem() throws {
    // A = [[4, 2], [2, 3]] = L Lᵀ with L = [[2, 0], [1, √2]]; A·(1, 2) = (8, 8).
    let a = Matrix([[4, 2], [2, 3]])
    let l = try LinearAlgebra.cholesky(a)
    #expect(abs(l[0, 0] - 2) < 1e-15 && abs(l[1, 0] - 1) < 1e-15 && abs(l[1, 1] - 2.0.squareRoot()) < 1e-15 && l[0, 1] == 0)
    let x = LinearAlgebra.choleskySolve(l, [8, 8])
    #expect(abs(x[0] - 1) < 1e-14 && abs(x[1] - 2) < 1e-14)
    #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.cholesky(Matrix([[1, 2], [2, 1]])) }
}

@Test func jacobiEigenAndSingularValues() {
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3 with eigenvectors (1, −1)/√2 and (1, 1)/√2.
    let (values, vectors) = LinearAlgebra.symmetricEigen(Matrix([[2, 1], [1, 2]]))
    #expect(abs(values[0] - 1) < 1e-14 && abs(values[1] - 3) < 1e-14)
    #expect(abs(abs(vectors[0, 1]) - 0.5.squareRoot()) < 1e-14 && abs(vectors[0, 1] - vectors[1, 1]) < 1e-14)
    // A random symmetric matrix: A v = λ v for every pair, and V orthogonal.
    var rng = SeededRandom(seed: 7)
    var s = Matrix(rows: 6, cols: 6)
    for i in 0..<6 { for j in i..<6 { let v = rng.nextGaussian(); s[i, j] = v; s[j, i] = v } }
    let e = LinearAlgebra.symmetricEigen(s)
    for j in 0..<6 {
        let v = e.vectors.column(j)
        #expect(norm(sub(s * v, scale(e.values[j], v))) < 1e-12)
    }
    let vtv = e.vectors.transposed * e.vectors
    #expect(norm(sub(vtv.data, Matrix.identity(6).data)) < 1e-12)
    // Singular values of a 3×2 matrix against the eigenvalues of AᵀA.
    let a = Matrix([[3, 0], [4, 5], [0, 1]])
    let sv = LinearAlgebra.singularValues(a)
    let ev = LinearAlgebra.symmetricEigen(a.gram).values
    #expect(abs(sv[0] - ev[1].squareRoot()) < 1e-12 && abs(sv[1] - ev[0].squareRoot()) < 1e-12)
    #expect(LinearAlgebra.singularValues(Matrix([[0, 2], [0, 0]])) == [2, 0])
}

@Test func rowSpaceBasisIsOrthonormalAndSpans() {
    var rng = SeededRandom(seed: 3)
    let x = Matrix(rows: 3, cols: 7, data: (0..<21).map { _ in rng.nextGaussian() })
    // A fourth row in the span of the first two: rank stays 3.
    let dependent = add(scale(2, x.row(0)), scale(-1, x.row(1)))
    let x4 = Matrix.stacking(x, Matrix(rows: 1, cols: 7, data: dependent))
    let q = LinearAlgebra.rowSpaceBasis(x4)
    #expect(q.rows == 7 && q.cols == 3)
    #expect(norm(sub((q.transposed * q).data, Matrix.identity(3).data)) < 1e-13)
    for i in 0..<4 {  // every row is its own projection
        let r = x4.row(i)
        #expect(norm(sub(q * q.transposeTimes(r), r)) < 1e-12 * norm(r))
    }
}

// MARK: - The closed form against gradient descent

/// Gradient descent with step 1/L on one stage's objective, L the objective's smoothness
/// 2(λ_max(XᵀX) + µ), run until the gradient vanishes to rounding.
func gradientDescent(_ stage: Stage, from previous: [Double], mu: Double) -> [Double] {
    let lMax = LinearAlgebra.symmetricEigen(stage.x.gram).values.last ?? 0
    let step = 1 / (2 * (lMax + mu))
    var theta = previous
    for _ in 0..<200_000 {
        let g = LinearTheory.stageGradient(stage, theta: theta, previous: previous, mu: mu)
        if norm(g) < 1e-13 { break }
        theta = sub(theta, scale(step, g))
    }
    return theta
}

@Test func closedFormMatchesGradientDescentOnEveryStage() throws {
    var config = LinearConfig()
    config.dimension = 12
    config.sizeA = 5
    config.sizeB = 6
    config.forget = 2
    config.testPoints = 10
    config.mu = 0.7
    for seed: UInt64 in [1, 2] {
        config.seed = seed
        let inst = try LinearInstance.random(config)
        let zero = [Double](repeating: 0, count: config.dimension)
        // Every stage of both paths and of both retrained paths, each from its actual start.
        var checks: [(Stage, [Double])] = []
        let thetaA = try LinearTheory.train(inst.stageA, from: zero, mu: config.mu)
        let thetaB = try LinearTheory.train(inst.stageB, from: zero, mu: config.mu)
        let thetaBr = try LinearTheory.train(inst.retainedB, from: zero, mu: config.mu)
        checks.append((inst.stageA, zero))
        checks.append((inst.stageB, thetaA))
        checks.append((inst.stageB, zero))
        checks.append((inst.stageA, thetaB))
        checks.append((inst.retainedB, thetaA))
        checks.append((inst.retainedB, zero))
        checks.append((inst.stageA, thetaBr))
        for (stage, start) in checks {
            let closed = try LinearTheory.train(stage, from: start, mu: config.mu)
            let gd = gradientDescent(stage, from: start, mu: config.mu)
            #expect(norm(sub(closed, gd)) <= 1e-8, "closed form vs GD: \(norm(sub(closed, gd)))")
            // And the closed form is a stationary point to rounding.
            #expect(norm(LinearTheory.stageGradient(stage, theta: closed, previous: start, mu: config.mu)) < 1e-10)
        }
        // The analysis trains the same paths.
        let a = try LinearTheory.analyze(inst)
        #expect(norm(sub(a.thetaAB, try LinearTheory.train(inst.stageB, from: thetaA, mu: config.mu))) == 0)
        #expect(norm(sub(a.retrainedBA, try LinearTheory.train(inst.stageA, from: thetaBr, mu: config.mu))) == 0)
    }
}

// MARK: - The Lemma

@Test func lemmaIdentityHoldsToRounding() throws {
    var config = LinearConfig()
    config.dimension = 30
    config.sizeA = 12
    config.sizeB = 12
    config.forget = 4
    config.testPoints = 40
    config.steps = 40
    config.seed = 11
    let inst = try LinearInstance.random(config)
    let a = try LinearTheory.analyze(inst)
    #expect(a.maxLemmaError <= 1e-9)
    // Independently: the explicit matrix I + M_U, raised to the power t, against the difference
    // of the two models unlearned by gradient ascent (with their y_U).
    let u = inst.forgetSet
    let m = (2 * config.eta / Double(config.forget)) * u.x.gram
    let step = m + Matrix.identity(config.dimension)
    var power = Matrix.identity(config.dimension)
    var ab = a.thetaAB, ba = a.thetaBA
    #expect(norm(a.delta0) > 0.1)  // the two paths really differ
    for t in 1...config.steps {
        ab = LinearTheory.ascend(ab, on: u, eta: config.eta)
        ba = LinearTheory.ascend(ba, on: u, eta: config.eta)
        power = step * power
        let predicted = power * a.delta0
        let rel = norm(sub(sub(ab, ba), predicted)) / norm(predicted)
        #expect(rel <= 1e-9, "t = \(t): relative error \(rel)")
    }
    // The gap really grows (ρ* > 0), so the identity is not trivially about a constant.
    #expect(norm(sub(ab, ba)) > 2 * norm(a.delta0))
}

// MARK: - Theorem 3.1 on random instances

@Test func boundHoldsOnAThousandRandomInstances() throws {
    var limits = LinearConfig()
    limits.dimension = 8
    limits.sizeA = 6
    limits.sizeB = 6
    limits.forget = 3
    limits.testPoints = 10
    limits.steps = 30
    limits.eta = 0.5
    let sweep = try LinearTheory.sweep(count: 1000, limits: limits, seed: 2025)
    #expect(sweep.count == 1000)
    #expect(sweep.nonFinite == 0)
    // The theorem is checked on most instances (t₀ is reached within the horizon) ...
    #expect(sweep.applicable >= 800, "only \(sweep.applicable) instances reach t₀")
    #expect(sweep.applicableCertified >= 700, "only \(sweep.applicableCertified) instances reach the certified t₀")
    // ... and holds on every one from the certified t₀, where it is a theorem.
    #expect(sweep.holdFromCertified == sweep.applicableCertified)
    #expect(sweep.worstRatioCertified >= 1 - 1e-9)
    // From the paper's t₀ (parameter norms) it holds on almost all; the few failures (X_test
    // cancelling the growing part, see parameterNormT0CanBeTooEarly) all lie before the certified t₀.
    #expect(sweep.holdFromT0 >= sweep.applicable * 95 / 100)
    for f in sweep.failures {
        #expect(f.failingSteps.allSatisfy { t in f.t0Certified.map { t < $0 } ?? true }, "\(f.config.summary)")
    }
    #expect(sweep.maxLemmaError <= 1e-9)
    // The (adapted) corollary: from t* on, one path is farther than ε from its retrained model.
    #expect(sweep.corollaryChecked >= 100)
    #expect(sweep.corollaryHeld == sweep.corollaryChecked)
    // Parameters really vary.
    #expect(Set(sweep.cases.map(\.config.dimension)).count >= 6)
    #expect(Set(sweep.cases.map(\.config.forget)) == [1, 2, 3])
}

@Test func sweepIsDeterministicBySeed() throws {
    var limits = LinearConfig()
    limits.dimension = 6
    limits.sizeA = 4
    limits.sizeB = 4
    limits.forget = 2
    limits.testPoints = 6
    limits.steps = 10
    let a = try LinearTheory.sweep(count: 20, limits: limits, seed: 5)
    let b = try LinearTheory.sweep(count: 20, limits: limits, seed: 5)
    let c = try LinearTheory.sweep(count: 20, limits: limits, seed: 6)
    #expect(a == b)
    #expect(a.cases.map(\.config) != c.cases.map(\.config))
    #expect(a.jsonLines() == b.jsonLines())
}

// MARK: - One instance worked out by hand

/// d = 2, µ = 1, η = 1/4.
/// Stage A: x = (1, 0), y = 2.   Stage B: rows (0, 1) → 1 and (1, 1) → 3; U = {row 0}, k = 1.
///
/// Stage A from θ: (XᵀX + I)⁻¹(Xᵀy + θ) with XᵀX + I = diag(2, 1).
/// Stage B from θ: X_BᵀX_B + I = [[2, 1], [1, 3]], inverse (1/5)[[3, −1], [−1, 2]], X_Bᵀy_B = (3, 4).
/// B∖U from θ: XᵀX + I = [[2, 1], [1, 2]], inverse (1/3)[[2, −1], [−1, 2]], Xᵀy = (3, 3).
///
///   θ_A = (1, 0);   θ_AB = (1/5)[[3, −1], [−1, 2]](4, 4) = (1.6, 0.8)
///   θ_B = (1/5)(5, 5) = (1, 1);   θ_BA = diag(1/2, 1)((2, 0) + (1, 1)) = (1.5, 1)
///   Δθ₀ = (0.1, −0.2)
///   retrained A→B∖U = (1/3)[[2, −1], [−1, 2]](4, 3) = (5/3, 2/3);  B∖U = (1, 1), so B∖U→A = (1.5, 1)
///
/// Gradient ascent: θ ← θ + η·2·x_U(x_U·θ − y_U), i.e. θ₂ − 1 ← 1.5(θ₂ − 1), θ₁ unchanged.
///   θ_AB^(t) = (1.6, 1 − 0.2·1.5^t),  θ_BA^(t) = (1.5, 1) for all t (it fits U exactly).
///   M_U = diag(0, 1/2), P_U = diag(0, 1): P_U Δθ₀ = (0, −0.2), (I − P_U)Δθ₀ = (0.1, 0), ρ* = 1/2.
///
/// X_test = [[1, 0], [1, 2]] (m = 2): σ_U = ‖X_test (0, 1)‖ = ‖(0, 2)‖ = 2.
///   d(t) = ½[(0.1)² + (0.1 − 0.4·1.5^t)²]: d(0) = 0.05, d(1) = 0.13, d(2) = 0.325.
///   bound(t) = σ_U²‖P_U Δθ₀‖²/(4m)·(1.5)^(2t) = 4·0.04/8·2.25^t = 0.02·2.25^t: 0.02, 0.045, 0.10125.
///   t₀ = 0 (0.2·1.5⁰ ≥ 2·0.1) and certified t₀ = 0 (2·0.2 ≥ 2‖(0.1, 0.1)‖ = 0.283).
///   d(θ_AB^(0), retrained) = ½[(−1/15)² + (−1/15 + 4/15)²] = 10/450 = 1/45; d(θ_BA^(t), retrained) = 0.
///   ε = 0.1: t* formula = [ln(16·2·0.1) − ln(4·0.04)] / (2 ln 1.5) = ln 20 / ln 2.25 = 3.6942 → t* = 4.
///   d(r_AB, r_BA) = ½[(1/6)² + (1/6 − 2/3)²] = 5/36; threshold (2√0.1 + √(5/36))² = 1.01031;
///   0.02·2.25^t > 1.01031 ⇔ t > 4.837 → t* (own retrained models) = 5.
func handInstance(test: Matrix = Matrix([[1, 0], [1, 2]])) -> LinearInstance {
    var c = LinearConfig()
    c.dimension = 2
    c.sizeA = 1
    c.sizeB = 2
    c.forget = 1
    c.mu = 1
    c.eta = 0.25
    c.testPoints = test.rows
    c.steps = 6
    c.epsilon = 0.1
    return LinearInstance(config: c, stageA: Stage(x: Matrix([[1, 0]]), y: [2]),
                          stageB: Stage(x: Matrix([[0, 1], [1, 1]]), y: [1, 3]), forgetRows: [0], testInputs: test)
}

@Test func handWorkedInstance() throws {
    let a = try LinearTheory.analyze(handInstance())
    func close(_ x: [Double], _ y: [Double]) -> Bool { norm(sub(x, y)) < 1e-14 }
    #expect(close(a.thetaAB, [1.6, 0.8]))
    #expect(close(a.thetaBA, [1.5, 1]))
    #expect(close(a.retrainedAB, [5.0 / 3, 2.0 / 3]))
    #expect(close(a.retrainedBA, [1.5, 1]))
    #expect(close(a.delta0, [0.1, -0.2]))
    #expect(close(a.projectedDelta, [0, -0.2]) && close(a.orthogonalDelta, [0.1, 0]))
    #expect(abs(a.rhoStar - 0.5) < 1e-15)
    #expect(abs(a.sigmaU - 2) < 1e-14)
    #expect(a.spectrumM.count == 1 && abs(a.spectrumM[0] - 0.5) < 1e-15)
    #expect(a.t0 == 0 && a.t0Certified == 0)
    for s in a.steps {
        let g = pow(1.5, Double(s.t))
        let expected = 0.5 * (0.01 + pow(0.1 - 0.4 * g, 2))
        #expect(abs(s.distance - expected) < 1e-13 * max(1, expected), "t=\(s.t)")
        #expect(abs(s.bound - 0.02 * pow(2.25, Double(s.t))) < 1e-13 * max(1, s.bound))
        #expect(s.holds)
        let dr = 0.5 * (pow(-1.0 / 15, 2) + pow(-1.0 / 15 + 2 * (1.0 / 3 - 0.2 * g), 2))
        #expect(abs(s.distanceABToRetrained - dr) < 1e-13 * max(1, dr))
        #expect(s.distanceBAToRetrained < 1e-28)
    }
    #expect(abs(a.steps[0].distance - 0.05) < 1e-15 && abs(a.steps[1].distance - 0.13) < 1e-15
            && abs(a.steps[2].distance - 0.325) < 1e-15)
    #expect(abs(a.steps[0].distanceABToRetrained - 1.0 / 45) < 1e-15)
    #expect(abs(a.tStarFormula - 3.694_2) < 1e-4)
    #expect(a.tStar == 4)
    #expect(abs(a.retrainedGap - 5.0 / 36) < 1e-15)
    #expect(abs(a.tStarRetrainedFormula - 4.837) < 1e-3)
    #expect(a.tStarRetrained == 5)
}

/// The same instance with X_test = [[2, 1]] (m = 1) makes the parameter-norm reading of t₀ too
/// weak: X_test Δθ₀ = 0.2 − 0.2 = 0, so d(0) = 0, while σ_U = |X_test·(0, 1)| = 1 and the bound is
/// 1·0.04/4 = 0.01 at t = 0 although ‖P_U Δθ₀‖ = 0.2 ≥ 2‖(I − P_U)Δθ₀‖ = 0.2 (t₀ = 0). At t = 1,
/// X_test Δθ₁ = 0.2 − 0.3 = −0.1, d = 0.01 < 0.0225. The certified t₀ (σ_U‖(I+M)^t P_U Δθ₀‖ =
/// 0.2·1.5^t ≥ 2‖X_test (I−P_U)Δθ₀‖ = 0.4) is 2, where d = 0.0625 ≥ 0.050625.
@Test func parameterNormT0CanBeTooEarly() throws {
    let a = try LinearTheory.analyze(handInstance(test: Matrix([[2, 1]])))
    #expect(a.t0 == 0)
    #expect(a.t0Certified == 2)
    #expect(abs(a.sigmaU - 1) < 1e-15)
    #expect(a.steps[0].distance < 1e-30 && !a.steps[0].holds)
    #expect(abs(a.steps[1].distance - 0.01) < 1e-15 && !a.steps[1].holds)
    #expect(abs(a.steps[2].distance - 0.0625) < 1e-15 && a.steps[2].holds)
    #expect(!a.boundHolds(from: a.t0))
    #expect(a.boundHolds(from: a.t0Certified))
}

// MARK: - Errors and output

@Test func badConfigurationsAreRejectedWithClearMessages() {
    var c = LinearConfig()
    c.forget = 30
    #expect(throws: TheoryError.self) { try LinearInstance.random(c) }
    do { try c.validate() } catch { #expect("\(error)".contains("k must be in 1...20")) }
    c = LinearConfig()
    c.testPoints = 3
    do { try c.validate(); Issue.record("m < k accepted") } catch { #expect("\(error)".contains("m must be ≥ k")) }
    c = LinearConfig()
    c.eta = -1
    #expect(throws: TheoryError.self) { try c.validate() }
    var inst = handInstance()
    inst.forgetRows = [5]
    #expect(throws: TheoryError.self) { try LinearTheory.analyze(inst) }
}

@Test func jsonLinesCarryTheRequiredKeys() throws {
    var c = LinearConfig()
    c.dimension = 10
    c.sizeA = 4
    c.sizeB = 4
    c.forget = 2
    c.testPoints = 8
    c.steps = 5
    let a = try LinearTheory.analyze(try LinearInstance.random(c))
    let lines = a.jsonLines()
    #expect(lines.count == c.steps + 2)
    for (i, line) in lines.dropLast().enumerated() {
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(obj["t"] as? Int == i)
        for key in ["distance", "bound", "lemma_error"] { #expect(obj[key] is Double || obj[key] is Int, "\(key)") }
    }
    let last = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
    #expect(abs((last["rho_star"] as? Double ?? -1) - a.rhoStar) < 1e-15)
    #expect(abs((last["sigma_u"] as? Double ?? -1) - a.sigmaU) < 1e-15)
    #expect(last.keys.contains("t_star"))
    let csv = a.csv().split(separator: "\n")
    #expect(csv.count == c.steps + 2 && csv[0].hasPrefix("t,distance,bound,lemma_error"))
}

// MARK: - Two-layer network

@Test func twoLayerGradientMatchesFiniteDifferences() {
    var rng = SeededRandom(seed: 9)
    let net = TwoLayerNetwork.random(inputs: 4, hidden: 3, rng: &rng)
    let x = Matrix(rows: 5, cols: 4, data: (0..<20).map { _ in 0.5 * rng.nextGaussian() })
    let stage = Stage(x: x, y: (0..<5).map { _ in rng.nextGaussian() })
    let (_, g) = net.squaredLossAndGradient(stage)
    for i in net.parameters.indices {
        var plus = net, minus = net
        plus.parameters[i] += 1e-6
        minus.parameters[i] -= 1e-6
        let fd = (plus.squaredLossAndGradient(stage).loss - minus.squaredLossAndGradient(stage).loss) / 2e-6
        #expect(abs(fd - g[i]) < 1e-6 * max(1, abs(g[i])), "parameter \(i): \(fd) vs \(g[i])")
    }
}

@Test func twoLayerPathsDivergeUnderGradientAscent() throws {
    var c = LinearConfig()
    c.dimension = 8
    c.sizeA = 6
    c.sizeB = 6
    c.forget = 2
    c.testPoints = 12
    c.steps = 12
    c.seed = 4
    let inst = try LinearInstance.random(c)
    let cfg = TwoLayerConfig(data: c, hidden: 6, trainSteps: 3000, tolerance: 1e-7)
    let a = try TwoLayerTheory.analyze(inst, config: cfg)
    #expect(a.worstStageGradient <= 1e-7)  // the stages are trained to convergence
    #expect(a.steps.count == c.steps + 1)
    #expect(a.steps[0].distance > 0)       // the order of the stages matters ...
    #expect(a.steps.last!.distance > 2 * a.steps[0].distance)  // ... more and more under ascent
    #expect(a.steps.allSatisfy { $0.distance.isFinite && $0.distanceABToRetrained.isFinite })
    // Deterministic by seed.
    #expect(try TwoLayerTheory.analyze(inst, config: cfg) == a)
    let lines = a.jsonLines()
    #expect(lines.count == c.steps + 2 && lines[0].contains("\"bound\":null"))
}
