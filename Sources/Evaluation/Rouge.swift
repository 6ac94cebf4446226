/// ROUGE scores as Google's `rouge-score` package computes them (`RougeScorer(..., use_stemmer=True)`).
///
/// Tokenisation: lowercase; every character outside `a-z0-9` becomes a space (so accented letters,
/// apostrophes and hyphens split words); split on spaces; tokens longer than 3 characters are Porter-stemmed
/// (NLTK's variant); empty tokens are dropped.
public enum Rouge {
    /// Precision, recall and F1 of one score.
    public struct Score: Equatable, Sendable, Codable {
        public var precision: Double
        public var recall: Double
        public var fmeasure: Double

        init(precision: Double, recall: Double) {
            self.precision = precision
            self.recall = recall
            fmeasure = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        }
    }

    private static let stemmer = PorterStemmer()

    /// The token sequence `rouge-score` compares.
    public static func tokenize(_ text: String, stem: Bool = true) -> [String] {
        var tokens = [String]()
        var current = String.UnicodeScalarView()
        func flush() {
            guard !current.isEmpty else { return }
            let word = String(current)
            tokens.append(stem && current.count > 3 ? stemmer.stem(word) : word)
            current = String.UnicodeScalarView()
        }
        for c in text.lowercased().unicodeScalars {
            if (c >= "a" && c <= "z") || (c >= "0" && c <= "9") { current.append(c) } else { flush() }
        }
        flush()
        return tokens.filter { !$0.isEmpty }
    }

    /// ROUGE-L: from the longest common subsequence of the token sequences.
    /// recall = LCS / |target tokens|, precision = LCS / |prediction tokens|; all 0 if either is empty.
    public static func rougeL(target: String, prediction: String, stem: Bool = true) -> Score {
        rougeL(targetTokens: tokenize(target, stem: stem), predictionTokens: tokenize(prediction, stem: stem))
    }

    public static func rougeL(targetTokens t: [String], predictionTokens p: [String]) -> Score {
        guard !t.isEmpty, !p.isEmpty else { return Score(precision: 0, recall: 0) }
        let lcs = Double(lcsLength(t, p))
        return Score(precision: lcs / Double(p.count), recall: lcs / Double(t.count))
    }

    /// ROUGE-1: clipped unigram overlap; recall = overlap / |target tokens| (denominators floored at 1).
    public static func rouge1(target: String, prediction: String, stem: Bool = true) -> Score {
        let t = tokenize(target, stem: stem), p = tokenize(prediction, stem: stem)
        var counts = [String: Int]()
        for w in p { counts[w, default: 0] += 1 }
        var targetCounts = [String: Int]()
        for w in t { targetCounts[w, default: 0] += 1 }
        var overlap = 0
        for (w, c) in targetCounts { overlap += min(c, counts[w] ?? 0) }
        return Score(precision: Double(overlap) / Double(max(p.count, 1)),
                     recall: Double(overlap) / Double(max(t.count, 1)))
    }

    /// Mean ROUGE-L recall of generated answers against reference answers (TOFU's "ROUGE" metric).
    public static func meanRougeLRecall(references: [String], predictions: [String]) throws -> Double {
        let metric = "ROUGE-L recall"
        try requireNonEmpty(references, metric, "the reference set")
        try requireSameCount(references, predictions, metric, "references", "predictions")
        var total = 0.0
        for (r, p) in zip(references, predictions) { total += rougeL(target: r, prediction: p).recall }
        return total / Double(references.count)
    }

    static func lcsLength(_ a: [String], _ b: [String]) -> Int {
        var prev = [Int](repeating: 0, count: b.count + 1)
        var cur = prev
        for i in 1...a.count {
            for j in 1...b.count {
                cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : max(prev[j], cur[j - 1])
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
