import Foundation

/// Unicode character classes the pre-tokenizers need, as bit flags per code point. Basic
/// Multilingual Plane values come from a table built once; other planes are classified on demand.
/// The definitions follow what HF tokenizers uses: Oniguruma's `\p{L}`, `\p{N}`, `\s` (White_Space)
/// for the split regexes, Rust's `char` predicates and `regex` crate `\w` for the other pre-tokenizers.
enum CharClass {
    static let letter: UInt8 = 1        // \p{L}
    static let number: UInt8 = 2        // \p{N} (Nd, Nl, No) = Rust char::is_numeric
    static let space: UInt8 = 4         // White_Space = \s = Rust char::is_whitespace
    static let word: UInt8 = 8          // Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control
    static let punctuation: UInt8 = 16  // ASCII punctuation or Unicode P*
    static let alphanumeric: UInt8 = 32 // Rust char::is_alphanumeric: Alphabetic or N

    static let bmp: [UInt8] = (0..<0x10000).map { compute(UInt32($0)) }

    @inline(__always) static func of(_ c: UInt32) -> UInt8 {
        if c < 0x10000 { return bmp.withUnsafeBufferPointer { $0[Int(c)] } }
        return compute(c)
    }

    static func compute(_ c: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(c) else { return 0 }
        let p = s.properties
        var bits: UInt8 = 0
        let isN: Bool
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            bits |= letter; isN = false
        case .decimalNumber:
            bits |= number | word; isN = true
        case .letterNumber, .otherNumber:
            bits |= number; isN = true
        case .nonspacingMark, .spacingMark, .enclosingMark:
            bits |= word; isN = false
        case .connectorPunctuation:
            bits |= word | punctuation; isN = false
        case .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
             .otherPunctuation:
            bits |= punctuation; isN = false
        default:
            isN = false
        }
        if p.isWhitespace { bits |= space }
        if p.isAlphabetic { bits |= word | alphanumeric }
        if isN { bits |= alphanumeric }
        if p.isJoinControl { bits |= word }
        if c < 0x80, (0x21...0x2F).contains(c) || (0x3A...0x40).contains(c) || (0x5B...0x60).contains(c)
            || (0x7B...0x7E).contains(c) {
            bits |= punctuation
        }
        return bits
    }
}

/// GPT-2's reversible map between bytes and printable characters (ByteLevel pre-tokenizer/decoder).
enum ByteLevelMap {
    /// byte -> code point of the character that stands for it.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// code point (< 0x144) -> byte, or -1 when the character does not stand for a byte.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for b in 0..<256 { table[Int(byteToScalar[b])] = Int16(b) }
        return table
    }()

    @inline(__always) static func byte(for c: UInt32) -> Int? {
        guard c < 0x144 else { return nil }
        let b = scalarToByte[Int(c)]
        return b < 0 ? nil : Int(b)
    }

    /// The bytes a byte-level token stands for, or nil if it contains a character outside the map.
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard let b = byte(for: s.value) else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    static func mapped(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }
}

/// Calls `body` with each UTF-8 byte of code point `c` (surrogates and out-of-range values encode U+FFFD).
@inline(__always) func forEachUTF8Byte(_ c: UInt32, _ body: (UInt8) -> Void) {
    var c = c
    if (0xD800..<0xE000).contains(c) || c > 0x10FFFF { c = 0xFFFD }
    if c < 0x80 {
        body(UInt8(c))
    } else if c < 0x800 {
        body(UInt8(0xC0 | (c >> 6))); body(UInt8(0x80 | (c & 0x3F)))
    } else if c < 0x10000 {
        body(UInt8(0xE0 | (c >> 12))); body(UInt8(0x80 | ((c >> 6) & 0x3F))); body(UInt8(0x80 | (c & 0x3F)))
    } else {
        body(UInt8(0xF0 | (c >> 18))); body(UInt8(0x80 | ((c >> 12) & 0x3F)))
        body(UInt8(0x80 | ((c >> 6) & 0x3F))); body(UInt8(0x80 | (c & 0x3F)))
    }
}
