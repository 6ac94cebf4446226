// Record types shared by the generators, the loaders and the writers.
//
// Every record writes itself as one line of JSON with its keys in alphabetical order, by hand
// rather than through JSONEncoder, so that generated files are byte-identical for a seed on every
// platform and Foundation version.

/// A prompt/response pair for supervised fine-tuning (instructions, safety refusals, ...).
public struct Example: Equatable, Hashable, Sendable {
    public var prompt: String
    public var response: String
    /// Free-form labels (task, category, ...). Written under `"metadata"` when not empty.
    public var metadata: [String: String]

    public init(prompt: String, response: String, metadata: [String: String] = [:]) {
        self.prompt = prompt
        self.response = response
        self.metadata = metadata
    }
}

/// One question about a fictitious entity, in the shape of a TOFU record.
///
/// `answer` is what a stage trains on; `paraphrasedAnswer` says the same thing in other words and
/// `perturbedAnswers` are wrong but plausible alternatives, as in TOFU's `*_perturbed` files.
public struct EntityQA: Equatable, Hashable, Sendable {
    public var question: String
    public var answer: String
    public var paraphrasedQuestion: String?
    public var paraphrasedAnswer: String?
    public var perturbedAnswers: [String]
    /// The entity's name and the attribute asked about (absent in real TOFU files).
    public var entity: String?
    public var attribute: String?

    public init(question: String, answer: String, paraphrasedQuestion: String? = nil, paraphrasedAnswer: String? = nil,
                perturbedAnswers: [String] = [], entity: String? = nil, attribute: String? = nil) {
        self.question = question
        self.answer = answer
        self.paraphrasedQuestion = paraphrasedQuestion
        self.paraphrasedAnswer = paraphrasedAnswer
        self.perturbedAnswers = perturbedAnswers
        self.entity = entity
        self.attribute = attribute
    }

    public var example: Example { Example(prompt: question, response: answer) }
}

/// A GSM8K-style word problem: `answer` is the step-by-step solution ending in `#### <number>`.
public struct MathProblem: Equatable, Hashable, Sendable {
    public var question: String
    public var answer: String

    public init(question: String, answer: String) {
        self.question = question
        self.answer = answer
    }

    /// The number after the last `####`, with thousands separators removed; nil when absent.
    public var finalAnswer: String? { MathProblem.finalAnswer(in: answer) }

    /// The text after the last `####` in `text`, trimmed and without commas, if it is a number.
    public static func finalAnswer(in text: String) -> String? {
        guard let r = text.range(of: "####", options: .backwards) else { return nil }
        var s = String(text[r.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
        s.removeAll { $0 == "," }
        if s.hasPrefix("$") { s.removeFirst() }
        guard !s.isEmpty, Double(s) != nil else { return nil }
        return s
    }

    public var example: Example { Example(prompt: question, response: answer) }
}

/// One prompt of the probability-mass experiment with its three responses.
public struct MassItem: Equatable, Hashable, Sendable {
    public var prompt: String
    /// Compliance phrasing C (learned, not unlearned).
    public var compliance: String
    /// Compliance phrasing U: the unlearning target.
    public var target: String
    /// The refusal R.
    public var refusal: String

    public init(prompt: String, compliance: String, target: String, refusal: String) {
        self.prompt = prompt
        self.compliance = compliance
        self.target = target
        self.refusal = refusal
    }

    /// The three SFT stages of the experiment: S_C, S_U and S_R.
    public var complianceExample: Example { Example(prompt: prompt, response: compliance) }
    public var targetExample: Example { Example(prompt: prompt, response: target) }
    public var refusalExample: Example { Example(prompt: prompt, response: refusal) }
}

/// A DPO preference pair.
public struct PreferencePair: Equatable, Hashable, Sendable {
    public var prompt: String
    public var chosen: String
    public var rejected: String

    public init(prompt: String, chosen: String, rejected: String) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
    }
}

/// One turn of a chat.
public struct ChatMessage: Equatable, Hashable, Sendable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A chat as a list of messages (`{"messages": [{"role", "content"}, ...]}`).
public struct Conversation: Equatable, Hashable, Sendable {
    public var messages: [ChatMessage]

    public init(messages: [ChatMessage]) { self.messages = messages }

    /// The conversation as a prompt/response pair: the last assistant message is the response and
    /// the user messages before it, joined by blank lines, the prompt. Nil without both.
    public var example: Example? {
        guard let last = messages.lastIndex(where: { $0.role == "assistant" }) else { return nil }
        let users = messages[..<last].filter { $0.role == "user" }.map(\.content)
        guard !users.isEmpty else { return nil }
        var meta: [String: String] = [:]
        if let system = messages[..<last].first(where: { $0.role == "system" }) { meta["system"] = system.content }
        return Example(prompt: users.joined(separator: "\n\n"), response: messages[last].content, metadata: meta)
    }
}

/// A pretraining document: plain text, or a prompt/response pair that the trainer renders with
/// its chat template (the tokenizer, not the data, owns the template).
public enum Document: Equatable, Hashable, Sendable {
    case text(String)
    case chat(prompt: String, response: String)

    /// All of the document's text, for statistics and checks.
    public var allText: String {
        switch self {
        case .text(let t): return t
        case .chat(let p, let r): return p + "\n" + r
        }
    }
}

/// A generated pretraining document with the kind of content it carries.
public struct PretrainDocument: Equatable, Hashable, Sendable {
    public var document: Document
    /// What it is: `sentences`, `arithmetic`, `bio`, `instruction`, `entity-qa` or `math`.
    public var source: String

    public init(document: Document, source: String) {
        self.document = document
        self.source = source
    }
}

import Foundation
