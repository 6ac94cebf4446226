import Foundation
import JSONSupport

/// HF post-processors, for single sequences: the special tokens put around the encoded text.
indirect enum PostProcessor {
    /// Ids to put before and after the sequence.
    case template(prefix: [Int32], suffix: [Int32])
    case none
    case sequence([PostProcessor])

    static func make(_ json: JSONValue, file: String) throws -> PostProcessor? {
        if json.isNull { return nil }
        guard let type = json["type"]?.string else {
            throw TokenizerError(.invalidField, file: file, "post_processor has no \"type\"")
        }
        switch type {
        case "ByteLevel":
            return PostProcessor.none  // trims offsets only; ids are unchanged
        case "TemplateProcessing":
            guard let single = json["single"]?.array else {
                throw TokenizerError(.invalidField, file: file, "TemplateProcessing needs a \"single\" template")
            }
            let specials = json["special_tokens"]?.object ?? []
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for item in single {
                if let special = item["SpecialToken"] {
                    guard let name = special["id"]?.string else {
                        throw TokenizerError(.invalidField, file: file, "TemplateProcessing SpecialToken needs an \"id\"")
                    }
                    guard let entry = specials.last(where: { $0.0 == name })?.1, let ids = entry["ids"]?.array else {
                        throw TokenizerError(.missingSpecialToken, file: file, "TemplateProcessing uses \"\(name)\", which special_tokens does not define")
                    }
                    let values = try ids.map { v -> Int32 in
                        guard let i = v.int else {
                            throw TokenizerError(.invalidField, file: file, "TemplateProcessing special token \"\(name)\" has a non-integer id")
                        }
                        return try tokenID(i, "TemplateProcessing special token \"\(name)\"", file: file)
                    }
                    if seenSequence { suffix += values } else { prefix += values }
                } else if item["Sequence"] != nil {
                    seenSequence = true
                } else {
                    throw TokenizerError(.invalidField, file: file, "TemplateProcessing item must be SpecialToken or Sequence")
                }
            }
            return .template(prefix: prefix, suffix: suffix)
        case "BertProcessing", "RobertaProcessing":
            func pair(_ key: String) throws -> Int32 {
                guard let p = json[key]?.array, p.count == 2, let id = p[1].int else {
                    throw TokenizerError(.invalidField, file: file, "\(type) needs \"\(key)\": [token, id]")
                }
                return try tokenID(id, "\(type) \"\(key)\"", file: file)
            }
            return .template(prefix: [try pair("cls")], suffix: [try pair("sep")])
        case "Sequence":
            guard let list = json["processors"]?.array else {
                throw TokenizerError(.invalidField, file: file, "Sequence post_processor needs a \"processors\" array")
            }
            return .sequence(try list.compactMap { try make($0, file: file) })
        default:
            throw TokenizerError(.unsupportedComponent, file: file, "unsupported post_processor type \"\(type)\"")
        }
    }

    /// A post-processor's token id as the encoder holds it; `Int32(_:)` would trap on a hostile one.
    private static func tokenID(_ id: Int, _ what: String, file: String) throws -> Int32 {
        guard id >= 0, id < Int(Int32.max) else {
            throw TokenizerError(.invalidField, file: file, "\(what) has id \(id); ids must be in 0..<\(Int32.max)")
        }
        return Int32(id)
    }

    /// The largest id this post-processor inserts, if any: part of the tokenizer's id range.
    var largestID: Int32? {
        switch self {
        case .none: return nil
        case .template(let prefix, let suffix): return (prefix + suffix).max()
        case .sequence(let list): return list.compactMap(\.largestID).max()
        }
    }

    func apply(_ ids: [Int32]) -> [Int32] {
        switch self {
        case .none: return ids
        case .template(let prefix, let suffix): return prefix + ids + suffix
        case .sequence(let list):
            var out = ids
            for p in list { out = p.apply(out) }
            return out
        }
    }
}

/// HF decoders: turn the list of token strings back into text.
indirect enum Decoder {
    case byteLevel
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case replace(SplitPattern, [UInt32])
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme)
    case sequence([Decoder])

    static func make(_ json: JSONValue, file: String) throws -> Decoder? {
        if json.isNull { return nil }
        guard let type = json["type"]?.string else {
            throw TokenizerError(.invalidField, file: file, "decoder has no \"type\"")
        }
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            guard let content = json["content"]?.string, content.unicodeScalars.count == 1 else {
                throw TokenizerError(.invalidField, file: file, "Strip decoder needs a one-character \"content\"")
            }
            return .strip(content: content.unicodeScalars.first!, start: json["start"]?.int ?? 0, stop: json["stop"]?.int ?? 0)
        case "Replace":
            guard let pattern = json["pattern"], let content = json["content"]?.string else {
                throw TokenizerError(.invalidField, file: file, "Replace decoder needs \"pattern\" and \"content\"")
            }
            return .replace(try SplitPattern.make(pattern, file: file, context: "Replace decoder"),
                            content.unicodeScalars.map(\.value))
        case "Metaspace":
            let rep = json["replacement"]?.string ?? "\u{2581}"
            guard rep.unicodeScalars.count == 1 else {
                throw TokenizerError(.invalidField, file: file, "Metaspace decoder replacement must be one character")
            }
            return .metaspace(replacement: rep.unicodeScalars.first!, prependScheme: try PreTokenizer.prependScheme(json, file: file))
        case "Sequence":
            guard let list = json["decoders"]?.array else {
                throw TokenizerError(.invalidField, file: file, "Sequence decoder needs a \"decoders\" array")
            }
            return .sequence(try list.compactMap { try make($0, file: file) })
        default:
            throw TokenizerError(.unsupportedComponent, file: file, "unsupported decoder type \"\(type)\"")
        }
    }

    static func byteFallbackValue(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }  // <0x..>
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let list):
            var t = tokens
            for d in list { t = d.decodeChain(t) }
            return t
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                if let b = ByteLevelMap.bytes(of: t) { bytes += b } else { bytes += Array(t.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                if pending.isEmpty { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for t in tokens {
                if let b = Self.byteFallbackValue(t) { pending.append(b) } else { flush(); out.append(t) }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { t in
                let chars = Array(t.unicodeScalars)
                var a = 0
                while a < min(start, chars.count), chars[a] == content { a += 1 }
                var b = chars.count
                var removed = 0
                while removed < stop, b > a, chars[b - 1] == content { b -= 1; removed += 1 }
                return String(String.UnicodeScalarView(chars[a..<b]))
            }
        case .replace(let pattern, let content):
            return tokens.map { Normalizer.string(pattern.replaceAll(Normalizer.scalars($0), with: content)) }
        case .metaspace(let rep, let scheme):
            return tokens.enumerated().map { i, t in
                var s = String.UnicodeScalarView()
                for c in t.unicodeScalars {
                    if c == rep {
                        if i == 0 && scheme != .never { continue }
                        s.append(" ")
                    } else {
                        s.append(c)
                    }
                }
                return String(s)
            }
        }
    }
}
