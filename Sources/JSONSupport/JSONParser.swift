import Foundation

/// What the parser forgives beyond RFC 8259.
///
/// Model files (safetensors headers, checkpoint indexes, configs) parse strictly: a repeated tensor
/// name or a damaged string there means a broken writer, and guessing could load wrong weights.
/// Tokenizer files parse leniently: they come from Python tools and hand edits, and one odd string in a
/// vocabulary of 100k tokens should not make the whole tokenizer unusable.
public struct JSONParseOptions: Sendable {
    /// Keep every member of an object that repeats a key (`subscript` finds the last) instead of throwing.
    public var allowsDuplicateKeys: Bool
    /// Decode a `\u` escape of an unpaired surrogate (Python's json writes them) as U+FFFD instead of throwing.
    public var replacesLoneSurrogates: Bool
    /// Decode invalid UTF-8 inside strings as U+FFFD instead of throwing.
    public var replacesInvalidUTF8: Bool
    /// Skip a UTF-8 byte-order mark at the start (some Windows editors write one).
    public var skipsByteOrderMark: Bool

    public init(allowsDuplicateKeys: Bool = false, replacesLoneSurrogates: Bool = false,
                replacesInvalidUTF8: Bool = false, skipsByteOrderMark: Bool = false) {
        self.allowsDuplicateKeys = allowsDuplicateKeys
        self.replacesLoneSurrogates = replacesLoneSurrogates
        self.replacesInvalidUTF8 = replacesInvalidUTF8
        self.skipsByteOrderMark = skipsByteOrderMark
    }

    /// RFC 8259, plus a repeated key is an error. Leading zeros in numbers (`007`) are read, as
    /// both earlier parsers read them.
    public static let strict = JSONParseOptions()
    /// Everything above forgiven.
    public static let lenient = JSONParseOptions(allowsDuplicateKeys: true, replacesLoneSurrogates: true,
                                                 replacesInvalidUTF8: true, skipsByteOrderMark: true)
}

/// A syntax error, located by byte offset; callers add the file name.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSONValue {
    /// Parses `bytes` as one JSON value with only whitespace around it; throws `JSONParseError`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, options: JSONParseOptions = .strict) throws -> JSONValue {
        try bytes.withMemoryRebound(to: UInt8.self) { buffer in
            var parser = JSONParser(bytes: buffer, options: options)
            return try parser.parseDocument()
        }
    }

    public static func parse(_ data: Data, options: JSONParseOptions = .strict) throws -> JSONValue {
        try data.withUnsafeBytes { try parse($0, options: options) }
    }
}

/// Recursive descent over UTF-8 bytes. Nesting is limited so that hostile input cannot overflow the
/// stack; strings without escapes are sliced straight out of the input, since a tokenizer.json holds
/// hundreds of thousands of them.
private struct JSONParser {
    static let maxDepth = 512

    let bytes: UnsafeBufferPointer<UInt8>
    let options: JSONParseOptions
    var pos = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>, options: JSONParseOptions) {
        self.bytes = bytes
        self.options = options
    }

    func fail(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? pos, message: message)
    }

    mutating func parseDocument() throws -> JSONValue {
        if options.skipsByteOrderMark, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }
        let value = try parseValue()
        skipWhitespace()
        guard pos == bytes.count else { throw fail("unexpected data after the JSON value") }
        return value
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { break }
        }
    }

    mutating func parseValue() throws -> JSONValue {
        skipWhitespace()
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character '\(Unicode.Scalar(bytes[pos]))'")
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws {
        for i in 0..<word.utf8CodeUnitCount {
            guard pos < bytes.count, bytes[pos] == word.utf8Start[i] else { throw fail("expected '\(word)'") }
            pos += 1
        }
    }

    /// Called on an opening bracket, so a too-deep error points at it.
    mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth) levels") }
        pos += 1
    }

    mutating func parseObject() throws -> JSONValue {
        try enter(); defer { depth -= 1 }
        var members: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = pos
            let key = try parseString()
            if !options.allowsDuplicateKeys, !seen.insert(key).inserted {
                throw fail("duplicate key \(jsonQuoted(key))", at: keyStart)
            }
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            pos += 1
            members.append((key, try parseValue()))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of input in an object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func parseArray() throws -> JSONValue {
        try enter(); defer { depth -= 1 }
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            items.append(try parseValue())
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of input in an array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    /// Integers are accumulated while scanning (a tokenizer vocabulary is mostly ids), so only
    /// fractions, exponents and integers beyond Int go through Double's own parser.
    mutating func parseNumber() throws -> JSONValue {
        let start = pos
        let negative = bytes[pos] == UInt8(ascii: "-")
        if negative { pos += 1 }
        // Accumulated as a negative value so that Int.min fits.
        var value = 0
        var overflow = false
        let intStart = pos
        while pos < bytes.count, bytes[pos] &- 0x30 < 10 {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.subtractingReportingOverflow(Int(bytes[pos] &- 0x30))
            value = next
            overflow = overflow || o1 || o2
            pos += 1
        }
        guard pos > intStart else { throw fail("digit expected after '-'") }
        var integral = true
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            integral = false
            pos += 1
            guard skipDigits() else { throw fail("digit expected after '.'") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            integral = false
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard skipDigits() else { throw fail("digit expected in exponent") }
        }
        if integral, !overflow {
            if negative { return .int(value) }
            if value != Int.min { return .int(-value) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        guard let d = Double(text) else { throw fail("invalid number '\(text)'", at: start) }
        return .double(d)
    }

    /// Whether at least one digit was skipped.
    mutating func skipDigits() -> Bool {
        let start = pos
        while pos < bytes.count, bytes[pos] &- 0x30 < 10 { pos += 1 }
        return pos > start
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    /// Called on the opening quote.
    mutating func parseString() throws -> String {
        let quote = pos
        pos += 1
        let start = pos
        // Fast path: no escapes, so the string is a slice of the input.
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return try makeString(UnsafeBufferPointer(rebasing: bytes[start..<(pos - 1)]), quote: quote)
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw fail("control character in a string") }
            pos += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<pos]))
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return try out.withUnsafeBufferPointer { try makeString($0, quote: quote) }
            }
            if b < 0x20 { throw fail("control character in a string") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            let escape = pos
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let scalar = try unicodeEscape(at: escape)
                UTF8.encode(scalar) { out.append($0) }
            default: throw fail("invalid escape '\\\(Unicode.Scalar(e))'", at: escape)
            }
        }
        throw fail("unterminated string")
    }

    /// The scalar of a `\uXXXX` escape (its hex digits next), joining a surrogate pair.
    mutating func unicodeEscape(at escape: Int) throws -> Unicode.Scalar {
        let code = try hex4()
        if (0xD800..<0xDC00).contains(code), pos + 6 <= bytes.count,
           bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
            let next = pos
            pos += 2
            let low = try hex4()
            if (0xDC00..<0xE000).contains(low) { return Unicode.Scalar(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))! }
            pos = next  // the second escape is read again on its own
        }
        if let scalar = Unicode.Scalar(code) { return scalar }
        guard options.replacesLoneSurrogates else { throw fail("unpaired surrogate in \\u escape", at: escape) }
        return "\u{FFFD}"
    }

    func makeString(_ utf8: UnsafeBufferPointer<UInt8>, quote: Int) throws -> String {
        if options.replacesInvalidUTF8 { return String(decoding: utf8, as: UTF8.self) }
        guard let s = String(validating: utf8, as: UTF8.self) else { throw fail("string is not valid UTF-8", at: quote) }
        return s
    }
}
