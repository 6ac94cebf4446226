import ArgumentParser
import Engine
import Foundation
import JSONSupport
import Models

/// `palimpsest bench attention`: the fused causal attention of a preset's layer, alone.
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Time one layer's causal self-attention (forward, and forward plus backward) on a preset's shapes.",
        discussion: """
        Inputs are random q, k, v of shape [batch, seq, heads·headDim] (k and v with the preset's \
        key-value heads). `forward` runs without recording gradients; `train` runs the recorded \
        forward (which keeps the probabilities) and the backward pass into q, k and v. GFLOP/s \
        count the products a causal mask leaves: 2·B·H·D·T(T+1) per forward pass, twice that \
        for backward. scripts/bench/attention_vs_pytorch.py times PyTorch's \
        scaled_dot_product_attention on the same shapes in lockstep.
        """)

    @OptionGroup var shape: BenchShape

    @Option(help: "Timed repetitions per phase, after one warm-up; the median is reported.")
    var repeats: Int = 20

    @Flag(help: "Print one JSON object per phase.")
    var json = false

    @Flag(help: ArgumentHelp(
        "Wait for commands on standard input, one per line: `train` or `forward` runs once and prints {\"seconds\": ...}.",
        discussion: "For scripts/bench/attention_vs_pytorch.py and ab_train.py --bench attention."))
    var lockstep = false

    func run() throws {
        let (p, b, t) = try shape.resolve(minimumSeq: 1)
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
        let c = p.config
        let layer = Layer(batch: b, seq: t, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim)
        if lockstep {
            try serveLockstep(ready: "{\"ready\":true}") { train in "{\"seconds\":\(String(format: "%.6f", layer.time(train: train)))}" }
            return
        }
        let forwardFLOPs = 2 * Double(b * c.numAttentionHeads * c.headDim) * Double(t) * Double(t + 1)
        if !json {
            print("preset \(p.rawValue): batch \(b) × seq \(t), \(c.numAttentionHeads)/\(c.numKeyValueHeads) heads × \(c.headDim), \(Parallel.threads) threads")
        }
        for (phase, flops) in [("forward", forwardFLOPs), ("train", 3 * forwardFLOPs)] {
            _ = layer.time(train: phase == "train")
            let times = (0..<repeats).map { _ in layer.time(train: phase == "train") }.sorted()
            let median = times[times.count / 2]
            if json {
                print(jsonLine(["preset": jsonQuoted(p.rawValue), "phase": jsonQuoted(phase), "batch": "\(b)", "seq": "\(t)",
                                "threads": "\(Parallel.threads)", "median_s": jsonNumber(median, 6), "gflops": jsonNumber(flops / median / 1e9, 2)]))
            } else {
                print(String(format: "%-8@ median %8.3f ms  (quartiles %.3f–%.3f)  %6.1f GFLOP/s", phase, median * 1e3,
                             times[times.count / 4] * 1e3, times[3 * times.count / 4] * 1e3, flops / median / 1e9))
            }
        }
    }

    /// One layer's inputs, reused by every repetition.
    struct Layer {
        let q: Tensor, k: Tensor, v: Tensor, seed: Tensor
        let heads: Int, kvHeads: Int, headDim: Int

        init(batch b: Int, seq t: Int, heads: Int, kvHeads: Int, headDim: Int) {
            var rng = SeededRandom(seed: 5)
            func random(_ width: Int, grad: Bool) -> Tensor {
                Tensor((0..<(b * t * width)).map { _ in Float(rng.nextGaussian()) }, shape: [b, t, width], requiresGrad: grad)
            }
            (q, k, v) = (random(heads * headDim, grad: true), random(kvHeads * headDim, grad: true), random(kvHeads * headDim, grad: true))
            seed = random(heads * headDim, grad: false)
            (self.heads, self.kvHeads, self.headDim) = (heads, kvHeads, headDim)
        }

        /// Seconds for one forward pass without gradients, or (`train`) one recorded forward and backward.
        func time(train: Bool) -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            if train {
                let out = causalAttention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: headDim)
                out.backward(seed: seed)
            } else {
                _ = Autograd.withNoGrad { causalAttention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: headDim) }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if train { for x in [q, k, v] { x.resetGrad() } }
            return seconds
        }
    }
}
