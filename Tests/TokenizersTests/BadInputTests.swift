import Foundation
import Testing
@testable import Tokenizers

@Suite struct BadInputTests {
    static let minimalModel = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    func load(_ json: String, config: TokenizerConfig? = nil) throws -> Tokenizer {
        try Tokenizer(data: Data(json.utf8), config: config, file: "bad.json")
    }

    func expectError(_ kind: TokenizerError.Kind, mentioning words: [String], _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("no error; expected \(kind)")
        } catch let e as TokenizerError {
            #expect(e.kind == kind, "\(e)")
            for w in words { #expect(e.description.contains(w), "\(e) should mention \(w)") }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func minimalTokenizerWorks() throws {
        let tok = try load("{\(Self.minimalModel)}")
        #expect(tok.encode("abab") == [2, 2])
        #expect(tok.decode([2, 0]) == "ab a")  // no decoder: tokens joined by spaces, as HF does
    }

    @Test func malformedJSON() {
        for text in ["{", "{\"model\": }", "[1, 2", "{\"a\": \"unterminated}", "{} trailing", "", "{\"a\": tru}",
                     String(repeating: "[", count: 5000)] {
            expectError(.malformedJSON, mentioning: ["bad.json", "malformed JSON"]) { _ = try load(text) }
        }
        expectError(.malformedJSON, mentioning: ["top level"]) { _ = try load("[1, 2]") }
    }

    @Test func missingOrUnknownModel() {
        expectError(.invalidField, mentioning: ["model"]) { _ = try load("{}") }
        expectError(.unsupportedComponent, mentioning: ["WordPiece"]) {
            _ = try load(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#)
        }
        expectError(.invalidField, mentioning: ["vocab"]) { _ = try load(#"{"model": {"type": "BPE", "vocab": [1]}}"#) }
        expectError(.invalidField, mentioning: ["\"b\""]) {
            _ = try load(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": "one"}, "merges": []}}"#)
        }
    }

    @Test func mergesNamingMissingTokens() {
        expectError(.inconsistentVocabulary, mentioning: ["merges[0]", "\"c\""]) {
            _ = try load(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}"#)
        }
        expectError(.inconsistentVocabulary, mentioning: ["merges[1]", "\"ba\""]) {
            _ = try load(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"], ["b", "a"]]}}"#)
        }
        expectError(.invalidField, mentioning: ["merges[0]"]) {
            _ = try load(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}"#)
        }
    }

    @Test func unsupportedComponentsAreNamed() {
        let cases = [
            (#""normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}"#, "Precompiled"),
            (#""pre_tokenizer": {"type": "BertPreTokenizer"}"#, "BertPreTokenizer"),
            (#""decoder": {"type": "WordPiece"}"#, "WordPiece"),
            (#""post_processor": {"type": "Mystery"}"#, "Mystery"),
        ]
        for (part, name) in cases {
            expectError(.unsupportedComponent, mentioning: [name, "bad.json"]) { _ = try load("{\(part), \(Self.minimalModel)}") }
        }
        expectError(.invalidField, mentioning: ["regex"]) {
            _ = try load(#"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, "# + Self.minimalModel + "}")
        }
    }

    @Test func missingSpecialTokens() {
        expectError(.missingSpecialToken, mentioning: ["unk_token", "<unk>"]) {
            _ = try load(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}"#)
        }
        expectError(.missingSpecialToken, mentioning: ["eos_token", "</s>", "cfg.json"]) {
            _ = try load("{\(Self.minimalModel)}", config: TokenizerConfig(eosToken: "</s>", file: "cfg.json"))
        }
        expectError(.missingSpecialToken, mentioning: ["[CLS]"]) {
            _ = try load(#"{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}, "# + Self.minimalModel + "}")
        }
        expectError(.malformedJSON, mentioning: ["cfg.json"]) { _ = try TokenizerConfig(data: Data("{".utf8), file: "cfg.json") }
    }

    @Test func missingFiles() {
        expectError(.fileNotFound, mentioning: ["/nonexistent/tok"]) { _ = try Tokenizer.load(from: URL(fileURLWithPath: "/nonexistent/tok")) }
        expectError(.fileNotFound, mentioning: ["tokenizer.json"]) { _ = try Tokenizer.load(from: FileManager.default.temporaryDirectory) }
    }

    @Test func noUnknownTokenDropsUnknownCharacters() throws {
        let tok = try load("{\(Self.minimalModel)}")
        #expect(tok.encode("a€b") == [2])  // HF drops characters it cannot represent (no unk), then merges across
    }

    @Test func trainerRejectsBadArguments() {
        expectError(.invalidArgument, mentioning: ["vocabulary size"]) { _ = try BPETrainer(vocabularySize: 100).train(["x"]) }
        expectError(.invalidArgument, mentioning: ["distinct"]) {
            _ = try BPETrainer(vocabularySize: 300, specialTokens: ["<a>", "<a>"]).train(["x"])
        }
    }
}
