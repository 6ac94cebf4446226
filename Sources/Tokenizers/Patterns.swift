import Foundation
import JSONSupport

/// The split regexes that real tokenizers use, run by hand-written matchers over code points (a general
/// regex engine is an order of magnitude slower). Semantics are those of the leftmost-first backtracking
/// engines HF uses (Oniguruma): each alternative is tried in order at each position.
enum KnownPattern: Equatable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama-3 (`maxDigits` 3) and Qwen2 (`maxDigits` 1): `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
    /// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init?(source: String) {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3(maxDigits: 3)
        case Self.qwen2Source: self = .llama3(maxDigits: 1)
        default: return nil
        }
    }

    /// The end of the match starting at `i < s.count` (matches tile the input, so the next starts there).
    @inline(__always)
    func matchEnd(_ s: UnsafeBufferPointer<UInt32>, _ i: Int) -> Int {
        switch self {
        case .gpt2: return Self.gpt2Match(s, i, s.count)
        case .llama3(let maxDigits): return Self.llama3Match(s, i, s.count, maxDigits)
        }
    }

    /// Calls `emit(start, end)` for each match in `s`; the matches tile the whole input.
    @inline(__always)
    func forEachMatch(_ s: UnsafeBufferPointer<UInt32>, _ emit: (Int, Int) -> Void) {
        var i = 0
        let n = s.count
        switch self {
        case .gpt2:
            while i < n { let e = Self.gpt2Match(s, i, n); emit(i, e); i = e }
        case .llama3(let maxDigits):
            while i < n { let e = Self.llama3Match(s, i, n, maxDigits); emit(i, e); i = e }
        }
    }

    @inline(__always) static func cls(_ c: UInt32) -> UInt8 {
        if c < 0x80 { return asciiClass[Int(c)] }
        let k = CharClass.of(c)
        return k & CharClass.newerThanRegexTables == 0 ? k : 0
    }

    static let asciiClass: [UInt8] = (0..<128).map { CharClass.compute(UInt32($0)) }

    @inline(__always) static func isL(_ c: UInt32) -> Bool { cls(c) & CharClass.letter != 0 }
    @inline(__always) static func isN(_ c: UInt32) -> Bool { cls(c) & CharClass.number != 0 }
    @inline(__always) static func isS(_ c: UInt32) -> Bool { cls(c) & CharClass.space != 0 }
    /// `[^\s\p{L}\p{N}]`
    @inline(__always) static func isOther(_ c: UInt32) -> Bool {
        cls(c) & (CharClass.letter | CharClass.number | CharClass.space) == 0
    }

    /// The end of the whitespace alternatives `\s+(?!\S)|\s+` starting at whitespace `i`.
    @inline(__always) static func whitespaceEnd(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ n: Int) -> Int {
        var e = i + 1
        while e < n, isS(s[e]) { e += 1 }
        if e == n || e - i == 1 { return e }
        return e - 1  // leave the last space to prefix the next word
    }

    static func gpt2Match(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ n: Int) -> Int {
        let c = s[i]
        if c == 0x27, i + 1 < n {  // '
            let c1 = s[i + 1]
            if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return i + 2 }  // s t m d
            if i + 2 < n {
                let c2 = s[i + 2]
                if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) { return i + 3 }
            }
        }
        var j = i
        if c == 0x20, i + 1 < n, !isS(s[i + 1]) { j = i + 1 }
        let k = cls(s[j])
        if k & CharClass.letter != 0 {
            j += 1
            while j < n, isL(s[j]) { j += 1 }
            return j
        }
        if k & CharClass.number != 0 {
            j += 1
            while j < n, isN(s[j]) { j += 1 }
            return j
        }
        if k & CharClass.space == 0 {
            j += 1
            while j < n, isOther(s[j]) { j += 1 }
            return j
        }
        return whitespaceEnd(s, i, n)
    }

    @inline(__always) static func lowerASCII(_ c: UInt32) -> UInt32 {
        if c >= 0x41, c <= 0x5A { return c + 0x20 }
        if c == 0x17F { return 0x73 }  // ſ case-folds to s
        return c
    }

    static func llama3Match(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ n: Int, _ maxDigits: Int) -> Int {
        let c = s[i]
        if c == 0x27, i + 1 < n {  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            let c1 = lowerASCII(s[i + 1])
            if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return i + 2 }
            if i + 2 < n {
                let c2 = lowerASCII(s[i + 2])
                if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) { return i + 3 }
            }
        }
        let k = cls(c)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if k & CharClass.letter != 0 {
            var j = i + 1
            while j < n, isL(s[j]) { j += 1 }
            return j
        }
        if k & CharClass.number == 0, c != 0x0A, c != 0x0D, i + 1 < n, isL(s[i + 1]) {
            var j = i + 2
            while j < n, isL(s[j]) { j += 1 }
            return j
        }
        // \p{N}{1,maxDigits}
        if k & CharClass.number != 0 {
            var j = i + 1
            while j < n, j - i < maxDigits, isN(s[j]) { j += 1 }
            return j
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        var j = i
        if c == 0x20, i + 1 < n, isOther(s[i + 1]) { j = i + 1 }
        if isOther(s[j]) {
            j += 1
            while j < n, isOther(s[j]) { j += 1 }
            while j < n, s[j] == 0x0A || s[j] == 0x0D { j += 1 }
            return j
        }
        // c is whitespace. \s*[\r\n]+ ends after the last line break of the whitespace run.
        var e = i + 1
        while e < n, isS(s[e]) { e += 1 }
        var k2 = e - 1
        while k2 >= i {
            if s[k2] == 0x0A || s[k2] == 0x0D { return k2 + 1 }
            k2 -= 1
        }
        if e == n || e - i == 1 { return e }
        return e - 1
    }
}

/// A pattern as HF's `Split` pre-tokenizer and `Replace` normalizer/decoder use it. Regexes other than the
/// known split patterns run on NSRegularExpression (ICU), whose syntax and Unicode classes agree with
/// Oniguruma's for the constructs tokenizers use (`\p{L}`, `\s`, `(?i:...)`, lookahead).
enum SplitPattern {
    case literal([UInt32])
    case known(KnownPattern)
    case regex(NSRegularExpression)
    /// Each code point satisfying the predicate is one match (HF's `char` patterns).
    case chars(@Sendable (UInt32) -> Bool)

    static func make(_ json: JSONValue, file: String, context: String) throws -> SplitPattern {
        if let s = json["String"]?.string { return .literal(s.unicodeScalars.map(\.value)) }
        if let r = json["Regex"]?.string { return try regex(r, file: file, context: context) }
        throw TokenizerError(.invalidField, file: file, "\(context).pattern must be {\"String\": ...} or {\"Regex\": ...}")
    }

    static func regex(_ source: String, file: String, context: String) throws -> SplitPattern {
        if let known = KnownPattern(source: source) { return .known(known) }
        let re: NSRegularExpression
        do {
            re = try NSRegularExpression(pattern: source, options: [])
        } catch {
            throw TokenizerError(.invalidField, file: file, "\(context): regex /\(source)/ does not compile: \(error)")
        }
        if let probe = backtrackingProbe(re) {
            throw TokenizerError(.invalidField, file: file,
                                 "\(context): regex /\(source)/ backtracks catastrophically (over \(probeBudget * 10_000) matching steps on the "
                                 + "\(probe.count)-character text \(probe.debugDescription)); encoding ordinary text with it would not end")
        }
        return .regex(re)
    }

    /// ICU offers no time limit through NSRegularExpression, so a pattern that backtracks
    /// exponentially (`(\w|\w)*$x`) made encoding a sentence hang. Each probe runs under a budget of
    /// ICU's progress reports, which come every 10 000 matcher steps: a count of work, not a clock,
    /// so the verdict does not depend on the machine's load. Ordinary patterns take a few hundred
    /// steps on these texts. A blow-up needs a long run of what the looping part matches, then a
    /// failure: so the probes are runs of each kind of character tokenizers treat apart (ASCII and
    /// accented letters, CJK, digits, spaces, tabs, newlines, punctuation, contractions, emoji),
    /// each ended by a character of another kind.
    static let probeBudget = 100
    static let probes = ["Hello world! 123 héllo\n  <|endoftext|> ü", String(repeating: "a", count: 40) + "!",
                         String(repeating: " ", count: 40) + "x", String(repeating: "1", count: 40) + "a",
                         String(repeating: "a ", count: 20) + "\n", String(repeating: "'s", count: 20) + "\u{1F600}",
                         String(repeating: "é", count: 40) + "!", String(repeating: "中", count: 40) + "!",
                         String(repeating: "\n", count: 40) + "x", String(repeating: "\t", count: 40) + "x",
                         String(repeating: "!", count: 40) + "a", String(repeating: "\u{1F600}", count: 20) + "a"]

    /// The first probe on which `re` exceeds the budget, or nil.
    static func backtrackingProbe(_ re: NSRegularExpression) -> String? {
        for probe in probes {
            var reports = 0
            re.enumerateMatches(in: probe, options: [.reportProgress], range: NSRange(location: 0, length: probe.utf16.count)) { _, flags, stop in
                guard flags.contains(.progress) else { return }
                reports += 1
                if reports > probeBudget { stop.pointee = true }
            }
            if reports > probeBudget { return probe }
        }
        return nil
    }

    /// (range, isMatch) pieces that tile `s` in order, as HF's `Pattern::find_matches`.
    func findMatches(_ s: [UInt32]) -> [(Range<Int>, Bool)] {
        var out: [(Range<Int>, Bool)] = []
        if s.isEmpty { return [(0..<0, false)] }
        switch self {
        case .known(let k):
            s.withUnsafeBufferPointer { buf in k.forEachMatch(buf) { out.append(($0..<$1, true)) } }
        case .literal(let lit):
            if lit.isEmpty { return [(0..<s.count, false)] }
            var prev = 0, i = 0
            while i + lit.count <= s.count {
                if s[i] == lit[0], s[i..<(i + lit.count)].elementsEqual(lit) {
                    if prev < i { out.append((prev..<i, false)) }
                    out.append((i..<(i + lit.count), true))
                    i += lit.count
                    prev = i
                } else { i += 1 }
            }
            if prev < s.count { out.append((prev..<s.count, false)) }
        case .chars(let pred):
            var prev = 0
            for i in 0..<s.count where pred(s[i]) {
                if prev < i { out.append((prev..<i, false)) }
                out.append((i..<(i + 1), true))
                prev = i + 1
            }
            if prev < s.count { out.append((prev..<s.count, false)) }
        case .regex(let re):
            // NSRegularExpression works in UTF-16 units: map them back to code point indices.
            var text = String.UnicodeScalarView()
            var utf16ToIndex: [Int] = []
            utf16ToIndex.reserveCapacity(s.count + 1)
            for (idx, c) in s.enumerated() {
                let scalar = Unicode.Scalar(c) ?? "\u{FFFD}"
                text.append(scalar)
                utf16ToIndex.append(idx)
                if scalar.value > 0xFFFF { utf16ToIndex.append(idx) }
            }
            utf16ToIndex.append(s.count)
            let str = String(text)
            var prev = 0
            for m in re.matches(in: str, options: [], range: NSRange(location: 0, length: str.utf16.count)) {
                let a = utf16ToIndex[m.range.location], b = utf16ToIndex[m.range.location + m.range.length]
                if a == b { continue }  // empty matches split nothing
                if prev < a { out.append((prev..<a, false)) }
                out.append((a..<b, true))
                prev = b
            }
            if prev < s.count { out.append((prev..<s.count, false)) }
        }
        return out
    }

    /// Replaces every match with `content` (Replace normalizer and decoder).
    func replaceAll(_ s: [UInt32], with content: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        for (range, isMatch) in findMatches(s) {
            if isMatch { out.append(contentsOf: content) } else { out.append(contentsOf: s[range]) }
        }
        return out
    }
}
