import ArgumentParser
import Foundation
import Plots
import Theory

struct TheoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "theory",
        abstract: "Compute the paper's linear-regression impossibility result exactly (section 3).",
        discussion: """
        Builds a random over-parameterised linear-regression instance with two training stages A \
        and B and a forget set U (the first k rows of B). Trains both paths θ_AB and θ_BA in \
        closed form (proximal ridge, µ), their retrained models (the same path without U), runs \
        t steps of gradient ascent on U (step η) from both, and reports per step the exact \
        distance d(θ_AB^(t), θ_BA^(t)) = (1/m)‖X_test(θ_AB^(t) − θ_BA^(t))‖², the Theorem 3.1 \
        lower bound σ_U²‖P_U Δθ₀‖²/(4m)·(1+ρ*)^(2t), the Lemma's error, and each model's \
        distance to its retrained model; then ρ*, σ_U, t₀ and the corollary's t*.

        --sweep N checks the inequality on N random instances with parameters up to the given \
        ones and reports how many hold (and every one that does not).
        --model two-layer runs the same two-path experiment with a small tanh network trained by \
        gradient descent, where the theorem does not apply.

        See docs/theory.md for how to read the output.
        """
    )

    enum Model: String, ExpressibleByArgument, CaseIterable {
        case linear
        case twoLayer = "two-layer"
    }

    @Option(help: "Model: linear (the theorem's setting) or two-layer (a tanh network, beyond the theorem).")
    var model: Model = .linear

    @Option(name: [.customShort("d"), .customLong("dim")], help: "Dimension d of θ and of the inputs.")
    var dimension: Int = 50

    @Option(name: .customLong("size-a"), help: "Examples in stage A.")
    var sizeA: Int = 20

    @Option(name: .customLong("size-b"), help: "Examples in stage B.")
    var sizeB: Int = 20

    @Option(name: [.customShort("k"), .customLong("forget")], help: "Size k of the forget set U (the first k rows of stage B).")
    var forget: Int = 5

    @Option(help: "µ: proximal strength of each stage, argmin ‖Xθ − y‖² + µ‖θ − θ_prev‖².")
    var mu: Double = 1

    @Option(help: "η: gradient-ascent step on the forget loss (1/k)‖X_U θ − y_U‖².")
    var eta: Double = 0.25

    @Option(name: [.customShort("m"), .customLong("test-points")], help: "Number m of test points of the distance d (m ≥ k).")
    var testPoints: Int = 100

    @Option(name: [.customShort("t"), .customLong("steps")], help: "Gradient-ascent steps: t runs from 0 to this.")
    var steps: Int = 50

    @Option(help: "Standard deviation of the label noise.")
    var noise: Double = 0.1

    @Option(help: "ε of the corollary: the tolerance of 'as good as retrained' in the distance d.")
    var epsilon: Double = 0.05

    @Option(help: "Seed of the instance (and of the sweep's instances).")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Check the inequality on N random instances instead of reporting one; d, sizes, k and m are then upper limits, µ and η centres of a ×10 range.", valueName: "N"))
    var sweep: Int?

    @Option(help: "Two-layer model: hidden width.")
    var hidden: Int = 16

    @Option(name: .customLong("train-steps"), help: "Two-layer model: most gradient-descent iterations per stage.")
    var trainSteps: Int = 3000

    @Flag(help: "Print one JSON object per step, then a final object (rho_star, sigma_u, t_star, ...).")
    var json = false

    @Option(help: ArgumentHelp("Write the per-step table (with --sweep: one row per instance) as CSV to this file.", valueName: "file"))
    var csv: String?

    @Option(help: ArgumentHelp("Write an SVG chart to this file (log scale: measured distance, the bound from t₀ on, distances to the retrained models, ε; with --sweep: each instance's slack).", valueName: "file"))
    var svg: String?

    var config: LinearConfig {
        LinearConfig(dimension: dimension, sizeA: sizeA, sizeB: sizeB, forget: forget, mu: mu, eta: eta,
                     testPoints: testPoints, steps: steps, noise: noise, epsilon: epsilon, seed: seed)
    }

    func validate() throws {
        do { try config.validate() } catch let e as TheoryError { throw ValidationError(e.description) }
        if let n = sweep, n < 1 || n > 1_000_000 { throw ValidationError("--sweep must be in 1...1000000, got \(n)") }
        if sweep != nil, model != .linear { throw ValidationError("--sweep checks the theorem, so it needs --model linear") }
        if hidden < 1 || hidden > 4096 { throw ValidationError("--hidden must be in 1...4096, got \(hidden)") }
        if trainSteps < 1 { throw ValidationError("--train-steps must be ≥ 1, got \(trainSteps)") }
    }

    func run() throws {
        if let n = sweep {
            let result = try LinearTheory.sweep(count: n, limits: config, seed: seed)
            if json { result.jsonLines().forEach { print($0) } } else { print(result.report(), terminator: "") }
            if let csv {
                var s = "index,d,size_a,size_b,k,mu,eta,m,seed,t0,t0_certified,rho_star,sigma_u,holds_from_t0,holds_from_t0_certified,holds_everywhere,worst_ratio\n"
                for c in result.cases {
                    let p = c.config
                    s += "\(c.index),\(p.dimension),\(p.sizeA),\(p.sizeB),\(p.forget),\(jsonNumber(p.mu)),\(jsonNumber(p.eta)),"
                        + "\(p.testPoints),\(p.seed),\(c.t0.map(String.init) ?? ""),\(c.t0Certified.map(String.init) ?? ""),"
                        + "\(jsonNumber(c.rhoStar)),\(jsonNumber(c.sigmaU)),\(c.holdsFromT0),\(c.holdsFromCertified),"
                        + "\(c.holdsEverywhere),\(jsonNumber(c.worstRatio))\n"
                }
                try write(s, to: csv)
            }
            if let svg {
                // The slack of each instance (smallest distance/bound over the checked steps), sorted.
                let ratios = result.cases.map(\.worstRatio).filter { $0.isFinite && $0 > 0 }.sorted()
                let certified = result.cases.map(\.worstRatioCertified).filter { $0.isFinite && $0 > 0 }.sorted()
                let n = Double(max(ratios.count, certified.count, 2) - 1)
                let chart = LineChart(
                    title: "Sweep of \(result.count) instances: smallest distance / bound, sorted",
                    xTitle: "instance (sorted by slack)", yTitle: "distance / bound (log scale)", yScale: .log10,
                    series: [Series(name: "over t ≥ t₀ (parameter norms)", y: ratios, markers: ratios.count <= 200),
                             Series(name: "over t ≥ t₀ certified", y: certified, markers: certified.count <= 200),
                             Series(name: "1 (bound met with equality)", x: [0, n], y: [1, 1],
                                    color: "#444444", dashed: true)])
                try write(chart.svg(), to: svg)
            }
            return
        }
        let instance = try LinearInstance.random(config)
        switch model {
        case .linear:
            let a = try LinearTheory.analyze(instance)
            if json { a.jsonLines().forEach { print($0) } } else { print(a.table(), terminator: "") }
            if let csv { try write(a.csv(), to: csv) }
            if let svg { try write(Self.chart(a).svg(), to: svg) }
        case .twoLayer:
            let cfg = TwoLayerConfig(data: config, hidden: hidden, trainSteps: trainSteps)
            let a = try TwoLayerTheory.analyze(instance, config: cfg)
            if json { a.jsonLines().forEach { print($0) } } else { print(a.table(), terminator: "") }
            if let csv { try write(a.csv(), to: csv) }
            if let svg { try write(Self.chart(a).svg(), to: svg) }
        }
    }

    static func chart(_ a: LinearAnalysis) -> LineChart {
        let t = a.steps.map { Double($0.t) }
        let applies = a.steps.map { $0.boundApplies ? $0.bound : .nan }
        let epsilon = [Double](repeating: a.config.epsilon, count: t.count)
        return LineChart(
            title: "Distance between the two unlearned paths (linear, d=\(a.config.dimension), k=\(a.config.forget))",
            xTitle: "gradient-ascent step t", yTitle: "distance d (log scale)", yScale: .log10,
            series: [
                Series(name: "d(θ_AB, θ_BA) measured", x: t, y: a.steps.map(\.distance)),
                Series(name: "Theorem 3.1 bound (t ≥ t₀)", x: t, y: applies, dashed: true),
                Series(name: "d(θ_AB, retrained A→B∖U)", x: t, y: a.steps.map(\.distanceABToRetrained)),
                Series(name: "d(θ_BA, retrained B∖U→A)", x: t, y: a.steps.map(\.distanceBAToRetrained)),
                Series(name: "ε", x: t, y: epsilon, color: "#7f7f7f", dashed: true),
            ])
    }

    static func chart(_ a: TwoLayerAnalysis) -> LineChart {
        let t = a.steps.map { Double($0.t) }
        return LineChart(
            title: "Two-layer network: distance between the unlearned paths (d=\(a.config.data.dimension), k=\(a.config.data.forget))",
            xTitle: "gradient-ascent step t", yTitle: "distance d (log scale)", yScale: .log10,
            series: [
                Series(name: "d(f_AB, f_BA) measured", x: t, y: a.steps.map(\.distance)),
                Series(name: "d(f_AB, retrained A→B∖U)", x: t, y: a.steps.map(\.distanceABToRetrained)),
                Series(name: "d(f_BA, retrained B∖U→A)", x: t, y: a.steps.map(\.distanceBAToRetrained)),
                Series(name: "ε", x: t, y: [Double](repeating: a.config.data.epsilon, count: t.count), color: "#7f7f7f", dashed: true),
            ])
    }

    func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TheoryError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}
