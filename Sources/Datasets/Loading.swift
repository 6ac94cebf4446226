import Engine
import Foundation

/// A problem with a data file, located as precisely as known: `file:line: field 'x': message`.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int? = nil, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        s += ": "
        if let field { s += "field '\(field)': " }
        return s + message
    }
}

/// The record formats the loaders read, named after the datasets that use them.
public enum DataFormat: String, CaseIterable, Sendable, Codable {
    /// `question`, `answer`, optional `paraphrased_answer`, `perturbed_answer` (list), `paraphrased_question`.
    case tofu
    /// `question`, `answer` ending in `#### <number>`.
    case gsm8k
    /// `messages`: a list of `{role, content}`.
    case messages
    /// `prompt`, `response` (`completion` is accepted for `response`).
    case promptResponse = "prompt-response"
    /// `prompt`, `chosen`, `rejected`.
    case dpo
    /// `text`.
    case text
    /// `prompt`, `compliance`, `target`, `refusal` (the probability-mass experiment).
    case mass
    /// Pretraining documents: each record has `kind` `text` (with `text`) or `chat` (with `prompt`, `response`).
    case documents

    /// The format of a record with these keys, or nil when none fits.
    public static func detect(keys: Set<String>, answer: String? = nil) -> DataFormat? {
        if keys.contains("messages") { return .messages }
        if keys.contains("chosen") && keys.contains("rejected") { return .dpo }
        if keys.contains("compliance") && keys.contains("target") && keys.contains("refusal") { return .mass }
        if keys.contains("kind") && (keys.contains("text") || keys.contains("prompt")) { return .documents }
        if keys.contains("question") && keys.contains("answer") {
            if keys.contains("paraphrased_answer") || keys.contains("perturbed_answer") { return .tofu }
            if let answer, MathProblem.finalAnswer(in: answer) != nil { return .gsm8k }
            return .tofu
        }
        if keys.contains("prompt") && (keys.contains("response") || keys.contains("completion")) { return .promptResponse }
        if keys.contains("text") { return .text }
        return nil
    }
}

/// One record of any format.
public enum DataRecord: Equatable, Sendable {
    case entityQA(EntityQA)
    case math(MathProblem)
    case conversation(Conversation)
    case example(Example)
    case preference(PreferencePair)
    case text(String)
    case mass(MassItem)
    case document(PretrainDocument)

    /// The record as a prompt/response pair for supervised training, when it is one.
    public var example: Example? {
        switch self {
        case .entityQA(let q): return q.example
        case .math(let m): return m.example
        case .conversation(let c): return c.example
        case .example(let e): return e
        case .preference(let p): return Example(prompt: p.prompt, response: p.chosen)
        case .text: return nil
        case .mass: return nil
        case .document(let d):
            if case .chat(let p, let r) = d.document { return Example(prompt: p, response: r) }
            return nil
        }
    }

    public var textFields: [(name: String, text: String)] {
        switch self {
        case .entityQA(let q): return q.textFields
        case .math(let m): return m.textFields
        case .conversation(let c): return c.textFields
        case .example(let e): return e.textFields
        case .preference(let p): return p.textFields
        case .text(let t): return [("text", t)]
        case .mass(let m): return m.textFields
        case .document(let d): return d.textFields
        }
    }
}

/// How to read a file.
public struct LoadOptions: Sendable {
    /// The format; nil detects it from the first readable record.
    public var format: DataFormat?
    /// Skip records that cannot be read (counted and reported) instead of stopping at the first.
    public var skipBadRecords: Bool
    /// The largest record (one JSONL line, or one element of a JSON array) accepted, in bytes. The
    /// reader never holds more than this plus one chunk in memory.
    public var maxRecordBytes: Int
    /// Bytes read from the file at a time.
    public var chunkSize: Int
    /// The memory the in-memory loaders (`loadRecords`, `loadExamples`, ...) may assume, in
    /// bytes; nil means `Engine.MemoryBudget` (physical memory or `PALIMPSEST_MEMORY_LIMIT`).
    public var memoryLimit: Int?

    public init(format: DataFormat? = nil, skipBadRecords: Bool = false, maxRecordBytes: Int = 16 << 20, chunkSize: Int = 1 << 16,
                memoryLimit: Int? = nil) {
        self.format = format
        self.skipBadRecords = skipBadRecords
        self.maxRecordBytes = maxRecordBytes
        self.chunkSize = chunkSize
        self.memoryLimit = memoryLimit
    }
}

/// What a read found.
public struct LoadReport: Sendable, Equatable {
    public var file: String
    public var format: DataFormat?
    public var records = 0
    public var skipped = 0
    /// The first few errors of skipped records.
    public var errors: [DataError] = []
}

/// Reads a JSONL file (one object per line) or a JSON file holding an array of objects, one
/// record at a time with a bounded buffer, so files larger than memory can be read.
public final class RecordReader {
    public let url: URL
    public let options: LoadOptions
    public private(set) var report: LoadReport
    private var source: RecordSource
    private var pending: DataRecord?

    /// Opens `url` and, unless the format is given, reads up to the first good record to detect it.
    public init(url: URL, options: LoadOptions = LoadOptions()) throws {
        self.url = url
        self.options = options
        report = LoadReport(file: url.path, format: options.format)
        source = try RecordSource(url: url, options: options)
        if options.format == nil {
            pending = try readRecord()
        }
    }

    /// The format in use: given, or detected (nil only for a file with no good record).
    public var format: DataFormat? { report.format }

    /// The next record, or nil at the end of the file.
    public func next() throws -> DataRecord? {
        if let p = pending {
            pending = nil
            return p
        }
        return try readRecord()
    }

    private func readRecord() throws -> DataRecord? {
        while true {
            let raw: RawRecord?
            do {
                raw = try source.next()
            } catch let e as DataError where options.skipBadRecords && source.canContinue {
                skip(e)
                continue
            }
            guard let raw else { return nil }
            do {
                let record = try parse(raw)
                report.records += 1
                return record
            } catch let e as DataError where options.skipBadRecords {
                skip(e)
            }
        }
    }

    private func skip(_ e: DataError) {
        report.skipped += 1
        if report.errors.count < 10 { report.errors.append(e) }
    }

    private func parse(_ raw: RawRecord) throws -> DataRecord {
        let obj: [String: Any]
        do {
            let any = try JSONSerialization.jsonObject(with: raw.bytes, options: [.fragmentsAllowed])
            guard let o = any as? [String: Any] else {
                throw DataError(file: url.path, line: raw.line, message: "expected a JSON object, found \(jsonTypeName(any))")
            }
            obj = o
        } catch let e as DataError {
            throw e
        } catch {
            throw DataError(file: url.path, line: raw.line, message: "invalid JSON (\(Self.shortDescription(error)))")
        }
        let f = Fields(obj: obj, file: url.path, line: raw.line)
        let format: DataFormat
        if let known = report.format {
            format = known
        } else {
            guard let d = DataFormat.detect(keys: Set(obj.keys), answer: obj["answer"] as? String) else {
                throw DataError(file: url.path, line: raw.line,
                                message: "cannot detect the format from the keys [\(obj.keys.sorted().joined(separator: ", "))]; give the format explicitly (one of \(DataFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            format = d
        }
        let record = try Self.record(format, f)
        if report.format == nil { report.format = format }
        return record
    }

    static func record(_ format: DataFormat, _ f: Fields) throws -> DataRecord {
        switch format {
        case .tofu:
            return .entityQA(EntityQA(
                question: try f.string("question"), answer: try f.string("answer"),
                paraphrasedQuestion: try f.optionalString("paraphrased_question"),
                paraphrasedAnswer: try f.optionalString("paraphrased_answer"),
                perturbedAnswers: try f.optionalStrings("perturbed_answer") ?? [],
                entity: try f.optionalString("entity"), attribute: try f.optionalString("attribute")))
        case .gsm8k:
            let m = MathProblem(question: try f.string("question"), answer: try f.string("answer"))
            guard m.finalAnswer != nil else {
                throw f.error("answer", "expected a solution ending in '#### <number>'")
            }
            return .math(m)
        case .messages:
            return .conversation(Conversation(messages: try f.messages("messages")))
        case .promptResponse:
            let response = f.obj["response"] != nil || f.obj["completion"] == nil ? try f.string("response") : try f.string("completion")
            return .example(Example(prompt: try f.string("prompt"), response: response, metadata: try f.metadata()))
        case .dpo:
            // `chosen`/`rejected` are strings, or chats whose last assistant message is the answer
            // (then the prompt may be left out and is the chat's user turns).
            let chosen = try f.answer("chosen"), rejected = try f.answer("rejected")
            let prompt = try f.optionalString("prompt") ?? chosen.prompt
            guard let prompt else { throw f.error("prompt", "missing (and `chosen` is not a chat with a user message)") }
            return .preference(PreferencePair(prompt: prompt, chosen: chosen.answer, rejected: rejected.answer))
        case .text:
            return .text(try f.string("text"))
        case .mass:
            return .mass(MassItem(prompt: try f.string("prompt"), compliance: try f.string("compliance"),
                                  target: try f.string("target"), refusal: try f.string("refusal")))
        case .documents:
            let source = try f.optionalString("source") ?? ""
            let kind = try f.optionalString("kind") ?? (f.obj["text"] != nil ? "text" : "chat")
            switch kind {
            case "text": return .document(PretrainDocument(document: .text(try f.string("text")), source: source))
            case "chat":
                return .document(PretrainDocument(document: .chat(prompt: try f.string("prompt"), response: try f.string("response")),
                                                  source: source))
            default: throw f.error("kind", "expected \"text\" or \"chat\", found \"\(kind)\"")
            }
        }
    }

    static func shortDescription(_ error: Error) -> String {
        let ns = error as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }
}

func jsonTypeName(_ v: Any) -> String {
    switch v {
    case is String: return "a string"
    case is NSNull: return "null"
    case is [Any]: return "an array"
    case is [String: Any]: return "an object"
    case let n as NSNumber: return String(describing: type(of: n)).contains("Bool") ? "a boolean" : "a number"
    default: return "\(type(of: v))"
    }
}

/// Typed access to the fields of a record, with errors that name the field.
struct Fields {
    let obj: [String: Any]
    let file: String
    let line: Int
    var prefix = ""

    func error(_ field: String, _ message: String) -> DataError {
        DataError(file: file, line: line, field: prefix + field, message: message)
    }

    func string(_ key: String) throws -> String {
        guard let v = obj[key] else { throw error(key, "missing") }
        guard let s = v as? String else { throw error(key, "expected a string, found \(jsonTypeName(v))") }
        return s
    }

    func optionalString(_ key: String) throws -> String? {
        guard let v = obj[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw error(key, "expected a string, found \(jsonTypeName(v))") }
        return s
    }

    /// A list of strings; a single string is taken as a list of one.
    func optionalStrings(_ key: String) throws -> [String]? {
        guard let v = obj[key], !(v is NSNull) else { return nil }
        if let s = v as? String { return [s] }
        guard let a = v as? [Any] else { throw error(key, "expected an array of strings, found \(jsonTypeName(v))") }
        return try a.enumerated().map { i, e in
            guard let s = e as? String else { throw error("\(key)[\(i)]", "expected a string, found \(jsonTypeName(e))") }
            return s
        }
    }

    func messages(_ key: String) throws -> [ChatMessage] {
        guard let v = obj[key] else { throw error(key, "missing") }
        guard let list = v as? [Any] else { throw error(key, "expected an array, found \(jsonTypeName(v))") }
        var messages: [ChatMessage] = []
        for (i, m) in list.enumerated() {
            guard let o = m as? [String: Any] else { throw error("\(key)[\(i)]", "expected an object, found \(jsonTypeName(m))") }
            let mf = Fields(obj: o, file: file, line: line, prefix: prefix + "\(key)[\(i)].")
            messages.append(ChatMessage(role: try mf.string("role"), content: try mf.string("content")))
        }
        guard !messages.isEmpty else { throw error(key, "empty") }
        return messages
    }

    /// A response given as a string, or as a chat ending in an assistant message.
    func answer(_ key: String) throws -> (answer: String, prompt: String?) {
        if let s = obj[key] as? String { return (s, nil) }
        guard let v = obj[key] else { throw error(key, "missing") }
        guard v is [Any] else { throw error(key, "expected a string or a list of messages, found \(jsonTypeName(v))") }
        let chat = Conversation(messages: try messages(key))
        guard let e = chat.example else { throw error(key, "expected a chat with a user and an assistant message") }
        return (e.response, e.prompt)
    }

    func metadata() throws -> [String: String] {
        guard let v = obj["metadata"], !(v is NSNull) else { return [:] }
        guard let o = v as? [String: Any] else { throw error("metadata", "expected an object, found \(jsonTypeName(v))") }
        var m: [String: String] = [:]
        for (k, x) in o {
            if let s = x as? String { m[k] = s } else if let n = x as? NSNumber { m[k] = n.stringValue } else {
                throw error("metadata.\(k)", "expected a string or number, found \(jsonTypeName(x))")
            }
        }
        return m
    }
}

/// The bytes of one record and the line it starts on (1-based).
struct RawRecord {
    let bytes: Data
    let line: Int
}

/// Splits a file into records: lines of a JSONL file, or elements of a top-level JSON array.
struct RecordSource {
    private let handle: FileHandle
    private let path: String
    private let maxRecord: Int
    private let chunkSize: Int
    private var buffer: [UInt8] = []
    private var start = 0       // first unconsumed byte of `buffer`
    private var eof = false
    private var line = 1        // line of buffer[start]
    private var isArray = false
    private var arrayDone = false
    /// False after a structural error in a JSON array, after which nothing more can be read.
    private(set) var canContinue = true

    init(url: URL, options: LoadOptions) throws {
        path = url.path
        guard options.maxRecordBytes > 0, options.chunkSize > 0 else {
            throw DataError(file: url.path, message: "maxRecordBytes and chunkSize must be > 0")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw DataError(file: url.path, message: "no such file")
        }
        guard !isDir.boolValue else { throw DataError(file: url.path, message: "is a directory, expected a JSON or JSONL file") }
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw DataError(file: url.path, message: "cannot open: \(error.localizedDescription)")
        }
        maxRecord = options.maxRecordBytes
        chunkSize = options.chunkSize
        // Skip a UTF-8 byte order mark, then peek the first non-blank byte: '[' means a JSON array.
        while buffer.count < 3, try fill() {}
        if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        var first: UInt8?
        while first == nil {
            if start >= buffer.count, try !fill() { break }
            while start < buffer.count {
                let b = buffer[start]
                if b == 0x20 || b == 0x09 || b == 0x0D { start += 1; continue }
                if b == 0x0A { start += 1; line += 1; continue }
                first = b
                break
            }
        }
        if first == UInt8(ascii: "[") {
            isArray = true
            start += 1
        }
    }

    /// Appends one chunk; false at the end of the file.
    private mutating func fill() throws -> Bool {
        if eof { return false }
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        let data: Data?
        do {
            data = try handle.read(upToCount: chunkSize)
        } catch {
            canContinue = false
            throw DataError(file: path, line: line, message: "read failed: \(error.localizedDescription)")
        }
        guard let data, !data.isEmpty else {
            eof = true
            try? handle.close()
            return false
        }
        buffer.append(contentsOf: data)
        return true
    }

    mutating func next() throws -> RawRecord? {
        isArray ? try nextElement() : try nextLine()
    }

    private mutating func nextLine() throws -> RawRecord? {
        while true {
            var scan = start
            var found: Int?
            while found == nil {
                if let i = buffer[scan...].firstIndex(of: 0x0A) {
                    found = i
                } else {
                    scan = buffer.count
                    if buffer.count - start > maxRecord {
                        let l = line
                        try discardLine()
                        throw DataError(file: path, line: l, message: "line longer than \(maxRecord) bytes")
                    }
                    let base = start
                    if try !fill() { break }
                    scan -= base - start  // fill may have moved the bytes down
                }
            }
            let end = found ?? buffer.count
            if start >= end && found == nil { return nil }
            let l = line
            var bytes = buffer[start..<end]
            start = found.map { $0 + 1 } ?? end
            line += 1
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }  // blank lines are not records
            if bytes.count > maxRecord {
                throw DataError(file: path, line: l, message: "line longer than \(maxRecord) bytes")
            }
            return RawRecord(bytes: Data(bytes), line: l)
        }
    }

    /// Drops the rest of an over-long line without keeping it.
    private mutating func discardLine() throws {
        while true {
            if let i = buffer[start...].firstIndex(of: 0x0A) {
                start = i + 1
                line += 1
                return
            }
            start = buffer.count
            if try !fill() { return }
        }
    }

    private mutating func byte() throws -> UInt8? {
        if start >= buffer.count, try !fill() { return nil }
        return buffer[start]
    }

    private mutating func nextElement() throws -> RawRecord? {
        if arrayDone { return nil }
        // Skip blanks and one comma between elements.
        var sawComma = false
        while let b = try byte() {
            if b == 0x0A { line += 1 } else if b == UInt8(ascii: ",") && !sawComma { sawComma = true } else if !(b == 0x20 || b == 0x09 || b == 0x0D) { break }
            start += 1
        }
        guard let first = try byte() else {
            canContinue = false
            throw DataError(file: path, line: line, message: "unexpected end of file inside the top-level JSON array")
        }
        if first == UInt8(ascii: "]") {
            start += 1
            arrayDone = true
            while let b = try byte() {
                if b == 0x0A { line += 1 } else if !(b == 0x20 || b == 0x09 || b == 0x0D) {
                    canContinue = false
                    throw DataError(file: path, line: line, message: "unexpected data after the top-level JSON array")
                }
                start += 1
            }
            return nil
        }
        let l = line
        var out: [UInt8] = []
        var depth = 0, inString = false, escaped = false
        while let b = try byte() {
            out.append(b)
            start += 1
            if out.count > maxRecord {
                canContinue = false
                throw DataError(file: path, line: l, message: "array element longer than \(maxRecord) bytes")
            }
            if b == 0x0A { line += 1 }
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "]") where depth == 0:  // the array's end after a scalar element
                out.removeLast()
                start -= 1
                return RawRecord(bytes: Data(out), line: l)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth < 0 {
                    canContinue = false
                    throw DataError(file: path, line: line, message: "unbalanced brackets in the JSON array")
                }
            case UInt8(ascii: ","):
                if depth == 0 {  // a scalar element: give it back without the comma
                    out.removeLast()
                    start -= 1
                    return RawRecord(bytes: Data(out), line: l)
                }
            default: break
            }
            if depth == 0 && (b == UInt8(ascii: "}") || b == UInt8(ascii: "]")) { return RawRecord(bytes: Data(out), line: l) }
        }
        canContinue = false
        throw DataError(file: path, line: l, message: "unexpected end of file inside a JSON array element")
    }
}

/// Reads every record of `url`, calling `body` for each; returns what was read and skipped.
@discardableResult
public func forEachRecord(in url: URL, options: LoadOptions = LoadOptions(), _ body: (DataRecord) throws -> Void) throws -> LoadReport {
    let reader = try RecordReader(url: url, options: options)
    while let r = try reader.next() { try body(r) }
    return reader.report
}

/// Refuses, before reading, a file whose records could not fit in memory: the records of a file
/// take at least its size (see `Engine.MemoryBudget`; `forEachRecord` streams any size).
func requireMemory(toLoad url: URL, _ options: LoadOptions) throws {
    guard let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber else { return }
    do {
        var environment = ProcessInfo.processInfo.environment
        if let limit = options.memoryLimit { environment[MemoryBudget.environmentVariable] = String(limit) }
        try MemoryBudget.require(size.intValue, for: "loading every record of the file (\(MemoryBudget.format(size.intValue)) on disk) into memory",
                                 environment: environment)
    } catch let e as MemoryBudgetError {
        throw DataError(file: url.path, message: e.message + "; or stream it with forEachRecord")
    }
}

/// All records of a file that fits in memory (a larger file is refused before reading).
public func loadRecords(from url: URL, options: LoadOptions = LoadOptions()) throws -> (records: [DataRecord], report: LoadReport) {
    try requireMemory(toLoad: url, options)
    var out: [DataRecord] = []
    let report = try forEachRecord(in: url, options: options) { out.append($0) }
    return (out, report)
}

/// Prompt/response pairs from any format that has them (prompt/response, chat messages, TOFU,
/// GSM8K, DPO's chosen answer, chat documents).
public func loadExamples(from url: URL, options: LoadOptions = LoadOptions()) throws -> [Example] {
    try requireMemory(toLoad: url, options)
    var out: [Example] = []
    var line = 0
    try forEachRecord(in: url, options: options) { r in
        line += 1
        guard let e = r.example else {
            throw DataError(file: url.path, message: "record \(line) has no prompt/response pair")
        }
        out.append(e)
    }
    return out
}

private func loadTyped<T>(_ url: URL, _ options: LoadOptions, _ what: String, _ pick: (DataRecord) -> T?) throws -> [T] {
    try requireMemory(toLoad: url, options)
    var out: [T] = []
    let report = try forEachRecord(in: url, options: options) { r in
        guard let t = pick(r) else { throw DataError(file: url.path, message: "expected \(what) records") }
        out.append(t)
    }
    _ = report
    return out
}

/// TOFU-format records.
public func loadEntityQA(from url: URL, options: LoadOptions = LoadOptions(format: .tofu)) throws -> [EntityQA] {
    try loadTyped(url, options, "TOFU (question/answer)") { if case .entityQA(let q) = $0 { return q } else { return nil } }
}

/// GSM8K-format problems.
public func loadMathProblems(from url: URL, options: LoadOptions = LoadOptions(format: .gsm8k)) throws -> [MathProblem] {
    try loadTyped(url, options, "GSM8K (question/answer with ####)") { if case .math(let m) = $0 { return m } else { return nil } }
}

/// DPO pairs.
public func loadPreferencePairs(from url: URL, options: LoadOptions = LoadOptions(format: .dpo)) throws -> [PreferencePair] {
    try loadTyped(url, options, "DPO (prompt/chosen/rejected)") { if case .preference(let p) = $0 { return p } else { return nil } }
}

/// Probability-mass items.
public func loadMassItems(from url: URL, options: LoadOptions = LoadOptions(format: .mass)) throws -> [MassItem] {
    try loadTyped(url, options, "mass (prompt/compliance/target/refusal)") { if case .mass(let m) = $0 { return m } else { return nil } }
}

/// Pretraining documents from a documents file, a `{"text"}` file, or any prompt/response format
/// (read as chat documents).
public func loadDocuments(from url: URL, options: LoadOptions = LoadOptions()) throws -> [Document] {
    try loadTyped(url, options, "documents") { r in
        switch r {
        case .document(let d): return d.document
        case .text(let t): return .text(t)
        default: return r.example.map { .chat(prompt: $0.prompt, response: $0.response) }
        }
    }
}
