import Engine
import Foundation
import Models

/// A response to score given its prompt, as token ids. The model sees `prompt + response`; only the
/// response tokens are scored. With an empty prompt every response token after the first is scored.
public struct ScoredPair: Sendable, Equatable, Hashable {
    public var prompt: [Int32]
    public var response: [Int32]

    public init(prompt: [Int32], response: [Int32]) {
        self.prompt = prompt
        self.response = response
    }

    /// Tokens fed to the model.
    public var length: Int { prompt.count + response.count }
    /// Tokens whose log-probability is scored.
    public var scoredCount: Int { prompt.isEmpty ? max(0, response.count - 1) : response.count }
    /// Position whose next-token distribution scores the first scored token.
    var firstScoredPosition: Int { max(prompt.count, 1) - 1 }
}

/// Runs models over token sequences for the metrics: log-likelihoods, per-token log-probabilities,
/// full next-token distributions, and seeded samples.
///
/// Scoring sorts the pairs by length and batches neighbours together (right padding, which causal
/// attention never lets a real token see), runs without recording gradients, and only sends the
/// scored positions through `lm_head`. Results come back in input order. Kernels use every core
/// (`Parallel.threads`); results are reproducible for a fixed thread count.
public enum ModelScoring {
    /// Summed log-likelihood and token count of each response given its prompt.
    public static func logLikelihoods(_ model: CausalLM, _ pairs: [ScoredPair], batchSize: Int = 32) throws -> [SequenceLogLikelihood] {
        let metric = "log-likelihood"
        let lps = try tokenLogProbs(model, pairs, batchSize: batchSize, metric: metric)
        return try lps.enumerated().map { i, lp in
            do { return try SequenceLogLikelihood(tokenLogProbs: lp, metric: metric) } catch let e as EvaluationError {
                throw EvaluationError(metric, "pair \(i): \(e.problem)")
            }
        }
    }

    /// Per-token log-probabilities of each response (`scoredCount` entries per pair).
    public static func tokenLogProbs(_ model: CausalLM, _ pairs: [ScoredPair], batchSize: Int = 32) throws -> [[Double]] {
        try tokenLogProbs(model, pairs, batchSize: batchSize, metric: "token log-probabilities")
    }

    static func tokenLogProbs(_ model: CausalLM, _ pairs: [ScoredPair], batchSize: Int, metric: String) throws -> [[Double]] {
        try validate(model, pairs, batchSize: batchSize, metric: metric)
        var out = [[Double]](repeating: [], count: pairs.count)
        for batch in batches(pairs.map(\.length), batchSize: batchSize) {
            let layout = Layout(pairs, batch, padId: padId(model))
            let lp = Autograd.withNoGrad {
                model.tokenLogProbs(layout.ids, labels: layout.labels, batch: batch.count, length: layout.length).toArray()
            }
            for (b, i) in batch.enumerated() {
                let start = b * layout.length + pairs[i].firstScoredPosition
                out[i] = lp[start..<(start + pairs[i].scoredCount)].map(Double.init)
            }
        }
        return out
    }

    /// Full next-token log-distributions at each scored response position, `[pair][position][vocab]`:
    /// row t is log π(· | prompt, response_<t) (log-softmax computed in Double, so rows are normalised
    /// and −∞ never appears from underflow of a probability).
    public static func responseDistributions(_ model: CausalLM, _ pairs: [ScoredPair], batchSize: Int = 32) throws -> [[[Float]]] {
        let metric = "response distributions"
        try validate(model, pairs, batchSize: batchSize, metric: metric)
        let vocab = model.config.vocabSize
        var out = [[[Float]]](repeating: [], count: pairs.count)
        for batch in batches(pairs.map(\.length), batchSize: batchSize) {
            let rows = logDistributions(model, pairs, batch)
            var cursor = 0
            for i in batch {
                out[i] = (0..<pairs[i].scoredCount).map { t in
                    Array(rows[((cursor + t) * vocab)..<((cursor + t + 1) * vocab)])
                }
                cursor += pairs[i].scoredCount
            }
        }
        return out
    }

    /// The most sequences one `sample` call generates (far more than any evaluation draws).
    public static let maxSamples = 1_000_000

    /// Seeded continuations of up to `length` tokens after each prompt, sampled at `temperature`
    /// (0 = greedy) with a KV cache, `count` per prompt, prompt-major (`[p0 s0, p0 s1, ..., p1 s0, ...]`).
    /// A continuation ends early after a token of `eosTokenIds` (kept). Prompts are batched by length;
    /// each batch draws from its own stream derived from `seed`, so the output is a fixed function
    /// of the inputs, the seed and `batchSize`.
    public static func sample(_ model: CausalLM, prompts: [[Int32]], length: Int, seed: UInt64, eosTokenIds: Set<Int>,
                              count: Int = 1, temperature: Float = 1, batchSize: Int = 32) throws -> [[Int32]] {
        let metric = "sampling"
        try requireNonEmpty(prompts, metric, "the prompt set")
        try require(length > 0, metric, "length must be > 0, found \(length)")
        try require(count > 0, metric, "count must be > 0, found \(count)")
        try require(batchSize > 0, metric, "batch size must be > 0, found \(batchSize)")
        try require(temperature >= 0 && temperature.isFinite, metric, "temperature must be a finite number >= 0, found \(temperature)")
        let vocab = model.config.vocabSize
        for (i, p) in prompts.enumerated() {
            try require(!p.isEmpty, metric, "prompt \(i) is empty; sampling needs at least one prompt token (e.g. BOS)")
            if let bad = p.first(where: { $0 < 0 || Int($0) >= vocab }) {
                throw EvaluationError(metric, "prompt \(i): token id \(bad) is outside the model's vocabulary 0..<\(vocab)")
            }
        }
        if let bad = eosTokenIds.first(where: { $0 < 0 || $0 >= vocab }) {
            throw EvaluationError(metric, "EOS id \(bad) is outside the model's vocabulary 0..<\(vocab)")
        }
        // Every prompt is repeated `count` times up front: bounded, so that a sample count of
        // 10^15 is refused instead of allocating the rows without limit.
        let (total, overflow) = prompts.count.multipliedReportingOverflow(by: count)
        try require(!overflow && total <= maxSamples, metric,
                    "\(prompts.count) prompts × \(count) samples each is more than \(maxSamples) samples")
        let rows = prompts.flatMap { p in Array(repeating: p, count: count) }
        var out = [[Int32]](repeating: [], count: rows.count)
        let root = SeededRandom(seed: seed)
        for (k, batch) in batches(rows.map(\.count), batchSize: batchSize).enumerated() {
            var stream = root.derived("sample batch \(k)")
            let options = GenerationOptions(maxNewTokens: length, temperature: temperature, seed: stream.next(),
                                            eosTokenIds: eosTokenIds, padTokenId: padId(model))
            let results: [GenerationResult]
            do {
                results = try model.generate(prompts: batch.map { rows[$0].map(Int.init) }, options: options)
            } catch let e as GenerationError { throw EvaluationError(metric, e.message) }
            for (b, i) in batch.enumerated() { out[i] = results[b].tokens.map { Int32($0) } }
        }
        return out
    }

    // MARK: Internals

    static func padId(_ model: CausalLM) -> Int {
        let v = model.config.padTokenId ?? 0
        return v >= 0 && v < model.config.vocabSize ? v : 0
    }

    static func validate(_ model: CausalLM, _ pairs: [ScoredPair], batchSize: Int, metric: String) throws {
        try requireNonEmpty(pairs, metric, "the evaluation set")
        try require(batchSize > 0, metric, "batch size must be > 0, found \(batchSize)")
        let vocab = model.config.vocabSize, context = model.config.maxPositionEmbeddings
        for (i, p) in pairs.enumerated() {
            // Refused rather than truncated: a score of a cut sequence would silently differ.
            try require(p.length <= context, metric,
                        "pair \(i) has \(p.length) tokens (prompt \(p.prompt.count) + response \(p.response.count)), more than the model's context (max_position_embeddings \(context))")
            try require(p.scoredCount > 0, metric, p.prompt.isEmpty
                        ? "pair \(i) has no prompt and \(p.response.count) response token(s); without a prompt the first token is not scored, so at least 2 are needed"
                        : "pair \(i) has an empty response; every scored response needs at least one token")
            for (part, ids) in [("prompt", p.prompt), ("response", p.response)] {
                if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
                    throw EvaluationError(metric, "pair \(i): \(part) token id \(bad) is outside the model's vocabulary 0..<\(vocab)")
                }
            }
        }
    }

    /// Indices grouped into batches of at most `batchSize`, shortest first (ties by index), so each
    /// batch pads little.
    static func batches(_ lengths: [Int], batchSize: Int) -> [[Int]] {
        let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        return stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0..<min(order.count, $0 + batchSize)]) }
    }

    /// Right-padded ids and labels (-100 on prompt and padding) of one batch.
    struct Layout {
        var ids: [Int32]
        var labels: [Int32]
        var length: Int

        init(_ pairs: [ScoredPair], _ batch: [Int], padId: Int) {
            length = batch.map { pairs[$0].length }.max()!
            ids = [Int32](repeating: Int32(padId), count: batch.count * length)
            labels = [Int32](repeating: -100, count: batch.count * length)
            for (b, i) in batch.enumerated() {
                let p = pairs[i], base = b * length
                for (t, id) in p.prompt.enumerated() { ids[base + t] = id }
                for (t, id) in p.response.enumerated() {
                    ids[base + p.prompt.count + t] = id
                    labels[base + p.prompt.count + t] = id
                }
            }
        }
    }

    /// Log-softmax rows `[n, vocab]` (flat) for the scored positions of `batch`, pair by pair in
    /// batch order.
    static func logDistributions(_ model: CausalLM, _ pairs: [ScoredPair], _ batch: [Int]) -> [Float] {
        let layout = Layout(pairs, batch, padId: padId(model))
        let logits: Tensor = Autograd.withNoGrad {
            let hidden = model.hiddenStates(layout.ids, batch: batch.count, length: layout.length)
            let flat = hidden.reshaped([batch.count * layout.length, model.config.hiddenSize])
            let pieces = batch.enumerated().map { b, i in
                let start = b * layout.length + pairs[i].firstScoredPosition
                return flat.rows(start..<(start + pairs[i].scoredCount))
            }
            return linear(pieces.count == 1 ? pieces[0] : concat(pieces, axis: 0), weight: model.lmHead)
        }
        var rows = logits.toArray()
        logSoftmaxInPlace(&rows, vocab: model.config.vocabSize)
        return rows
    }

    /// Row-wise log-softmax, accumulated in Double; rows split across cores.
    static func logSoftmaxInPlace(_ values: inout [Float], vocab: Int) {
        let n = values.count / vocab
        values.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            Parallel.forEach(n) { r in
                let row = base + r * vocab
                var m = -Float.infinity
                for v in 0..<vocab where row[v] > m { m = row[v] }
                var s = 0.0
                for v in 0..<vocab { s += Foundation.exp(Double(row[v] - m)) }
                let shift = Double(m) + Foundation.log(s)
                for v in 0..<vocab { row[v] = Float(Double(row[v]) - shift) }
            }
        }
    }
}
