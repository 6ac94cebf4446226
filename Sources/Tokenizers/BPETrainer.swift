import Foundation
import JSONSupport

/// Trains a byte-level BPE tokenizer (GPT-2 style) from text and saves it as a tokenizer.json that HF
/// tokenizers loads and encodes identically. The merge order follows HF's BpeTrainer: the most frequent
/// adjacent pair first, ties to the smallest (left id, right id); token ids are the special tokens, then
/// the 256 byte characters in code point order, then one per merge.
public struct BPETrainer: Sendable {
    public enum Split: String, Sendable {
        /// GPT-2's regex, through the ByteLevel pre-tokenizer.
        case gpt2
        /// Llama-3's regex (`\p{N}{1,3}`), through a Split pre-tokenizer.
        case llama3
    }

    public var vocabularySize: Int
    /// Pairs seen fewer times than this are never merged.
    public var minimumFrequency: Int
    /// Added as special tokens with the first ids; the first is the end-of-sequence token.
    public var specialTokens: [String]
    public var split: Split

    public init(vocabularySize: Int, minimumFrequency: Int = 2, specialTokens: [String] = ["<|endoftext|>"],
                split: Split = .gpt2) {
        self.vocabularySize = vocabularySize
        self.minimumFrequency = minimumFrequency
        self.specialTokens = specialTokens
        self.split = split
    }

    /// The result of training: vocabulary (id order) and merges (rank order).
    public struct Result: Sendable {
        public var tokens: [String]
        public var merges: [(String, String)]
        public var specialTokens: [String]
        public var split: Split

        /// tokenizer.json text.
        public func tokenizerJSON() -> String {
            var s = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["
            s += specialTokens.enumerated().map { i, t in
                "\n    {\"id\": \(i), \"content\": \(jsonQuoted(t)), \"single_word\": false, \"lstrip\": false, "
                    + "\"rstrip\": false, \"normalized\": false, \"special\": true}"
            }.joined(separator: ",")
            s += specialTokens.isEmpty ? "],\n" : "\n  ],\n"
            s += "  \"normalizer\": null,\n"
            switch split {
            case .gpt2:
                s += "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n"
            case .llama3:
                s += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                    + jsonQuoted(KnownPattern.llama3Source)
                    + "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                    + "\"trim_offsets\": true, \"use_regex\": false}]},\n"
            }
            s += "  \"post_processor\": null,\n"
            s += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n"
            s += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
            s += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
            s += "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {"
            s += tokens.enumerated().map { i, t in "\n      \(jsonQuoted(t)): \(i)" }.joined(separator: ",")
            s += "\n    },\n    \"merges\": ["
            s += merges.map { "\n      [\(jsonQuoted($0.0)), \(jsonQuoted($0.1))]" }.joined(separator: ",")
            s += "\n    ]\n  }\n}\n"
            return s
        }

        /// tokenizer_config.json text naming the end-of-sequence token.
        public func configJSON() -> String {
            let eos = specialTokens.first.map(jsonQuoted) ?? "null"
            return "{\n  \"bos_token\": null,\n  \"eos_token\": \(eos),\n  \"model_max_length\": 1000000000000000019884624838656,\n"
                + "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n"
        }

        /// Writes tokenizer.json and tokenizer_config.json into `directory` (created if needed).
        public func save(to directory: URL) throws {
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try Data(tokenizerJSON().utf8).write(to: directory.appendingPathComponent("tokenizer.json"))
                try Data(configJSON().utf8).write(to: directory.appendingPathComponent("tokenizer_config.json"))
            } catch {
                throw TokenizerError(.invalidArgument, file: directory.path, "cannot write the tokenizer: \(error.localizedDescription)")
            }
        }

        /// The trained tokenizer, ready to use.
        public func tokenizer() throws -> Tokenizer {
            let config = TokenizerConfig(eosToken: specialTokens.first)
            return try Tokenizer(data: Data(tokenizerJSON().utf8), config: config, file: "<trained>")
        }
    }

    /// Trains on `texts` (each one a document; it is split by the pre-tokenizer regex, never across texts).
    public func train(_ texts: [String]) throws -> Result {
        let alphabet = (0..<256).map { ByteLevelMap.byteToScalar[$0] }.sorted()
        guard vocabularySize >= specialTokens.count + alphabet.count else {
            throw TokenizerError(.invalidArgument, file: "<trainer>", "vocabulary size \(vocabularySize) is smaller than the \(specialTokens.count) special tokens + 256 byte tokens")
        }
        guard Set(specialTokens).count == specialTokens.count else {
            throw TokenizerError(.invalidArgument, file: "<trainer>", "special tokens must be distinct")
        }
        // Count words (pre-tokens as bytes).
        var wordCounts: [[UInt8]: Int] = [:]
        let pattern: KnownPattern = split == .gpt2 ? .gpt2 : .llama3(maxDigits: 3)
        for text in texts {
            let scalars = text.unicodeScalars.map(\.value)
            scalars.withUnsafeBufferPointer { buf in
                pattern.forEachMatch(buf) { a, b in
                    var bytes: [UInt8] = []
                    for c in buf[a..<b] { forEachUTF8Byte(c) { bytes.append($0) } }
                    wordCounts[bytes, default: 0] += 1
                }
            }
        }
        var tokens = specialTokens
        var idOf: [TokenKey: Int32] = [:]
        for (i, t) in tokens.enumerated() { idOf[TokenKey(t)] = Int32(i) }
        var byteID = [Int32](repeating: 0, count: 256)
        for c in alphabet {
            let t = String(Unicode.Scalar(c)!)
            let id: Int32
            if let existing = idOf[TokenKey(t)] { id = existing } else {
                id = Int32(tokens.count); tokens.append(t); idOf[TokenKey(t)] = id
            }
            byteID[ByteLevelMap.byte(for: c)!] = id
        }
        // Words in a fixed order so training is deterministic.
        let sortedWords = wordCounts.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var words: [[Int32]] = sortedWords.map { $0.key.map { byteID[Int($0)] } }
        let counts: [Int] = sortedWords.map(\.value)

        @inline(__always) func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: Set<Int32>] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let k = key(word[i], word[i + 1])
                pairCounts[k, default: 0] += counts[w]
                pairWords[k, default: []].insert(Int32(w))
            }
        }
        // Max-heap on (count, smaller pair first), corrected lazily when a count went down.
        var heap = PairHeap()
        for (k, c) in pairCounts where c > 0 { heap.push(count: c, pair: k) }
        var merges: [(String, String)] = []
        while tokens.count < vocabularySize, let top = heap.pop() {
            let current = pairCounts[top.pair] ?? 0
            if current != top.count {
                if current > 0 { heap.push(count: current, pair: top.pair) }
                continue
            }
            if current < max(minimumFrequency, 1) { break }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let merged = tokens[Int(a)] + tokens[Int(b)]
            let newID: Int32
            if let existing = idOf[TokenKey(merged)] { newID = existing } else {
                newID = Int32(tokens.count); tokens.append(merged); idOf[TokenKey(merged)] = newID
            }
            merges.append((tokens[Int(a)], tokens[Int(b)]))
            var touched = Set<UInt64>()
            for w in pairWords[top.pair] ?? [] {
                let wi = Int(w)
                let old = words[wi]
                guard old.count > 1 else { continue }
                var new: [Int32] = []
                new.reserveCapacity(old.count)
                var i = 0
                var changed = false
                while i < old.count {
                    if i + 1 < old.count, old[i] == a, old[i + 1] == b {
                        new.append(newID); i += 2; changed = true
                    } else {
                        new.append(old[i]); i += 1
                    }
                }
                guard changed else { continue }
                let c = counts[wi]
                for j in 0..<(old.count - 1) { pairCounts[key(old[j], old[j + 1]), default: 0] -= c }
                if new.count > 1 {
                    for j in 0..<(new.count - 1) {
                        let k = key(new[j], new[j + 1])
                        pairCounts[k, default: 0] += c
                        if new[j] == newID || new[j + 1] == newID {
                            pairWords[k, default: []].insert(w)
                            touched.insert(k)
                        }
                    }
                }
                words[wi] = new
            }
            pairCounts[top.pair] = 0
            pairWords[top.pair] = nil
            for k in touched.sorted() {
                if let c = pairCounts[k], c > 0 { heap.push(count: c, pair: k) }
            }
        }
        return Result(tokens: tokens, merges: merges, specialTokens: specialTokens, split: split)
    }
}

/// Binary max-heap of (count, pair): higher count first, then the smaller pair.
struct PairHeap {
    private var items: [(count: Int, pair: UInt64)] = []

    @inline(__always) private static func above(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64)) -> Bool {
        x.count != y.count ? x.count > y.count : x.pair < y.pair
    }

    mutating func push(count: Int, pair: UInt64) {
        items.append((count, pair))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !Self.above(items[i], items[p]) { break }
            items.swapAt(i, p); i = p
        }
    }

    mutating func pop() -> (count: Int, pair: UInt64)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, Self.above(items[l], items[m]) { m = l }
                if r < items.count, Self.above(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
