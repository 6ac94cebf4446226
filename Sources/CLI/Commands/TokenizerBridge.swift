import Foundation
import Tokenizers

/// The checkpoint's tokenizer.json behind the `TextTokenizer` protocol that `score` and `generate` use.
struct HFTextTokenizer: TextTokenizer {
    let tokenizer: Tokenizer
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int] { tokenizer.encode(text, addSpecialTokens: addSpecialTokens) }
    func decode(_ ids: [Int]) -> String { tokenizer.decode(ids, skipSpecialTokens: true) }
    var eosTokenIDs: [Int] { tokenizer.eosTokenIDs }
}

/// The checkpoint's tokenizer as `score` and `generate` use it.
func makeTextTokenizer(directory: URL) throws -> TextTokenizer? {
    HFTextTokenizer(tokenizer: try Tokenizer.load(from: directory))
}
