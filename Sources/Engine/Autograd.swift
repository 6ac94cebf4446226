/// Gradient recording switch.
///
/// Recording is on by default. `withNoGrad` turns it off for the duration of `body` on the
/// current thread / task (it is a `@TaskLocal`, so concurrent tasks each see their own value,
/// and code called synchronously from `body` sees `false`). Kernels that `Parallel.forEach`
/// spawns never create tensors, so they need no flag. While off, ops record nothing and save
/// nothing for backward (evaluation and generation use less memory and time).
public enum Autograd {
    @TaskLocal static var recording: Bool = true

    /// Whether ops currently record the graph.
    public static var isRecording: Bool { recording }

    /// Runs `body` without recording gradients.
    public static func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $recording.withValue(false) { try body() }
    }

    /// Runs async `body` without recording gradients.
    public static func withNoGrad<R>(_ body: () async throws -> R) async rethrows -> R {
        try await $recording.withValue(false) { try await body() }
    }

    /// Runs `body` with recording on (e.g. a training step inside an evaluation scope).
    public static func withGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $recording.withValue(true) { try body() }
    }

    /// Whether an op over `inputs` must be recorded.
    @inline(__always)
    static func shouldRecord(_ inputs: Tensor?...) -> Bool {
        var any = false
        for t in inputs where t?._requiresGrad == true { any = true; break }
        return any && recording
    }
}

/// One recorded op: what produced a tensor, with everything its backward rule needs.
final class Node {
    let op: Op
    init(_ op: Op) { self.op = op }
}

/// Configuration of one causal attention call (saved for backward).
struct AttentionConfig {
    var batch: Int, queryLength: Int, keyLength: Int
    var heads: Int, kvHeads: Int, headDim: Int
    var queryOffset: Int
    var scale: Float
    /// Per-batch-row count of leading keys to ignore (left padding), or empty.
    var leftPadding: [Int]
    /// Lengths of packed sequences stored one after another (`batch` of them, queries = keys,
    /// no offset), or empty for a uniform `[B, T, ...]` batch.
    var sequenceLengths: [Int] = []
}

/// Layout of a RoPE call (saved for backward).
struct RoPEConfig {
    var batch: Int, length: Int, heads: Int, headDim: Int
    /// cos / sin tables, `[rows, headDim/2]`; rows = `length` (shared by every batch row) or `batch*length`.
    var cos: Tensor, sin: Tensor
    var perBatchRow: Bool
}

/// Every differentiable op. Backward rules live in `Autograd.backward(_:grad:ctx:)`, one
/// exhaustive switch over this enum.
enum Op {
    case reshape(Tensor)
    case sliceRows(Tensor, start: Int)
    case narrow(Tensor, axis: Int, start: Int)
    case concat([Tensor], axis: Int)
    case matmul(Tensor, Tensor, transposeA: Bool, transposeB: Bool)
    case linear(x: Tensor, weight: Tensor, bias: Tensor?)
    case add(Tensor, Tensor)
    case sub(Tensor, Tensor)
    case mul(Tensor, Tensor)
    case scale(Tensor, Float)
    case addScalar(Tensor)
    case embedding(table: Tensor, ids: [Int32])
    case rmsNorm(x: Tensor, weight: Tensor, rstd: Tensor)
    case rope(Tensor, RoPEConfig)
    case silu(Tensor)
    case swiglu(gate: Tensor, up: Tensor)
    case softmax(Tensor, output: Tensor)
    case exp(Tensor, output: Tensor)
    case log(Tensor)
    case logSigmoid(Tensor)
    case attention(q: Tensor, k: Tensor, v: Tensor, AttentionConfig, probs: Tensor)
    case logSoftmaxGather(logits: Tensor, targets: [Int32], lse: Tensor, ignoreIndex: Int32)
    case crossEntropy(logits: Tensor, targets: [Int32], lse: Tensor, ignoreIndex: Int32, valid: Int)
    case sum(Tensor)
    case mean(Tensor)
    case sumLastAxis(Tensor)

    /// The tensor inputs, in a fixed order (for the topological sort).
    var inputs: [Tensor] {
        switch self {
        case .reshape(let a), .sliceRows(let a, _), .narrow(let a, _, _), .scale(let a, _), .addScalar(let a),
             .rope(let a, _), .silu(let a), .softmax(let a, _), .exp(let a, _), .log(let a), .logSigmoid(let a),
             .sum(let a), .mean(let a), .sumLastAxis(let a):
            return [a]
        case .concat(let ts, _): return ts
        case .matmul(let a, let b, _, _), .add(let a, let b), .sub(let a, let b), .mul(let a, let b):
            return [a, b]
        case .linear(let x, let w, let b): return b.map { [x, w, $0] } ?? [x, w]
        case .embedding(let table, _): return [table]
        case .rmsNorm(let x, let w, _): return [x, w]
        case .swiglu(let g, let u): return [g, u]
        case .attention(let q, let k, let v, _, _): return [q, k, v]
        case .logSoftmaxGather(let l, _, _, _), .crossEntropy(let l, _, _, _, _): return [l]
        }
    }
}

/// Gradient bookkeeping during one backward pass.
final class BackwardContext {
    /// Gradients of non-leaf tensors still waiting for their producer's rule. `owned` means the
    /// buffer belongs to this entry alone, so later contributions may be added in place.
    var pending: [ObjectIdentifier: (grad: Tensor, owned: Bool)] = [:]

    /// Whether `t` needs a gradient at all (frozen leaves and constants do not).
    @inline(__always) func wants(_ t: Tensor) -> Bool { t._requiresGrad }

    /// Adds `g` (same element count as `t`) to `t`'s gradient. Pass `owned: true` only for a
    /// freshly allocated buffer nobody else references.
    func accumulate(_ t: Tensor, _ g: Tensor, owned: Bool) {
        guard t._requiresGrad else { return }
        check(g.count == t.count, "backward: gradient of \(g.count) elements for tensor \(t.shape)")
        if t.node == nil {
            let (dst, overwrite) = t.gradForWriting()
            if overwrite {
                dst.pointer.update(from: g.pointer, count: t.count)
            } else {
                Elementwise.addInPlace(dst.pointer, g.pointer, count: t.count)
            }
            return
        }
        let id = ObjectIdentifier(t)
        if let (existing, isOwned) = pending[id] {
            if isOwned {
                Elementwise.addInPlace(existing.pointer, g.pointer, count: t.count)
            } else if owned {
                Elementwise.addInPlace(g.pointer, existing.pointer, count: t.count)
                pending[id] = (g, true)
            } else {
                let sum = Tensor.uninitialized(t.shape)
                Elementwise.add(existing.pointer, g.pointer, sum.pointer, count: t.count)
                pending[id] = (sum, true)
            }
        } else {
            pending[id] = (g.shape == t.shape ? g : Tensor(shape: t.shape, storage: g.storage, offset: g.offset), owned)
        }
    }

    /// Adds `g` to rows `start ..< start + g.count / inner` of `t`'s gradient (`inner` elements per
    /// row), as `accumulate` would with a zero tensor holding `g` at those rows, but touching only
    /// those rows where `t` already has an owned gradient: the slices of one tensor (a batch cut
    /// into rows) each used to zero-fill and add a whole tensor.
    func accumulateRows(_ t: Tensor, start: Int, inner: Int, _ g: Tensor) {
        guard t._requiresGrad else { return }
        check(start >= 0 && start * inner + g.count <= t.count, "backward: rows from \(start) of \(g.count) elements for tensor \(t.shape)")
        let dst: Tensor
        if t.node == nil {
            if let existing = t.grad {
                Elementwise.addInPlace(existing.pointer + start * inner, g.pointer, count: g.count)
                return
            }
            dst = Tensor(zeros: t.shape)
            t.grad = dst
        } else if let (existing, isOwned) = pending[ObjectIdentifier(t)] {
            if isOwned {
                Elementwise.addInPlace(existing.pointer + start * inner, g.pointer, count: g.count)
                return
            }
            dst = Tensor.uninitialized(t.shape)
            dst.pointer.update(from: existing.pointer, count: t.count)
            Elementwise.addInPlace(dst.pointer + start * inner, g.pointer, count: g.count)
            pending[ObjectIdentifier(t)] = (dst, true)
            return
        } else {
            dst = Tensor(zeros: t.shape)
            pending[ObjectIdentifier(t)] = (dst, true)
        }
        (dst.pointer + start * inner).update(from: g.pointer, count: g.count)
    }

    /// The buffer a rule may add `t`'s gradient into directly (a leaf parameter's `grad`),
    /// or nil when the rule must produce a fresh gradient tensor and call `accumulate`.
    func leafGradBuffer(_ t: Tensor) -> UnsafeMutablePointer<Float>? {
        guard t._requiresGrad, t.node == nil else { return nil }
        return t.ensureGrad().pointer
    }

    /// A parameter's gradient buffer for a writer that covers all of it, and whether to overwrite
    /// (the first gradient since `resetGrad`, or a new buffer) rather than add; nil when `t` is
    /// not a parameter.
    func leafGradTarget(_ t: Tensor) -> (pointer: UnsafeMutablePointer<Float>, overwrite: Bool)? {
        guard t._requiresGrad, t.node == nil else { return nil }
        let (g, overwrite) = t.gradForWriting()
        return (g.pointer, overwrite)
    }
}

extension Tensor {
    /// Reverse-mode autodiff from this tensor.
    ///
    /// Without `seed` the tensor must hold one element (a loss) and its gradient is 1.
    /// Gradients are accumulated (added) into every leaf with `requiresGrad` reached through
    /// recorded ops. Unless `retainGraph`, the graph is released afterwards: intermediate
    /// tensors drop their history and saved buffers (and no longer require grad).
    public func backward(seed: Tensor? = nil, retainGraph: Bool = false) {
        check(_requiresGrad, "backward: tensor \(describeShort) does not require grad (no parameter with requiresGrad reached it, or it was computed under withNoGrad)")
        let g: Tensor
        if let seed {
            check(seed.count == count, "backward: seed \(seed.shape) does not match tensor \(shape)")
            g = seed
        } else {
            check(count == 1, "backward: tensor \(shape) is not a scalar; pass a seed gradient")
            g = Tensor.ones(shape)
        }
        // Post-order DFS over recorded nodes (iterative: graphs can be deep).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, [Tensor], Int)] = []
        if let n = node { stack.append((self, n.op.inputs, 0)); visited.insert(ObjectIdentifier(self)) }
        while !stack.isEmpty {
            let (t, ins, i) = stack[stack.count - 1]
            if i == ins.count {
                order.append(t)
                stack.removeLast()
                continue
            }
            stack[stack.count - 1].2 = i + 1
            let child = ins[i]
            if child._requiresGrad, let cn = child.node, visited.insert(ObjectIdentifier(child)).inserted {
                stack.append((child, cn.op.inputs, 0))
            }
        }
        let ctx = BackwardContext()
        ctx.accumulate(self, g, owned: false)
        if node == nil { return }  // a leaf: accumulate already wrote its grad
        for t in order.reversed() {
            guard let n = t.node, let entry = ctx.pending.removeValue(forKey: ObjectIdentifier(t)) else { continue }
            if let profiler = OpProfiler.active {
                profiler.backward(n.op.profileName) { Autograd.backward(n.op, output: t, grad: entry.grad, ctx: ctx) }
            } else {
                Autograd.backward(n.op, output: t, grad: entry.grad, ctx: ctx)
            }
        }
        if !retainGraph {
            for t in order {
                t.node = nil
                t._requiresGrad = false
            }
        }
    }
}
