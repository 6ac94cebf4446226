import Foundation
import Testing
@testable import Engine

/// The ops against HF transformers' own Llama modules (fixture from scripts/reference/engine_ops.py):
/// conventions (split-half RoPE, repeat_kv head mapping, RMSNorm eps placement, ignore_index)
/// that a Float64 reference written here could get wrong in the same way as the kernels.
@Suite struct TorchParityTests {
    static let fixture: [String: [String: Any]] = {
        let url = Bundle.module.url(forResource: "engine_ops", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Any]]
    }()

    func floats(_ section: String, _ key: String) -> [Float] {
        (Self.fixture[section]![key] as! [NSNumber]).map { $0.floatValue }
    }
    func int(_ section: String, _ key: String) -> Int { (Self.fixture[section]![key] as! NSNumber).intValue }

    func expectClose(_ a: [Float], _ b: [Float], tol: Float = 2e-6, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) values", sourceLocation: sourceLocation)
        let scale = b.map(abs).max() ?? 1
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tol * max(scale, 1), "\(what): max difference \(worst) (scale \(scale))", sourceLocation: sourceLocation)
    }

    /// Backpropagates L = Σ out·r.
    func backward(_ out: Tensor, _ r: [Float]) { mul(out, Tensor(r, shape: out.shape)).sum().backward() }

    @Test func rmsNormMatchesLlamaRMSNorm() {
        let x = Tensor(floats("rmsnorm", "x"), shape: [2, 3, 8], requiresGrad: true)
        let w = Tensor(floats("rmsnorm", "w"), shape: [8], requiresGrad: true)
        let y = rmsNorm(x, weight: w, eps: 1e-6)
        expectClose(y.toArray(), floats("rmsnorm", "y"), "rmsNorm y")
        backward(y, floats("rmsnorm", "r"))
        expectClose(x.grad!.toArray(), floats("rmsnorm", "dx"), tol: 1e-5, "rmsNorm dx")
        expectClose(w.grad!.toArray(), floats("rmsnorm", "dw"), tol: 1e-5, "rmsNorm dw")
    }

    @Test func ropeMatchesApplyRotaryPosEmbWithLlama3Scaling() {
        let (b, t, h, d, off) = (int("rope", "batch"), int("rope", "length"), int("rope", "heads"), int("rope", "headDim"), int("rope", "offset"))
        let x = Tensor(floats("rope", "x"), shape: [b, t, h * d], requiresGrad: true)
        let y = rope(x, heads: h, headDim: d, invFreq: floats("rope", "invFreq"), offset: off)
        expectClose(y.toArray(), floats("rope", "y"), "rope y")
        backward(y, floats("rope", "r"))
        expectClose(x.grad!.toArray(), floats("rope", "dx"), tol: 1e-5, "rope dx")
    }

    @Test func attentionMatchesEagerGQA() {
        let s = "attention"
        let (b, t, h, kv, d) = (int(s, "batch"), int(s, "length"), int(s, "heads"), int(s, "kvHeads"), int(s, "headDim"))
        let q = Tensor(floats(s, "q"), shape: [b, t, h * d], requiresGrad: true)
        let k = Tensor(floats(s, "k"), shape: [b, t, kv * d], requiresGrad: true)
        let v = Tensor(floats(s, "v"), shape: [b, t, kv * d], requiresGrad: true)
        let y = causalAttention(q, k, v, heads: h, kvHeads: kv, headDim: d)
        expectClose(y.toArray(), floats(s, "y"), "attention y")
        backward(y, floats(s, "r"))
        expectClose(q.grad!.toArray(), floats(s, "dq"), tol: 1e-5, "attention dq")
        expectClose(k.grad!.toArray(), floats(s, "dk"), tol: 1e-5, "attention dk")
        expectClose(v.grad!.toArray(), floats(s, "dv"), tol: 1e-5, "attention dv")
    }

    @Test func swigluMatchesSiluTimesUp() {
        let g = Tensor(floats("swiglu", "gate"), shape: [3, 7], requiresGrad: true)
        let u = Tensor(floats("swiglu", "up"), shape: [3, 7], requiresGrad: true)
        let y = swiglu(g, u)
        expectClose(y.toArray(), floats("swiglu", "y"), "swiglu y")
        backward(y, floats("swiglu", "r"))
        expectClose(g.grad!.toArray(), floats("swiglu", "dgate"), tol: 1e-5, "swiglu dgate")
        expectClose(u.grad!.toArray(), floats("swiglu", "dup"), tol: 1e-5, "swiglu dup")
    }

    @Test func lossesMatchLogSoftmaxAndCrossEntropy() {
        let targets = (Self.fixture["loss"]!["targets"] as! [NSNumber]).map { $0.intValue }
        let logits = Tensor(floats("loss", "logits"), shape: [2, 3, 11], requiresGrad: true)
        let lp = logSoftmaxGather(logits, targets: targets)
        expectClose(lp.toArray(), floats("loss", "logp"), "logp")
        backward(lp, floats("loss", "r"))
        expectClose(logits.grad!.toArray(), floats("loss", "dlogitsGather"), tol: 1e-5, "logp dlogits")
        logits.zeroGrad()
        let ce = crossEntropy(logits, targets: targets)
        let expected = (Self.fixture["loss"]!["ce"] as! NSNumber).floatValue
        #expect(abs(ce.item() - expected) <= 2e-6 * expected)
        ce.backward()
        expectClose(logits.grad!.toArray(), floats("loss", "dlogitsCE"), tol: 1e-5, "ce dlogits")
    }
}
