import Foundation
import JSONSupport

/// HF `normalizers`: transformations applied to the text between added tokens before pre-tokenization.
indirect enum Normalizer {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)
    case prepend([UInt32])
    case replace(SplitPattern, [UInt32])
    case sequence([Normalizer])

    static func make(_ json: JSONValue, file: String) throws -> Normalizer? {
        if json.isNull { return nil }
        guard let type = json["type"]?.string else {
            throw TokenizerError(.invalidField, file: file, "normalizer has no \"type\"")
        }
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip":
            return .strip(left: json["strip_left"]?.bool ?? true, right: json["strip_right"]?.bool ?? true)
        case "Prepend":
            guard let p = json["prepend"]?.string else {
                throw TokenizerError(.invalidField, file: file, "Prepend normalizer needs a \"prepend\" string")
            }
            return .prepend(p.unicodeScalars.map(\.value))
        case "Replace":
            guard let pattern = json["pattern"], let content = json["content"]?.string else {
                throw TokenizerError(.invalidField, file: file, "Replace normalizer needs \"pattern\" and \"content\"")
            }
            return .replace(try SplitPattern.make(pattern, file: file, context: "Replace normalizer"),
                            content.unicodeScalars.map(\.value))
        case "Sequence":
            guard let list = json["normalizers"]?.array else {
                throw TokenizerError(.invalidField, file: file, "Sequence normalizer needs a \"normalizers\" array")
            }
            return .sequence(try list.compactMap { try make($0, file: file) })
        default:
            throw TokenizerError(.unsupportedComponent, file: file, "unsupported normalizer type \"\(type)\"")
        }
    }

    func apply(_ s: [UInt32]) -> [UInt32] {
        switch self {
        // Foundation's decompositions skip canonical reordering across the marks a decomposition
        // produces (NFD of U+0F73 U+0F73 stays 0F71 0F72 0F71 0F72), so reorder them here and compose
        // the ordered decomposition, which Foundation does right.
        case .nfc:
            // Code points below U+0300 are all NFC-stable, so most text needs no work.
            if s.allSatisfy({ $0 < 0x300 }) { return s }
            let d = Self.reordered(Self.scalars(Self.string(s).decomposedStringWithCanonicalMapping))
            return Self.scalars(Self.string(d).precomposedStringWithCanonicalMapping)
        case .nfd:
            if s.allSatisfy({ $0 < 0xC0 }) { return s }
            return Self.reordered(Self.scalars(Self.string(s).decomposedStringWithCanonicalMapping))
        case .nfkc:
            if s.allSatisfy({ $0 < 0x80 }) { return s }
            let d = Self.reordered(Self.scalars(Self.string(s).decomposedStringWithCompatibilityMapping))
            return Self.scalars(Self.string(d).precomposedStringWithCanonicalMapping)
        case .nfkd:
            if s.allSatisfy({ $0 < 0x80 }) { return s }
            return Self.reordered(Self.scalars(Self.string(s).decomposedStringWithCompatibilityMapping))
        case .lowercase:
            // Per code point full lowercase mapping (Rust's char::to_lowercase; no final-sigma rule).
            var out: [UInt32] = []
            out.reserveCapacity(s.count)
            for c in s {
                if c < 0x80 {
                    out.append(c >= 0x41 && c <= 0x5A ? c + 0x20 : c)
                } else if let u = Unicode.Scalar(c) {
                    out.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars.map(\.value))
                } else {
                    out.append(c)
                }
            }
            return out
        case .strip(let left, let right):
            var a = 0, b = s.count
            if left { while a < b, CharClass.of(s[a]) & CharClass.space != 0 { a += 1 } }
            if right { while b > a, CharClass.of(s[b - 1]) & CharClass.space != 0 { b -= 1 } }
            return Array(s[a..<b])
        case .prepend(let p):
            return s.isEmpty ? s : p + s
        case .replace(let pattern, let content):
            return pattern.replaceAll(s, with: content)
        case .sequence(let list):
            var t = s
            for n in list { t = n.apply(t) }
            return t
        }
    }

    /// Canonical ordering: each run of combining marks stably sorted by combining class.
    static func reordered(_ s: [UInt32]) -> [UInt32] {
        var out = s
        var i = 0
        while i < out.count {
            guard Self.ccc(out[i]) != 0 else { i += 1; continue }
            var j = i + 1
            while j < out.count, Self.ccc(out[j]) != 0 { j += 1 }
            if j - i > 1 {
                let run = out[i..<j].enumerated().sorted { a, b in
                    let ca = Self.ccc(a.element), cb = Self.ccc(b.element)
                    return ca != cb ? ca < cb : a.offset < b.offset
                }.map(\.element)
                out.replaceSubrange(i..<j, with: run)
            }
            i = j
        }
        return out
    }

    @inline(__always) static func ccc(_ c: UInt32) -> UInt8 {
        c < 0x300 ? 0 : (Unicode.Scalar(c)?.properties.canonicalCombiningClass.rawValue ?? 0)
    }

    static func string(_ s: [UInt32]) -> String {
        var v = String.UnicodeScalarView()
        for c in s { v.append(Unicode.Scalar(c) ?? "\u{FFFD}") }
        return String(v)
    }

    static func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }
}
