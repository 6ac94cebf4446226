import Foundation

/// A token from tokenizer.json's `added_tokens`: matched in the raw text before normalization
/// (or after it, when `normalized` is true) and never split by the model.
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int
    public var special: Bool
    public var singleWord: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool

    public init(content: String, id: Int, special: Bool = true, singleWord: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, normalized: Bool = false) {
        self.content = content; self.id = id; self.special = special; self.singleWord = singleWord
        self.lstrip = lstrip; self.rstrip = rstrip; self.normalized = normalized
    }
}

/// A trie over code points finding added tokens leftmost-longest, as HF's Aho-Corasick matcher does.
struct TokenMatcher {
    private var children: [[UInt32: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]
    /// Tokens by index; `terminal` refers to them.
    private(set) var tokens: [AddedToken] = []
    private var firstASCII = [Bool](repeating: false, count: 128)
    private var anyNonASCIIFirst = false

    var isEmpty: Bool { tokens.isEmpty }

    init(_ tokens: [(AddedToken, [UInt32])]) {
        for (token, key) in tokens where !key.isEmpty {
            var node = 0
            for c in key {
                if let next = children[node][c] {
                    node = Int(next)
                } else {
                    children.append([:]); terminal.append(-1)
                    children[node][c] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if terminal[node] < 0 {  // the first of duplicate contents wins
                terminal[node] = Int32(self.tokens.count)
                self.tokens.append(token)
            }
            if key[0] < 128 { firstASCII[Int(key[0])] = true } else { anyNonASCIIFirst = true }
        }
    }

    /// The longest token starting at `i`: (end, token index).
    @inline(__always) private func longest(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int) -> (Int, Int)? {
        let c0 = s[i]
        if c0 < 128 { if !firstASCII[Int(c0)] { return nil } } else if !anyNonASCIIFirst { return nil }
        var node = 0
        var best: (Int, Int)?
        var j = i
        while j < end, let next = children[node][s[j]] {
            node = Int(next)
            j += 1
            if terminal[node] >= 0 { best = (j, Int(terminal[node])) }
        }
        return best
    }

    private static func isSpace(_ c: UInt32) -> Bool { CharClass.of(c) & CharClass.space != 0 }
    private static func isWordChar(_ c: UInt32) -> Bool { c == 0x5F || CharClass.of(c) & CharClass.alphanumeric != 0 }

    /// Splits `s[range]` into text (token nil) and added-token pieces, with HF's lstrip, rstrip and
    /// single_word rules. Every piece is non-empty.
    func split(_ s: UnsafeBufferPointer<UInt32>, _ range: Range<Int>) -> [(Range<Int>, AddedToken?)] {
        var out: [(Range<Int>, AddedToken?)] = []
        if tokens.isEmpty {
            if !range.isEmpty { out.append((range, nil)) }
            return out
        }
        var startOffset = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            guard let (matchEnd, index) = longest(s, i, range.upperBound) else { i += 1; continue }
            let token = tokens[index]
            var start = i, stop = matchEnd
            i = matchEnd
            if token.singleWord {
                let startSpace = start == range.lowerBound || !Self.isWordChar(s[start - 1])
                let stopSpace = stop == range.upperBound || !Self.isWordChar(s[stop])
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var b = start
                while b > range.lowerBound, Self.isSpace(s[b - 1]) { b -= 1 }
                start = max(b, startOffset)
            }
            if token.rstrip {
                while stop < range.upperBound, Self.isSpace(s[stop]) { stop += 1 }
            }
            if startOffset < start { out.append((startOffset..<start, nil)) }
            out.append((start..<stop, token))
            startOffset = stop
        }
        if startOffset < range.upperBound { out.append((startOffset..<range.upperBound, nil)) }
        return out
    }
}
