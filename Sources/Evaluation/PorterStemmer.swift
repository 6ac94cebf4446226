/// The Porter stemmer in the variant NLTK uses by default (`PorterStemmer.NLTK_EXTENSIONS`), which is
/// the stemmer Google's `rouge-score` applies with `use_stemmer=True`.
///
/// On top of Porter (1980) it has Martin Porter's later changes and NLTK's own: a table of irregular
/// forms (sky/skies, dying, lying, tying, news, innings, outings, cannings, howe, proceed, exceed, succeed),
/// words of one or two characters left alone, `ies`/`ied` → `ie` for four-letter words and `i` otherwise,
/// `y` → `i` only after a consonant that is not the first letter, the `alli` rule applied first and
/// re-run, `bli` → `ble`, `fulli` → `ful`, `logi` → `log` measured with the `l`, and a two-letter
/// vowel-consonant stem counting as "cvc". Works on Unicode scalars like Python's `str`; input is lowercased.
public struct PorterStemmer: Sendable {
    public init() {}

    private typealias Word = [Unicode.Scalar]

    private static let irregular: [String: String] = [
        "sky": "sky", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie", "news": "news",
        "innings": "inning", "inning": "inning", "outings": "outing", "outing": "outing",
        "cannings": "canning", "canning": "canning", "howe": "howe", "proceed": "proceed",
        "exceed": "exceed", "succeed": "succeed",
    ]

    public func stem(_ word: String) -> String {
        let lower = word.lowercased()
        if let irregular = Self.irregular[lower] { return irregular }
        // NLTK checks the length of the word as given, before lowercasing.
        if word.unicodeScalars.count <= 2 { return lower }
        var w = Word(lower.unicodeScalars)
        w = step1a(w)
        w = step1b(w)
        w = step1c(w)
        w = step2(w)
        w = step3(w)
        w = step4(w)
        w = step5a(w)
        w = step5b(w)
        var s = String.UnicodeScalarView()
        s.append(contentsOf: w)
        return String(s)
    }

    // MARK: - letters and measure

    private static func isVowel(_ c: Unicode.Scalar) -> Bool {
        c == "a" || c == "e" || c == "i" || c == "o" || c == "u"
    }

    /// Consonant flags: a `y` is a consonant at the start or after a vowel, a vowel after a consonant.
    private func consonants(_ w: Word) -> [Bool] {
        var flags = [Bool]()
        flags.reserveCapacity(w.count)
        for (i, c) in w.enumerated() {
            if Self.isVowel(c) { flags.append(false) } else if c == "y" { flags.append(i == 0 ? true : !flags[i - 1]) } else { flags.append(true) }
        }
        return flags
    }

    private func isConsonant(_ w: Word, _ i: Int) -> Bool { consonants(Word(w[...i]))[i] }

    /// m in [C](VC)^m[V]: the number of vowel→consonant transitions.
    private func measure(_ w: Word) -> Int {
        let f = consonants(w)
        var m = 0
        if f.count >= 2 { for i in 1..<f.count where !f[i - 1] && f[i] { m += 1 } }
        return m
    }

    private func containsVowel(_ w: Word) -> Bool { consonants(w).contains(false) }

    private func endsDoubleConsonant(_ w: Word) -> Bool {
        w.count >= 2 && w[w.count - 1] == w[w.count - 2] && isConsonant(w, w.count - 1)
    }

    /// *o: the word ends consonant-vowel-consonant and the last letter is not w, x or y; NLTK also
    /// accepts a two-letter vowel-consonant word.
    private func endsCVC(_ w: Word) -> Bool {
        let n = w.count
        if n >= 3 {
            let f = consonants(w)
            let last = w[n - 1]
            if f[n - 3] && !f[n - 2] && f[n - 1] && last != "w" && last != "x" && last != "y" { return true }
        }
        if n == 2 {
            let f = consonants(w)
            return !f[0] && f[1]
        }
        return false
    }

    private func ends(_ w: Word, _ suffix: String) -> Bool {
        let s = Array(suffix.unicodeScalars)
        return w.count >= s.count && Array(w[(w.count - s.count)...]) == s
    }

    private func drop(_ w: Word, _ count: Int) -> Word { Word(w[..<(w.count - count)]) }

    private func appending(_ w: Word, _ s: String) -> Word { w + Word(s.unicodeScalars) }

    private struct Rule {
        let suffix: String
        let replacement: String
        let condition: ((Word) -> Bool)?
    }

    /// The first rule whose suffix matches decides: it applies if its condition holds on the stem,
    /// otherwise the word is returned unchanged (later rules are not tried).
    private func applyFirst(_ w: Word, _ rules: [Rule]) -> Word {
        for rule in rules where ends(w, rule.suffix) {
            let stem = drop(w, rule.suffix.unicodeScalars.count)
            if rule.condition?(stem) ?? true { return appending(stem, rule.replacement) }
            return w
        }
        return w
    }

    // MARK: - steps

    private func step1a(_ w: Word) -> Word {
        if ends(w, "ies") && w.count == 4 { return appending(drop(w, 3), "ie") }
        return applyFirst(w, [
            Rule(suffix: "sses", replacement: "ss", condition: nil),
            Rule(suffix: "ies", replacement: "i", condition: nil),
            Rule(suffix: "ss", replacement: "ss", condition: nil),
            Rule(suffix: "s", replacement: "", condition: nil),
        ])
    }

    private func step1b(_ w: Word) -> Word {
        if ends(w, "ied") { return appending(drop(w, 3), w.count == 4 ? "ie" : "i") }
        if ends(w, "eed") {
            let stem = drop(w, 3)
            return measure(stem) > 0 ? appending(stem, "ee") : w
        }
        var stem: Word? = nil
        for suffix in ["ed", "ing"] where ends(w, suffix) {
            let s = drop(w, suffix.unicodeScalars.count)
            if containsVowel(s) { stem = s; break }
        }
        guard let s = stem else { return w }
        if ends(s, "at") || ends(s, "bl") || ends(s, "iz") { return appending(s, "e") }
        if endsDoubleConsonant(s) {
            let last = s[s.count - 1]
            return (last == "l" || last == "s" || last == "z") ? s : drop(s, 1)
        }
        if measure(s) == 1 && endsCVC(s) { return appending(s, "e") }
        return s
    }

    private func step1c(_ w: Word) -> Word {
        guard ends(w, "y") else { return w }
        let stem = drop(w, 1)
        if stem.count > 1 && isConsonant(stem, stem.count - 1) { return appending(stem, "i") }
        return w
    }

    private func step2(_ w: Word) -> Word {
        if ends(w, "alli") && measure(drop(w, 4)) > 0 { return step2(appending(drop(w, 4), "al")) }
        let m0: (Word) -> Bool = { measure($0) > 0 }
        let pairs: [(String, String)] = [
            ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
            ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
            ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
            ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
            ("fulli", "ful"),
        ]
        var rules = pairs.map { Rule(suffix: $0.0, replacement: $0.1, condition: m0) }
        // The "l" of "logi" stays with the stem when measuring, so geo-/theo-logi stem like philo-logi.
        rules.append(Rule(suffix: "logi", replacement: "log", condition: { measure(appending($0, "l")) > 0 }))
        return applyFirst(w, rules)
    }

    private func step3(_ w: Word) -> Word {
        let m0: (Word) -> Bool = { measure($0) > 0 }
        let pairs: [(String, String)] = [
            ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""), ("ness", ""),
        ]
        return applyFirst(w, pairs.map { Rule(suffix: $0.0, replacement: $0.1, condition: m0) })
    }

    private func step4(_ w: Word) -> Word {
        let m1: (Word) -> Bool = { measure($0) > 1 }
        var rules = ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent"]
            .map { Rule(suffix: $0, replacement: "", condition: m1) }
        rules.append(Rule(suffix: "ion", replacement: "", condition: { stem in
            guard measure(stem) > 1, let last = stem.last else { return false }
            return last == "s" || last == "t"
        }))
        rules += ["ou", "ism", "ate", "iti", "ous", "ive", "ize"].map { Rule(suffix: $0, replacement: "", condition: m1) }
        return applyFirst(w, rules)
    }

    private func step5a(_ w: Word) -> Word {
        guard ends(w, "e") else { return w }
        let stem = drop(w, 1)
        let m = measure(stem)
        if m > 1 { return stem }
        if m == 1 && !endsCVC(stem) { return stem }
        return w
    }

    private func step5b(_ w: Word) -> Word {
        // The measure is taken on the word less one "l".
        if ends(w, "ll") && measure(drop(w, 1)) > 1 { return drop(w, 1) }
        return w
    }
}
