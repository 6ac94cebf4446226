import Foundation
import Testing
@testable import Datasets

@Suite struct CardTests {
    @Test func sha256KnownVectors() {
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(Data(repeating: 0x61, count: 1_000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        // Fed in uneven pieces, the digest is the same.
        let bytes = Data(repeating: 0x61, count: 1_000)
        var h = SHA256()
        var i = 0
        for n in [1, 63, 65, 0, 7, 64, 128, 672] {
            h.update(bytes[i..<(i + n)])
            i += n
        }
        #expect(i == 1_000 && h.hexDigest() == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func cardCountsHashAndTokens() throws {
        let records = [Example(prompt: "a b c", response: "d e"), Example(prompt: "héllo", response: "x y z w")]
        let bytes = Data(jsonLines(records).utf8)
        let plain = DatasetCard.split("train", file: "train.jsonl", records: records, bytes: bytes, tokenizer: nil)
        #expect(plain.records == 2 && plain.bytes == bytes.count && plain.sha256 == SHA256.hex(bytes))
        #expect(plain.fields["prompt"] == FieldStats(characters: 10, words: 4, tokens: nil))
        #expect(plain.fields["response"] == FieldStats(characters: 10, words: 6, tokens: nil))
        #expect(plain.total == FieldStats(characters: 20, words: 10, tokens: nil))
        // Any tokenizer plugs in as a closure: here one token per UTF-8 byte.
        let bytesTok = TokenCounter(name: "bytes") { $0.utf8.count }
        let tok = DatasetCard.split("train", file: "train.jsonl", records: records, bytes: bytes, tokenizer: bytesTok)
        #expect(tok.fields["prompt"]?.tokens == 11 && tok.total.tokens == 21)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-card-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = DemoConfig()
        c.instructions = InstructionConfig(trainCount: 10, testCount: 3)
        let cards = try DemoDataset.generate(c, seed: 2, kinds: [.instructions]).write(to: dir, kinds: [.instructions], tokenizer: bytesTok)
        let card = cards[0]
        #expect(card.kind == "instructions" && card.seed == 2 && card.tokenizer == "bytes")
        #expect(card.splits.map(\.records) == [10, 3])
        let file = try Data(contentsOf: dir.appendingPathComponent("instructions/train.jsonl"))
        #expect(card.splits[0].sha256 == SHA256.hex(file) && card.splits[0].bytes == file.count)
        let decoded = try JSONDecoder().decode(DatasetCard.self, from: Data(contentsOf: dir.appendingPathComponent("instructions/card.json")))
        #expect(decoded == card)
        let md = try String(contentsOf: dir.appendingPathComponent("instructions/README.md"), encoding: .utf8)
        #expect(md.contains(card.splits[0].sha256) && md.contains("`bytes`"))
    }

    @Test func jsonEscaping() throws {
        let s = "quote \" backslash \\ newline \n tab \t bell \u{07} é 😀 /"
        let line = TextRecord(s).jsonLine()
        #expect(line == "{\"text\":\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007 é 😀 /\"}")
        let back = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: String]
        #expect(back["text"] == s)
        #expect(Example(prompt: "p", response: "r", metadata: ["b": "2", "a": "1"]).jsonLine()
                == "{\"metadata\":{\"a\":\"1\",\"b\":\"2\"},\"prompt\":\"p\",\"response\":\"r\"}")
    }

    @Test func whitespaceWordCounts() {
        #expect(whitespaceWords("") == 0)
        #expect(whitespaceWords("  a  b\n\tc ") == 3)
        #expect(whitespaceWords("one") == 1)
    }
}
