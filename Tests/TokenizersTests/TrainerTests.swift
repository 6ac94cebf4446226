import Foundation
import Testing
@testable import Tokenizers
import JSONSupport

@Suite struct TrainerTests {
    static func trainingTexts() throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(contentsOf: Fixtures.url("training.json")))
    }

    /// HF's BpeTrainer made gpt2.tokenizer.json from training.json (vocab 700, min frequency 2): the
    /// Swift trainer finds the same vocabulary and merges.
    @Test func matchesHFTrainer() throws {
        let result = try BPETrainer(vocabularySize: 700, minimumFrequency: 2, specialTokens: ["<|endoftext|>"])
            .train(try Self.trainingTexts())
        let hf = try JSONValue.parse(Data(contentsOf: Fixtures.url("gpt2.tokenizer.json")), options: .lenient)
        let vocab = try #require(hf["model"]?["vocab"]?.object)
        var hfTokens = [String](repeating: "", count: vocab.count)
        for (t, id) in vocab { hfTokens[id.int!] = t }
        #expect(result.tokens == hfTokens)
        let hfMerges = try #require(hf["model"]?["merges"]?.array).map { $0.string! }
        let merges = result.merges.map { "\($0.0) \($0.1)" }
        #expect(merges.count == hfMerges.count)
        if let i = (0..<min(merges.count, hfMerges.count)).first(where: { merges[$0] != hfMerges[$0] }) {
            Issue.record("merge \(i) differs: \(merges[i]) vs HF \(hfMerges[i])")
        }
    }

    /// A Swift-trained tokenizer.json encodes the corpus as HF tokenizers encodes it after loading it.
    @Test func savedTokenizerEncodesLikeHF() throws {
        let committed = Fixtures.url("swift_trained.tokenizer.json")
        let result = try BPETrainer(vocabularySize: 600, minimumFrequency: 2, specialTokens: ["<|endoftext|>", "<|pad|>"],
                                    split: .llama3).train(try Self.trainingTexts())
        #expect(result.tokenizerJSON() == (try String(contentsOf: committed, encoding: .utf8)))
        let tok = try Tokenizer(contentsOf: committed)
        let failures = parityFailures(tok, try Fixtures.expected("swift_trained"), roundTrip: true)
        #expect(failures.isEmpty, "\(failures.prefix(20).joined(separator: "\n"))")
        // Saving and loading back gives the same tokenizer.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trained-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try result.save(to: dir)
        let loaded = try Tokenizer.load(from: dir)
        #expect(loaded.eosTokenIDs == [0])
        #expect(loaded.encode("Hello world, it's 2024!") == tok.encode("Hello world, it's 2024!"))
    }
}
