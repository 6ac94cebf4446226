import Foundation
import Testing
@testable import Tokenizers

@Suite struct BehaviourTests {
    static func gpt2() throws -> Tokenizer { try Tokenizer(contentsOf: Fixtures.url("gpt2.tokenizer.json")) }

    /// The hand-written split matchers agree with a general regex engine (ICU) on the whole corpus.
    @Test func knownPatternsAgreeWithRegexEngine() throws {
        let texts = try Fixtures.corpus() + ["'s'S'T'rE'Ve 'LL'D", "x\u{A0}\u{A0}\n\n y", " \t\r\n\t x", "1234567 ١٢٣٤"]
        for source in [KnownPattern.gpt2Source, KnownPattern.llama3Source, KnownPattern.qwen2Source] {
            let known = try SplitPattern.regex(source, file: "t", context: "t")
            guard case .known = known else { Issue.record("\(source) not recognised"); continue }
            let general = SplitPattern.regex(try NSRegularExpression(pattern: source))
            for t in texts {
                let s = t.unicodeScalars.map(\.value)
                let a = known.findMatches(s).map { $0.0 }, b = general.findMatches(s).map { $0.0 }
                #expect(a == b, "\(source) on \(t.debugDescription)")
            }
        }
    }

    /// Long words take the heap path; it must merge in exactly the same order as the short-word scan.
    @Test func heapAndScanMergeIdentically() throws {
        for name in ["llama2", "gpt2"] {
            let tok = try Tokenizer(contentsOf: Fixtures.url("\(name).tokenizer.json"))
            let unknown = Int32(tok.model.vocabularySize - 1)
            for text in try Fixtures.corpus() + ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"] {
                let base = text.replacingOccurrences(of: " ", with: name == "llama2" ? "\u{2581}" : "\u{120}")
                let syms = base.unicodeScalars.map { tok.model.scalarIDs[$0.value] ?? unknown }
                var scan = syms, heap = syms
                tok.model.merge(&scan, heapAbove: .max)
                tok.model.mergeWithHeap(&heap)
                #expect(scan == heap, "\(name): \(text.debugDescription)")
            }
        }
    }

    @Test func batchEncodingEqualsSequential() throws {
        let tok = try Self.gpt2()
        let texts = Array(repeating: try Fixtures.corpus(), count: 5).flatMap { $0 }
        let batch = tok.encodeBatch(texts, threads: 4)
        #expect(batch == texts.map { tok.encode($0) })
    }

    @Test func invalidUTF8IsReplacedNotFatal() throws {
        for name in ["gpt2", "llama2", "metaspace", "words"] {
            let tok = try Tokenizer(contentsOf: Fixtures.url("\(name).tokenizer.json"))
            let bytes: [UInt8] = [0x61, 0xFF, 0xC3, 0x28, 0xE2, 0x82, 0x20, 0xF0, 0x9F, 0x98, 0x00, 0x62, 0xED, 0xA0, 0x80]
            let ids = tok.encode(bytes: bytes)
            #expect(ids == tok.encode(String(decoding: bytes, as: UTF8.self)))
            #expect(!ids.isEmpty)
        }
        let tok = try Self.gpt2()
        let text = tok.decode(tok.encode(bytes: [0x61, 0xFF, 0x62]))
        #expect(text == "a\u{FFFD}b")
        // Random byte strings never crash and (being valid after replacement) round-trip.
        var state: UInt64 = 12345
        for _ in 0..<200 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(state % 40) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(UInt8(truncatingIfNeeded: state >> 56))
            }
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let s = String(decoding: bytes, as: UTF8.self)
            #expect(tok.decode(tok.encode(bytes: bytes)) == s)
        }
    }

    @Test func decodeIgnoresUnknownIdsAndHandlesPartialBytes() throws {
        let tok = try Self.gpt2()
        #expect(tok.decode([-1, 1_000_000]) == "")
        let euro = tok.encode("€", addSpecialTokens: false)
        #expect(tok.decode(euro) == "€")
        // Splitting a multi-byte character's bytes across tokens decodes each half with replacement.
        let bytes = Array("€".utf8).compactMap { tok.tokenID(for: ByteLevelMap.mapped([$0])) }
        #expect(bytes.count == 3)
        #expect(tok.decode([bytes[0]]) == "\u{FFFD}")
        #expect(tok.decode(bytes) == "€")
    }

    @Test func vocabularyAccessors() throws {
        let tok = try Self.gpt2()
        #expect(tok.vocabularySize == 703)
        #expect(tok.tokenID(for: "<|endoftext|>") == 0)
        #expect(tok.token(for: 0) == "<|endoftext|>")
        #expect(tok.isSpecial(0) && !tok.isSpecial(700))
        #expect(tok.eosTokenIDs == [0])
        #expect(tok.bosTokenID == nil)
        // Canonically equivalent but different tokens keep their own ids.
        let llama2 = try Tokenizer(contentsOf: Fixtures.url("llama2.tokenizer.json"))
        if let a = llama2.tokenID(for: "\u{E9}"), let b = llama2.tokenID(for: "e\u{301}") { #expect(a != b) }
    }

    @Test func loadsDirectoryWithConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.url("qwen2.tokenizer.json"), to: dir.appendingPathComponent("tokenizer.json"))
        let config = #"{"eos_token": {"content": "<|im_end|>"}, "bos_token": null, "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"}"#
        try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try Tokenizer.load(from: dir)
        #expect(tok.eosTokenIDs == [2])
        #expect(ChatTemplate(for: tok)?.format == .chatml)
        #expect(ChatTemplate(for: tok)?.defaultSystemPrompt == nil)
    }
}
