import Foundation
import Testing
@testable import Datasets

/// A temporary file with `text`, removed by the caller via `cleanup`.
private func tempFile(_ text: String, ext: String = "jsonl") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-load-\(UUID().uuidString).\(ext)")
    try Data(text.utf8).write(to: url)
    return url
}

@Suite struct LoaderTests {
    @Test func everyFormatIsDetectedAndRoundTrips() throws {
        let ex = Example(prompt: "Say \"hi\"\nplease", response: "hi\t✓", metadata: ["task": "greet"])
        let qa = EntityQA(question: "Where?", answer: "Here.", paraphrasedQuestion: "Where is it?", paraphrasedAnswer: "It is here.",
                          perturbedAnswers: ["There.", "Nowhere."], entity: "X", attribute: "birthplace")
        let m = MathProblem(question: "1+1?", answer: "1 + 1 = 2\n#### 2")
        let conv = Conversation(messages: [ChatMessage(role: "system", content: "be nice"), ChatMessage(role: "user", content: "q"),
                                           ChatMessage(role: "assistant", content: "a")])
        let pref = PreferencePair(prompt: "p", chosen: "c", rejected: "r")
        let mass = MassItem(prompt: "p", compliance: "c", target: "u", refusal: "r")
        let docs = [PretrainDocument(document: .chat(prompt: "p", response: "r"), source: "math"),
                    PretrainDocument(document: .text("plain"), source: "bio")]
        let cases: [(String, DataFormat, [DataRecord])] = [
            (jsonLines([ex, ex]), .promptResponse, [.example(ex), .example(ex)]),
            (jsonLines([qa]), .tofu, [.entityQA(qa)]),
            (jsonLines([m]), .gsm8k, [.math(m)]),
            (jsonLines([conv]), .messages, [.conversation(conv)]),
            (jsonLines([pref]), .dpo, [.preference(pref)]),
            (jsonLines([mass]), .mass, [.mass(mass)]),
            (jsonLines(docs), .documents, docs.map { .document($0) }),
            (jsonLines([TextRecord("a b"), TextRecord("c")]), .text, [.text("a b"), .text("c")]),
        ]
        for (text, format, expected) in cases {
            let url = try tempFile(text)
            defer { try? FileManager.default.removeItem(at: url) }
            let (records, report) = try loadRecords(from: url)
            #expect(report.format == format)
            #expect(records == expected, "\(format)")
            #expect(report.records == expected.count && report.skipped == 0)
        }
        #expect(conv.example == Example(prompt: "q", response: "a", metadata: ["system": "be nice"]))
    }

    @Test func realDatasetShapes() throws {
        // TOFU's files without perturbations, GSM8K with calculator annotations, chat with extra keys,
        // "completion" instead of "response", a JSON array instead of JSONL, CRLF line ends and blank lines.
        let tofu = try tempFile("{\"question\": \"Who is A?\", \"answer\": \"A is a writer.\"}\r\n\r\n{\"question\": \"Q2\", \"answer\": \"A2\"}\r\n")
        let gsm = try tempFile("{\"question\": \"Natalia sold 48 clips...\", \"answer\": \"48/2 = <<48/2=24>>24\\n#### 72\"}\n")
        let comp = try tempFile("{\"prompt\": \"p\", \"completion\": \"c\", \"id\": 3}")
        let arr = try tempFile("[\n  {\"prompt\": \"p1\", \"chosen\": \"c1 [x]\", \"rejected\": \"r1 {y}\"},\n  {\"prompt\": \"p2\\\"}\", \"chosen\": \"c2\", \"rejected\": \"r2\"}\n]\n", ext: "json")
        defer { for u in [tofu, gsm, comp, arr] { try? FileManager.default.removeItem(at: u) } }
        let q = try loadEntityQA(from: tofu)
        #expect(q.map(\.answer) == ["A is a writer.", "A2"] && q[0].perturbedAnswers.isEmpty)
        let g = try loadMathProblems(from: gsm)
        #expect(g[0].finalAnswer == "72")
        #expect(try loadExamples(from: comp) == [Example(prompt: "p", response: "c")])
        let p = try loadPreferencePairs(from: arr, options: LoadOptions())
        #expect(p == [PreferencePair(prompt: "p1", chosen: "c1 [x]", rejected: "r1 {y}"), PreferencePair(prompt: "p2\"}", chosen: "c2", rejected: "r2")])
        // DPO pairs whose answers are chats (as in many published preference sets), with or without a prompt.
        let chatPref = try tempFile("""
        {"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "bad"}]}
        {"prompt": "Q2", "chosen": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "g2"}], "rejected": "b2"}
        {"chosen": [{"role": "assistant", "content": "x"}], "rejected": "y"}
        """)
        defer { try? FileManager.default.removeItem(at: chatPref) }
        let cp = try loadRecords(from: chatPref, options: LoadOptions(skipBadRecords: true))
        #expect(cp.report.format == .dpo)
        #expect(cp.records == [.preference(PreferencePair(prompt: "Q", chosen: "good", rejected: "bad")),
                               .preference(PreferencePair(prompt: "Q2", chosen: "g2", rejected: "b2"))])
        #expect(cp.report.errors.map(\.field) == ["chosen"] && cp.report.errors.map(\.line) == [3])
        // Math problems also load as SFT examples; TOFU loads as TOFU under auto-detection.
        #expect(try loadExamples(from: gsm).first?.response == "48/2 = <<48/2=24>>24\n#### 72")
        #expect(try RecordReader(url: tofu).format == .tofu)
    }

    @Test func badRecordsNameFileLineAndField() throws {
        let text = """
        {"prompt": "a", "response": "b"}
        {"prompt": "c", "response": 5}

        {"prompt": "d"}
        not json
        [1, 2]
        {"prompt": "e", "response": "f", "metadata": {"k": [1]}}
        {"prompt": "g", "response": "h"}
        """
        let url = try tempFile(text)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try loadRecords(from: url)
            Issue.record("a bad record was accepted")
        } catch let e as DataError {
            #expect(e.file == url.path && e.line == 2 && e.field == "response")
            #expect(e.description == "\(url.path):2: field 'response': expected a string, found a number")
        }
        let (records, report) = try loadRecords(from: url, options: LoadOptions(skipBadRecords: true))
        #expect(records.count == 2 && report.records == 2 && report.skipped == 5)
        #expect(report.errors.map(\.line) == [2, 4, 5, 6, 7])
        #expect(report.errors.map(\.field) == ["response", "response", nil, nil, "metadata.k"])
        #expect(report.errors[1].message == "missing")
        #expect(report.errors[3].message == "expected a JSON object, found an array")
    }

    @Test func formatOverrideAndDetectionFailure() throws {
        let url = try tempFile("{\"question\": \"q\", \"answer\": \"x\\n#### 4\"}\n")
        let odd = try tempFile("{\"foo\": 1}\n")
        defer { try? FileManager.default.removeItem(at: url); try? FileManager.default.removeItem(at: odd) }
        #expect(try RecordReader(url: url).format == .gsm8k)
        let forced = try loadRecords(from: url, options: LoadOptions(format: .tofu))
        #expect(forced.report.format == .tofu)
        #expect(forced.records == [.entityQA(EntityQA(question: "q", answer: "x\n#### 4"))])
        #expect(throws: DataError.self) { _ = try loadRecords(from: url, options: LoadOptions(format: .dpo)) }
        do {
            _ = try RecordReader(url: odd)
            Issue.record("undetectable format accepted")
        } catch let e as DataError {
            #expect(e.line == 1 && e.message.contains("cannot detect the format"))
        }
        // A GSM8K file must end its answers in ####.
        let noMarker = try tempFile("{\"question\": \"q\", \"answer\": \"4\"}\n")
        defer { try? FileManager.default.removeItem(at: noMarker) }
        #expect(throws: DataError.self) { _ = try loadMathProblems(from: noMarker) }
        #expect(throws: DataError.self) { _ = try RecordReader(url: URL(fileURLWithPath: "/nonexistent/file.jsonl")) }
    }

    @Test func streamsWithASmallBoundedBuffer() throws {
        // Records across chunk boundaries, with a 7-byte chunk and a 100-byte record limit.
        var lines: [Example] = []
        for i in 0..<500 { lines.append(Example(prompt: "prompt \(i) é", response: String(repeating: "r", count: i % 40))) }
        let url = try tempFile(jsonLines(lines))
        defer { try? FileManager.default.removeItem(at: url) }
        let opts = LoadOptions(maxRecordBytes: 100, chunkSize: 7)
        var n = 0
        let report = try forEachRecord(in: url, options: opts) { r in
            #expect(r == .example(lines[n]))
            n += 1
        }
        #expect(n == 500 && report.records == 500)
        // An over-long line is an error, or skipped without reading it whole.
        let long = try tempFile("{\"text\": \"a\"}\n{\"text\": \"\(String(repeating: "x", count: 1000))\"}\n{\"text\": \"b\"}")
        defer { try? FileManager.default.removeItem(at: long) }
        do {
            _ = try loadRecords(from: long, options: opts)
            Issue.record("an over-long record was accepted")
        } catch let e as DataError {
            #expect(e.line == 2 && e.message.contains("longer than 100 bytes"))
        }
        let skipped = try loadRecords(from: long, options: LoadOptions(skipBadRecords: true, maxRecordBytes: 100, chunkSize: 7))
        #expect(skipped.records == [.text("a"), .text("b")] && skipped.report.skipped == 1)
        // The same in a JSON array.
        let arr = try tempFile("[" + lines.map { $0.jsonLine() }.joined(separator: ",\n") + "]", ext: "json")
        defer { try? FileManager.default.removeItem(at: arr) }
        #expect(try loadExamples(from: arr, options: opts) == lines)
    }

    @Test func brokenJSONArrays() throws {
        for text in ["[{\"text\": \"a\"}, {\"text\": \"b\"", "[{\"text\": \"a\"}] trailing", "[{\"text\": \"a\"}}]"] {
            let url = try tempFile(text, ext: "json")
            defer { try? FileManager.default.removeItem(at: url) }
            #expect(throws: DataError.self, "\(text)") { _ = try loadRecords(from: url, options: LoadOptions(skipBadRecords: true)) }
        }
        // Scalars in an array are bad records, not broken structure; a byte order mark is fine.
        let scalars = try tempFile("\u{FEFF}[1, {\"text\": \"a\"}, \"s\"]", ext: "json")
        defer { try? FileManager.default.removeItem(at: scalars) }
        let sc = try loadRecords(from: scalars, options: LoadOptions(skipBadRecords: true, chunkSize: 1))
        #expect(sc.records == [.text("a")] && sc.report.skipped == 2)
        #expect(sc.report.errors.map(\.message) == ["expected a JSON object, found a number", "expected a JSON object, found a string"])
        let empty = try tempFile("[]", ext: "json")
        defer { try? FileManager.default.removeItem(at: empty) }
        let r = try loadRecords(from: empty)
        #expect(r.records.isEmpty && r.report.format == nil)
    }

    @Test func generatedFilesLoadBack() throws {
        var c = DemoConfig()
        c.instructions = InstructionConfig(trainCount: 20, testCount: 5)
        c.entities = EntityConfig(trainEntities: 2, testEntities: 1)
        c.math = MathConfig(trainCount: 20, testCount: 5)
        c.safety = SafetyConfig(trainCount: 12, testCount: 6)
        c.mass = MassConfig(count: 40)
        c.pretrain = PretrainConfig(documents: 60, people: 4)
        let d = try DemoDataset.generate(c, seed: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-gen-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try d.write(to: dir)
        let f = { (k: String, s: String) in dir.appendingPathComponent(k).appendingPathComponent(s) }
        #expect(try loadExamples(from: f("instructions", "train.jsonl")) == d.instructions.train)
        #expect(try loadEntityQA(from: f("entities", "test.jsonl")) == d.entities.qa.test)
        #expect(try loadMathProblems(from: f("math", "train.jsonl")) == d.math.train)
        #expect(try RecordReader(url: f("math", "train.jsonl")).format == .gsm8k)
        #expect(try loadExamples(from: f("safety", "test.jsonl")) == d.safety.test)
        #expect(try loadMassItems(from: f("mass", "items.jsonl"), options: LoadOptions()) == d.mass)
        #expect(try loadDocuments(from: f("pretrain", "train.jsonl")) == d.pretrain.documents.map(\.document))
        let back = try DataDirectory.load(from: dir)
        #expect(back.instructions == d.instructions && back.entities == d.entities.qa && back.math == d.math && back.safety == d.safety)
        #expect(back.mass == d.mass && back.pretrain == d.pretrain.documents.map(\.document))
        #expect(back.refusalTarget == Safety.refusalTarget && back.refusalParaphrases == Safety.refusalParaphrases)
        let none = try DataDirectory.load(from: dir.appendingPathComponent("nothing-here"))
        #expect(none == DataDirectory())
        let refusals = try JSONSerialization.jsonObject(with: Data(contentsOf: f("safety", "refusals.json"))) as! [String: Any]
        #expect(refusals["target"] as? String == Safety.refusalTarget)
        #expect(refusals["paraphrases"] as? [String] == Safety.refusalParaphrases)
    }
}

@Suite struct InspectionTests {
    @Test func summarisesFieldsAndKeepsSamples() throws {
        let records = [Example(prompt: "a b", response: "x"), Example(prompt: "c d e f", response: "yy zz"),
                       Example(prompt: "g", response: "w")]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-insp-\(UUID().uuidString).jsonl")
        try Data((jsonLines(records) + "{\"prompt\": 1}\n").utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let i = try Inspection.inspect(url, options: LoadOptions(skipBadRecords: true),
                                       tokenizer: TokenCounter(name: "bytes") { $0.utf8.count }, samples: 2)
        #expect(i.report.records == 3 && i.report.skipped == 1 && i.report.format == .promptResponse)
        #expect(i.samples == records[..<2].map { .example($0) })
        #expect(i.fields.map(\.name) == ["prompt", "response"])
        let p = i.fields[0]
        #expect(p.count == 3 && p.words.min == 1 && p.words.max == 4 && p.words.median == 2 && p.words.total == 7)
        #expect(p.characters.max == 7 && p.tokens?.total == 3 + 7 + 1)
        let text = i.text(formatGiven: false)
        #expect(text.contains("format: prompt-response (detected)") && text.contains("skipped 1 bad record"))
    }
}

@Suite struct LengthStatisticsTests {
    @Test func exactBelowTheReservoirAndBoundedAbove() {
        var a = LengthAccumulator()
        for v in [5, 1, 4, 2, 3] { a.add(v) }
        let s = a.summary
        #expect(s.min == 1 && s.max == 5 && s.median == 3 && s.p95 == 5 && s.total == 15 && s.count == 5 && s.mean == 3)
        var big = LengthAccumulator()
        let n = LengthAccumulator.reservoirSize * 3
        for i in 0..<n { big.add(i % 1000) }
        let b = big.summary
        #expect(b.count == n && b.min == 0 && b.max == 999 && b.total == (n / 1000) * 499_500)
        #expect(abs(b.median - 500) < 20 && abs(b.p95 - 950) < 20)
    }
}
