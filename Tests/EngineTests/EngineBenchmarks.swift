import Foundation
import Testing
@testable import Engine

/// Timings of the non-GEMM kernels at the tiny model's shapes (hidden 128, T 128, B 8,
/// vocab 2048, 4 heads / 2 kv, head 32, inter 352). Runs only with PALIMPSEST_BENCH=1.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["PALIMPSEST_BENCH"] == "1"))
struct EngineBenchmarks {
    func time(_ label: String, repeats: Int = 20, _ body: () -> Void) {
        body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        print(String(format: "%-34@ %8.3f ms", label as NSString, best))
    }

    @Test func kernelsAtTinyModelShapes() {
        let (B, T, C, H, KV, D, I, V) = (8, 128, 128, 4, 2, 32, 352, 2048)
        let x = randn([B, T, C], seed: 1), w = randn([C], seed: 2)
        time("rmsNorm fwd+bwd [1024,128]") { rmsNorm(x, weight: w, eps: 1e-5).sum().backward() }
        let inv = ropeInverseFrequencies(headDim: D, theta: 10000)
        let q = randn([B, T, H * D], seed: 3), k = randn([B, T, KV * D], seed: 4), v = randn([B, T, KV * D], seed: 5)
        time("rope fwd+bwd q") { rope(q, heads: H, headDim: D, invFreq: inv).sum().backward() }
        time("attention fwd (no grad)") { _ = Autograd.withNoGrad { causalAttention(q, k, v, heads: H, kvHeads: KV, headDim: D) } }
        time("attention fwd+bwd") { causalAttention(q, k, v, heads: H, kvHeads: KV, headDim: D).sum().backward() }
        let g = randn([B, T, I], seed: 6), u = randn([B, T, I], seed: 7)
        time("swiglu fwd+bwd [1024,352]") { swiglu(g, u).sum().backward() }
        time("swiglu fwd [1024,352]") { _ = Autograd.withNoGrad { swiglu(g, u) } }
        time("silu fwd [1024,352]") { _ = Autograd.withNoGrad { g.silu() } }
        time("scale fwd [1024,352]") { _ = Autograd.withNoGrad { g.scaled(by: 2) } }
        let logits = randn([B, T, V], seed: 8)
        var rng = SeededRandom(seed: 9)
        let targets = (0..<(B * T)).map { _ in Int32(rng.nextInt(V)) }
        time("logSoftmaxGather fwd [1024,2048]") { _ = Autograd.withNoGrad { logSoftmaxGather(logits, targets: targets) } }
        time("crossEntropy fwd+bwd [1024,2048]") { crossEntropy(logits, targets: targets).backward() }
        let lse = Tensor.uninitialized([B * T]), dl = Tensor.uninitialized([B, T, V])
        var bf = Double.infinity, bb = Double.infinity
        for _ in 0..<20 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let l = crossEntropy(logits, targets: targets)
            let t1 = DispatchTime.now().uptimeNanoseconds
            l.backward()
            let t2 = DispatchTime.now().uptimeNanoseconds
            bf = min(bf, Double(t1 - t0) / 1e6); bb = min(bb, Double(t2 - t1) / 1e6)
        }
        print("crossEntropy split: fwd \(bf) ms, bwd \(bb) ms")
        time("crossEntropy fwd recorded") { _ = crossEntropy(logits, targets: targets) }
        time("crossEntropy fwd nograd") { _ = Autograd.withNoGrad { crossEntropy(logits, targets: targets) } }
        let gbuf = Tensor.full([B, T, V], value: 1)
        time("addInPlace [1024,2048]") { Elementwise.addInPlace(dl.pointer, gbuf.pointer, count: B * T * V) }
        time("alloc+fill [1024,2048]") { _ = Tensor.full([B, T, V], value: 1) }
        _ = Autograd.withNoGrad { logSoftmaxGather(logits, targets: targets) }
        time("logSoftmaxGather bwd kernel") {
            var coef: Float = 1
            targets.withUnsafeBufferPointer { tp in
                SoftmaxKernel.logSoftmaxGatherBackward(g: &coef, gStride: 0, logits: logits.pointer, targets: tp.baseAddress!,
                                                       ignore: -100, lse: lse.pointer, dlogits: dl.pointer, rows: B * T, v: V)
            }
        }
        let table = randn([V, C], seed: 10)
        time("embedding fwd+bwd") { embedding(table, ids: targets, shape: [B, T]).sum().backward() }
        let a = randn([B, T, C], seed: 11)
        time("add fwd+bwd [1024,128]") { (x + a).sum().backward() }
    }
}

@Suite(.enabled(if: ProcessInfo.processInfo.environment["PALIMPSEST_BENCH"] == "ce"))
struct CrossEntropyProfile {
    @Test func crossEntropyLoop() {
        let logits = randn([8, 128, 2048], seed: 8)
        var rng = SeededRandom(seed: 9)
        let targets = (0..<1024).map { _ in Int32(rng.nextInt(2048)) }
        for _ in 0..<200 { crossEntropy(logits, targets: targets).backward() }
    }
}
