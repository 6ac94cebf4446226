/// GSM8K-style answer checking: the final answer is the number written after `####`.
public enum MathAnswer {
    /// A number in canonical decimal form: no sign for zero, no leading zeros, no trailing fractional
    /// zeros, no commas ("1,000.50" → "1000.5", "-0" → "0", "007" → "7").
    public struct Number: Hashable, Sendable, CustomStringConvertible {
        public let canonical: String
        public var description: String { canonical }
    }

    /// Parses the answer of a solution: the first `####`, then optional spaces/newlines, an optional
    /// `$`, an optional sign, digits (commas between digits are ignored) and an optional decimal part.
    /// Whatever follows the number ("#### 42 apples.", "#### 3.5%") is ignored. Returns nil when there is
    /// no `####` or no number right after it.
    public static func parse(_ text: String) -> Number? {
        guard let marker = text.range(of: "####") else { return nil }
        let s = Array(text[marker.upperBound...].unicodeScalars)
        var i = 0
        while i < s.count && (s[i] == " " || s[i] == "\t" || s[i] == "\n" || s[i] == "\r") { i += 1 }
        if i < s.count && s[i] == "$" { i += 1 }
        var negative = false
        if i < s.count && (s[i] == "-" || s[i] == "+" || s[i] == "\u{2212}") { negative = s[i] != "+"; i += 1 }
        if i < s.count && s[i] == "$" { i += 1 }
        func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
        var intDigits = [Unicode.Scalar]()
        while i < s.count {
            if isDigit(s[i]) { intDigits.append(s[i]); i += 1 }
            // A comma only counts as a thousands separator between digits.
            else if s[i] == ",", !intDigits.isEmpty, i + 1 < s.count, isDigit(s[i + 1]) { i += 1 }
            else { break }
        }
        var fracDigits = [Unicode.Scalar]()
        if i < s.count && s[i] == ".", i + 1 < s.count, isDigit(s[i + 1]) {
            i += 1
            while i < s.count && isDigit(s[i]) { fracDigits.append(s[i]); i += 1 }
        }
        guard !intDigits.isEmpty || !fracDigits.isEmpty else { return nil }
        while intDigits.count > 1 && intDigits.first == "0" { intDigits.removeFirst() }
        if intDigits.isEmpty { intDigits = ["0"] }
        while fracDigits.last == "0" { fracDigits.removeLast() }
        var out = String.UnicodeScalarView()
        let isZero = intDigits == ["0"] && fracDigits.isEmpty
        if negative && !isZero { out.append("-") }
        out.append(contentsOf: intDigits)
        if !fracDigits.isEmpty { out.append("."); out.append(contentsOf: fracDigits) }
        return Number(canonical: String(out))
    }
}

/// Accuracy on math word problems with k sampled solutions per question.
public struct MathAccuracy: Equatable, Sendable, Codable {
    /// Per question: the share of its samples whose answer equals the reference.
    public var perQuestion: [Double]
    /// Mean over questions of `perQuestion` (= the share of all samples that are correct when every
    /// question has the same k).
    public var mean: Double
    /// Samples with no parsable `####` answer. They count as wrong and are included in `perQuestion`.
    public var unparsable: Int
    public var totalSamples: Int

    /// Scores `samples[q]` (the k generated solutions of question q) against `references[q]` (a reference
    /// solution or bare answer ending in `#### <number>`). A reference without a parsable answer is an error;
    /// a sample without one counts as wrong and is counted in `unparsable`.
    public init(samples: [[String]], references: [String]) throws {
        let metric = "math accuracy"
        try requireNonEmpty(references, metric, "the question set")
        try requireSameCount(samples, references, metric, "sample lists", "references")
        var per = [Double](), bad = 0, total = 0
        for (q, (outs, ref)) in zip(samples, references).enumerated() {
            guard let answer = MathAnswer.parse(ref) else {
                throw EvaluationError(metric, "reference \(q) has no number after '####': \(ref.prefix(80))")
            }
            try require(!outs.isEmpty, metric, "question \(q) has no samples")
            var correct = 0
            for o in outs {
                if let a = MathAnswer.parse(o) { if a == answer { correct += 1 } } else { bad += 1 }
            }
            per.append(Double(correct) / Double(outs.count))
            total += outs.count
        }
        perQuestion = per
        mean = per.reduce(0, +) / Double(per.count)
        unparsable = bad
        totalSamples = total
    }

    /// The paper's math utility: accuracy after unlearning minus accuracy before (negative = lost).
    public static func change(before: MathAccuracy, after: MathAccuracy) throws -> Double {
        try require(before.perQuestion.count == after.perQuestion.count, "math utility",
                    "the baseline has \(before.perQuestion.count) questions but the unlearned model \(after.perQuestion.count)")
        return after.mean - before.mean
    }
}
