import Foundation
import JSONSupport

/// A piece of text on its way through the pipeline, as code points. `atStart` is true when the piece
/// begins at offset 0 of the original input (Metaspace's `prepend_scheme: first` needs it).
struct Piece {
    var text: [UInt32]
    var atStart: Bool
}

enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"

    static func make(_ json: JSONValue?, default def: SplitBehavior, file: String, context: String) throws -> SplitBehavior {
        guard let json, !json.isNull else { return def }
        guard let s = json.string, let b = SplitBehavior(rawValue: s) else {
            throw TokenizerError(.invalidField, file: file, "\(context): unknown split behavior \(json)")
        }
        return b
    }
}

/// Splits `piece` by `pattern` the way HF's `NormalizedString::split` does.
func splitPiece(_ piece: Piece, _ pattern: SplitPattern, _ behavior: SplitBehavior, invert: Bool = false) -> [Piece] {
    var matches = pattern.findMatches(piece.text)
    if invert { matches = matches.map { ($0.0, !$0.1) } }
    // (range, remove)
    var splits: [(Range<Int>, Bool)] = []
    switch behavior {
    case .isolated:
        splits = matches.map { ($0.0, false) }
    case .removed:
        splits = matches
    case .contiguous:
        var previousMatch = false
        for (r, isMatch) in matches {
            if isMatch, previousMatch, let last = splits.last {
                splits[splits.count - 1] = (last.0.lowerBound..<r.upperBound, false)
            } else {
                splits.append((r, false))
            }
            previousMatch = isMatch
        }
    case .mergedWithPrevious:
        var previousMatch = false
        for (r, isMatch) in matches {
            if isMatch, !previousMatch, let last = splits.last {
                splits[splits.count - 1] = (last.0.lowerBound..<r.upperBound, false)
            } else {
                splits.append((r, false))
            }
            previousMatch = isMatch
        }
    case .mergedWithNext:
        var previousMatch = false
        for (r, isMatch) in matches.reversed() {
            if isMatch, !previousMatch, let last = splits.last {
                splits[splits.count - 1] = (r.lowerBound..<last.0.upperBound, false)
            } else {
                splits.append((r, false))
            }
            previousMatch = isMatch
        }
        splits.reverse()
    }
    var out: [Piece] = []
    for (r, remove) in splits where !remove && !r.isEmpty {
        out.append(Piece(text: Array(piece.text[r]), atStart: piece.atStart && r.lowerBound == 0))
    }
    return out
}

enum PrependScheme: String { case always, never, first }

/// HF `pre_tokenizers`.
indirect enum PreTokenizer {
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: UInt32, prependScheme: PrependScheme, split: Bool)
    case digits(individual: Bool)
    case whitespace
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case sequence([PreTokenizer])

    static func make(_ json: JSONValue, file: String) throws -> PreTokenizer? {
        if json.isNull { return nil }
        guard let type = json["type"]?.string else {
            throw TokenizerError(.invalidField, file: file, "pre_tokenizer has no \"type\"")
        }
        switch type {
        case "Split":
            guard let pattern = json["pattern"] else {
                throw TokenizerError(.invalidField, file: file, "Split pre-tokenizer needs a \"pattern\"")
            }
            return .split(try SplitPattern.make(pattern, file: file, context: "Split pre-tokenizer"),
                          try SplitBehavior.make(json["behavior"], default: .isolated, file: file, context: "Split"),
                          invert: json["invert"]?.bool ?? false)
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: json["add_prefix_space"]?.bool ?? true, useRegex: json["use_regex"]?.bool ?? true)
        case "Metaspace":
            let rep = json["replacement"]?.string ?? "\u{2581}"
            guard rep.unicodeScalars.count == 1 else {
                throw TokenizerError(.invalidField, file: file, "Metaspace replacement must be one character, found \"\(rep)\"")
            }
            return .metaspace(replacement: rep.unicodeScalars.first!.value,
                              prependScheme: try prependScheme(json, file: file), split: json["split"]?.bool ?? true)
        case "Digits":
            return .digits(individual: json["individual_digits"]?.bool ?? false)
        case "Whitespace":
            return .whitespace
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Punctuation":
            return .punctuation(try SplitBehavior.make(json["behavior"], default: .isolated, file: file, context: "Punctuation"))
        case "Sequence":
            guard let list = json["pretokenizers"]?.array else {
                throw TokenizerError(.invalidField, file: file, "Sequence pre-tokenizer needs a \"pretokenizers\" array")
            }
            return .sequence(try list.compactMap { try make($0, file: file) })
        default:
            throw TokenizerError(.unsupportedComponent, file: file, "unsupported pre_tokenizer type \"\(type)\"")
        }
    }

    static func prependScheme(_ json: JSONValue, file: String) throws -> PrependScheme {
        if let s = json["prepend_scheme"]?.string {
            guard let p = PrependScheme(rawValue: s) else {
                throw TokenizerError(.invalidField, file: file, "Metaspace prepend_scheme must be always/never/first, found \"\(s)\"")
            }
            return p
        }
        if let add = json["add_prefix_space"]?.bool { return add ? .always : .never }
        return .always
    }

    /// Whether the output pieces are byte-level mapped (the model then sees bytes as characters).
    var endsWithByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let list): return list.last?.endsWithByteLevel ?? false
        default: return false
        }
    }

    var containsByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let list): return list.contains { $0.containsByteLevel }
        default: return false
        }
    }

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let list):
            var p = pieces
            for t in list { p = t.apply(p) }
            return p
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { splitPiece($0, pattern, behavior, invert: invert) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            var out: [Piece] = []
            for var p in pieces {
                if addPrefixSpace, p.text.first != 0x20 { p.text.insert(0x20, at: 0) }
                let parts = useRegex ? splitPiece(p, .known(.gpt2), .isolated) : (p.text.isEmpty ? [] : [p])
                for part in parts {
                    var mapped: [UInt32] = []
                    mapped.reserveCapacity(part.text.count)
                    for c in part.text {
                        forEachUTF8Byte(c) { mapped.append(ByteLevelMap.byteToScalar[Int($0)]) }
                    }
                    out.append(Piece(text: mapped, atStart: part.atStart))
                }
            }
            return out
        case .metaspace(let rep, let scheme, let doSplit):
            var out: [Piece] = []
            for var p in pieces {
                p.text = p.text.map { $0 == 0x20 ? rep : $0 }
                switch scheme {
                case .always: if p.text.first != rep { p.text.insert(rep, at: 0) }
                case .first: if p.atStart, p.text.first != rep { p.text.insert(rep, at: 0) }
                case .never: break
                }
                if doSplit {
                    out.append(contentsOf: splitPiece(p, .literal([rep]), .mergedWithNext))
                } else if !p.text.isEmpty {
                    out.append(p)
                }
            }
            return out
        case .digits(let individual):
            let pattern = SplitPattern.chars { CharClass.of($0) & CharClass.number != 0 }
            return pieces.flatMap { splitPiece($0, pattern, individual ? .isolated : .contiguous) }
        case .punctuation(let behavior):
            let pattern = SplitPattern.chars { CharClass.of($0) & CharClass.punctuation != 0 }
            return pieces.flatMap { splitPiece($0, pattern, behavior) }
        case .whitespaceSplit:
            let pattern = SplitPattern.chars { CharClass.of($0) & CharClass.space != 0 }
            return pieces.flatMap { splitPiece($0, pattern, .removed) }
        case .whitespace:
            // `\w+|[^\w\s]+`, keeping the matches and dropping what lies between them. The Rust regex
            // crate's \w tables are Unicode 16, like Oniguruma's.
            @inline(__always) func cls(_ c: UInt32) -> UInt8 {
                let k = CharClass.of(c)
                return k & CharClass.newerThanRegexTables == 0 ? k : k & ~CharClass.word
            }
            var out: [Piece] = []
            for p in pieces {
                let t = p.text
                var i = 0
                while i < t.count {
                    let k = cls(t[i])
                    if k & CharClass.word != 0 {
                        var j = i + 1
                        while j < t.count, cls(t[j]) & CharClass.word != 0 { j += 1 }
                        out.append(Piece(text: Array(t[i..<j]), atStart: p.atStart && i == 0)); i = j
                    } else if k & CharClass.space == 0 {
                        var j = i + 1
                        while j < t.count, cls(t[j]) & (CharClass.word | CharClass.space) == 0 { j += 1 }
                        out.append(Piece(text: Array(t[i..<j]), atStart: p.atStart && i == 0)); i = j
                    } else {
                        i += 1
                    }
                }
            }
            return out
        }
    }
}
