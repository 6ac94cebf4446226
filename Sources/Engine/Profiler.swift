import Foundation

/// Wall time per op, collected while `collect` runs: where a training step spends its time.
///
/// Backward rules are timed exactly. A forward op is timed from the end of the previous op (or
/// the last `mark()`) to its own end, because ops are plain functions with no common entry
/// point; so driver code between two ops (building ids, reading a scalar) counts toward the
/// next op. Call `mark()` before a forward pass so that earlier work (an optimizer step) is not
/// counted. Ops record themselves from the thread that runs the model; the kernels' worker
/// threads never do, so a profiler needs no lock. Profiling does not change any result.
public final class OpProfiler: @unchecked Sendable {
    /// One op kind in one phase, with its shapes (`linear [1408, 512]`, `attention`, ...).
    public struct Entry: Sendable, Equatable {
        public var phase: String
        public var op: String
        public var calls: Int
        public var seconds: Double
    }

    @TaskLocal static var active: OpProfiler?

    private var last: UInt64 = 0
    private var totals: [Key: (calls: Int, nanoseconds: UInt64)] = [:]
    private struct Key: Hashable { var phase: String, op: String }

    public init() {}

    /// Runs `body` with this profiler collecting every op it runs on this task.
    public func collect<R>(_ body: () throws -> R) rethrows -> R {
        mark()
        return try Self.$active.withValue(self) { try body() }
    }

    /// Starts the clock for the next forward op here.
    public func mark() { last = Self.now() }

    /// Forgets everything collected so far.
    public func reset() { totals = [:]; mark() }

    /// Every op kind seen, the most expensive first (ties by phase and name, so the order is stable).
    public var entries: [Entry] {
        totals.map { Entry(phase: $0.key.phase, op: $0.key.op, calls: $0.value.calls, seconds: Double($0.value.nanoseconds) / 1e9) }
            .sorted { ($0.seconds, $1.phase, $1.op) > ($1.seconds, $0.phase, $0.op) }
    }

    /// Times `body` as one entry of its own (an optimizer step, say) and restarts the forward clock.
    public func time<R>(_ phase: String, _ op: String, _ body: () throws -> R) rethrows -> R {
        let t0 = Self.now()
        defer {
            let t = Self.now()
            add(phase: phase, op: op, nanoseconds: t &- t0)
            last = t
        }
        return try body()
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// A forward op has just finished.
    func forwardOpEnded(_ op: @autoclosure () -> String) {
        let t = Self.now()
        add(phase: "forward", op: op(), nanoseconds: t &- last)
        last = t
    }

    /// Times one backward rule.
    func backward(_ op: String, _ rule: () -> Void) {
        let t0 = Self.now()
        rule()
        let t = Self.now()
        add(phase: "backward", op: op, nanoseconds: t &- t0)
        last = t
    }

    private func add(phase: String, op: String, nanoseconds: UInt64) {
        let key = Key(phase: phase, op: op)
        let old = totals[key] ?? (0, 0)
        totals[key] = (old.calls + 1, old.nanoseconds + nanoseconds)
    }
}

extension Op {
    /// The op's kind, with the shapes that tell its instances apart in a profile.
    var profileName: String {
        switch self {
        case .reshape: return "reshape"
        case .sliceRows: return "sliceRows"
        case .narrow(_, let axis, _): return "narrow axis \(axis)"
        case .concat(_, let axis): return "concat axis \(axis)"
        case .matmul(let a, let b, let ta, let tb):
            return "matmul \(a.shape)\(ta ? "ᵀ" : "") · \(b.shape)\(tb ? "ᵀ" : "")"
        case .linear(let x, let w, _): return "linear \(w.shape) on \(x.count / max(1, w.shape.last ?? 1)) rows"
        case .add: return "add"
        case .sub: return "sub"
        case .mul: return "mul"
        case .scale: return "scale"
        case .addScalar: return "addScalar"
        case .embedding(let table, _): return "embedding \(table.shape)"
        case .rmsNorm: return "rmsNorm"
        case .rope: return "rope"
        case .silu: return "silu"
        case .swiglu: return "swiglu"
        case .softmax: return "softmax"
        case .exp: return "exp"
        case .log: return "log"
        case .logSigmoid: return "logSigmoid"
        case .attention(_, _, _, let cfg, _):
            return "attention \(cfg.heads)/\(cfg.kvHeads) heads × \(cfg.headDim)"
        case .logSoftmaxGather(let logits, _, _, _): return "logSoftmaxGather \(logits.shape)"
        case .crossEntropy(let logits, _, _, _, _): return "crossEntropy \(logits.shape)"
        case .sum: return "sum"
        case .mean: return "mean"
        case .sumLastAxis: return "sumLastAxis"
        }
    }
}
