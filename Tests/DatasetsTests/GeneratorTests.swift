import Foundation
import Testing
@testable import Datasets

/// Small configurations keep the suite fast; the invariants do not depend on size.
private let smallDemo: DemoConfig = {
    var c = DemoConfig()
    c.instructions = InstructionConfig(trainCount: 150, testCount: 30, tasks: InstructionTask.allCases)
    c.entities = EntityConfig(trainEntities: 6, testEntities: 3, questionsPerEntity: 7, perturbedCount: 5)
    c.math = MathConfig(trainCount: 150, testCount: 30, minSteps: 1, maxSteps: 5, division: true)
    c.safety = SafetyConfig(trainCount: 64, testCount: 16)
    c.mass = MassConfig(count: 40)
    c.pretrain = PretrainConfig(documents: 1200, people: 12)
    return c
}()

/// The text after the last ": " of a prompt (where the templates put their input).
private func input(_ prompt: String) -> String {
    String(prompt[prompt.range(of: ": ", options: .backwards)!.upperBound...])
}

/// The first "quoted" string of a text.
private func quoted(_ s: String, _ n: Int = 0) -> String {
    s.split(separator: "\"", omittingEmptySubsequences: false).map(String.init)[2 * n + 1]
}

private func integers(_ s: String) -> [Int] {
    s.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
}

/// Recomputes the response of an instruction from its prompt alone.
private func expectedResponse(_ e: Example) -> String? {
    guard let task = InstructionTask(rawValue: e.metadata["task"] ?? "") else { return nil }
    let p = e.prompt
    switch task {
    case .uppercase: return input(p).uppercased()
    case .lowercase: return input(p).lowercased()
    case .countWords: return "There are \(input(p).split(separator: " ").count) words."
    case .sortWords: return input(p).components(separatedBy: ", ").sorted().joined(separator: ", ")
    case .reverseList: return input(p).components(separatedBy: ", ").reversed().joined(separator: ", ")
    case .bulletList: return input(p).components(separatedBy: ", ").map { "- \($0)" }.joined(separator: "\n")
    case .numberedList:
        return input(p).components(separatedBy: ", ").enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: "\n")
    case .listCategory:
        let k = integers(p)[0]
        let cat = Vocabulary.categories.first { p.contains(" \($0.name).") }!
        let lines = e.response.split(separator: "\n").map(String.init)
        guard lines.count == k else { return nil }
        var items: [String] = []
        for (i, l) in lines.enumerated() {
            guard l.hasPrefix("\(i + 1). ") else { return nil }
            items.append(String(l.dropFirst("\(i + 1). ".count)))
        }
        guard Set(items).count == k, items.allSatisfy(cat.items.contains) else { return nil }
        return e.response
    case .countLetter:
        let c = quoted(p), w = quoted(p, 1)
        let n = w.filter { String($0) == c }.count
        return "The letter \"\(c)\" appears \(n) \(n == 1 ? "time" : "times") in \"\(w)\"."
    case .reverseWord: return String(quoted(p).reversed())
    case .antonym:
        let w = quoted(p)
        let a = Vocabulary.antonyms.compactMap { $0.0 == w ? $0.1 : ($0.1 == w ? $0.0 : nil) }
        guard a.count == 1 else { return nil }
        return "The opposite of \"\(w)\" is \"\(a[0])\"."
    case .largerNumber:
        let n = integers(p)
        return "\(max(n[0], n[1])) is larger than \(min(n[0], n[1]))."
    case .lastWord: return "The last word is \"\(input(p).dropLast().split(separator: " ").last!)\"."
    case .jsonObject:
        let obj = try! JSONSerialization.jsonObject(with: Data(e.response.utf8)) as! [String: Any]
        guard p.contains("\(obj["name"] as! String)"), p.contains("\(obj["age"] as! Int)"), p.contains("\(obj["city"] as! String)")
        else { return nil }
        return e.response
    case .titleCase: return input(p).split(separator: " ").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
    case .joinWords:
        let sep = p.contains("hyphens") ? "-" : p.contains("underscores") ? "_" : "+"
        return input(p).split(separator: " ").joined(separator: sep)
    case .acronym: return input(p).split(separator: " ").map { $0.prefix(1).uppercased() }.joined()
    case .repeatWord:
        let w = quoted(p), n = integers(p)[0]
        return Array(repeating: w, count: n).joined(separator: " ")
    }
}

/// The equations `a op b = c` of a solution (calculator annotations removed).
private func equations(_ solution: String) -> [(Int, String, Int, Int)] {
    var out: [(Int, String, Int, Int)] = []
    for line in solution.split(separator: "\n") where !line.hasPrefix("####") {
        var l = String(line)
        while let r = l.range(of: "<<"), let e = l.range(of: ">>", range: r.upperBound..<l.endIndex) { l.removeSubrange(r.lowerBound..<e.upperBound) }
        let t = l.split(separator: " ").map { String($0.trimmingCharacters(in: .punctuationCharacters.subtracting(CharacterSet(charactersIn: "+-*/")))) }
        for i in 0..<(t.count - 4) where t[i + 3] == "=" && ["+", "-", "*", "/"].contains(t[i + 1]) {
            if let a = Int(t[i]), let b = Int(t[i + 2]), let c = Int(t[i + 4]) { out.append((a, t[i + 1], b, c)) }
        }
    }
    return out
}

@Suite struct InstructionTests {
    @Test func everyResponseIsRecomputedFromItsPrompt() throws {
        let s = try Instructions.generate(InstructionConfig(trainCount: 400, testCount: 50, tasks: InstructionTask.allCases), seed: 3)
        #expect(s.train.count == 400 && s.test.count == 50)
        var tasks = Set<String>()
        for e in s.train + s.test {
            tasks.insert(e.metadata["task"]!)
            #expect(expectedResponse(e) == e.response, "\(e.metadata["task"]!): \(e.prompt) -> \(e.response)")
        }
        #expect(tasks.count == InstructionTask.allCases.count)
    }

    @Test func promptsAreDistinctAndSplitsDisjoint() throws {
        let s = try Instructions.generate(InstructionConfig(trainCount: 800, testCount: 100), seed: 1)
        let train = Set(s.train.map(\.prompt)), test = Set(s.test.map(\.prompt))
        #expect(train.count == 800 && test.count == 100)
        #expect(train.isDisjoint(with: test))
        // Balanced over the six demo tasks.
        let counts = Dictionary(grouping: s.train + s.test, by: { $0.metadata["task"]! }).mapValues(\.count)
        #expect(counts.count == 6 && counts.values.allSatisfy { $0 == 150 })
    }

    @Test func tooManyDistinctPromptsIsAnError() {
        #expect(throws: GeneratorError.self) { try Instructions.generate(InstructionConfig(trainCount: 500, testCount: 0, tasks: [.antonym]), seed: 1) }
        #expect(throws: GeneratorError.self) { try Instructions.generate(InstructionConfig(trainCount: 5, testCount: 0, tasks: []), seed: 1) }
    }
}

@Suite struct EntityTests {
    @Test func tofuInvariants() throws {
        let d = try Entities.generate(EntityConfig(trainEntities: 30, testEntities: 5), seed: 7)
        #expect(d.qa.train.count == 210 && d.qa.test.count == 35)
        #expect(Set(d.people.train.map(\.name)).count == 30)
        #expect(Set(d.people.train.map(\.name)).isDisjoint(with: d.people.test.map(\.name)))
        #expect(Set(d.qa.train.map(\.entity!)).isDisjoint(with: d.qa.test.map(\.entity!)))
        #expect(Set(d.qa.train.map(\.question)).isDisjoint(with: d.qa.test.map(\.question)))
        for q in d.qa.train + d.qa.test {
            let p = (d.people.train + d.people.test).first { $0.name == q.entity }!
            let attr = EntityAttribute(rawValue: q.attribute!)!
            #expect(q.question.contains(p.name) && q.answer.contains(p.name))
            // The answer states the true value; the paraphrase too, in other words.
            for v in p.values[attr]! { #expect(q.answer.contains(v) && q.paraphrasedAnswer!.contains(v)) }
            #expect(q.paraphrasedAnswer != q.answer)
            #expect(q.paraphrasedQuestion != q.question)
            #expect(q.perturbedAnswers.count == 5)
            #expect(Set(q.perturbedAnswers).count == 5)
            #expect(!q.perturbedAnswers.contains(q.answer) && !q.perturbedAnswers.contains(q.paraphrasedAnswer!))
            // Perturbed answers keep the answer's shape: same length in words, give or take.
            for w in q.perturbedAnswers { #expect(abs(whitespaceWords(w) - whitespaceWords(q.answer)) <= 8) }
        }
        // Seven distinct attributes per person.
        for p in d.people.train {
            #expect(Set(d.qa.train.filter { $0.entity == p.name }.map(\.attribute!)).count == 7)
        }
    }

    @Test func badSettingsAreErrors() {
        #expect(throws: GeneratorError.self) { try Entities.generate(EntityConfig(questionsPerEntity: EntityAttribute.allCases.count + 1), seed: 1) }
        #expect(throws: GeneratorError.self) { try Entities.generate(EntityConfig(questionsPerEntity: 0), seed: 1) }
    }
}

@Suite struct MathTests {
    @Test func solutionsRecomputeAndEndInTheirResult() throws {
        for annotate in [false, true] {
            let s = try MathProblems.generate(MathConfig(trainCount: 300, testCount: 30, minSteps: 1, maxSteps: 6,
                                                         calculatorAnnotations: annotate, division: true), seed: 11)
            var stepCounts = Set<Int>(), ops = Set<String>()
            for m in s.train + s.test {
                let eqs = equations(m.answer)
                #expect(!eqs.isEmpty)
                let questionNumbers = Set(integers(m.question))
                var results: [Int] = []
                for (a, op, b, c) in eqs {
                    ops.insert(op)
                    let r: Int
                    switch op {
                    case "+": r = a + b
                    case "-": r = a - b
                    case "*": r = a * b
                    default:
                        #expect(a % b == 0, "\(a) / \(b) is not exact")
                        r = a / b
                    }
                    #expect(r == c, "\(a) \(op) \(b) = \(c) in \(m.answer)")
                    #expect(c >= 0)
                    // Operands come from the question or from earlier steps ("doubles" gives 2).
                    for x in [a, b] { #expect(questionNumbers.contains(x) || results.contains(x) || [2, 3].contains(x), "\(x) in \(m.question)") }
                    results.append(c)
                }
                #expect(m.finalAnswer == String(results.last!))
                #expect(m.answer.hasSuffix("#### \(results.last!)"))
                #expect((1...6).contains(eqs.count))
                stepCounts.insert(eqs.count)
                #expect(m.answer.contains("<<") == annotate)
            }
            #expect(stepCounts == Set(1...6))
            #expect(ops == ["+", "-", "*", "/"])
            #expect(Set(s.train.map(\.question)).isDisjoint(with: s.test.map(\.question)))
            #expect(Set(s.train.map(\.question)).count == 300)
        }
    }

    @Test func difficultyFollowsSteps() throws {
        let s = try MathProblems.generate(MathConfig(trainCount: 50, testCount: 0, minSteps: 4, maxSteps: 4), seed: 2)
        #expect(s.train.allSatisfy { equations($0.answer).count == 4 })
        #expect(throws: GeneratorError.self) { try MathProblems.generate(MathConfig(minSteps: 3, maxSteps: 2), seed: 1) }
    }

    @Test func finalAnswerParsing() {
        #expect(MathProblem.finalAnswer(in: "a\n#### 1,234") == "1234")
        #expect(MathProblem.finalAnswer(in: "#### -7") == "-7")
        #expect(MathProblem.finalAnswer(in: "#### $5") == "5")
        #expect(MathProblem.finalAnswer(in: "no marker 5") == nil)
        #expect(MathProblem.finalAnswer(in: "#### five") == nil)
    }
}

@Suite struct SafetyTests {
    @Test func refusalsAndSplits() throws {
        let s = try Safety.generate(SafetyConfig(trainCount: 128, testCount: 32), seed: 5)
        #expect(s.train.count == 128 && s.test.count == 32)
        #expect(Set(s.train.map(\.prompt)).count == 128)
        #expect(Set(s.train.map(\.prompt)).isDisjoint(with: s.test.map(\.prompt)))
        for e in s.train + s.test {
            #expect(e.response.hasPrefix(Safety.refusalTarget + " "))
            #expect(e.response.count > Safety.refusalTarget.count + 10)
        }
        let perCategory = Dictionary(grouping: s.train + s.test, by: { $0.metadata["category"]! }).mapValues(\.count)
        #expect(perCategory.count == 6 && perCategory.values.allSatisfy { (26...27).contains($0) })
        let one = try Safety.generate(SafetyConfig(trainCount: 10, testCount: 2, categories: ["hacking"]), seed: 5)
        #expect(one.train.allSatisfy { $0.metadata["category"] == "hacking" })
        #expect(throws: GeneratorError.self) { try Safety.generate(SafetyConfig(categories: ["nope"]), seed: 1) }
        #expect(throws: GeneratorError.self) { try Safety.generate(SafetyConfig(trainCount: 1000, testCount: 0), seed: 1) }
    }

    @Test func paraphrasesAreDistinctFromTheTarget() {
        let p = Safety.refusalParaphrases
        #expect(p.count >= 20)
        #expect(Set(p).count == p.count)
        #expect(!p.contains(Safety.refusalTarget))
        let norm = { (s: String) in s.lowercased().filter { $0.isLetter } }
        #expect(!p.map(norm).contains(norm(Safety.refusalTarget)))
    }

    @Test func massItems() throws {
        let items = try Safety.mass(MassConfig(count: 40), seed: 9)
        #expect(items.count == 40)
        #expect(Set(items.map(\.prompt)).count == 40)
        for m in items {
            #expect(m.compliance != m.target && m.target != m.refusal && m.compliance != m.refusal)
            #expect(m.refusal == Safety.refusalTarget)
        }
        #expect(try Safety.mass(MassConfig(count: 144), seed: 9).count == 144)
        #expect(throws: GeneratorError.self) { try Safety.mass(MassConfig(count: 145), seed: 9) }
    }
}

@Suite struct PretrainTests {
    @Test func corpusCoversFormatsWithOtherContentAndNoRefusals() throws {
        let d = try DemoDataset.generate(smallDemo, seed: 4)
        let docs = d.pretrain.documents
        #expect(docs.count == 1200)
        let chat = docs.filter { if case .chat = $0.document { return true } else { return false } }
        #expect(chat.count == 600)
        let bySource = Dictionary(grouping: docs, by: \.source).mapValues(\.count)
        #expect(bySource == ["instruction": 200, "entity-qa": 200, "math": 200, "sentences": 200, "arithmetic": 200, "bio": 200])
        // No refusal, no stage prompt, no stage person.
        let refusals = [Safety.refusalTarget] + Safety.refusalParaphrases
        let stagePrompts = Set((d.instructions.train + d.instructions.test + d.safety.train + d.safety.test).map(\.prompt)
            + (d.math.train + d.math.test).map(\.question) + (d.entities.qa.train + d.entities.qa.test).map(\.question))
        let stagePeople = (d.entities.people.train + d.entities.people.test).map(\.name)
        let stageSurnames = stagePeople.map { String($0.split(separator: " ")[1]) }
        for doc in docs {
            let text = doc.document.allText
            for r in refusals { #expect(!text.contains(r)) }
            #expect(!text.lowercased().contains("sorry"))
            if case .chat(let p, _) = doc.document { #expect(!stagePrompts.contains(p)) }
            for s in stageSurnames { #expect(!text.contains(s)) }
        }
        // Bios and entity questions are about the corpus's own people.
        let own = d.pretrain.people.map(\.name)
        #expect(Set(own).isDisjoint(with: stagePeople))
        for doc in docs where doc.source == "bio" || doc.source == "entity-qa" {
            #expect(own.contains { doc.document.allText.contains($0) })
        }
        // Math documents are correct GSM8K-style solutions.
        for doc in docs where doc.source == "math" {
            guard case .chat(_, let r) = doc.document else { continue }
            let eqs = equations(r)
            #expect(eqs.allSatisfy { a, op, b, c in op == "+" ? a + b == c : op == "-" ? a - b == c : op == "*" ? a * b == c : a == b * c })
            #expect(MathProblem.finalAnswer(in: r) == String(eqs.last!.3))
        }
        for doc in docs where doc.source == "arithmetic" {
            guard case .text(let t) = doc.document else { continue }
            for fact in t.split(separator: ".") where !fact.trimmingCharacters(in: .whitespaces).isEmpty {
                let n = integers(String(fact)), s = String(fact)
                let r = s.contains("+") ? n[0] + n[1] : s.contains("-") ? n[0] - n[1] : s.contains("*") ? n[0] * n[1] : n[0] / n[1]
                #expect(r == n[2], "\(fact)")
            }
        }
        // Every word of the stages' prompts appears somewhere in pretraining.
        var vocab = Set<String>()
        for doc in docs { for w in doc.document.allText.lowercased().split(whereSeparator: { !$0.isLetter }) { vocab.insert(String(w)) } }
        var missing = Set<String>()
        for e in d.instructions.train + d.math.train.map(\.example) + d.entities.qa.train.map(\.example) {
            for w in e.prompt.lowercased().split(whereSeparator: { !$0.isLetter }) where w.count >= 3 && !vocab.contains(String(w)) {
                missing.insert(String(w))
            }
        }
        // The stage entities' surnames are the only new words.
        missing.subtract(stageSurnames.map { $0.lowercased() })
        #expect(missing.count <= 6, "words of the stages' prompts missing from pretraining: \(missing.sorted())")
    }
}

extension PretrainTests {
    @Test func pilotCorpusHasEveryWordOfTheStagePrompts() throws {
        let d = try DemoDataset.generate(.pilot, seed: 1)
        #expect(d.pretrain.documents.count == 20_000 && d.pretrain.people.count == 60)
        var vocab = Set<Substring>()
        for doc in d.pretrain.documents { vocab.formUnion(doc.document.allText.lowercased().split(whereSeparator: { !$0.isLetter })) }
        let surnames = Set((d.entities.people.train + d.entities.people.test).map { $0.name.split(separator: " ")[1].lowercased() })
        var missing = Set<String>()
        let prompts = (d.instructions.train + d.safety.train).map(\.prompt) + d.math.train.map(\.question) + d.entities.qa.train.map(\.question)
        for p in prompts {
            for w in p.lowercased().split(whereSeparator: { !$0.isLetter }) where !vocab.contains(w) && !surnames.contains(String(w)) {
                missing.insert(String(w))
            }
        }
        #expect(missing.isEmpty, "\(missing.sorted())")
        // The entity answers' words too (values of every attribute).
        for q in d.entities.qa.train {
            for w in q.answer.lowercased().split(whereSeparator: { !$0.isLetter }) where !vocab.contains(w) && !surnames.contains(String(w)) {
                missing.insert(String(w))
            }
        }
        #expect(missing.isEmpty, "\(missing.sorted())")
    }
}

@Suite struct DeterminismTests {
    private func bytes(_ seed: UInt64, _ config: DemoConfig) throws -> [String: Data] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-det-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try DemoDataset.generate(config, seed: seed).write(to: dir)
        var out: [String: Data] = [:]
        for kind in DatasetKind.allCases {
            let sub = dir.appendingPathComponent(kind.rawValue)
            for f in try FileManager.default.contentsOfDirectory(atPath: sub.path) {
                out["\(kind.rawValue)/\(f)"] = try Data(contentsOf: sub.appendingPathComponent(f))
            }
        }
        return out
    }

    @Test func sameSeedSameBytesDifferentSeedsDiffer() throws {
        let a = try bytes(21, smallDemo), b = try bytes(21, smallDemo), c = try bytes(22, smallDemo)
        #expect(a.keys.sorted() == b.keys.sorted())
        #expect(Set(a.keys) == ["instructions/train.jsonl", "instructions/test.jsonl", "instructions/card.json", "instructions/README.md",
                                "entities/train.jsonl", "entities/test.jsonl", "entities/card.json", "entities/README.md",
                                "math/train.jsonl", "math/test.jsonl", "math/card.json", "math/README.md",
                                "safety/train.jsonl", "safety/test.jsonl", "safety/refusals.json", "safety/card.json", "safety/README.md",
                                "mass/items.jsonl", "mass/card.json", "mass/README.md", "pretrain/train.jsonl", "pretrain/card.json", "pretrain/README.md"])
        for (k, v) in a { #expect(b[k] == v, "\(k) differs between two runs of one seed") }
        for k in a.keys where k.hasSuffix(".jsonl") { #expect(c[k] != a[k], "\(k) is the same for seeds 21 and 22") }
        // No temporary files are left behind.
        #expect(!a.keys.contains { $0.contains(".tmp-") })
    }

    @Test func generatorsAreIndependentOfEachOther() throws {
        // Asking for one kind gives the same data as asking for all.
        let all = try DemoDataset.generate(smallDemo, seed: 8)
        let one = try DemoDataset.generate(smallDemo, seed: 8, kinds: [.math])
        #expect(one.math == all.math)
        #expect(one.instructions.train.isEmpty && one.pretrain.documents.isEmpty)
        let pre = try DemoDataset.generate(smallDemo, seed: 8, kinds: [.pretrain])
        #expect(pre.pretrain == all.pretrain)
    }
}
