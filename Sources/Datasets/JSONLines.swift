import Foundation
import JSONSupport

/// Hand-written JSON output with a fixed key order, so that a record always gives the same bytes.
enum JSONText {
    enum Value {
        case string(String)
        case array([Value])
        case object([(String, Value)])
        case int(Int)
    }

    /// An object with the given keys, sorted alphabetically; nil values are left out.
    static func object(_ fields: [(String, Value?)], into out: inout String) {
        let present = fields.compactMap { k, v in v.map { (k, $0) } }.sorted { $0.0 < $1.0 }
        out.append("{")
        for (n, (k, v)) in present.enumerated() {
            if n > 0 { out.append(",") }
            appendJSONQuoted(k, to: &out)
            out.append(":")
            write(v, into: &out)
        }
        out.append("}")
    }

    static func write(_ v: Value, into out: inout String) {
        switch v {
        case .string(let s): appendJSONQuoted(s, to: &out)
        case .int(let i): out.append(String(i))
        case .array(let a):
            out.append("[")
            for (n, e) in a.enumerated() {
                if n > 0 { out.append(",") }
                write(e, into: &out)
            }
            out.append("]")
        case .object(let fields): object(fields.map { ($0.0, $0.1) }, into: &out)
        }
    }
}

/// A record that writes itself as one JSON line (without the newline).
public protocol JSONLineWritable {
    func jsonLine() -> String
}

extension JSONLineWritable {
    static func line(_ fields: [(String, JSONText.Value?)]) -> String {
        var out = ""
        JSONText.object(fields, into: &out)
        return out
    }
}

private func metadataValue(_ m: [String: String]) -> JSONText.Value? {
    m.isEmpty ? nil : .object(m.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
}

extension Example: JSONLineWritable {
    /// `{"metadata":{...},"prompt":...,"response":...}`
    public func jsonLine() -> String {
        Self.line([("prompt", .string(prompt)), ("response", .string(response)), ("metadata", metadataValue(metadata))])
    }
}

extension EntityQA: JSONLineWritable {
    /// TOFU keys (`question`, `answer`, `paraphrased_question`, `paraphrased_answer`,
    /// `perturbed_answer`) plus `entity` and `attribute`.
    public func jsonLine() -> String {
        Self.line([
            ("question", .string(question)), ("answer", .string(answer)),
            ("paraphrased_question", paraphrasedQuestion.map { .string($0) }),
            ("paraphrased_answer", paraphrasedAnswer.map { .string($0) }),
            ("perturbed_answer", perturbedAnswers.isEmpty ? nil : .array(perturbedAnswers.map { .string($0) })),
            ("entity", entity.map { .string($0) }), ("attribute", attribute.map { .string($0) }),
        ])
    }
}

extension MathProblem: JSONLineWritable {
    /// GSM8K keys: `{"answer":...,"question":...}`.
    public func jsonLine() -> String { Self.line([("question", .string(question)), ("answer", .string(answer))]) }
}

extension MassItem: JSONLineWritable {
    public func jsonLine() -> String {
        Self.line([("prompt", .string(prompt)), ("compliance", .string(compliance)),
                   ("target", .string(target)), ("refusal", .string(refusal))])
    }
}

extension PreferencePair: JSONLineWritable {
    /// DPO keys: `{"chosen":...,"prompt":...,"rejected":...}`.
    public func jsonLine() -> String {
        Self.line([("prompt", .string(prompt)), ("chosen", .string(chosen)), ("rejected", .string(rejected))])
    }
}

extension Conversation: JSONLineWritable {
    public func jsonLine() -> String {
        Self.line([("messages", .array(messages.map { .object([("content", .string($0.content)), ("role", .string($0.role))]) }))])
    }
}

extension PretrainDocument: JSONLineWritable {
    /// `{"kind":"text","source":...,"text":...}` or `{"kind":"chat","prompt":...,"response":...,"source":...}`.
    public func jsonLine() -> String {
        switch document {
        case .text(let t):
            return Self.line([("kind", .string("text")), ("text", .string(t)), ("source", .string(source))])
        case .chat(let p, let r):
            return Self.line([("kind", .string("chat")), ("prompt", .string(p)), ("response", .string(r)),
                              ("source", .string(source))])
        }
    }
}

/// Plain text in the `{"text": ...}` format.
public struct TextRecord: Equatable, Hashable, Sendable, JSONLineWritable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public func jsonLine() -> String { Self.line([("text", .string(text))]) }
}

/// JSONL bytes: one line per record, each ending in a newline.
public func jsonLines<R: JSONLineWritable>(_ records: [R]) -> String {
    var out = ""
    out.reserveCapacity(records.count * 160)
    for r in records {
        out.append(r.jsonLine())
        out.append("\n")
    }
    return out
}

/// Writes `bytes` to `url` atomically: into a temporary file in the same directory, flushed to
/// disk, then renamed over the destination, so a reader never sees a half-written file even
/// after a crash. Creates parent directories. On failure the previous content is untouched.
public func writeAtomically(_ bytes: Data, to url: URL) throws {
    let dir = url.deletingLastPathComponent()
    do {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    } catch {
        throw DataError(file: dir.path, message: "cannot create the directory: \(error.localizedDescription)")
    }
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw DataError(file: tmp.path, message: "cannot create: \(String(cString: strerror(errno)))") }
    var failure: String? = nil
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 { if errno == EINTR { continue }; failure = String(cString: strerror(errno)); return }
            offset += n
        }
    }
    if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
    close(fd)
    if let failure {
        unlink(tmp.path)
        throw DataError(file: url.path, message: "write failed (\(failure)); the previous content is untouched")
    }
    guard rename(tmp.path, url.path) == 0 else {
        let err = String(cString: strerror(errno))
        unlink(tmp.path)
        throw DataError(file: url.path, message: "cannot move the written file into place: \(err)")
    }
}

/// Writes records as JSONL atomically and returns the bytes written.
@discardableResult
public func writeJSONL<R: JSONLineWritable>(_ records: [R], to url: URL) throws -> Data {
    let data = Data(jsonLines(records).utf8)
    try writeAtomically(data, to: url)
    return data
}
