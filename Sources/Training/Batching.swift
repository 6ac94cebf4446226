import Engine

/// One training example as token ids: the prompt x (no loss) and the response y (loss).
///
/// Plain-text LM data is an example with an empty prompt: every token but the first is then
/// predicted (the first has no context). Responses should already end with the EOS token
/// when the model must learn to stop.
public struct Example: Hashable, Sendable, Codable {
    public var prompt: [Int32]
    public var response: [Int32]

    public init(prompt: [Int32], response: [Int32]) { self.prompt = prompt; self.response = response }

    /// Sequence length fed to the model.
    public var length: Int { prompt.count + response.count }
    /// Number of positions that carry a loss: |y|, or |y| − 1 without a prompt.
    public var lossTokens: Int { prompt.isEmpty ? max(0, response.count - 1) : response.count }
}

/// What to do with an example longer than the context.
public enum Truncation: String, Codable, Hashable, Sendable {
    /// Throw `TrainingError.tooLong` naming the example.
    case error
    /// Keep the whole prompt and the first `maxContext − |x|` response tokens; an error when no
    /// response token would remain.
    case dropResponseEnd = "drop_response_end"
    /// Keep the whole response and the last `maxContext − |y|` prompt tokens; an error when the
    /// response alone does not fit.
    case dropPromptStart = "drop_prompt_start"
}

/// A right-padded batch for causal-LM training, row-major `[batchSize, length]`.
///
/// Row b holds ids = prompt ++ response of its example followed by `padId`.
/// `targets[b, t] = ids[t + 1]` when token t + 1 belongs to the response, else −100; so the loss
/// mask (`targets != −100`) marks exactly the positions that predict a response token, and the
/// last real position and all padding are ignored. With right padding and causal attention no
/// real position attends to padding, so no attention mask is needed; `sequenceLengths` says
/// where each row's padding starts.
public struct TokenBatch: Hashable, Sendable {
    /// Where a row comes from.
    public enum Source: Hashable, Sendable {
        /// Index into the stage's examples.
        case stage(Int)
        /// Index into the replay pool.
        case replay(Int)
    }

    public let batchSize: Int
    public let length: Int
    public var inputIds: [Int32]
    public var targets: [Int32]
    /// Unpadded length of each row.
    public var sequenceLengths: [Int]
    /// Loss positions of each row (the |y| of `SequenceStats.tokenCounts`).
    public var tokenCounts: [Int]
    public var sources: [Source]

    /// Positions with a loss: `targets[i] != −100`.
    public var lossMask: [Bool] { targets.map { $0 != TokenLogLikelihood.ignoreIndex } }
    public var totalLossTokens: Int { tokenCounts.reduce(0, +) }

    /// Pads `examples` (already within the context) into one batch.
    /// - Throws: no examples, or no loss token in the whole batch.
    public static func collate(_ examples: [Example], sources: [Source]? = nil, padId: Int32) throws -> TokenBatch {
        guard !examples.isEmpty else { throw TrainingError.empty(context: "TokenBatch.collate", message: "no examples") }
        if let s = sources, s.count != examples.count {
            throw TrainingError.mismatch(context: "TokenBatch.collate", message: "\(s.count) sources for \(examples.count) examples")
        }
        let length = examples.map(\.length).max()!
        guard length > 0 else { throw TrainingError.noLossTokens(context: "TokenBatch.collate", message: "every example is empty") }
        let b = examples.count
        var ids = [Int32](repeating: padId, count: b * length)
        var targets = [Int32](repeating: TokenLogLikelihood.ignoreIndex, count: b * length)
        var counts = [Int](repeating: 0, count: b)
        for (row, e) in examples.enumerated() {
            let base = row * length
            for (t, id) in e.prompt.enumerated() { ids[base + t] = id }
            for (t, id) in e.response.enumerated() { ids[base + e.prompt.count + t] = id }
            // Position t predicts token t + 1; it carries a loss when t + 1 is a response token.
            let firstTarget = max(e.prompt.count, 1)
            for p in firstTarget..<max(firstTarget, e.length) {
                targets[base + p - 1] = ids[base + p]
                counts[row] += 1
            }
        }
        if counts.allSatisfy({ $0 == 0 }) {
            throw TrainingError.noLossTokens(context: "TokenBatch.collate",
                                             message: "none of the \(b) examples has a response token to predict")
        }
        return TokenBatch(batchSize: b, length: length, inputIds: ids, targets: targets,
                          sequenceLengths: examples.map(\.length), tokenCounts: counts,
                          sources: sources ?? (0..<b).map { .stage($0) })
    }
}

/// Packs plain-text documents into rows of `contextLength` tokens for LM training.
///
/// Documents are concatenated in order (with `separator`, e.g. EOS, after each one when given)
/// and cut into consecutive rows; a document may span two rows and rows attend across document
/// boundaries (transformers' `group_texts`). The last row keeps the remainder when it has at
/// least 2 tokens. Rows are returned as prompt-less examples.
public func packDocuments(_ documents: [[Int32]], contextLength: Int, separator: Int32? = nil) throws -> [Example] {
    try require(contextLength >= 2, "packDocuments.contextLength", "must be >= 2, got \(contextLength)")
    var stream: [Int32] = []
    stream.reserveCapacity(documents.reduce(0) { $0 + $1.count + 1 })
    for d in documents {
        stream.append(contentsOf: d)
        if let s = separator { stream.append(s) }
    }
    var rows: [Example] = []
    var start = 0
    while start < stream.count {
        let end = min(stream.count, start + contextLength)
        if end - start >= 2 { rows.append(Example(prompt: [], response: Array(stream[start..<end]))) }
        start = end
    }
    if rows.isEmpty {
        throw TrainingError.empty(context: "packDocuments", message: "the documents hold \(stream.count) tokens; at least 2 are needed")
    }
    return rows
}

/// How a stage's examples become batches.
public struct BatchingOptions: Codable, Hashable, Sendable {
    /// Most stage examples per batch.
    public var batchSize: Int
    /// Optional budget on padded tokens per batch (rows × longest row, replay rows included):
    /// a batch closes early when one more example would exceed it.
    public var maxTokens: Int?
    /// Longest sequence (prompt + response) fed to the model.
    public var maxContext: Int
    public var truncation: Truncation
    public var padId: Int32
    /// Replay examples added to every batch (drawn from the replay pool).
    public var replayPerBatch: Int
    /// Shuffle the stage examples every epoch (else keep their order).
    public var shuffle: Bool
    /// Drop a final batch that has fewer than `batchSize` stage examples (ignored with
    /// `maxTokens`, where batch sizes vary anyway).
    public var dropLast: Bool

    public init(batchSize: Int, maxTokens: Int? = nil, maxContext: Int, truncation: Truncation = .error,
                padId: Int32 = 0, replayPerBatch: Int = 0, shuffle: Bool = true, dropLast: Bool = false) {
        self.batchSize = batchSize; self.maxTokens = maxTokens; self.maxContext = maxContext
        self.truncation = truncation; self.padId = padId; self.replayPerBatch = replayPerBatch
        self.shuffle = shuffle; self.dropLast = dropLast
    }

    public func validate() throws {
        try require(batchSize >= 1, "batching.batchSize", "must be >= 1, got \(batchSize)")
        try require(maxContext >= 2, "batching.maxContext", "must be >= 2, got \(maxContext)")
        try require(replayPerBatch >= 0, "batching.replayPerBatch", "must be >= 0, got \(replayPerBatch)")
        // Every batch draws this many rows: a huge count allocated without limit (and overflowed the token budget).
        try require(replayPerBatch <= Batcher.maxReplayPerBatch, "batching.replayPerBatch",
                    "must be at most \(Batcher.maxReplayPerBatch), got \(replayPerBatch)")
        if let m = maxTokens {
            try require(m >= 1, "batching.maxTokens", "must be >= 1, got \(m)")
        }
    }
}

/// Which examples form one batch.
public struct BatchPlan: Hashable, Sendable {
    public var epoch: Int
    /// Index of the batch within its epoch.
    public var index: Int
    public var stage: [Int]
    public var replay: [Int]
}

/// Turns a stage's examples (plus an optional replay pool) into seeded batches.
///
/// Determinism: epoch e shuffles with `SeededRandom(seed: seed).derived("epoch e")` and draws
/// replay with `.derived("replay e")`, so any epoch can be planned on its own and the same seed
/// gives the same batches on every path and for every algorithm. Replay examples are drawn
/// without replacement, reshuffling the pool whenever it runs out. Shuffling is this module's
/// own Fisher–Yates, independent of the standard library's algorithm.
public struct Batcher: Sendable {
    /// The most optimizer steps one stage or unlearning run lists up front (a run of a million
    /// steps is far beyond a CPU run; an epoch count or step count near Int.max listed batches
    /// without limit).
    public static let maxPlannedSteps = 1_000_000
    /// The most replay rows one batch takes.
    public static let maxReplayPerBatch = 65_536

    public let options: BatchingOptions
    public let seed: UInt64
    /// The stage examples after truncation.
    public let examples: [Example]
    /// The replay pool after truncation.
    public let replayPool: [Example]

    /// Validates and truncates every example up front, so bad data fails before training.
    /// - Throws: no examples, an example without a response token to predict, an example too
    ///   long for the truncation rule, replay requested with an empty pool, bad options.
    /// `name` says in errors which examples these are (e.g. "forget set").
    public init(examples: [Example], replayPool: [Example] = [], options: BatchingOptions, seed: UInt64,
                name: String = "Batcher.examples") throws {
        try options.validate()
        guard !examples.isEmpty else { throw TrainingError.empty(context: name, message: "the stage has no examples") }
        if options.replayPerBatch > 0 && replayPool.isEmpty {
            throw TrainingError.empty(context: "Batcher.replayPool",
                                      message: "replayPerBatch is \(options.replayPerBatch) but the replay pool is empty")
        }
        self.options = options
        self.seed = seed
        self.examples = try examples.enumerated().map { try Batcher.fit($1, index: $0, name, options) }
        self.replayPool = try replayPool.enumerated().map { try Batcher.fit($1, index: $0, "Batcher.replayPool", options) }
        if let m = options.maxTokens {
            let longest = self.examples.map(\.length).max()!
            let replayLongest = self.replayPool.map(\.length).max() ?? 0
            let rows = 1 + options.replayPerBatch
            if rows * max(longest, replayLongest) > m {
                throw TrainingError.invalidOption(context: "batching.maxTokens",
                    message: "\(m) tokens cannot hold one example with its \(options.replayPerBatch) replay rows at length \(max(longest, replayLongest)) (\(rows * max(longest, replayLongest)) tokens)")
            }
        }
    }

    static func fit(_ e: Example, index: Int, _ ctx: String, _ o: BatchingOptions) throws -> Example {
        var e = e
        if e.length > o.maxContext {
            let detail = "example \(index) has \(e.prompt.count) prompt + \(e.response.count) response tokens, maxContext is \(o.maxContext)"
            switch o.truncation {
            case .error:
                throw TrainingError.tooLong(context: ctx, message: detail + " (truncation: error)")
            case .dropResponseEnd:
                let keep = o.maxContext - e.prompt.count
                guard keep >= 1 else {
                    throw TrainingError.tooLong(context: ctx, message: detail + "; the prompt alone fills the context (truncation: drop_response_end)")
                }
                e.response = Array(e.response.prefix(keep))
            case .dropPromptStart:
                let keep = o.maxContext - e.response.count
                guard keep >= (e.prompt.isEmpty ? 0 : 1) else {
                    throw TrainingError.tooLong(context: ctx, message: detail + "; the response alone does not fit (truncation: drop_prompt_start)")
                }
                e.prompt = Array(e.prompt.suffix(keep))
            }
        }
        if e.lossTokens == 0 {
            throw TrainingError.noLossTokens(context: ctx,
                message: "example \(index) has no response token to predict (prompt \(e.prompt.count), response \(e.response.count) tokens)")
        }
        return e
    }

    /// The order of the stage examples in `epoch` (a permutation of 0..<examples.count).
    public func order(epoch: Int) -> [Int] {
        var idx = Array(0..<examples.count)
        if options.shuffle {
            var rng = SeededRandom(seed: seed).derived("epoch \(epoch)")
            seededShuffle(&idx, &rng)
        }
        return idx
    }

    /// The batches of one epoch.
    public func plan(epoch: Int) throws -> [BatchPlan] {
        try require(epoch >= 0, "Batcher.plan", "epoch must be >= 0, got \(epoch)")
        let order = self.order(epoch: epoch)
        var replayRNG = SeededRandom(seed: seed).derived("replay \(epoch)")
        var replayDeck: [Int] = []
        func drawReplay() -> [Int] {
            var out: [Int] = []
            for _ in 0..<options.replayPerBatch {
                if replayDeck.isEmpty {
                    replayDeck = Array(0..<replayPool.count)
                    seededShuffle(&replayDeck, &replayRNG)
                }
                out.append(replayDeck.removeLast())
            }
            return out
        }
        var plans: [BatchPlan] = []
        var next = 0
        while next < order.count {
            let replay = drawReplay()
            var longest = replay.map { replayPool[$0].length }.max() ?? 0
            var stage: [Int] = []
            while next < order.count && stage.count < options.batchSize {
                let candidate = order[next]
                let l = max(longest, examples[candidate].length)
                if let m = options.maxTokens, !stage.isEmpty, (stage.count + 1 + replay.count) * l > m { break }
                stage.append(candidate)
                longest = l
                next += 1
            }
            plans.append(BatchPlan(epoch: epoch, index: plans.count, stage: stage, replay: replay))
        }
        if options.dropLast, let last = plans.last, last.stage.count < options.batchSize, options.maxTokens == nil {
            plans.removeLast()
        }
        if plans.isEmpty {
            throw TrainingError.empty(context: "Batcher.plan",
                message: "dropLast leaves no batch: \(examples.count) examples, batch size \(options.batchSize)")
        }
        return plans
    }

    /// The batches of epochs 0..<epochs, in training order (its count is the stage's step count).
    public func plan(epochs: Int) throws -> [BatchPlan] {
        try require(epochs >= 1, "Batcher.plan", "epochs must be >= 1, got \(epochs)")
        let first = try plan(epoch: 0)
        try require(epochs <= Self.maxPlannedSteps / first.count, "Batcher.plan",
                    "\(epochs) epochs of \(first.count) batches are more than \(Self.maxPlannedSteps) optimizer steps")
        return try first + (1..<epochs).flatMap { try plan(epoch: $0) }
    }

    /// The padded batch of a plan: stage rows first, then replay rows.
    public func batch(_ plan: BatchPlan) throws -> TokenBatch {
        var rows: [Example] = [], sources: [TokenBatch.Source] = []
        for i in plan.stage {
            guard examples.indices.contains(i) else {
                throw TrainingError.mismatch(context: "Batcher.batch", message: "stage index \(i) outside 0..<\(examples.count)")
            }
            rows.append(examples[i]); sources.append(.stage(i))
        }
        for i in plan.replay {
            guard replayPool.indices.contains(i) else {
                throw TrainingError.mismatch(context: "Batcher.batch", message: "replay index \(i) outside 0..<\(replayPool.count)")
            }
            rows.append(replayPool[i]); sources.append(.replay(i))
        }
        return try TokenBatch.collate(rows, sources: sources, padId: options.padId)
    }
}

extension Batcher {
    /// Optimizer steps of `epochs` epochs (what `ScheduleSpec.resolve(totalSteps:)` needs).
    public func stepCount(epochs: Int) throws -> Int { try plan(epochs: epochs).count }

    /// A batch of `companions[i]` for the stage indices i of `plan`, truncated and checked like
    /// the stage examples: for data aligned with the stage examples, such as IdkDPO's
    /// "I don't know" answers to the forget prompts (role `alternative`). No replay rows.
    public func companionBatch(_ plan: BatchPlan, _ companions: [Example], name: String = "Batcher.companionBatch") throws -> TokenBatch {
        try requireAligned(companions, name)
        let rows = try plan.stage.map { i in try Batcher.fit(companions[i], index: i, name, options) }
        return try TokenBatch.collate(rows, sources: plan.stage.map { .stage($0) }, padId: options.padId)
    }

    /// Checks every companion example as `companionBatch` will, so that bad data fails before
    /// the first step rather than in the batch that first draws it.
    public func checkCompanions(_ companions: [Example], name: String) throws {
        try requireAligned(companions, name)
        for (i, e) in companions.enumerated() { _ = try Batcher.fit(e, index: i, name, options) }
    }

    /// Companions come one per stage example.
    private func requireAligned(_ companions: [Example], _ name: String) throws {
        guard companions.count == examples.count else {
            throw TrainingError.mismatch(context: name,
                                         message: "\(companions.count) companion examples for \(examples.count) stage examples")
        }
    }
}

/// Fisher–Yates with `SeededRandom.nextInt`, so the permutation depends only on the seed.
public func seededShuffle<T>(_ a: inout [T], _ rng: inout SeededRandom) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
        let j = rng.nextInt(i + 1)
        if i != j { a.swapAt(i, j) }
    }
}
