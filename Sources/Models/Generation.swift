import Engine
import Foundation

/// Turns token ids back into text; what generation needs from a tokenizer to honour stop strings.
public protocol TokenTextDecoder {
    func decode(_ ids: [Int]) -> String
}

/// How `CausalLM.generate` picks tokens and when it stops.
public struct GenerationOptions: Sendable, Equatable {
    /// Tokens to generate at most per prompt.
    public var maxNewTokens: Int
    /// 0 picks the most likely token (greedy); above 0 samples from `softmax(logits / temperature)`.
    public var temperature: Float
    /// Sample only among the `topK` most likely tokens (ties at the cut kept, as HF).
    public var topK: Int?
    /// Sample only from the smallest set of most likely tokens whose mass reaches `topP`.
    public var topP: Float?
    /// Seed of the sampling stream (one stream for the whole batch, unless `rowSeeds`).
    public var seed: UInt64
    /// One sampling stream per prompt, seeded with these (as many as prompts): a prompt's sample
    /// then does not depend on which other prompts share its batch. Nil: one stream from `seed`.
    public var rowSeeds: [UInt64]?
    /// Stop a row when it produces one of these (the token is kept in the output); nil means
    /// the config's `eos_token_id`, as HF `generate` does. Pass `[]` to never stop early.
    public var eosTokenIds: Set<Int>?
    /// Stop a row when its decoded continuation contains one of these (needs a decoder).
    public var stopStrings: [String]
    /// Token fed for padding (masked, never attended to).
    public var padTokenId: Int

    public init(maxNewTokens: Int = 32, temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0,
                eosTokenIds: Set<Int>? = nil, stopStrings: [String] = [], padTokenId: Int = 0, rowSeeds: [UInt64]? = nil) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.eosTokenIds = eosTokenIds
        self.stopStrings = stopStrings
        self.padTokenId = padTokenId
        self.rowSeeds = rowSeeds
    }
}

/// One prompt's continuation.
public struct GenerationResult: Sendable, Equatable {
    public enum StopReason: Sendable, Equatable {
        case eos(Int)
        case stopString(String)
        case maxNewTokens
    }

    /// The generated tokens (not the prompt), including the EOS token or the token that
    /// completed a stop string.
    public var tokens: [Int]
    public var stopReason: StopReason
}

/// Invalid generation input (empty prompt, bad option), with the offending value.
public struct GenerationError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

extension CausalLM {
    /// Continues every prompt (prompts may differ in length: they are left-padded and masked,
    /// each row's positions starting at 0), decoding incrementally with a KV cache.
    public func generate(prompts: [[Int]], options: GenerationOptions = GenerationOptions(),
                         decoder: TokenTextDecoder? = nil) throws -> [GenerationResult] {
        try Self.check(options, vocab: config.vocabSize, hasDecoder: decoder != nil)
        guard !prompts.isEmpty else { return [] }
        for (i, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw GenerationError(message: "prompt \(i) is empty") }
            if let bad = p.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw GenerationError(message: "prompt \(i): token id \(bad) is outside the vocabulary 0..<\(config.vocabSize)")
            }
        }
        let batch = prompts.count
        if let seeds = options.rowSeeds, seeds.count != batch {
            throw GenerationError(message: "rowSeeds has \(seeds.count) seeds for \(batch) prompts; give one per prompt")
        }
        let width = prompts.map(\.count).max()!
        // The KV cache holds prompt + new tokens; past the context the positions are ones the
        // model never saw, and a huge maxNewTokens would allocate without bound.
        let (total, overflow) = width.addingReportingOverflow(options.maxNewTokens)
        if overflow || total > config.maxPositionEmbeddings {
            throw GenerationError(message: "prompt of \(width) tokens + maxNewTokens \(options.maxNewTokens) exceeds the model's context "
                                  + "(max_position_embeddings \(config.maxPositionEmbeddings))")
        }
        let padding = prompts.map { width - $0.count }
        var results = prompts.map { _ in GenerationResult(tokens: [], stopReason: .maxNewTokens) }
        if options.maxNewTokens == 0 { return results }
        return Autograd.withNoGrad {
            let cache = KVCache(config: config, batch: batch, capacity: width + options.maxNewTokens,
                                leftPadding: padding.contains { $0 > 0 } ? padding : nil)
            var ids = [Int32](repeating: Int32(options.padTokenId), count: batch * width)
            for (b, p) in prompts.enumerated() {
                for (t, id) in p.enumerated() { ids[b * width + padding[b] + t] = Int32(id) }
            }
            var logits = self.logits(ids, batch: batch, length: width, cache: cache, lastOnly: true)
            var shared = SeededRandom(seed: options.seed)
            var perRow = options.rowSeeds?.map { SeededRandom(seed: $0) }
            var done = [Bool](repeating: false, count: batch)
            let eos = options.eosTokenIds ?? Set(config.eosTokenIds)
            let vocab = config.vocabSize
            for step in 0..<options.maxNewTokens {
                var next = [Int32](repeating: Int32(options.padTokenId), count: batch)
                logits.withUnsafeBufferPointer { all in
                    for b in 0..<batch where !done[b] {
                        let row = UnsafeBufferPointer(rebasing: all[(b * vocab)..<((b + 1) * vocab)])
                        let token = perRow == nil ? Self.pick(row, options: options, rng: &shared)
                                                  : Self.pick(row, options: options, rng: &perRow![b])
                        next[b] = Int32(token)
                        results[b].tokens.append(token)
                        if eos.contains(token) {
                            results[b].stopReason = .eos(token)
                            done[b] = true
                        } else if let decoder, !options.stopStrings.isEmpty {
                            let text = decoder.decode(results[b].tokens)
                            if let s = options.stopStrings.first(where: { text.contains($0) }) {
                                results[b].stopReason = .stopString(s)
                                done[b] = true
                            }
                        }
                    }
                }
                if done.allSatisfy({ $0 }) || step == options.maxNewTokens - 1 { break }
                logits = self.logits(next, batch: batch, length: 1, cache: cache)
            }
            return results
        }
    }

    static func check(_ o: GenerationOptions, vocab: Int, hasDecoder: Bool) throws {
        guard o.maxNewTokens >= 0 else { throw GenerationError(message: "maxNewTokens must be >= 0, got \(o.maxNewTokens)") }
        guard o.temperature >= 0, o.temperature.isFinite else {
            throw GenerationError(message: "temperature must be a finite number >= 0, got \(o.temperature)")
        }
        if let k = o.topK, k <= 0 { throw GenerationError(message: "topK must be > 0, got \(k)") }
        if let p = o.topP, !(p > 0 && p <= 1) { throw GenerationError(message: "topP must be in (0, 1], got \(p)") }
        guard o.padTokenId >= 0, o.padTokenId < vocab else {
            throw GenerationError(message: "padTokenId \(o.padTokenId) is outside the vocabulary 0..<\(vocab)")
        }
        if !o.stopStrings.isEmpty, !hasDecoder {
            throw GenerationError(message: "stop strings \(o.stopStrings) need a token decoder")
        }
    }

    /// Picks the next token from one row of logits: argmax (first on ties) when temperature is
    /// 0; otherwise temperature, then top-k, then top-p, then one draw, as HF orders them.
    static func pick(_ logits: UnsafeBufferPointer<Float>, options: GenerationOptions, rng: inout SeededRandom) -> Int {
        if options.temperature == 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        let t = Double(options.temperature)
        var order = Array(0..<logits.count)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        var keep = order.count
        if let k = options.topK, k < keep {
            let cut = logits[order[k - 1]]
            keep = k
            while keep < order.count, logits[order[keep]] == cut { keep += 1 }
        }
        let top = Double(logits[order[0]])
        var probs = (0..<keep).map { Foundation.exp((Double(logits[order[$0]]) - top) / t) }
        var total = probs.reduce(0, +)
        if let p = options.topP, p < 1 {
            var mass = 0.0, n = 0
            while n < keep, mass < Double(p) * total {
                mass += probs[n]
                n += 1
            }
            keep = Swift.max(1, n)
            probs = Array(probs.prefix(keep))
            total = probs.reduce(0, +)
        }
        let u = rng.nextDouble() * total
        var acc = 0.0
        for i in 0..<keep {
            acc += probs[i]
            if u < acc { return order[i] }
        }
        return order[keep - 1]
    }
}
