/// One trainable parameter seen as flat buffers: the view every optimizer, clipper and
/// accumulator in this module works on.
///
/// The engine owns the memory; a slot only borrows it for the duration of a call, so the
/// buffers must stay valid (and unmoved) while an optimizer step runs. The optimizer keys its
/// state by `name`, so a name must identify the same tensor at every step of a stage.
public struct ParameterSlot {
    /// Stable name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public var name: String
    /// Logical shape; only used to decide weight decay and to report mismatches.
    public var shape: [Int]
    /// The parameter values, updated in place by `Optimizer.step`.
    public var value: UnsafeMutableBufferPointer<Float>
    /// The gradient, same count as `value`; `nil` means "no gradient this step": the optimizer
    /// skips the slot and does not advance its step count (as torch does for `grad is None`).
    /// Mutable because clipping and accumulation scale it in place.
    public var grad: UnsafeMutableBufferPointer<Float>?
    /// Whether weight decay applies to this parameter.
    public var decay: Bool

    /// - Parameter decay: `nil` applies `ParameterSlot.defaultDecay(name:shape:)`.
    public init(name: String, shape: [Int], value: UnsafeMutableBufferPointer<Float>,
                grad: UnsafeMutableBufferPointer<Float>?, decay: Bool? = nil) {
        self.name = name
        self.shape = shape
        self.value = value
        self.grad = grad
        self.decay = decay ?? ParameterSlot.defaultDecay(name: name, shape: shape)
    }

    /// The usual convention for transformers: no weight decay on norms, biases and any other
    /// 1-D (or scalar) parameter; decay on matrices and embeddings.
    public static func defaultDecay(name: String, shape: [Int]) -> Bool {
        let lower = name.lowercased()
        if shape.count <= 1 { return false }
        return !(lower.contains("norm") || lower.contains("bias"))
    }

    var count: Int { value.count }

    /// Checks that the buffers agree with each other and with the shape.
    func validate(_ context: String) throws {
        let n = shape.reduce(1, *)
        if n != value.count {
            throw TrainingError.mismatch(context: "\(context) \(name)",
                                         message: "shape \(shape) has \(n) elements but the value buffer has \(value.count)")
        }
        if let g = grad, g.count != value.count {
            throw TrainingError.mismatch(context: "\(context) \(name)",
                                         message: "gradient has \(g.count) elements, value has \(value.count)")
        }
    }
}

/// Checks names are unique across a parameter list (state is keyed by name).
func validateSlots(_ slots: [ParameterSlot], _ context: String) throws {
    var seen = Set<String>()
    for s in slots {
        try s.validate(context)
        if !seen.insert(s.name).inserted {
            throw TrainingError.mismatch(context: context, message: "parameter name \(s.name) appears twice")
        }
    }
}

/// Splits `count` elements into chunks for `Parallel.forEach`: one chunk for small buffers
/// (threading costs more than it saves below ~64K floats), else one per thread.
@inline(__always)
func elementwiseChunks(_ count: Int) -> Int {
    count < 1 << 16 ? 1 : max(1, min(Parallel.threads, count >> 15))
}

import Engine
