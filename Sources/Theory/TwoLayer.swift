// The same two-path experiment with a small non-linear model, beyond the theorem's assumptions:
// f(x) = vᵀ tanh(W x), trained stage by stage with the proximal objective by gradient descent,
// then unlearned by gradient ascent on the forget set. Gradients are written by hand in Float64.
import Engine
import Foundation

/// A two-layer tanh network f(x) = (1/√h) Σ_j v_j tanh(Σ_i W_ji x_i), its parameters flattened
/// as [W (hidden × d, row-major), v (hidden)]. The 1/√h keeps the feature map's scale (and so the
/// speed of gradient ascent) independent of the width, as for the linear model's unit inputs.
public struct TwoLayerNetwork: Sendable, Equatable {
    public let inputs: Int
    public let hidden: Int
    public var parameters: [Double]

    public init(inputs: Int, hidden: Int, parameters: [Double]) {
        precondition(parameters.count == hidden * inputs + hidden,
                     "TwoLayerNetwork: \(hidden)x\(inputs) network needs \(hidden * inputs + hidden) parameters, got \(parameters.count)")
        self.inputs = inputs
        self.hidden = hidden
        self.parameters = parameters
    }

    /// W, v ~ N(0, 1): inputs have norm about 1, so pre-activations are about N(0, 1).
    public static func random(inputs: Int, hidden: Int, rng: inout SeededRandom) -> TwoLayerNetwork {
        let p = (0..<(hidden * inputs + hidden)).map { _ in rng.nextGaussian() }
        return TwoLayerNetwork(inputs: inputs, hidden: hidden, parameters: p)
    }

    /// Predictions for every row of x.
    public func predict(_ x: Matrix) -> [Double] {
        precondition(x.cols == inputs, "TwoLayerNetwork.predict: inputs have \(x.cols) columns, network expects \(inputs)")
        var out = [Double](repeating: 0, count: x.rows)
        var a = [Double](repeating: 0, count: hidden)
        for n in 0..<x.rows { out[n] = forward(x, row: n, activations: &a) }
        return out
    }

    @inline(__always) private func forward(_ x: Matrix, row n: Int, activations a: inout [Double]) -> Double {
        let d = inputs, h = hidden, vOff = h * d
        let scale = 1 / Double(h).squareRoot()
        return parameters.withUnsafeBufferPointer { p in
            x.data.withUnsafeBufferPointer { xs in
                a.withUnsafeMutableBufferPointer { act in
                    let xr = n * d
                    var f = 0.0
                    for j in 0..<h {
                        var z = 0.0
                        let wr = j * d
                        for i in 0..<d { z += p[wr + i] * xs[xr + i] }
                        act[j] = Foundation.tanh(z)
                        f += p[vOff + j] * act[j]
                    }
                    return f * scale
                }
            }
        }
    }

    /// Σ_n (f(x_n) − y_n)² and its gradient with respect to the parameters.
    public func squaredLossAndGradient(_ stage: Stage) -> (loss: Double, gradient: [Double]) {
        let d = inputs, h = hidden, vOff = h * d
        let scale = 1 / Double(h).squareRoot()
        var grad = [Double](repeating: 0, count: parameters.count)
        var loss = 0.0
        var a = [Double](repeating: 0, count: h)
        for n in 0..<stage.count {
            let r = forward(stage.x, row: n, activations: &a) - stage.y[n]
            loss += r * r
            parameters.withUnsafeBufferPointer { p in
                stage.x.data.withUnsafeBufferPointer { xs in
                    grad.withUnsafeMutableBufferPointer { g in
                        let xr = n * d
                        for j in 0..<h {
                            g[vOff + j] += 2 * r * scale * a[j]
                            let back = 2 * r * scale * p[vOff + j] * (1 - a[j] * a[j])
                            let wr = j * d
                            for i in 0..<d { g[wr + i] += back * xs[xr + i] }
                        }
                    }
                }
            }
        }
        return (loss, grad)
    }
}

/// Settings of the two-layer experiment on top of the linear instance's data and parameters.
public struct TwoLayerConfig: Sendable, Equatable {
    public var data: LinearConfig
    public var hidden: Int = 16
    /// Gradient-descent iterations per stage at most (stops earlier when the gradient is small).
    public var trainSteps: Int = 3000
    /// Gradient norm at which a stage counts as converged.
    public var tolerance: Double = 1e-8

    public init(data: LinearConfig = LinearConfig(), hidden: Int = 16, trainSteps: Int = 3000, tolerance: Double = 1e-8) {
        self.data = data
        self.hidden = hidden
        self.trainSteps = trainSteps
        self.tolerance = tolerance
    }

    public func validate() throws {
        try data.validate()
        guard hidden >= 1 && hidden <= 4096 else { throw TheoryError("hidden width must be in 1...4096, got \(hidden)") }
        guard trainSteps >= 1 else { throw TheoryError("training steps per stage must be ≥ 1, got \(trainSteps)") }
        guard tolerance > 0 else { throw TheoryError("tolerance must be > 0, got \(tolerance)") }
    }
}

/// One gradient-ascent step of the two-layer experiment.
public struct TwoLayerStep: Sendable, Equatable, Codable {
    public var t: Int
    /// (1/m) Σ (f_AB(x) − f_BA(x))² over the test inputs.
    public var distance: Double
    public var distanceABToRetrained: Double
    public var distanceBAToRetrained: Double
    /// ‖θ_AB − θ_BA‖ in parameter space.
    public var parameterGap: Double
}

/// The outcome of the two-layer experiment.
public struct TwoLayerAnalysis: Sendable, Equatable {
    public var config: TwoLayerConfig
    /// d between the two retrained models.
    public var retrainedGap: Double
    /// Largest final gradient norm of any stage's training (how converged the stages are).
    public var worstStageGradient: Double
    public var steps: [TwoLayerStep]
}

public enum TwoLayerTheory {
    /// Minimises Σ(f − y)² + µ‖θ − θ_prev‖² from θ_prev by gradient descent with a backtracking
    /// (Armijo) step, so no learning rate needs tuning. Returns the network and the final
    /// gradient norm.
    public static func train(_ net: TwoLayerNetwork, on stage: Stage, mu: Double, maxSteps: Int,
                             tolerance: Double) -> (TwoLayerNetwork, gradientNorm: Double) {
        let previous = net.parameters
        var current = net
        func objective(_ n: TwoLayerNetwork) -> (Double, [Double]) {
            var (loss, g) = n.squaredLossAndGradient(stage)
            var prox = 0.0
            for i in g.indices {
                let diff = n.parameters[i] - previous[i]
                prox += diff * diff
                g[i] += 2 * mu * diff
            }
            return (loss + mu * prox, g)
        }
        var (value, grad) = objective(current)
        var lr = 0.5 / mu
        var gn = norm(grad)
        for _ in 0..<maxSteps {
            if gn <= tolerance { break }
            var accepted = false
            for _ in 0..<60 {
                var trial = current
                for i in trial.parameters.indices { trial.parameters[i] -= lr * grad[i] }
                let (v, g) = objective(trial)
                if v <= value - 0.5 * lr * gn * gn {
                    current = trial
                    value = v
                    grad = g
                    gn = norm(g)
                    accepted = true
                    lr *= 1.5
                    break
                }
                lr *= 0.5
            }
            if !accepted { break }
        }
        return (current, gn)
    }

    /// One gradient-ascent step on the forget loss (1/k) Σ_U (f − y)².
    public static func ascend(_ net: TwoLayerNetwork, on forget: Stage, eta: Double) -> TwoLayerNetwork {
        let g = net.squaredLossAndGradient(forget).gradient
        var out = net
        let s = eta / Double(forget.count)
        for i in out.parameters.indices { out.parameters[i] += s * g[i] }
        return out
    }

    static func distance(_ a: TwoLayerNetwork, _ b: TwoLayerNetwork, test: Matrix) -> Double {
        let diff = sub(a.predict(test), b.predict(test))
        let n = norm(diff)
        return n * n / Double(test.rows)
    }

    /// Trains both paths and their retrained versions from one shared random initialisation, then
    /// runs gradient ascent on U from both paths and measures the distances at every step.
    public static func analyze(_ instance: LinearInstance, config: TwoLayerConfig) throws -> TwoLayerAnalysis {
        try config.validate()
        let c = config.data
        var rng = SeededRandom(seed: c.seed).derived("two-layer-init")
        let start = TwoLayerNetwork.random(inputs: c.dimension, hidden: config.hidden, rng: &rng)
        var worst = 0.0
        func path(_ stages: [Stage]) -> TwoLayerNetwork {
            var net = start
            for s in stages {
                let (n, g) = train(net, on: s, mu: c.mu, maxSteps: config.trainSteps, tolerance: config.tolerance)
                net = n
                worst = max(worst, g)
            }
            return net
        }
        let a = instance.stageA, b = instance.stageB, bRetained = instance.retainedB, u = instance.forgetSet
        var ab = path([a, b]), ba = path([b, a])
        let rAB = path([a, bRetained]), rBA = path([bRetained, a])
        let test = instance.testInputs
        var steps: [TwoLayerStep] = []
        for t in 0...c.steps {
            if t > 0 {
                ab = ascend(ab, on: u, eta: c.eta)
                ba = ascend(ba, on: u, eta: c.eta)
            }
            steps.append(TwoLayerStep(
                t: t, distance: distance(ab, ba, test: test),
                distanceABToRetrained: distance(ab, rAB, test: test),
                distanceBAToRetrained: distance(ba, rBA, test: test),
                parameterGap: norm(sub(ab.parameters, ba.parameters))))
        }
        return TwoLayerAnalysis(config: config, retrainedGap: distance(rAB, rBA, test: test),
                                worstStageGradient: worst, steps: steps)
    }
}
