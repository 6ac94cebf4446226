import Foundation
import Tokenizers

/// The checkpoint's tokenizer.json behind the `TextTokenizer` protocol that `score` and `generate` use.
struct HFTextTokenizer: TextTokenizer {
    let tokenizer: Tokenizer
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int] { tokenizer.encode(text, addSpecialTokens: addSpecialTokens) }
    func decode(_ ids: [Int]) -> String { tokenizer.decode(ids, skipSpecialTokens: true) }
    var eosTokenIDs: [Int] { tokenizer.eosTokenIDs }
}

/// The tokenizer.json (with tokenizer_config.json when present) stored with a checkpoint, or nil
/// when the directory has none.
func loadTokenizerJSON(_ directory: URL) throws -> Tokenizer? {
    guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) else { return nil }
    return try Tokenizer.load(from: directory)
}
