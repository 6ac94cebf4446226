import Foundation
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
}
