/// Every error the Training module throws: bad options, impossible schedules, empty data.
///
/// Each case names where the problem is (`context`, e.g. `"AdamW.beta1"` or `"Batcher.examples"`)
/// and says what was expected and what was found, so a mistyped experiment spec fails with a
/// message the user can act on.
public enum TrainingError: Error, Equatable, CustomStringConvertible, Sendable {
    /// An option or hyper-parameter outside its valid range.
    case invalidOption(context: String, message: String)
    /// A set of examples, sequences or parameters that must not be empty was empty.
    case empty(context: String, message: String)
    /// Two things that must agree in size or name do not.
    case mismatch(context: String, message: String)
    /// A batch in which no token carries a loss.
    case noLossTokens(context: String, message: String)
    /// A sequence longer than the allowed context with no truncation rule that can handle it.
    case tooLong(context: String, message: String)
    /// A value that must be finite is NaN or infinite.
    case nonFinite(context: String, message: String)

    /// The same error with `outer` in front of its context (e.g. "stage 2 (math): stage examples").
    public func within(_ outer: String) -> TrainingError {
        switch self {
        case .invalidOption(let c, let m): return .invalidOption(context: "\(outer): \(c)", message: m)
        case .empty(let c, let m): return .empty(context: "\(outer): \(c)", message: m)
        case .mismatch(let c, let m): return .mismatch(context: "\(outer): \(c)", message: m)
        case .noLossTokens(let c, let m): return .noLossTokens(context: "\(outer): \(c)", message: m)
        case .tooLong(let c, let m): return .tooLong(context: "\(outer): \(c)", message: m)
        case .nonFinite(let c, let m): return .nonFinite(context: "\(outer): \(c)", message: m)
        }
    }

    public var description: String {
        switch self {
        case .invalidOption(let c, let m): return "\(c): invalid option: \(m)"
        case .empty(let c, let m): return "\(c): empty input: \(m)"
        case .mismatch(let c, let m): return "\(c): mismatch: \(m)"
        case .noLossTokens(let c, let m): return "\(c): no loss tokens: \(m)"
        case .tooLong(let c, let m): return "\(c): sequence too long: \(m)"
        case .nonFinite(let c, let m): return "\(c): non-finite value: \(m)"
        }
    }
}

@inline(__always)
func require(_ condition: Bool, _ context: @autoclosure () -> String, _ message: @autoclosure () -> String) throws {
    if !condition { throw TrainingError.invalidOption(context: context(), message: message()) }
}
