import Foundation
import Testing
@testable import Tokenizers

/// Ids and decodes of the varied corpus against HF tokenizers, for every fixture tokenizer.
@Suite struct ParityTests {
    /// Fixtures whose tokenizers are lossless (the others lowercase, normalize or drop spaces).
    static let lossless: Set<String> = ["gpt2", "qwen2", "llama2"]

    @Test(arguments: ["gpt2", "gpt2_prefix", "qwen2", "llama2", "metaspace", "words", "split"])
    func builtTokenizerMatchesHF(name: String) throws {
        let roundTrip = Self.lossless.contains(name)
        let tok = try Tokenizer(contentsOf: Fixtures.url("\(name).tokenizer.json"))
        let exp = try Fixtures.expected(name)
        #expect(exp.cases.count == (try Fixtures.corpus()).count)
        #expect(tok.vocabularySize == exp.vocab_size)
        let failures = parityFailures(tok, exp, roundTrip: roundTrip)
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(30).joined(separator: "\n"))")
    }

    @Test(.enabled(if: Fixtures.llama3Enabled, "needs .test-data/llama3 (scripts/fetch-test-data.sh)"))
    func llama3MatchesHF() throws {
        let tok = try Tokenizer(contentsOf: Fixtures.llama3URL)
        let exp = try Fixtures.expected("llama3")
        #expect(tok.vocabularySize == exp.vocab_size)
        let failures = parityFailures(tok, exp, roundTrip: true)
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(30).joined(separator: "\n"))")
    }
}
