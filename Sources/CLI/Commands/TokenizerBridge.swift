import Foundation

// The Tokenizers module is not merged on this branch yet. Once it is, replace the body with:
//
//     struct HFTextTokenizer: TextTokenizer {
//         let tokenizer: Tokenizer
//         func encode(_ text: String, addSpecialTokens: Bool) -> [Int] { tokenizer.encode(text, addSpecialTokens: addSpecialTokens) }
//         func decode(_ ids: [Int]) -> String { tokenizer.decode(ids, skipSpecialTokens: true) }
//         var eosTokenIDs: [Int] { tokenizer.eosTokenIDs }
//     }
//     return HFTextTokenizer(tokenizer: try Tokenizer.load(from: directory))
//
// (with `import Tokenizers` above).

/// The checkpoint's tokenizer as `score` and `generate` use it.
func makeTextTokenizer(directory: URL) throws -> TextTokenizer? {
    nil
}
