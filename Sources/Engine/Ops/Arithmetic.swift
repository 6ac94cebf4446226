import Foundation

/// How a binary op's second operand repeats: `b` covers the trailing `n` elements of each row of `a`.
struct Broadcast {
    let rows: Int, n: Int
    var isFull: Bool { rows == 1 }

    /// `b` must have `a`'s shape, be a suffix of it (row broadcasting) or hold one element.
    init(_ a: Tensor, _ b: Tensor, op: String) {
        if a.shape == b.shape { rows = 1; n = a.count; return }
        if b.count == 1 { rows = a.count; n = 1; return }
        let bs = b.shape
        check(bs.count <= a.shape.count && Array(a.shape.suffix(bs.count)) == bs,
                     "\(op): shapes \(a.shape) and \(b.shape) do not broadcast (the second must equal the first, be a suffix of it, or hold one element)")
        n = b.count
        rows = a.count / n
    }
}

/// Orders operands of a commutative op so that the larger one comes first.
@inline(__always)
private func larger(_ a: Tensor, _ b: Tensor) -> (Tensor, Tensor) {
    (b.shape.count > a.shape.count || (b.count > a.count)) ? (b, a) : (a, b)
}

enum BinaryKernel {
    /// out = f(a, b) with `b` broadcast per `bc`. a, out: [rows, n]; b: [n].
    @inline(__always)
    static func apply<F: Lanewise2>(_ a: Tensor, _ b: Tensor, _ bc: Broadcast, _ f: F) -> Tensor {
        let out = Tensor.uninitialized(a.shape)
        if bc.isFull {
            Elementwise.map2(a.pointer, b.pointer, out.pointer, count: a.count, f)
        } else if bc.n == 1 {
            let s = F8(repeating: b.pointer[0])
            Elementwise.map(a.pointer, out.pointer, count: a.count, BindSecond(op: f, s: s))
        } else {
            Elementwise.broadcastRows(a.pointer, b.pointer, out.pointer, rows: bc.rows, n: bc.n, f)
        }
        return out
    }
}

/// Elementwise `a + b` (`b` may be row-broadcast: equal shape, a suffix of `a`'s shape, or one element).
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (a, b) = larger(a, b)
    let bc = Broadcast(a, b, op: "add")
    return BinaryKernel.apply(a, b, bc, AddOp()).recorded(Autograd.shouldRecord(a, b), .add(a, b))
}

/// Elementwise `a − b` (`b` may be row-broadcast).
public func sub(_ a: Tensor, _ b: Tensor) -> Tensor {
    let bc = Broadcast(a, b, op: "sub")
    return BinaryKernel.apply(a, b, bc, SubOp()).recorded(Autograd.shouldRecord(a, b), .sub(a, b))
}

/// Elementwise `a ⊙ b` (`b` may be row-broadcast). A `b` without `requiresGrad` acts as a constant weight.
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (a, b) = larger(a, b)
    let bc = Broadcast(a, b, op: "mul")
    return BinaryKernel.apply(a, b, bc, MulOp()).recorded(Autograd.shouldRecord(a, b), .mul(a, b))
}

public func + (a: Tensor, b: Tensor) -> Tensor { add(a, b) }
public func - (a: Tensor, b: Tensor) -> Tensor { sub(a, b) }
public func * (a: Tensor, b: Tensor) -> Tensor { mul(a, b) }
public func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
public func * (s: Float, a: Tensor) -> Tensor { a.scaled(by: s) }
public func + (a: Tensor, s: Float) -> Tensor { a.adding(s) }
public func - (a: Tensor, s: Float) -> Tensor { a.adding(-s) }
public prefix func - (a: Tensor) -> Tensor { a.scaled(by: -1) }

extension Tensor {
    /// `self · s`.
    public func scaled(by s: Float) -> Tensor {
        let out = Tensor.uninitialized(shape)
        Elementwise.scale(pointer, out.pointer, s, count: count)
        return out.recorded(Autograd.shouldRecord(self), .scale(self, s))
    }

    /// `self + s`.
    public func adding(_ s: Float) -> Tensor {
        let out = Tensor.uninitialized(shape)
        Elementwise.map(pointer, out.pointer, count: count, AddScalarOp(s: F8(repeating: s)))
        return out.recorded(Autograd.shouldRecord(self), .addScalar(self))
    }

    /// e^x elementwise.
    public func exp() -> Tensor {
        let out = Tensor.uninitialized(shape)
        Elementwise.map(pointer, out.pointer, count: count, ExpOp())
        let rec = Autograd.shouldRecord(self)
        return out.recorded(rec, .exp(self, output: out.detach()))
    }

    /// Natural log elementwise (log of a negative is NaN, log 0 = −Inf).
    public func log() -> Tensor {
        let out = Tensor.uninitialized(shape)
        let x = pointer, y = out.pointer
        Elementwise.chunked(count) { s, n in for i in s..<(s + n) { y[i] = Foundation.log(x[i]) } }
        return out.recorded(Autograd.shouldRecord(self), .log(self))
    }

    /// log σ(x) = −log(1 + e^−x), computed stably as min(x, 0) − log1p(e^−|x|).
    public func logSigmoid() -> Tensor {
        let out = Tensor.uninitialized(shape)
        let x = pointer, y = out.pointer
        Elementwise.chunked(count) { s, n in
            for i in s..<(s + n) { y[i] = Swift.min(x[i], 0) - Foundation.log1p(Foundation.exp(-Swift.abs(x[i]))) }
        }
        return out.recorded(Autograd.shouldRecord(self), .logSigmoid(self))
    }

    /// SiLU: x·σ(x).
    public func silu() -> Tensor {
        let out = Tensor.uninitialized(shape)
        Elementwise.map(pointer, out.pointer, count: count, SiluOp())
        return out.recorded(Autograd.shouldRecord(self), .silu(self))
    }

    /// Softmax along the last axis.
    public func softmax() -> Tensor {
        check(!shape.isEmpty, "softmax: scalar input")
        let n = shape[shape.count - 1]
        let out = Tensor.uninitialized(shape)
        SoftmaxKernel.forward(x: pointer, y: out.pointer, rows: count / n, n: n)
        return out.recorded(Autograd.shouldRecord(self), .softmax(self, output: out.detach()))
    }

    /// Sum of all elements (accumulated in Double), as a scalar tensor.
    public func sum() -> Tensor {
        Tensor(scalar: Float(Elementwise.sum(pointer, count: count))).recorded(Autograd.shouldRecord(self), .sum(self))
    }

    /// Mean of all elements, as a scalar tensor.
    public func mean() -> Tensor {
        Tensor(scalar: Float(Elementwise.sum(pointer, count: count) / Double(count)))
            .recorded(Autograd.shouldRecord(self), .mean(self))
    }

    /// Sums along the last axis: `[..., n] → [...]` (a `[n]` vector gives a scalar).
    public func sumLastAxis() -> Tensor {
        check(!shape.isEmpty, "sumLastAxis: scalar input")
        let n = shape[shape.count - 1], rows = count / n
        let out = Tensor.uninitialized(Array(shape.dropLast()))
        let x = pointer, y = out.pointer
        parallelChunks(rows, grain: Swift.max(1, 8192 / n)) { _, range in
            for r in range {
                var acc = 0.0
                for j in 0..<n { acc += Double(x[r * n + j]) }
                y[r] = Float(acc)
            }
        }
        return out.recorded(Autograd.shouldRecord(self), .sumLastAxis(self))
    }
}

/// The fused SwiGLU product `silu(gate) ⊙ up` (the Llama/Qwen2 MLP), same shapes.
public func swiglu(_ gate: Tensor, _ up: Tensor) -> Tensor {
    check(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) must have the same shape")
    let out = Tensor.uninitialized(gate.shape)
    Elementwise.swiglu(gate: gate.pointer, up: up.pointer, out: out.pointer, count: gate.count)
    return out.recorded(Autograd.shouldRecord(gate, up), .swiglu(gate: gate, up: up))
}
