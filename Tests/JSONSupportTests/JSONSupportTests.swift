import Foundation
import Testing
import JSONSupport

private func parse(_ text: String, _ options: JSONParseOptions = .strict) throws -> JSONValue {
    try JSONValue.parse(Data(text.utf8), options: options)
}

private func parse(bytes: [UInt8], _ options: JSONParseOptions = .strict) throws -> JSONValue {
    try bytes.withUnsafeBytes { try JSONValue.parse($0, options: options) }
}

/// The error parsing `bytes` throws, or nil (recorded as an issue) when it parses.
private func parseError(_ bytes: [UInt8], _ options: JSONParseOptions = .strict,
                        sourceLocation: SourceLocation = #_sourceLocation) -> JSONParseError? {
    do {
        let value = try parse(bytes: bytes, options)
        Issue.record("parsed \(value), expected an error", sourceLocation: sourceLocation)
        return nil
    } catch let e as JSONParseError {
        return e
    } catch {
        Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

private func parseError(_ text: String, _ options: JSONParseOptions = .strict,
                        sourceLocation: SourceLocation = #_sourceLocation) -> JSONParseError? {
    parseError(Array(text.utf8), options, sourceLocation: sourceLocation)
}

@Suite struct JSONParserTests {
    @Test func duplicateKeysAreAnErrorWhenStrictAndTheLastWinsWhenLenient() throws {
        let text = #"{"a": 1, "b": {"a": 3}, "a": 2}"#
        let e = parseError(text)
        #expect(e == JSONParseError(offset: 24, message: #"duplicate key "a""#))
        #expect(e?.description == #"invalid JSON at byte 24: duplicate key "a""#)
        let v = try parse(text, .lenient)
        #expect(v.object?.map { $0.0 } == ["a", "b", "a"])
        #expect(v["a"] == .int(2))
        #expect(v["b"]?["a"] == .int(3))
        // The same key in different objects is no duplicate.
        #expect(try parse(#"[{"a": 1}, {"a": 2}]"#) == .array([.object([("a", .int(1))]), .object([("a", .int(2))])]))
        // Keys are compared after unescaping.
        #expect(parseError(#"{"a": 1, "\u0061": 2}"#)?.message == #"duplicate key "a""#)
    }

    @Test func surrogatePairsDecodeAndLoneSurrogatesAreAnErrorOrReplaced() throws {
        let pair = #""\ud83d\ude00x""#
        #expect(try parse(pair) == .string("\u{1F600}x"))
        #expect(try parse(pair, .lenient) == .string("\u{1F600}x"))
        // (text, offset of the lone surrogate's backslash, lenient result)
        let cases: [(String, Int, String)] = [
            (#""\ud800""#, 1, "\u{FFFD}"),
            (#""\udc00""#, 1, "\u{FFFD}"),
            (#""a\ud800\u0041""#, 2, "a\u{FFFD}A"),
            (#""\ud800\ud800\udc00""#, 1, "\u{FFFD}\u{10000}"),
            (#""\ude00\ud83d""#, 1, "\u{FFFD}\u{FFFD}"),
        ]
        for (text, offset, lenient) in cases {
            #expect(parseError(text) == JSONParseError(offset: offset, message: "unpaired surrogate in \\u escape"), "\(text)")
            #expect(try parse(text, .lenient) == .string(lenient), "\(text)")
        }
    }

    @Test func invalidUTF8IsAnErrorOrReplaced() throws {
        // With and without escapes in the string (two code paths); the error names the string's quote.
        let cases: [([UInt8], Int, String)] = [
            ([0x22, 0x61, 0xFF, 0x62, 0x22], 0, "a\u{FFFD}b"),
            ([0x5B, 0x22, 0x5C, 0x6E, 0xC3, 0x22, 0x5D], 1, "\n\u{FFFD}"),
            ([0x22, 0xED, 0xA0, 0x80, 0x22], 0, "\u{FFFD}\u{FFFD}\u{FFFD}"),  // an encoded surrogate
        ]
        for (bytes, offset, lenient) in cases {
            #expect(parseError(bytes) == JSONParseError(offset: offset, message: "string is not valid UTF-8"), "\(bytes)")
            let v = try parse(bytes: bytes, .lenient)
            #expect((v.string ?? v.array?.first?.string) == lenient, "\(bytes)")
        }
        #expect(try parse(bytes: Array("\"é\u{1F600}\"".utf8)) == .string("é\u{1F600}"))
    }

    @Test func aByteOrderMarkIsSkippedOnlyWhenLenient() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(#" {"a": true}"#.utf8)
        #expect(try parse(bytes: bytes, .lenient) == .object([("a", .bool(true))]))
        let e = parseError(bytes)
        #expect(e?.offset == 0 && e?.message.hasPrefix("unexpected character") == true)
        // Only at the start.
        #expect(parseError([0x20, 0xEF, 0xBB, 0xBF, 0x31], .lenient)?.offset == 1)
    }

    @Test func integersWithoutFractionOrExponentThatFitAreInt() throws {
        let cases: [(String, JSONValue)] = [
            ("1", .int(1)), ("-0", .int(0)), ("0", .int(0)), ("-17", .int(-17)), ("007", .int(7)),
            ("1.0", .double(1)), ("1e3", .double(1000)), ("1E+3", .double(1000)), ("-2.5e-1", .double(-0.25)),
            ("9223372036854775807", .int(Int.max)), ("-9223372036854775808", .int(Int.min)),
            ("9223372036854775808", .double(9.223372036854775808e18)), ("-9223372036854775809", .double(-9.223372036854775809e18)),
            ("123456789012345678901234567890", .double(1.2345678901234568e29)),
            ("1e999", .double(.infinity)),
        ]
        for (text, expected) in cases {
            #expect(try parse(text) == expected, "\(text)")
            #expect(try parse(text, .lenient) == expected, "\(text)")
        }
    }

    @Test func numberAccessors() throws {
        #expect(JSONValue.int(7).int == 7)
        #expect(JSONValue.double(1.0).int == 1)
        #expect(JSONValue.double(-3.0).int == -3)
        #expect(JSONValue.double(1.5).int == nil)
        #expect(JSONValue.double(1e16).int == nil)
        #expect(JSONValue.double(.nan).int == nil)
        #expect(JSONValue.string("1").int == nil)
        #expect(try parse("1.0").int == 1)
        #expect(JSONValue.int(7).number == 7)
        #expect(JSONValue.double(0.5).number == 0.5)
        #expect(JSONValue.bool(true).number == nil)
        #expect(JSONValue.int(1).typeName == "a number" && JSONValue.double(1).typeName == "a number")
    }

    @Test func otherAccessors() throws {
        let v = try parse(#"{"s": "x", "b": false, "a": [null], "o": {}, "n": null}"#)
        #expect(v["s"]?.string == "x" && v["s"]?.bool == nil)
        #expect(v["b"]?.bool == false)
        #expect(v["a"]?.array == [.null] && v["a"]?.array?.first?.isNull == true)
        #expect(v["o"]?.object?.isEmpty == true)
        #expect(v["n"]?.isNull == true && v["s"]?.isNull == false)
        #expect(v["missing"] == nil && v["a"]?["s"] == nil)
        #expect(v.typeName == "an object" && v["a"]?.typeName == "an array")
    }

    @Test func nestingIsLimitedTo512Levels() throws {
        let ok = String(repeating: "[", count: 512) + "1" + String(repeating: "]", count: 512)
        var v = try parse(ok)
        for _ in 0..<512 { v = try #require(v.array?.first) }
        #expect(v == .int(1))
        for options in [JSONParseOptions.strict, .lenient] {
            let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
            #expect(parseError(deep, options) == JSONParseError(offset: 512, message: "nesting deeper than 512 levels"))
            let objects = String(repeating: #"{"a":"#, count: 513) + "1" + String(repeating: "}", count: 513)
            #expect(parseError(objects, options)?.offset == 512 * 5)
            // Far deeper input fails the same way instead of overflowing the stack.
            #expect(parseError(String(repeating: "[", count: 1_000_000), options)?.offset == 512)
        }
    }

    @Test func onlyWhitespaceMayFollowTheValue() throws {
        #expect(try parse(" \t\r\n{}\n ") == .object([]))
        #expect(parseError("{} x") == JSONParseError(offset: 3, message: "unexpected data after the JSON value"))
        #expect(parseError("1 2", .lenient) == JSONParseError(offset: 2, message: "unexpected data after the JSON value"))
        #expect(parseError([0x7B, 0x7D, 0x00])?.offset == 2)
    }

    @Test func everyErrorNamesItsOffset() {
        let cases: [(String, Int, String)] = [
            ("", 0, "unexpected end of input"),
            ("  ", 2, "unexpected end of input"),
            ("[1,", 3, "unexpected end of input"),
            ("x", 0, "unexpected character 'x'"),
            ("[1, +2]", 4, "unexpected character '+'"),
            ("[1 2]", 3, "expected ',' or ']'"),
            ("[1", 2, "unexpected end of input in an array"),
            (#"{"a" 1}"#, 5, "expected ':'"),
            (#"{"a": 1 "b": 2}"#, 8, "expected ',' or '}'"),
            (#"{"a": 1"#, 7, "unexpected end of input in an object"),
            ("{1: 2}", 1, "expected a string key"),
            (#"{"a": 1,}"#, 8, "expected a string key"),
            ("tru", 3, "expected 'true'"),
            ("[trUe]", 3, "expected 'true'"),
            ("nul!", 3, "expected 'null'"),
            ("fals", 4, "expected 'false'"),
            ("-", 1, "digit expected after '-'"),
            ("-a", 1, "digit expected after '-'"),
            ("1.", 2, "digit expected after '.'"),
            ("1.e5", 2, "digit expected after '.'"),
            ("1e", 2, "digit expected in exponent"),
            ("[1e+]", 4, "digit expected in exponent"),
            (#""abc"#, 4, "unterminated string"),
            (#""ab\"#, 4, "unterminated string"),
            (#""a\n"#, 4, "unterminated string"),
            ("\"a\u{1}\"", 2, "control character in a string"),
            ("\"a\\n\n\"", 4, "control character in a string"),
            (#""a\x""#, 2, #"invalid escape '\x'"#),
            (#""\u12""#, 3, #"truncated \u escape"#),
            (#""\u12G4""#, 5, #"bad hex digit in \u escape"#),
            (#""\ud800\u12G4""#, 11, #"bad hex digit in \u escape"#),
        ]
        for options in [JSONParseOptions.strict, .lenient] {
            for (text, offset, message) in cases {
                #expect(parseError(text, options) == JSONParseError(offset: offset, message: message), "\(text)")
            }
        }
    }

    @Test func serializedTextParsesBackToTheSameValue() throws {
        let value: JSONValue = .object([
            ("null", .null), ("t", .bool(true)), ("f", .bool(false)),
            ("ints", .array([.int(0), .int(-1), .int(Int.max), .int(Int.min)])),
            ("doubles", .array([.double(1), .double(-0.5), .double(1e20), .double(1.5e-7), .double(123456.789)])),
            ("strings", .array([.string(""), .string("quote \" backslash \\ newline \n tab \t nul \u{0} é 😀")])),
            ("nested", .object([("empty array", .array([])), ("empty object", .object([])), ("", .array([.array([.null])]))])),
        ])
        let text = value.serialized(indent: 0)
        #expect(try parse(text) == value)
        #expect(text.hasPrefix("{\n  \"null\": null,\n  \"t\": true,"))
        // Whole doubles keep a fraction, so they read back as doubles (and as floats in Python).
        #expect(JSONValue.double(2).serialized(indent: 0) == "2.0")
        #expect(JSONValue.array([.double(.nan)]).serialized(indent: 0) == "[\n  null\n]")
    }

    @Test func encodableWritesTheSameValue() throws {
        let value: JSONValue = .object([("k", .array([.int(3), .double(0.5), .string("s"), .bool(false), .null, .object([])]))])
        let data = try JSONEncoder().encode(value)
        #expect(try JSONValue.parse(data) == value)
    }
}
