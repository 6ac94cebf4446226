import Foundation
import JSONSupport

/// The BPE model of a tokenizer.json: vocabulary, ranked merges and the rules for characters that are
/// not in the vocabulary (byte fallback, unknown token).
final class BPEModel: @unchecked Sendable {
    /// token bytes -> id (compared by bytes: canonically equivalent spellings are different tokens).
    let vocab: BytesTable
    /// id -> token (nil where the vocabulary has a gap).
    let idToToken: [String?]
    /// (left << 32 | right) -> (rank << 32 | merged id)
    let merges: PairTable
    let mergeCount: Int
    let unkID: Int32?
    let byteFallback: Bool
    let fuseUnk: Bool
    let ignoreMerges: Bool
    let prefix: String?
    let suffix: String?
    /// `<0xXX>` ids (-1 where absent), when byte_fallback is on.
    let byteFallbackIDs: [Int32]
    /// Ids of single-code-point tokens.
    let scalarIDs: [UInt32: Int32]
    /// Byte-level fast path: the id of each byte's character, when all 256 are in the vocabulary.
    let byteIDs: [Int32]?
    /// Byte-level vocabulary keyed by the bytes each token stands for (for ignore_merges).
    let bytesVocab: BytesTable?

    var vocabularySize: Int { idToToken.count }

    init(json: JSONValue, byteLevel: Bool, file: String) throws {
        let type = json["type"]?.string ?? (json["merges"] != nil ? "BPE" : "")
        guard type == "BPE" else {
            throw TokenizerError(.unsupportedComponent, file: file,
                                 "unsupported model type \"\(type.isEmpty ? "<missing>" : type)\" (only BPE is supported)")
        }
        guard let vocabJSON = json["vocab"]?.object else {
            throw TokenizerError(.invalidField, file: file, "model.vocab must be an object of token -> id")
        }
        let vocab = BytesTable(capacity: vocabJSON.count)
        var maxID = -1
        for (token, value) in vocabJSON {
            guard let id = value.int, id >= 0, id < Int(Int32.max) else {
                throw TokenizerError(.invalidField, file: file, "model.vocab[\"\(token)\"] must be a non-negative integer id, found \(value.typeName)")
            }
            let key = Array(token.utf8)
            if !key.isEmpty, vocab[key] == nil { vocab.insert(key, values: [Int32(id)]) }
            maxID = max(maxID, id)
        }
        // The id table is dense: a stray huge id would allocate gigabytes (a fuzz finding).
        let idLimit = 2 * vocabJSON.count + 65_536
        guard maxID < idLimit else {
            throw TokenizerError(.invalidField, file: file,
                                 "model.vocab has \(vocabJSON.count) entries but an id of \(maxID); ids must be below \(idLimit) (2 × entries + 65536)")
        }
        var idToToken = [String?](repeating: nil, count: maxID + 1)
        for (token, value) in vocabJSON { idToToken[value.int!] = token }
        self.vocab = vocab
        self.idToToken = idToToken

        func optionalString(_ key: String) throws -> String? {
            guard let v = json[key], !v.isNull else { return nil }
            guard let s = v.string else {
                throw TokenizerError(.invalidField, file: file, "model.\(key) must be a string or null, found \(v.typeName)")
            }
            return s
        }
        prefix = try optionalString("continuing_subword_prefix").flatMap { $0.isEmpty ? nil : $0 }
        suffix = try optionalString("end_of_word_suffix").flatMap { $0.isEmpty ? nil : $0 }
        if let unk = try optionalString("unk_token") {
            guard let id = vocab[Array(unk.utf8)] else {
                throw TokenizerError(.missingSpecialToken, file: file, "model.unk_token \"\(unk)\" is not in the vocabulary")
            }
            unkID = id
        } else {
            unkID = nil
        }
        byteFallback = json["byte_fallback"]?.bool ?? false
        fuseUnk = json["fuse_unk"]?.bool ?? false
        ignoreMerges = json["ignore_merges"]?.bool ?? false
        if let p = json["dropout"]?.number, p > 0 {
            throw TokenizerError(.unsupportedComponent, file: file, "BPE dropout \(p) is not supported (encoding must be deterministic)")
        }

        // Merges: "a b" strings (older files) or ["a", "b"] pairs.
        let mergeList = json["merges"]?.array ?? []
        var table = PairTable(capacity: mergeList.count)
        let prefixBytes = prefix?.utf8.count ?? 0
        for (rank, m) in mergeList.enumerated() {
            let a: [UInt8], b: [UInt8]
            if let s = m.string {
                let u = Array(s.utf8)
                guard let space = u.firstIndex(of: 0x20), !u[(space + 1)...].contains(0x20) else {
                    throw TokenizerError(.invalidField, file: file, "model.merges[\(rank)] \"\(s)\" is not two tokens separated by one space")
                }
                a = Array(u[..<space]); b = Array(u[(space + 1)...])
            } else if let pair = m.array, pair.count == 2, let x = pair[0].string, let y = pair[1].string {
                a = Array(x.utf8); b = Array(y.utf8)
            } else {
                throw TokenizerError(.invalidField, file: file, "model.merges[\(rank)] must be \"a b\" or [\"a\", \"b\"]")
            }
            guard let ida = vocab[a] else {
                throw TokenizerError(.inconsistentVocabulary, file: file, "model.merges[\(rank)] names \"\(TokenKey(bytes: a).string)\", which is not in the vocabulary")
            }
            guard let idb = vocab[b] else {
                throw TokenizerError(.inconsistentVocabulary, file: file, "model.merges[\(rank)] names \"\(TokenKey(bytes: b).string)\", which is not in the vocabulary")
            }
            let merged = a + b.dropFirst(prefixBytes)
            guard let idm = vocab[merged] else {
                throw TokenizerError(.inconsistentVocabulary, file: file, "model.merges[\(rank)] makes \"\(TokenKey(bytes: merged).string)\", which is not in the vocabulary")
            }
            table.set(UInt64(UInt32(ida)) << 32 | UInt64(UInt32(idb)), UInt64(rank) << 32 | UInt64(UInt32(idm)))
        }
        merges = table
        mergeCount = mergeList.count

        var fallback = [Int32](repeating: -1, count: 256)
        if byteFallback {
            for b in 0..<256 { fallback[b] = vocab[Array(String(format: "<0x%02X>", b).utf8)] ?? -1 }
        }
        byteFallbackIDs = fallback
        var scalars: [UInt32: Int32] = [:]
        for (token, _) in vocabJSON where token.utf8.count <= 4 {
            var it = token.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { scalars[first.value] = vocab[Array(token.utf8)] }
        }
        scalarIDs = scalars

        if byteLevel && prefix == nil && suffix == nil {
            var ids = [Int32](repeating: -1, count: 256)
            for b in 0..<256 { ids[b] = scalars[ByteLevelMap.byteToScalar[b]] ?? -1 }
            if ids.allSatisfy({ $0 >= 0 }) {
                byteIDs = ids
                let table = BytesTable(capacity: ignoreMerges ? vocabJSON.count : 16)
                if ignoreMerges {
                    for (id, token) in idToToken.enumerated() {
                        if let token, let bytes = ByteLevelMap.bytes(of: token), !bytes.isEmpty, table.get(bytes) == nil {
                            table.insert(bytes, values: [Int32(id)])
                        }
                    }
                }
                bytesVocab = table
            } else {
                byteIDs = nil; bytesVocab = nil
            }
        } else {
            byteIDs = nil; bytesVocab = nil
        }
    }

    @inline(__always) func mergeRank(_ a: Int32, _ b: Int32) -> UInt64? {
        merges.get(UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)))
    }

    /// Applies the merges to `syms` in place: repeatedly the lowest-ranked adjacent pair, leftmost first.
    func merge(_ syms: inout [Int32], heapAbove: Int = 48) {
        let n = syms.count
        if n < 2 { return }
        if n > heapAbove { mergeWithHeap(&syms); return }
        // Short words: rescan a small rank array; no heap bookkeeping.
        var ranks = [UInt64](repeating: .max, count: n - 1)
        for i in 0..<(n - 1) { ranks[i] = mergeRank(syms[i], syms[i + 1]) ?? .max }
        while true {
            var best = UInt64.max, at = -1
            for i in 0..<ranks.count where ranks[i] >> 32 < best >> 32 {
                best = ranks[i]; at = i
            }
            if at < 0 { break }
            syms[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            syms.remove(at: at + 1)
            ranks.remove(at: at)
            if at > 0 { ranks[at - 1] = mergeRank(syms[at - 1], syms[at]) ?? .max }
            if at < ranks.count { ranks[at] = mergeRank(syms[at], syms[at + 1]) ?? .max }
        }
    }

    /// The same merge order for long words, with a linked list and a binary heap of (rank, position).
    func mergeWithHeap(_ syms: inout [Int32]) {
        let n = syms.count
        if n < 2 { return }
        var next = Array(1...n)  // n means none
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap: [UInt64] = []  // rank << 32 | position; min-heap
        func push(_ v: UInt64) {
            heap.append(v)
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if heap[p] <= heap[i] { break }
                heap.swapAt(p, i); i = p
            }
        }
        func pop() -> UInt64 {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count, heap[l] < heap[m] { m = l }
                    if r < heap.count, heap[r] < heap[m] { m = r }
                    if m == i { break }
                    heap.swapAt(i, m); i = m
                }
            }
            return top
        }
        for i in 0..<(n - 1) {
            if let r = mergeRank(syms[i], syms[i + 1]) { push((r >> 32) << 32 | UInt64(i)) }
        }
        while !heap.isEmpty {
            let top = pop()
            let rank = top >> 32, pos = Int(top & 0xFFFF_FFFF)
            guard alive[pos], next[pos] < n else { continue }
            let q = next[pos]
            guard let r = mergeRank(syms[pos], syms[q]), r >> 32 == rank else { continue }
            syms[pos] = Int32(truncatingIfNeeded: r & 0xFFFF_FFFF)
            alive[q] = false
            next[pos] = next[q]
            if next[q] < n { prev[next[q]] = pos }
            if prev[pos] >= 0, let r2 = mergeRank(syms[prev[pos]], syms[pos]) {
                push((r2 >> 32) << 32 | UInt64(prev[pos]))
            }
            if next[pos] < n, let r3 = mergeRank(syms[pos], syms[next[pos]]) {
                push((r3 >> 32) << 32 | UInt64(pos))
            }
        }
        var out: [Int32] = []
        var i = 0
        while i < n { out.append(syms[i]); i = next[i] }
        syms = out
    }

    /// Tokenizes one pre-token given as code points (the general path).
    func tokenize(_ word: [UInt32], into out: inout [Int32]) {
        if word.isEmpty { return }
        if ignoreMerges, let id = vocab[TokenKey(scalars: word).bytes] { out.append(id); return }
        var syms: [Int32] = []
        syms.reserveCapacity(word.count)
        var lastWasUnk = false
        for (i, c) in word.enumerated() {
            var id: Int32?
            if (prefix == nil || i == 0) && (suffix == nil || i != word.count - 1) {
                id = scalarIDs[c]
            } else {
                var token: [UInt8] = []
                if i > 0, let prefix { token += Array(prefix.utf8) }
                forEachUTF8Byte(c) { token.append($0) }
                if i == word.count - 1, let suffix { token += Array(suffix.utf8) }
                id = vocab[token]
            }
            if let id {
                syms.append(id); lastWasUnk = false; continue
            }
            if byteFallback {
                var ids: [Int32] = []
                var ok = true
                forEachUTF8Byte(c) { b in
                    let v = byteFallbackIDs[Int(b)]
                    if v < 0 { ok = false } else { ids.append(v) }
                }
                if ok { syms.append(contentsOf: ids); lastWasUnk = false; continue }
            }
            if let unkID {
                if fuseUnk && lastWasUnk { continue }
                syms.append(unkID)
                lastWasUnk = true
            }
            // Without an unknown token the character is dropped, as HF does.
        }
        merge(&syms)
        out.append(contentsOf: syms)
    }

    /// Tokenizes one byte-level pre-token given as raw bytes (requires `byteIDs`).
    @inline(__always)
    func tokenizeBytes(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, into out: inout [Int32]) {
        if ignoreMerges, let bytesVocab {
            if let hit = bytesVocab.find(bytes, hash: hash) { out.append(hit[0]); return }
        }
        let ids = byteIDs!
        var syms = [Int32](repeating: 0, count: bytes.count)
        for i in 0..<bytes.count { syms[i] = ids[Int(bytes[i])] }
        merge(&syms)
        out.append(contentsOf: syms)
    }
}
