import Foundation
import Testing
@testable import Tokenizers

@Suite struct ChatTemplateTests {
    struct Case: Decodable {
        var messages: [ChatMessage]
        var add_generation_prompt: Bool
        var text: String
        var ids: [Int]?
    }

    struct Format: Decodable {
        var template: String
        var cases: [Case]
    }

    static func fixture() throws -> [String: Format] {
        try JSONDecoder().decode([String: Format].self, from: Data(contentsOf: Fixtures.url("chat.expected.json")))
    }

    func check(_ format: String, _ tok: Tokenizer) throws {
        let fixture = try #require(try Self.fixture()[format])
        let template = try #require(ChatTemplate(recognizing: fixture.template))
        #expect(template.format.rawValue == format)
        for c in fixture.cases {
            let text = try template.render(c.messages, tokenizer: tok, addGenerationPrompt: c.add_generation_prompt)
            #expect(text == c.text)
            let enc = try template.encode(c.messages, tokenizer: tok, addGenerationPrompt: c.add_generation_prompt)
            if let ids = c.ids { #expect(enc.ids == ids) }
            #expect(enc.assistantMask.count == enc.ids.count)
            // The masked tokens decode to the assistant replies, each closed by its end-of-turn token.
            let replies = c.messages.filter { $0.role == "assistant" }
            let masked = zip(enc.ids, enc.assistantMask).filter(\.1).map(\.0)
            #expect(masked.isEmpty == replies.isEmpty)
            let maskedText = tok.decode(masked)
            for r in replies {
                #expect(maskedText.contains(ChatTemplate.strip(r.content)), "\(format): \(maskedText.debugDescription)")
            }
            // Nothing from user turns is marked.
            for u in c.messages where u.role == "user" {
                #expect(!maskedText.contains(ChatTemplate.strip(u.content)))
            }
        }
    }

    @Test func chatmlMatchesJinja() throws {
        try check("chatml", Tokenizer(contentsOf: Fixtures.url("qwen2.tokenizer.json")))
    }

    @Test func llama2MatchesJinja() throws {
        let config = TokenizerConfig(bosToken: "<s>", eosToken: "</s>")
        try check("llama2", Tokenizer(contentsOf: Fixtures.url("llama2.tokenizer.json"), config: config))
    }

    @Test(.enabled(if: Fixtures.llama3Enabled, "needs .test-data/llama3 (scripts/fetch-test-data.sh)"))
    func llama3MatchesJinja() throws {
        let config = TokenizerConfig(bosToken: "<|begin_of_text|>", eosToken: "<|end_of_text|>")
        let tok = try Tokenizer(contentsOf: Fixtures.llama3URL, config: config)
        try check("llama3", tok)
        #expect(tok.eosTokenIDs == [128001, 128009])
        #expect(tok.bosTokenID == 128000)
    }

    @Test func plainTemplateMasksRepliesAndEOS() throws {
        let tok = try Tokenizer(contentsOf: Fixtures.url("gpt2.tokenizer.json"))
        let template = ChatTemplate(format: .plain)
        let messages: [ChatMessage] = [.user("What is 2 + 2?"), .assistant("It is 4."), .user("And 3 + 3?"), .assistant("6")]
        let text = try template.render(messages, tokenizer: tok)
        #expect(text == "User: What is 2 + 2?\nAssistant: It is 4.<|endoftext|>\nUser: And 3 + 3?\nAssistant: 6<|endoftext|>\n")
        let enc = try template.encode(messages, tokenizer: tok)
        #expect(enc.ids == tok.encode(text, addSpecialTokens: false))
        let masked = zip(enc.ids, enc.assistantMask).filter(\.1).map(\.0)
        // The space before a reply belongs to the prompt when the tokenizer splits it off (" 6" is not a token).
        #expect(tok.decode(masked) == " It is 4.<|endoftext|>6<|endoftext|>")
        #expect(masked.filter { $0 == 0 }.count == 2)  // both end-of-sequence tokens are trained on
        #expect(try template.render([.user("hi")], tokenizer: tok, addGenerationPrompt: true) == "User: hi\nAssistant:")
    }

    @Test func encodePairSplitsPromptFromAnswer() throws {
        let tok = try Tokenizer(contentsOf: Fixtures.url("gpt2.tokenizer.json"))
        let template = ChatTemplate(format: .plain)
        let pair = try template.encodePair(prompt: "What is 2 + 2?", response: "It is 4.", tokenizer: tok)
        let whole = try template.encode([.user("What is 2 + 2?"), .assistant("It is 4.")], tokenizer: tok).ids
        // The two parts are the whole conversation, cut where the answer starts.
        #expect(pair.prompt + pair.response == Array(whole.prefix(pair.prompt.count + pair.response.count)))
        #expect(tok.decode(pair.response) == " It is 4.<|endoftext|>")
        #expect(tok.decode(pair.prompt) == "User: What is 2 + 2?\nAssistant:")
    }

    @Test func detectsTemplateFromVocabulary() throws {
        #expect(ChatTemplate(for: try Tokenizer(contentsOf: Fixtures.url("qwen2.tokenizer.json")))?.format == .chatml)
        #expect(ChatTemplate(for: try Tokenizer(contentsOf: Fixtures.url("gpt2.tokenizer.json"))) == nil)
        #expect(ChatTemplate(recognizing: "{{ messages }}") == nil)
    }

    @Test func llama2RejectsNonAlternatingTurns() throws {
        let tok = try Tokenizer(contentsOf: Fixtures.url("llama2.tokenizer.json"), config: TokenizerConfig(eosToken: "</s>"))
        #expect(throws: TokenizerError.self) {
            try ChatTemplate(format: .llama2).render([.user("a"), .user("b")], tokenizer: tok)
        }
    }
}
