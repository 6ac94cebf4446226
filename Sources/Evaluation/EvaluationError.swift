/// A metric refused its input: the error names the metric and says what was wrong.
///
/// Every public function of this module either returns a documented outcome or throws this
/// error; none of them traps on user data (empty sets, mismatched lengths, NaN).
public struct EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The metric or function that failed, e.g. "forget score".
    public var metric: String
    /// What was wrong, with expected vs found where that applies.
    public var problem: String

    public init(_ metric: String, _ problem: String) {
        self.metric = metric
        self.problem = problem
    }

    public var description: String { "\(metric): \(problem)" }
}

@inline(__always)
func require(_ condition: Bool, _ metric: String, _ problem: @autoclosure () -> String) throws {
    if !condition { throw EvaluationError(metric, problem()) }
}

func requireNonEmpty<C: Collection>(_ values: C, _ metric: String, _ what: String) throws {
    if values.isEmpty { throw EvaluationError(metric, "\(what) is empty; at least one value is needed") }
}

func requireSameCount<A: Collection, B: Collection>(_ a: A, _ b: B, _ metric: String,
                                                   _ nameA: String, _ nameB: String) throws {
    if a.count != b.count {
        throw EvaluationError(metric, "\(nameA) has \(a.count) entries but \(nameB) has \(b.count); they must match")
    }
}

/// NaN is refused (it would silently poison means); ±infinity is allowed where it has a meaning
/// (a log-probability of −∞ is a token of probability zero).
func requireNoNaN<C: Collection>(_ values: C, _ metric: String, _ what: String) throws where C.Element == Double {
    if let i = values.firstIndex(where: { $0.isNaN }) {
        throw EvaluationError(metric, "\(what) contains NaN at index \(values.distance(from: values.startIndex, to: i))")
    }
}

func requireFinite<C: Collection>(_ values: C, _ metric: String, _ what: String) throws where C.Element == Double {
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw EvaluationError(metric, "\(what) contains a non-finite value (\(values[i])) at index \(values.distance(from: values.startIndex, to: i))")
    }
}
