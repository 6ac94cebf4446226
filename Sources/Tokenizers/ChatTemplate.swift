import Foundation

/// One turn of a conversation. Roles are "system", "user" and "assistant".
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
    public static func system(_ c: String) -> ChatMessage { ChatMessage(role: "system", content: c) }
    public static func user(_ c: String) -> ChatMessage { ChatMessage(role: "user", content: c) }
    public static func assistant(_ c: String) -> ChatMessage { ChatMessage(role: "assistant", content: c) }
}

/// Ids of a rendered conversation and, for supervised fine-tuning, which of them the assistant wrote
/// (its replies and the end-of-turn token that closes each).
public struct ChatEncoding: Sendable, Equatable {
    public var ids: [Int]
    public var assistantMask: [Bool]
}

/// Chat formats rendered natively (no Jinja engine): the output equals what transformers'
/// `apply_chat_template` renders from the official templates of these families.
public struct ChatTemplate: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// `<|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>`...
        case llama3
        /// Qwen2 / ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n`..., with a default system turn.
        case chatml
        /// Llama-2: `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>`...
        case llama2
        /// For models trained from scratch: `User: {q}\nAssistant: {a}{eos}\n`...
        case plain
    }

    public var format: Format
    /// ChatML only: the system turn inserted when the conversation has none (nil: none inserted).
    public var defaultSystemPrompt: String?

    public init(format: Format, defaultSystemPrompt: String? = nil) {
        self.format = format
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Recognises the format of a Jinja chat template source.
    public init?(recognizing source: String) {
        if source.contains("<|start_header_id|>") {
            self.init(format: .llama3)
        } else if source.contains("<|im_start|>") {
            var system: String?
            for candidate in ["You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "You are a helpful assistant."]
            where source.contains(candidate) {
                system = candidate
                break
            }
            self.init(format: .chatml, defaultSystemPrompt: system)
        } else if source.contains("[INST]") {
            self.init(format: .llama2)
        } else {
            return nil
        }
    }

    /// The template of a tokenizer: from its tokenizer_config.json chat_template, else from the special
    /// tokens its vocabulary has (Llama-3 headers, ChatML), else nil.
    public init?(for tokenizer: Tokenizer) {
        if let source = tokenizer.config?.chatTemplate {
            self.init(recognizing: source)
        } else if tokenizer.tokenID(for: "<|start_header_id|>") != nil {
            self.init(format: .llama3)
        } else if tokenizer.tokenID(for: "<|im_start|>") != nil {
            self.init(format: .chatml, defaultSystemPrompt: "You are a helpful assistant.")
        } else {
            return nil
        }
    }

    struct Part { var text: String; var assistant: Bool }

    /// Python's str.strip() (Jinja's trim): Unicode whitespace and the ASCII separators \x1c-\x1f.
    static func strip(_ s: String) -> String {
        let u = Array(s.unicodeScalars)
        func ws(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }
        var a = 0, b = u.count
        while a < b, ws(u[a]) { a += 1 }
        while b > a, ws(u[b - 1]) { b -= 1 }
        return String(String.UnicodeScalarView(u[a..<b]))
    }

    func parts(_ messages: [ChatMessage], addGenerationPrompt: Bool, bos: String, eos: String) throws -> [Part] {
        var parts: [Part] = []
        func add(_ s: String, _ assistant: Bool = false) { parts.append(Part(text: s, assistant: assistant)) }
        switch format {
        case .llama3:
            add(bos)
            for m in messages {
                add("<|start_header_id|>\(m.role)<|end_header_id|>\n\n")
                add(Self.strip(m.content) + "<|eot_id|>", m.role == "assistant")
            }
            if addGenerationPrompt { add("<|start_header_id|>assistant<|end_header_id|>\n\n") }
        case .chatml:
            if let system = defaultSystemPrompt, let first = messages.first, first.role != "system" {
                add("<|im_start|>system\n\(system)<|im_end|>\n")
            }
            for m in messages {
                add("<|im_start|>\(m.role)\n")
                add(m.content + "<|im_end|>", m.role == "assistant")
                add("\n")
            }
            if addGenerationPrompt { add("<|im_start|>assistant\n") }
        case .llama2:
            var turns = messages
            var system: String?
            if turns.first?.role == "system" { system = turns.removeFirst().content }
            for (i, m) in turns.enumerated() {
                guard (m.role == "user") == (i % 2 == 0), m.role == "user" || m.role == "assistant" else {
                    throw TokenizerError(.invalidArgument, file: "<chat>", "Llama-2 conversations must alternate user/assistant after an optional system turn (turn \(i) is \(m.role))")
                }
                var content = m.content
                if i == 0, let system { content = "<<SYS>>\n\(system)\n<</SYS>>\n\n" + content }
                if m.role == "user" {
                    add(bos + "[INST] " + Self.strip(content) + " [/INST]")
                } else {
                    add(" ")
                    add(Self.strip(content) + " " + eos, true)
                }
            }
        case .plain:
            for m in messages {
                switch m.role {
                case "assistant":
                    add("Assistant: ")
                    add(m.content + eos, true)
                    add("\n")
                case "user": add("User: \(m.content)\n")
                case "system": add("System: \(m.content)\n")
                default: add("\(m.role.prefix(1).uppercased() + m.role.dropFirst()): \(m.content)\n")
                }
            }
            if addGenerationPrompt { add("Assistant:") }
        }
        return parts
    }

    /// The conversation as text (what `apply_chat_template(tokenize=False)` returns).
    public func render(_ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool = false) throws -> String {
        let (bos, eos) = try specialStrings(tokenizer)
        return try parts(messages, addGenerationPrompt: addGenerationPrompt, bos: bos, eos: eos).map(\.text).joined()
    }

    func specialStrings(_ tokenizer: Tokenizer) throws -> (String, String) {
        func name(_ id: Int?) -> String? { id.flatMap { tokenizer.token(for: $0) } }
        switch format {
        case .llama3:
            return (tokenizer.config?.bosToken ?? "<|begin_of_text|>", "<|eot_id|>")
        case .chatml:
            return ("", "<|im_end|>")
        case .llama2, .plain:
            let bos = name(tokenizer.bosTokenID) ?? ""
            guard let eos = name(tokenizer.eosTokenIDs.first) else {
                throw TokenizerError(.missingSpecialToken, file: tokenizer.source, "the \(format.rawValue) chat format needs an end-of-sequence token (set eos_token in tokenizer_config.json)")
            }
            return (bos, eos)
        }
    }

    /// Renders and encodes a conversation. The ids equal encoding the rendered text without added
    /// special tokens; the mask marks the tokens that the assistant spans (found by encoding the text up
    /// to the start and end of each span: a token crossing a span's start counts as the assistant's).
    public func encode(_ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool = false) throws -> ChatEncoding {
        let (bos, eos) = try specialStrings(tokenizer)
        let parts = try parts(messages, addGenerationPrompt: addGenerationPrompt, bos: bos, eos: eos)
        let text = parts.map(\.text).joined()
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        var mask = [Bool](repeating: false, count: ids.count)
        func commonPrefix(_ prefix: String) -> Int {
            let p = tokenizer.encode(prefix, addSpecialTokens: false)
            var n = 0
            while n < p.count, n < ids.count, p[n] == ids[n] { n += 1 }
            return n
        }
        var offset = ""
        for part in parts {
            if part.assistant {
                let start = commonPrefix(offset)
                let end = commonPrefix(offset + part.text)
                for i in start..<max(start, end) { mask[i] = true }
            }
            offset += part.text
        }
        return ChatEncoding(ids: ids, assistantMask: mask)
    }

    /// One user turn and the assistant's answer, split into the ids before the answer and the
    /// answer's ids (its end-of-turn token included): the unit SFT trains on and scoring scores.
    public func encodePair(prompt: String, response: String, tokenizer: Tokenizer) throws -> (prompt: [Int], response: [Int]) {
        let e = try encode([.user(prompt), .assistant(response)], tokenizer: tokenizer)
        guard let first = e.assistantMask.firstIndex(of: true), let last = e.assistantMask.lastIndex(of: true) else {
            throw TokenizerError(.invalidArgument, file: tokenizer.source,
                                 "the \(format.rawValue) chat template marked no answer tokens for \(response.prefix(60).debugDescription)")
        }
        return (Array(e.ids[..<first]), Array(e.ids[first...last]))
    }
}
