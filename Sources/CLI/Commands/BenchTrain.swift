import ArgumentParser
import Engine
import Foundation
import JSONSupport
import Models
import Training
#if canImport(Glibc)
import Glibc
#endif

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps (forward, backward, AdamW) and forward passes of a preset model on random tokens.",
        discussion: """
        FLOPs per token are counted as 6N + 12·L·S·d for a training step and a third of that for \
        a forward pass (N = parameters without the input embedding, L layers, S sequence length, \
        d hidden size), as in ../shared/ENGINE.md, so the numbers compare with \
        scripts/bench/train_vs_pytorch.py. The forward pass computes the loss without recording \
        gradients. With --json: one object per phase ("phase": "train", then "forward").
        """)

    @OptionGroup var shape: BenchShape

    @Option(help: "Timed steps (after one warm-up step).")
    var steps: Int = 5

    @Flag(help: "Print one JSON object per phase.")
    var json = false

    @Option(help: "Phases to time: train, forward or both.")
    var phase: String = "both"

    @Flag(help: ArgumentHelp(
        "Wait for commands on standard input, one per line: `train` or `forward` runs one step and prints {\"seconds\": ...}; end of input prints the peak RSS.",
        discussion: "For scripts/bench/train_vs_pytorch.py, which steps two engines in alternation so that both see the same state of a noisy machine."))
    var lockstep = false

    @Flag(help: ArgumentHelp(
        "Then run --steps more steps under an op profiler and print where a step's time goes, op by op.",
        discussion: "Backward rules are timed exactly; a forward op from the end of the previous op. With --json: one object per op kind."))
    var profile = false

    @Flag(help: "Train on right-padded rows of random real lengths (t/8 ... t), like collated documents; tokens/s still counts batch × seq.")
    var ragged = false

    func run() throws {
        let (p, b, t) = try shape.resolve(minimumSeq: 2)
        guard steps > 0 else { throw ValidationError("--steps must be positive") }
        guard ["train", "forward", "both"].contains(phase) else {
            throw ValidationError("--phase: expected train, forward or both, found \"\(phase)\"")
        }
        let config = p.config
        let model = try CausalLM(config: config, seed: 1)
        let n = Double(config.parameterCount - config.vocabSize * config.hiddenSize)
        let flopsPerToken = 6 * n + 12 * Double(config.numHiddenLayers * t * config.hiddenSize)
        if lockstep {
            try serveSteps(model, batch: b, seq: t)
            return
        }
        if phase != "forward" {
            try runTrain(model, preset: p, batch: b, seq: t, flopsPerToken: flopsPerToken)
        }
        if phase != "train" {
            try runForward(model, preset: p, batch: b, seq: t, flopsPerToken: flopsPerToken / 3)
        }
        if profile {
            try printProfile(model, batch: b, seq: t)
        }
    }

    private func runForward(_ model: CausalLM, preset p: ModelPreset, batch b: Int, seq t: Int, flopsPerToken: Double) throws {
        var rng = SeededRandom(seed: 3)
        var times: [Double] = []
        var lastLoss: Float = .nan
        for step in 0...steps {
            let (ids, labels) = Self.randomBatch(&rng, vocab: model.config.vocabSize, batch: b, seq: t, ragged: false)
            let timing = try Self.timedStep(model, optimizer: nil, ids: ids, labels: labels, batch: b, seq: t)
            lastLoss = timing.loss
            if step > 0 { times.append(timing.seconds) }
        }
        let tokPerS = Double(b * t * steps) / times.reduce(0, +)
        let median = times.sorted()[times.count / 2]
        let rss = Self.peakRSSMiB()
        if json {
            print(jsonLine(["preset": jsonQuoted(p.rawValue), "phase": "\"forward\"", "batch": "\(b)", "seq": "\(t)",
                            "steps": "\(steps)", "threads": "\(Parallel.threads)", "parameters": "\(model.config.parameterCount)",
                            "tokens_per_s": jsonNumber(tokPerS, 1), "gflops": jsonNumber(tokPerS * flopsPerToken / 1e9, 2),
                            "median_step_s": jsonNumber(median, 4), "peak_rss_mb": jsonNumber(rss, 0), "peak_rss_mib": jsonNumber(rss, 0),
                            "last_loss": jsonNumber(Double(lastLoss), 4)]))
        } else {
            print(String(format: "forward (no grad), %d passes: %.1f tokens/s, %.1f GFLOP/s, median %.3f s, peak RSS %.0f MiB",
                         steps, tokPerS, tokPerS * flopsPerToken / 1e9, median, rss))
        }
    }

    private func runTrain(_ model: CausalLM, preset p: ModelPreset, batch b: Int, seq t: Int, flopsPerToken: Double) throws {
        let config = model.config
        let optimizer = try BenchAdamW(parameters: model.namedParameters.map { ($0.name, $0.tensor) })
        var rng = SeededRandom(seed: 2)
        var times: [Double] = []
        var phases: [[Double]] = [[], [], []]  // forward, backward, optimizer
        var lastLoss: Float = .nan
        for step in 0...steps {
            let (ids, labels) = Self.randomBatch(&rng, vocab: config.vocabSize, batch: b, seq: t, ragged: ragged)
            let timing = try Self.timedStep(model, optimizer: optimizer, ids: ids, labels: labels, batch: b, seq: t)
            lastLoss = timing.loss
            if step > 0 {
                times.append(timing.seconds)
                for i in 0..<3 { phases[i].append(timing.parts[i]) }
            }
        }
        let total = times.reduce(0, +)
        let tokens = Double(b * t * steps)
        let tokPerS = tokens / total
        let gflops = tokPerS * flopsPerToken / 1e9
        let rss = Self.peakRSSMiB()
        let sorted = times.sorted()
        let median = phases.map { $0.sorted()[$0.count / 2] }
        if json {
            print(jsonLine(["preset": jsonQuoted(p.rawValue), "phase": "\"train\"", "batch": "\(b)", "seq": "\(t)",
                            "steps": "\(steps)", "threads": "\(Parallel.threads)", "parameters": "\(config.parameterCount)",
                            "tokens_per_s": jsonNumber(tokPerS, 1), "gflops": jsonNumber(gflops, 2), "median_step_s": jsonNumber(sorted[sorted.count / 2], 4),
                            "forward_s": jsonNumber(median[0], 4), "backward_s": jsonNumber(median[1], 4), "optimizer_s": jsonNumber(median[2], 4),
                            "peak_rss_mb": jsonNumber(rss, 0), "peak_rss_mib": jsonNumber(rss, 0), "last_loss": jsonNumber(Double(lastLoss), 4)]))
        } else {
            print("preset \(p.rawValue): \(config.parameterCount) parameters, batch \(b) × seq \(t), \(Parallel.threads) threads")
            print(String(format: "%d steps: %.1f tokens/s, %.1f GFLOP/s, median step %.3f s, peak RSS %.0f MiB, last loss %.4f",
                         steps, tokPerS, gflops, sorted[sorted.count / 2], rss, lastLoss))
            print(String(format: "median forward %.3f s, backward %.3f s, AdamW %.3f s", median[0], median[1], median[2]))
        }
    }

    /// `--lockstep`: one timed step per command read from standard input.
    private func serveSteps(_ model: CausalLM, batch b: Int, seq t: Int) throws {
        let optimizer = try BenchAdamW(parameters: model.namedParameters.map { ($0.name, $0.tensor) })
        var rng = SeededRandom(seed: 2)
        try serveLockstep(ready: "{\"ready\":true,\"parameters\":\(model.config.parameterCount)}") { train in
            let (ids, labels) = Self.randomBatch(&rng, vocab: model.config.vocabSize, batch: b, seq: t, ragged: false)
            let timing = try Self.timedStep(model, optimizer: train ? optimizer : nil, ids: ids, labels: labels, batch: b, seq: t)
            return jsonLine(["seconds": jsonNumber(timing.seconds, 6), "loss": jsonNumber(Double(timing.loss), 4)])
        }
    }

    /// Random token ids for one step, `b` rows of `t`, as labels too. With `ragged`, each row is
    /// real only up to a random length and labelled -100 after it, as a collated batch of
    /// documents is right-padded.
    private static func randomBatch(_ rng: inout SeededRandom, vocab: Int, batch b: Int, seq t: Int,
                                    ragged: Bool) -> (ids: [Int32], labels: [Int32]) {
        let ids = (0..<(b * t)).map { _ in Int32(rng.nextInt(vocab)) }
        var labels = ids
        if ragged {
            for r in 0..<b {
                let real = t / 8 + rng.nextInt(t - t / 8 + 1)
                for j in Swift.max(1, real)..<t { labels[r * t + j] = -100 }
            }
        }
        return (ids, labels)
    }

    /// The loss and times (seconds) of one step.
    private struct StepTiming {
        var loss: Float
        var seconds: Double
        /// Forward, backward and optimizer shares of `seconds` (zeros for a forward pass).
        var parts: [Double]
    }

    /// One timed step: with an optimizer a training step (forward, backward, AdamW), without one
    /// a forward pass that records no gradients. The time includes reading the loss back.
    private static func timedStep(_ model: CausalLM, optimizer: BenchAdamW?, ids: [Int32], labels: [Int32],
                                  batch b: Int, seq t: Int) throws -> StepTiming {
        let t0 = DispatchTime.now().uptimeNanoseconds
        guard let optimizer else {
            let loss = Autograd.withNoGrad { model.loss(ids, labels: labels, batch: b, length: t).item() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            return StepTiming(loss: loss, seconds: seconds, parts: [seconds, 0, 0])
        }
        let loss = model.loss(ids, labels: labels, batch: b, length: t)
        let tf = DispatchTime.now().uptimeNanoseconds
        loss.backward()
        let tb = DispatchTime.now().uptimeNanoseconds
        try optimizer.step()
        let value = loss.item()
        let t1 = DispatchTime.now().uptimeNanoseconds
        return StepTiming(loss: value, seconds: Double(t1 - t0) / 1e9,
                          parts: [(t0, tf), (tf, tb), (tb, t1)].map { a, z in Double(z - a) / 1e9 })
    }

    static func peakRSSMiB() -> Double {
        #if canImport(Glibc)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
        #else
        return .nan
        #endif
    }
}

/// The trainer's own AdamW (`Training.AdamW`: SIMD, threaded) over every parameter, with the
/// hyper-parameters of the PyTorch side (lr 1e-3, betas 0.9/0.95, weight decay 0.01 on every
/// tensor), so the benchmark times the optimizer step users actually run.
struct BenchAdamW {
    let tensors: [Tensor]
    let slots: [ParameterSlot]
    let optimizer: AdamW

    init(parameters: [(name: String, tensor: Tensor)]) throws {
        tensors = parameters.map(\.tensor)
        // The pointers stay valid while the model holds the tensors (the benchmark keeps it alive).
        slots = parameters.map { name, t in
            ParameterSlot(name: name, shape: t.shape, value: t.withUnsafeMutableBufferPointer { $0 },
                          grad: t.withUnsafeMutableGradBufferPointer { $0 }, decay: true)
        }
        optimizer = try AdamW(AdamWConfig(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01))
    }

    /// After the backward pass: the update, then the gradients reset (lazily, as the trainer does).
    func step() throws {
        for t in tensors { t.settleGrad() }
        try optimizer.step(slots, learningRate: 1e-3)
        for t in tensors { t.resetGrad() }
    }
}
