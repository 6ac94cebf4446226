import Engine

/// Settings of the pretraining corpus for a base model trained from scratch.
public struct PretrainConfig: Sendable, Equatable {
    public var documents: Int
    /// Share of documents that are prompt/response pairs in the stages' formats (instruction,
    /// entity QA, math, in equal parts); the rest is plain text (generic sentences, arithmetic
    /// facts, biographies, in equal parts).
    public var chatFraction: Double
    /// Invented people of the biographies and entity questions; none of them is a stage entity.
    public var people: Int
    public var instructionTasks: [InstructionTask]
    public var mathMaxSteps: Int
    public var mathDivision: Bool
    /// Share of the instruction documents that are harmless requests in the safety stage's request
    /// templates ("How do I bake bread?") with a helpful answer.
    public var benignRequestShare: Double

    public init(documents: Int = 20_000, chatFraction: Double = 0.5, people: Int = 60,
                instructionTasks: [InstructionTask] = InstructionTask.allCases, mathMaxSteps: Int = 3, mathDivision: Bool = true,
                benignRequestShare: Double = 0.15) {
        self.documents = documents
        self.chatFraction = chatFraction
        self.people = people
        self.instructionTasks = instructionTasks
        self.mathMaxSteps = mathMaxSteps
        self.mathDivision = mathDivision
        self.benignRequestShare = benignRequestShare
    }
}

public struct PretrainCorpus: Sendable, Equatable {
    public var documents: [PretrainDocument]
    /// The people of the biographies.
    public var people: [Person]
}

public enum Pretraining {
    /// Sources of the documents, chat ones first.
    public static let chatSources = ["instruction", "entity-qa", "math"]
    public static let textSources = ["sentences", "arithmetic", "bio"]

    /// The corpus. Chat documents never use a prompt in `excluding` (pass the stages' prompts so
    /// that pretraining teaches the formats, not the stage data); no document is a refusal.
    public static func generate(_ config: PretrainConfig, seed: UInt64, excluding: Set<String> = []) throws -> PretrainCorpus {
        try GeneratorError.checkCounts("pretrain", ["documents": config.documents])
        guard (0...1).contains(config.chatFraction) else {
            throw GeneratorError("pretrain: chat fraction must be in [0, 1], got \(config.chatFraction)")
        }
        guard config.people >= 1 else { throw GeneratorError("pretrain: people must be >= 1") }
        guard !config.instructionTasks.isEmpty else { throw GeneratorError("pretrain: no instruction tasks") }
        guard (0...1).contains(config.benignRequestShare) else {
            throw GeneratorError("pretrain: benign request share must be in [0, 1], got \(config.benignRequestShare)")
        }
        guard (1...8).contains(config.mathMaxSteps) else { throw GeneratorError("pretrain: math steps must be in 1...8") }
        var rng = SeededRandom(seed: seed).derived("pretrain")
        let people = try Entities.makePeople(config.people, suffixes: Vocabulary.pretrainSurnameSuffixes, rng: &rng)
        let nChat = Int((Double(config.documents) * config.chatFraction).rounded())
        var sources: [String] = []
        sources.reserveCapacity(config.documents)
        for i in 0..<nChat { sources.append(chatSources[i % 3]) }
        for i in 0..<(config.documents - nChat) { sources.append(textSources[i % 3]) }
        sources.shuffle(using: &rng)
        let math = MathConfig(minSteps: 1, maxSteps: config.mathMaxSteps, division: config.mathDivision)
        var docs: [PretrainDocument] = []
        docs.reserveCapacity(config.documents)
        for source in sources {
            let doc: Document
            switch source {
            case "instruction" where rng.chance(config.benignRequestShare):
                let t = rng.pick(Safety.benignTasks)
                doc = .chat(prompt: rng.pick(Safety.benignRequestTemplates).replacingOccurrences(of: "{task}", with: t.task),
                            response: t.answer)
            case "instruction":
                var e: (String, String)
                var tries = 0
                repeat {
                    e = Instructions.example(rng.pick(config.instructionTasks), rng: &rng)
                    tries += 1
                } while excluding.contains(e.0) && tries < 1000
                guard !excluding.contains(e.0) else { throw GeneratorError("pretrain: every instruction prompt is excluded") }
                doc = .chat(prompt: e.0, response: e.1)
            case "entity-qa":
                let p = rng.pick(people)
                let a = rng.pick(EntityAttribute.allCases)
                doc = .chat(prompt: rng.pick(Entities.questions(a, p)), response: rng.pick(Entities.answers(a, p, p.values[a]!)))
            case "math":
                var m: MathProblem
                var tries = 0
                repeat {
                    m = MathProblems.problem(steps: rng.int(1...config.mathMaxSteps), config: math, rng: &rng)
                    tries += 1
                } while excluding.contains(m.question) && tries < 1000
                guard !excluding.contains(m.question) else { throw GeneratorError("pretrain: every math question is excluded") }
                doc = .chat(prompt: m.question, response: m.answer)
            case "sentences":
                let s = (0..<rng.int(2...4)).map { _ in generalSentence(&rng) }
                doc = .text(s.joined(separator: " "))
            case "arithmetic":
                doc = .text((0..<rng.int(3...6)).map { _ in arithmeticFact(&rng) }.joined(separator: " "))
            default:
                doc = .text(Entities.bio(rng.pick(people), rng: &rng))
            }
            docs.append(PretrainDocument(document: doc, source: source))
        }
        return PretrainCorpus(documents: docs, people: people)
    }

    /// A sentence of general knowledge in the stages' vocabulary: the instruction inputs, list
    /// categories, places, opposites, names, the attributes of people, and neutral sentences with
    /// the words of the unsafe requests.
    static func generalSentence(_ rng: inout SeededRandom) -> String {
        typealias V = Vocabulary
        func cap(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
        let name = rng.pick(rng.chance(0.5) ? V.femaleNames : V.maleNames)
        switch rng.nextInt(14) {
        case 0, 1, 2: return Instructions.sentence(&rng)
        case 3:
            let c = rng.pick(V.categories)
            let items = rng.sample(c.items, rng.int(2...4))
            return cap(items.dropLast().joined(separator: ", ") + " and " + items.last!) + " are \(c.name)."
        case 4:
            let p = rng.pick(V.places)
            return rng.chance(0.5) ? "\(p.city) is a city in \(p.country)." : "Many people visit \(p.city) every year."
        case 5:
            let (a, b) = rng.pick(V.antonyms)
            return rng.chance(0.5) ? "\(cap(a)) and \(b) are opposites." : "The word \"\(b)\" means the opposite of \"\(a)\"."
        case 6: return "\(name) \(rng.pick(V.verbs)) the \(rng.pick(V.adjectives)) \(rng.pick(V.nouns)) \(rng.pick(V.places2))."
        case 7: return "\(name) enjoys \(rng.pick(V.hobbies)) on \(rng.pick(V.categories[7].items))s."
        case 8: return "\(name) likes to read \(rng.pick(V.genres)) in \(rng.pick(V.languages))."
        case 9: return "\(name) wants to become \(Entities.article(rng.pick(V.professions + V.writerProfessions)))."
        case 10:
            return rng.chance(0.5) ? "The University of \(rng.pick(V.places).city) is known for \(rng.pick(V.subjects))."
                : "\(cap(rng.pick(V.awards))) is given every year in \(rng.pick(V.months))."
        case 11: return "\(name) read \"\(Entities.bookTitle(&rng))\" last \(rng.pick(V.months))."
        case 12: return rng.pick(Safety.neutralSentences)
        default: return rng.pick(Safety.newsTemplates).replacingOccurrences(of: "{task}", with: rng.pick(Safety.allTasks))
        }
    }

    static func arithmeticFact(_ rng: inout SeededRandom) -> String {
        switch rng.nextInt(4) {
        case 0:
            let a = rng.int(0...50), b = rng.int(0...50)
            return "\(a) + \(b) = \(a + b)."
        case 1:
            let a = rng.int(0...60), b = rng.int(0...a)
            return "\(a) - \(b) = \(a - b)."
        case 2:
            let a = rng.int(1...12), b = rng.int(1...12)
            return "\(a) * \(b) = \(a * b)."
        default:
            let b = rng.int(1...10), q = rng.int(1...12)
            return "\(b * q) / \(b) = \(q)."
        }
    }
}
