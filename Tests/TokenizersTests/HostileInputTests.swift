import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Tokenizers

/// Hostile tokenizer inputs and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct TokenizerHostileInputTests {
    /// /dev/zero never ends: refused unread instead of growing without bound.
    @Test func endlessFilesAreRefusedUnread() {
        for load in [{ _ = try Tokenizer(contentsOf: URL(fileURLWithPath: "/dev/zero")) },
                     { _ = try TokenizerConfig(contentsOf: URL(fileURLWithPath: "/dev/zero")) }] as [() throws -> Void] {
            do {
                try load()
                Issue.record("expected a refusal")
            } catch let e as TokenizerError {
                #expect(e.file == "/dev/zero" && e.message.contains("not a regular file"), "\(e)")
            } catch { Issue.record("unexpected \(error)") }
        }
    }

    /// tokenizer.json and tokenizer_config.json share one bounded read: a FIFO that no one writes
    /// and a file one byte over 1 GiB are refused quickly, unread, naming the file; a link to a
    /// real tokenizer.json (as in a Hugging Face cache snapshot) is followed.
    @Test func fifosAndHugeFilesAreRefusedUnreadAndLinksFollowed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json"), configFile = dir.appendingPathComponent("tokenizer_config.json")
        func expectRefusal(_ url: URL, _ expected: String, _ load: () throws -> Void) {
            let start = Date()
            do {
                try load()
                Issue.record("\(url.lastPathComponent): expected a refusal")
            } catch let e as TokenizerError {
                #expect(e.kind == .invalidArgument && e.file == url.path && e.message.contains(expected), "\(e)")
            } catch { Issue.record("unexpected \(error)") }
            #expect(Date().timeIntervalSince(start) < 5)
        }
        #expect(mkfifo(file.path, 0o600) == 0)
        expectRefusal(file, "not a regular file (found a FIFO)") { _ = try Tokenizer.load(from: dir) }
        #expect(mkfifo(configFile.path, 0o600) == 0)
        expectRefusal(configFile, "not a regular file (found a FIFO)") { _ = try TokenizerConfig(contentsOf: configFile) }
        try FileManager.default.removeItem(at: configFile)
        try FileManager.default.removeItem(at: file)

        #expect(FileManager.default.createFile(atPath: file.path, contents: nil))
        let handle = try FileHandle(forWritingTo: file)
        try handle.truncate(atOffset: UInt64(1 << 30) + 1)   // sparse: nothing is written
        try handle.close()
        expectRefusal(file, "the file is 1073741825 bytes; at most 1073741824 are read") { _ = try Tokenizer(contentsOf: file) }
        try FileManager.default.removeItem(at: file)

        try FileManager.default.createSymbolicLink(at: file, withDestinationURL: Fixtures.url("gpt2.tokenizer.json"))
        let linked = try Tokenizer.load(from: dir)
        let direct = try Tokenizer(contentsOf: Fixtures.url("gpt2.tokenizer.json"))
        #expect(linked.encode("hello world", addSpecialTokens: false) == direct.encode("hello world", addSpecialTokens: false))
    }

    /// Fuzz finding: one vocab id of 651111101 among 80 entries made the dense id table take 10 GB.
    @Test func sparseHugeVocabularyIdIsRefused() throws {
        let json = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 651111101}, "merges": ["a b"]}}"#
        do {
            _ = try Tokenizer(data: Data(json.utf8), file: "sparse.json")
            Issue.record("expected a refusal")
        } catch let e as TokenizerError {
            #expect(e.kind == .invalidField && e.file == "sparse.json", "\(e)")
            #expect(e.message.contains("model.vocab has 3 entries but an id of 651111101"), "\(e.message)")
        }
        // Gaps as real files have them (added tokens placed after the model vocabulary) still load.
        let gap = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 1000}, "merges": ["a b"]}}"#
        #expect(try Tokenizer(data: Data(gap.utf8)).encode("ab", addSpecialTokens: false) == [1000])
    }

    /// A post-processor may insert an id that neither the vocabulary nor the added tokens hold;
    /// `vocabularySize` covers it, so that a model too small for it is refused before training
    /// or evaluation gathers a row past the end of its embedding.
    @Test func postProcessorIdsCountInTheVocabularySize() throws {
        let vocab = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}"#
        let template = #"{\#(vocab), "post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}], "special_tokens": {"<s>": {"ids": [7]}, "</s>": {"ids": [5000]}}}]}}"#
        let t = try Tokenizer(data: Data(template.utf8))
        #expect(t.encode("ab") == [7, 0, 1, 5000])
        #expect(t.vocabularySize == 5001)
        let bert = #"{\#(vocab), "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 40], "sep": ["[SEP]", 41]}}"#
        #expect(try Tokenizer(data: Data(bert.utf8)).vocabularySize == 42)
        // Ids inside the vocabulary leave it as it was.
        let inside = #"{\#(vocab), "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [1]}}}}"#
        #expect(try Tokenizer(data: Data(inside.utf8)).vocabularySize == 2)
    }

    /// Ids are held as Int32 while encoding: an added token or a post-processor id of 2^32 (which
    /// the JSON reader takes as an integer) trapped `Int32(_:)` when encoding, or when loading.
    @Test func idsBeyondInt32AreRefusedByField() throws {
        let vocab = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}"#
        let cases: [(String, String)] = [
            (#"{\#(vocab), "added_tokens": [{"id": 4294967296, "content": "<x>", "special": true}]}"#,
             "added_tokens[0] has id 4294967296; ids must be below 2147483647"),
            (#"{\#(vocab), "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [4294967296]}}}}"#,
             #"TemplateProcessing special token "<s>" has id 4294967296"#),
            (#"{\#(vocab), "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {"<s>": {"ids": [-1]}}}}"#,
             #"TemplateProcessing special token "<s>" has id -1"#),
            (#"{\#(vocab), "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 3000000000], "sep": ["[SEP]", 1]}}"#,
             #"BertProcessing "cls" has id 3000000000"#),
        ]
        for (json, expected) in cases {
            do {
                let t = try Tokenizer(data: Data(json.utf8), file: "ids.json")
                _ = t.encode("<x>ab")
                Issue.record("expected a refusal: \(json)")
            } catch let e as TokenizerError {
                #expect(e.kind == .invalidField && e.file == "ids.json" && e.message.contains(expected), "\(e)")
            }
        }
        // The largest id that fits still loads and encodes.
        let ok = #"{\#(vocab), "added_tokens": [{"id": 2147483646, "content": "<x>", "special": true}]}"#
        #expect(try Tokenizer(data: Data(ok.utf8)).encode("<x>a", addSpecialTokens: false) == [2147483646, 0])
    }

    /// ICU offers no time limit through NSRegularExpression: a Split pattern that backtracks
    /// exponentially took 18 s to encode a 40-character sentence (and would never end on a
    /// paragraph). It is refused on load, by a step budget rather than a clock.
    @Test func catastrophicallyBacktrackingRegexesAreRefusedOnLoad() throws {
        for (key, json) in [("pre_tokenizer", #"{"type": "Split", "pattern": {"Regex": "(\\w|\\w|\\s|.)*$x"}, "behavior": "Isolated", "invert": false}"#),
                            ("normalizer", #"{"type": "Replace", "pattern": {"Regex": "(a+)+b"}, "content": ""}"#)] {
            let text = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "\#(key)": \#(json)}"#
            let start = Date()
            do {
                let t = try Tokenizer(data: Data(text.utf8), file: "redos.json")
                _ = t.encode("Hello world! 123 héllo\n  <|endoftext|> ü")
                Issue.record("expected a refusal for \(key)")
            } catch let e as TokenizerError {
                #expect(e.kind == .invalidField && e.file == "redos.json" && e.message.contains("backtracks catastrophically"), "\(e)")
            }
            #expect(Date().timeIntervalSince(start) < 5)
        }
        // Patterns that blow up only on a long run of one kind of character: punctuation, CJK,
        // newlines, emoji (none of which the first probes had in a run).
        for pattern in [#"(\\p{P}|\\p{P})*$x"#, #"(\\p{Han}|\\p{Han})*$x"#, #"(\\n|\\s)*$x"#, #"(\\p{So}|\\p{So})*$x"#] {
            let text = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\#(pattern)"}, "behavior": "Isolated", "invert": false}}"#
            let start = Date()
            do {
                _ = try Tokenizer(data: Data(text.utf8), file: "redos.json")
                Issue.record("expected a refusal for /\(pattern)/")
            } catch let e as TokenizerError {
                #expect(e.kind == .invalidField && e.message.contains("backtracks catastrophically"), "\(e)")
            }
            #expect(Date().timeIntervalSince(start) < 5)
        }
        // Ordinary custom patterns still load and split as before.
        let split = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, " ": 2}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+|[a-z]+"}, "behavior": "Isolated", "invert": false}}"#
        #expect(try Tokenizer(data: Data(split.utf8)).encode("ab ba", addSpecialTokens: false) == [0, 1, 2, 1, 0])
    }
}
