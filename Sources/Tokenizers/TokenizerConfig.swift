import Foundation
import JSONSupport

/// The parts of `tokenizer_config.json` the tokenizer uses: special token names and the chat template.
public struct TokenizerConfig: Sendable {
    public var bosToken: String?
    public var eosToken: String?
    public var padToken: String?
    public var unkToken: String?
    /// The Jinja chat template source (the default one when the file lists several).
    public var chatTemplate: String?
    public var file: String

    public init(bosToken: String? = nil, eosToken: String? = nil, padToken: String? = nil, unkToken: String? = nil,
                chatTemplate: String? = nil, file: String = "<memory>") {
        self.bosToken = bosToken; self.eosToken = eosToken; self.padToken = padToken; self.unkToken = unkToken
        self.chatTemplate = chatTemplate; self.file = file
    }

    public init(contentsOf url: URL) throws {
        try self.init(data: readTokenizerFile(url), file: url.path)
    }

    public init(data: Data, file: String = "<memory>") throws {
        let json: JSONValue
        do { json = try JSONValue.parse(data, options: .lenient) } catch let e as JSONParseError {
            throw TokenizerError(.malformedJSON, file: file, "malformed JSON at byte \(e.offset): \(e.message)")
        }
        guard json.object != nil else {
            throw TokenizerError(.malformedJSON, file: file, "the top level must be a JSON object, found \(json.typeName)")
        }
        func token(_ key: String) throws -> String? {
            guard let v = json[key], !v.isNull else { return nil }
            if let s = v.string { return s }
            if let s = v["content"]?.string { return s }
            throw TokenizerError(.invalidField, file: file, "\(key) must be a string or {\"content\": ...}, found \(v.typeName)")
        }
        self.file = file
        bosToken = try token("bos_token")
        eosToken = try token("eos_token")
        padToken = try token("pad_token")
        unkToken = try token("unk_token")
        if let t = json["chat_template"] {
            if let s = t.string {
                chatTemplate = s
            } else if let list = t.array {
                chatTemplate = list.first(where: { $0["name"]?.string == "default" })?["template"]?.string
                    ?? list.first?["template"]?.string
            }
        }
    }
}
