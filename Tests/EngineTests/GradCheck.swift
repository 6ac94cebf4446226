import Foundation
import Testing
@testable import Engine

/// Gradient checking against a Float64 reference.
///
/// The op under test runs in Float32 through the engine (forward and backward). The reference
/// is an independent, plain Float64 implementation of the same function. The check is:
/// 1. forward: engine output ≈ reference output at the same (Float32-representable) inputs;
/// 2. backward: for the scalar L = Σ rᵢ·outᵢ with fixed random rᵢ, the engine's ∂L/∂x equals
///    the central difference of the Float64 reference, (L(x+h) − L(x−h)) / 2h with h = 1e-6·max(1, |x|),
///    which is accurate to ~1e-9, so any error is the engine's Float32 rounding (≪ tolerance)
///    or a wrong rule (≫ tolerance).
/// Each element must satisfy |a − n| ≤ tol·(|n| + rms(n)), so near-zero entries are judged
/// against the typical gradient size, and a gradient that is identically zero fails unless
/// the reference says so too.
struct GradCheck {
    var forwardTolerance: Double = 2e-5
    var gradientTolerance: Double = 1e-4

    @discardableResult
    func run(_ label: String, inputs: [Tensor], engine: ([Tensor]) -> Tensor, reference: ([[Double]]) -> [Double],
             sourceLocation: SourceLocation = #_sourceLocation) -> Tensor {
        for t in inputs where t.requiresGrad { t.clearGrad() }
        let out = engine(inputs)
        let xs = inputs.map { $0.toArray().map(Double.init) }
        let ref = reference(xs)
        #expect(out.count == ref.count, "\(label): output count \(out.count) vs reference \(ref.count)", sourceLocation: sourceLocation)
        guard out.count == ref.count else { return out }
        let o = out.toArray().map(Double.init)
        let ro = rms(ref)
        var worst = 0.0
        for i in 0..<o.count {
            let e = abs(o[i] - ref[i]) / (abs(ref[i]) + ro + 1e-30)
            worst = max(worst, e)
        }
        #expect(worst <= forwardTolerance, "\(label): forward relative error \(worst)", sourceLocation: sourceLocation)

        var rng = SeededRandom(seed: 977)
        let r = (0..<o.count).map { _ in rng.nextGaussian() }
        let rt = Tensor(r.map(Float.init), shape: out.shape)
        if out.requiresGrad {
            mul(out, rt).sum().backward()
        }
        func loss(_ xs: [[Double]]) -> Double {
            let y = reference(xs)
            var s = 0.0
            for i in 0..<y.count { s += r[i] * y[i] }
            return s
        }
        for (idx, t) in inputs.enumerated() {
            guard t.requiresGrad else {
                #expect(t.grad == nil, "\(label): input \(idx) does not require grad but got one", sourceLocation: sourceLocation)
                continue
            }
            var numeric = [Double](repeating: 0, count: t.count)
            var xp = xs
            for j in 0..<t.count {
                let x0 = xs[idx][j]
                let h = 1e-6 * max(1, abs(x0))
                xp[idx][j] = x0 + h
                let lp = loss(xp)
                xp[idx][j] = x0 - h
                let lm = loss(xp)
                xp[idx][j] = x0
                numeric[j] = (lp - lm) / (2 * h)
            }
            guard let g = t.grad else {
                Issue.record("\(label): input \(idx) \(t.shape) got no gradient", sourceLocation: sourceLocation)
                continue
            }
            let a = g.toArray().map(Double.init)
            let rn = rms(numeric)
            var worstG = 0.0, at = 0
            for j in 0..<a.count {
                let e = abs(a[j] - numeric[j]) / (abs(numeric[j]) + rn + 1e-30)
                if e > worstG { worstG = e; at = j }
            }
            #expect(worstG <= gradientTolerance,
                    "\(label): input \(idx) \(t.shape) gradient relative error \(worstG) at \(at): engine \(a[at]) vs numeric \(numeric[at])",
                    sourceLocation: sourceLocation)
        }
        return out
    }
}

func rms(_ v: [Double]) -> Double {
    v.isEmpty ? 0 : (v.reduce(0) { $0 + $1 * $1 } / Double(v.count)).squareRoot()
}

/// A parameter-like Float32 tensor with Normal(0, std²) values.
func randn(_ shape: [Int], std: Float = 1, seed: UInt64, grad: Bool = true) -> Tensor {
    var rng = SeededRandom(seed: seed)
    return Tensor.randomNormal(shape, std: std, rng: &rng, requiresGrad: grad)
}

/// Runs `body` with `Parallel.threads` set to `n`, restoring it afterwards.
func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
    let old = Parallel.threads
    Parallel.threads = n
    defer { Parallel.threads = old }
    return try body()
}
