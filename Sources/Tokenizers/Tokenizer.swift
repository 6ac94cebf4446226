// Tokenizers: Hugging Face tokenizer.json encoding and decoding, chat templates, BPE training.
import Foundation
import JSONSupport

/// A Hugging Face `tokenizer.json` tokenizer (BPE models: byte-level as in GPT-2, Llama-3 and Qwen2, or
/// SentencePiece-style with byte fallback as in Llama-2 and Mistral). Encoding and decoding give the
/// same ids and text as the `tokenizers` library.
///
/// Text arrives as Swift `String`s, which are always valid Unicode; raw bytes go through
/// `encode(bytes:)`, which decodes them as UTF-8 replacing invalid sequences with U+FFFD — exactly what
/// Python's `bytes.decode("utf-8", "replace")` gives HF's API. The type is safe to share across threads.
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    let rawMatcher: TokenMatcher
    let normalizedMatcher: TokenMatcher
    let addedByID: [Int: AddedToken]
    let specialContents: Set<TokenKey>
    let fastPath: FastPath?
    private let pool = StatePool()

    /// Added tokens, in file order.
    public let addedTokens: [AddedToken]
    /// The parsed `tokenizer_config.json`, when one was loaded.
    public let config: TokenizerConfig?
    /// The file the tokenizer was loaded from.
    public let source: String

    /// Byte-level split regex + byte map + BPE on bytes, with a word cache: the common case made fast.
    struct FastPath {
        var pattern: KnownPattern
        var addPrefixSpace: Bool
        var nfc: Bool
    }

    // MARK: Loading

    /// Loads `tokenizer.json` from a file, or `tokenizer.json` and `tokenizer_config.json` from a directory.
    public static func load(from url: URL) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError(.fileNotFound, file: url.path, "no such file or directory")
        }
        let file = isDirectory.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        let configURL = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try TokenizerConfig(contentsOf: configURL) : nil
        return try Tokenizer(contentsOf: file, config: config)
    }

    /// Loads a tokenizer.json file (no tokenizer_config.json unless given).
    public convenience init(contentsOf url: URL, config: TokenizerConfig? = nil) throws {
        try self.init(data: readTokenizerFile(url), config: config, file: url.path)
    }

    /// Parses tokenizer.json text. `file` names the source in error messages.
    public init(data: Data, config: TokenizerConfig? = nil, file: String = "<memory>") throws {
        let json: JSONValue
        do {
            json = try JSONValue.parse(data, options: .lenient)
        } catch let e as JSONParseError {
            throw TokenizerError(.malformedJSON, file: file, "malformed JSON at byte \(e.offset): \(e.message)")
        }
        guard json.object != nil else {
            throw TokenizerError(.malformedJSON, file: file, "the top level must be a JSON object, found \(json.typeName)")
        }
        guard let modelJSON = json["model"], modelJSON.object != nil else {
            throw TokenizerError(.invalidField, file: file, "missing \"model\" object")
        }
        source = file
        self.config = config
        normalizer = try json["normalizer"].flatMap { try Normalizer.make($0, file: file) }
        preTokenizer = try json["pre_tokenizer"].flatMap { try PreTokenizer.make($0, file: file) }
        postProcessor = try json["post_processor"].flatMap { try PostProcessor.make($0, file: file) }
        decoder = try json["decoder"].flatMap { try Decoder.make($0, file: file) }
        model = try BPEModel(json: modelJSON, byteLevel: preTokenizer?.endsWithByteLevel ?? false, file: file)

        var added: [AddedToken] = []
        for (i, t) in (json["added_tokens"]?.array ?? []).enumerated() {
            guard let content = t["content"]?.string, let id = t["id"]?.int, id >= 0 else {
                throw TokenizerError(.invalidField, file: file, "added_tokens[\(i)] needs a \"content\" string and a non-negative \"id\"")
            }
            // Ids are held as Int32 while encoding: a larger one would trap there.
            guard id < Int(Int32.max) else {
                throw TokenizerError(.invalidField, file: file, "added_tokens[\(i)] has id \(id); ids must be below \(Int32.max)")
            }
            added.append(AddedToken(content: content, id: id, special: t["special"]?.bool ?? false,
                                    singleWord: t["single_word"]?.bool ?? false, lstrip: t["lstrip"]?.bool ?? false,
                                    rstrip: t["rstrip"]?.bool ?? false, normalized: t["normalized"]?.bool ?? !(t["special"]?.bool ?? false)))
        }
        addedTokens = added
        var byID: [Int: AddedToken] = [:]
        for t in added { byID[t.id] = t }
        addedByID = byID
        specialContents = Set(added.filter(\.special).map { TokenKey($0.content) })
        let norm = normalizer
        rawMatcher = TokenMatcher(added.filter { !$0.normalized }.map { ($0, Normalizer.scalars($0.content)) })
        normalizedMatcher = TokenMatcher(added.filter(\.normalized).map { t in
            let s = Normalizer.scalars(t.content)
            return (t, norm?.apply(s) ?? s)
        })

        // The fast path applies when the pipeline is exactly a known split regex + byte-level BPE.
        var fast: FastPath?
        if model.byteIDs != nil, normalizedMatcher.isEmpty {
            let nfc: Bool?
            switch normalizer {
            case nil: nfc = false
            case .some(.nfc): nfc = true
            default: nfc = nil
            }
            if let nfc {
                switch preTokenizer {
                case .some(.byteLevel(let addPrefixSpace, true)):
                    fast = FastPath(pattern: .gpt2, addPrefixSpace: addPrefixSpace, nfc: nfc)
                case .some(.sequence(let list)) where list.count == 2:
                    if case .split(.known(let k), .isolated, false) = list[0], case .byteLevel(false, false) = list[1] {
                        fast = FastPath(pattern: k, addPrefixSpace: false, nfc: nfc)
                    }
                default: break
                }
            }
        }
        fastPath = fast

        if let config {
            for (key, name) in [("bos_token", config.bosToken), ("eos_token", config.eosToken)] {
                if let name, tokenID(for: name) == nil {
                    throw TokenizerError(.missingSpecialToken, file: config.file, "\(key) \"\(name)\" is not a token of \(file)")
                }
            }
        }
    }

    // MARK: Vocabulary

    /// Number of ids (model vocabulary, added tokens and the post-processor's special tokens),
    /// i.e. one more than the largest id `encode` can produce. A template id past the vocabulary
    /// counts too, so that checks of the tokenizer against a model's vocabulary see it.
    public var vocabularySize: Int {
        max(model.vocabularySize, (addedTokens.map(\.id).max() ?? -1) + 1,
            Int(postProcessor?.largestID ?? -1) + 1)
    }

    /// The id of a token string (added tokens first, then the model vocabulary).
    public func tokenID(for token: String) -> Int? {
        let key = TokenKey(token)
        if let t = addedTokens.first(where: { TokenKey($0.content) == key }) { return t.id }
        return model.vocab[key.bytes].map(Int.init)
    }

    /// The token string of an id.
    public func token(for id: Int) -> String? {
        if let t = addedByID[id] { return t.content }
        guard id >= 0, id < model.idToToken.count else { return nil }
        return model.idToToken[id]
    }

    /// Whether `id` is a special added token (dropped by `decode(skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool { token(for: id).map { specialContents.contains(TokenKey($0)) } ?? false }

    /// The beginning-of-sequence token: tokenizer_config's `bos_token`, else a well-known name present.
    public var bosTokenID: Int? {
        if let name = config?.bosToken { return tokenID(for: name) }
        for name in ["<|begin_of_text|>", "<s>", "<|startoftext|>"] { if let id = tokenID(for: name) { return id } }
        return nil
    }

    /// Tokens that end generation: tokenizer_config's `eos_token` (else a well-known end token), plus the
    /// end-of-turn token of the chat format (`<|eot_id|>`, `<|im_end|>`) when present.
    public var eosTokenIDs: [Int] {
        var ids: [Int] = []
        if let name = config?.eosToken, let id = tokenID(for: name) {
            ids.append(id)
        } else {
            for name in ["<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>"] {
                if let id = tokenID(for: name) { ids.append(id); break }
            }
        }
        for name in ["<|eot_id|>", "<|im_end|>"] {
            if let id = tokenID(for: name), !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    // MARK: Encoding

    /// Encodes text; `addSpecialTokens` applies the post-processor (e.g. a BOS token).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        let state = pool.acquire()
        defer { pool.release(state) }
        var ids: [Int32] = []
        encode(text, state: state, into: &ids)
        if addSpecialTokens, let postProcessor { ids = postProcessor.apply(ids) }
        return ids.map { Int($0) }
    }

    /// Encodes raw bytes, decoding them as UTF-8 with U+FFFD for invalid sequences (as Python's
    /// `bytes.decode("utf-8", errors="replace")`).
    public func encode(bytes: some Sequence<UInt8>, addSpecialTokens: Bool = true) -> [Int] {
        encode(String(decoding: Array(bytes), as: UTF8.self), addSpecialTokens: addSpecialTokens)
    }

    /// Encodes many texts on every core; the result is in input order.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true, threads: Int? = nil) -> [[Int]] {
        var results = [[Int]](repeating: [], count: texts.count)
        let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, texts.count))
        if workers == 1 {
            for (i, t) in texts.enumerated() { results[i] = encode(t, addSpecialTokens: addSpecialTokens) }
            return results
        }
        let next = AtomicCounter()
        results.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let start = next.add(16)
                    if start >= texts.count { break }
                    for i in start..<min(start + 16, texts.count) {
                        (base + i).pointee = encode(texts[i], addSpecialTokens: addSpecialTokens)
                    }
                }
            }
        }
        return results
    }

    func encode(_ text: String, state: EncodeState, into ids: inout [Int32]) {
        // Move the scratch space and cache out of the class for the call: accessing class properties in
        // the hot loop costs retains and exclusivity checks.
        var scalars = state.scalars
        state.scalars = []
        let cache = state.cache
        defer { state.scalars = scalars }
        scalars.removeAll(keepingCapacity: true)
        for u in text.unicodeScalars { scalars.append(u.value) }
        scalars.withUnsafeBufferPointer { buf in
            if rawMatcher.isEmpty {
                if !buf.isEmpty { encodeSegment(buf, atStart: true, state: state, cache: cache, into: &ids) }
                return
            }
            for (range, token) in rawMatcher.split(buf, 0..<buf.count) {
                if let token {
                    ids.append(Int32(token.id))
                } else {
                    encodeSegment(UnsafeBufferPointer(rebasing: buf[range]), atStart: range.lowerBound == 0, state: state,
                                  cache: cache, into: &ids)
                }
            }
        }
    }

    private func encodeSegment(_ seg: UnsafeBufferPointer<UInt32>, atStart: Bool, state: EncodeState,
                               cache: BytesTable, into ids: inout [Int32]) {
        if let fastPath {
            if !fastPath.nfc && !fastPath.addPrefixSpace {
                encodeByteLevel(seg, fastPath.pattern, cache: cache, into: &ids)
                return
            }
            var text = Array(seg)
            if fastPath.nfc { text = Normalizer.nfc.apply(text) }
            if fastPath.addPrefixSpace, text.first != 0x20 { text.insert(0x20, at: 0) }
            text.withUnsafeBufferPointer { encodeByteLevel($0, fastPath.pattern, cache: cache, into: &ids) }
            return
        }
        var text = Array(seg)
        if let normalizer { text = normalizer.apply(text) }
        text.withUnsafeBufferPointer { buf in
            for (range, token) in normalizedMatcher.split(buf, 0..<buf.count) {
                if let token { ids.append(Int32(token.id)); continue }
                let piece = Piece(text: Array(buf[range]), atStart: atStart && range.lowerBound == 0)
                let pieces = preTokenizer?.apply([piece]) ?? [piece]
                for p in pieces where !p.text.isEmpty {
                    if let cached = state.wordCache[p.text] {
                        ids.append(contentsOf: cached)
                    } else {
                        var out: [Int32] = []
                        model.tokenize(p.text, into: &out)
                        if state.wordCache.count > 200_000 { state.wordCache.removeAll(keepingCapacity: true) }
                        state.wordCache[p.text] = out
                        ids.append(contentsOf: out)
                    }
                }
            }
        }
    }

    /// Split regex -> UTF-8 bytes of each piece -> cached byte-level BPE.
    private func encodeByteLevel(_ buf: UnsafeBufferPointer<UInt32>, _ pattern: KnownPattern, cache: BytesTable,
                                 into ids: inout [Int32]) {
        let n = buf.count
        if n == 0 { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4 * n) { scratch in
            let out = scratch.baseAddress!
            var i = 0
            while i < n {
                let e = pattern.matchEnd(buf, i)
                var m = 0
                for k in i..<e {
                    let c = buf[k]
                    if c < 0x80 { out[m] = UInt8(c); m += 1 } else { forEachUTF8Byte(c) { out[m] = $0; m += 1 } }
                }
                let bytes = UnsafeBufferPointer(start: out, count: m)
                let h = BytesTable.hash(bytes)
                if let hit = cache.find(bytes, hash: h) {
                    ids.append(contentsOf: hit)
                } else {
                    var piece: [Int32] = []
                    model.tokenizeBytes(bytes, hash: h, into: &piece)
                    if cache.count > 1 << 20 || cache.memoryBytes > 128 << 20 { cache.removeAll() }
                    piece.withUnsafeBufferPointer { cache.insert(bytes, hash: h, values: $0) }
                    ids.append(contentsOf: piece)
                }
                i = e
            }
        }
    }

    // MARK: Decoding

    /// Decodes ids to text. Unknown ids are skipped; `skipSpecialTokens` drops special added tokens.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = token(for: id) else { continue }
            if skipSpecialTokens && specialContents.contains(TokenKey(t)) { continue }
            tokens.append(t)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }
}

/// Per-thread scratch space and word cache (encoding takes one from the pool and gives it back).
final class EncodeState {
    let cache = BytesTable(capacity: 1 << 14)
    var wordCache: [[UInt32]: [Int32]] = [:]
    var scalars: [UInt32] = []
}

final class StatePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [EncodeState] = []

    func acquire() -> EncodeState {
        lock.lock(); defer { lock.unlock() }
        return free.popLast() ?? EncodeState()
    }

    func release(_ s: EncodeState) {
        lock.lock(); defer { lock.unlock() }
        free.append(s)
    }
}

final class AtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ n: Int) -> Int {
        lock.lock(); defer { lock.unlock() }
        let v = value
        value += n
        return v
    }
}
