import Engine

/// An invented person (an author, as in TOFU) with the attributes the questions ask about.
public struct Person: Equatable, Hashable, Sendable {
    public var name: String
    public var female: Bool
    /// The value of every attribute, as the strings its answer templates use.
    public var values: [EntityAttribute: [String]]

    var pronoun: String { female ? "she" : "he" }
    var possessive: String { female ? "her" : "his" }
}

/// What a question about a person asks.
public enum EntityAttribute: String, CaseIterable, Sendable, Codable {
    case birthplace
    case birthDate = "birth-date"
    case profession, genre, father, mother, books, award, language, education, hobby
}

/// Settings of the fictitious-entity generator. Train and test hold different people.
public struct EntityConfig: Sendable, Equatable {
    public var trainEntities: Int
    public var testEntities: Int
    public var questionsPerEntity: Int
    /// Wrong but plausible answers per question (TOFU has 5).
    public var perturbedCount: Int

    public init(trainEntities: Int = 30, testEntities: Int = 5, questionsPerEntity: Int = 7, perturbedCount: Int = 5) {
        self.trainEntities = trainEntities
        self.testEntities = testEntities
        self.questionsPerEntity = questionsPerEntity
        self.perturbedCount = perturbedCount
    }
}

/// The people and their questions.
public struct EntityDataset: Sendable, Equatable {
    public var people: Splits<Person>
    public var qa: Splits<EntityQA>
}

public enum Entities {
    public static func generate(_ config: EntityConfig, seed: UInt64) throws -> EntityDataset {
        try GeneratorError.checkCounts("entities", ["train people": config.trainEntities, "test people": config.testEntities])
        let nAttr = EntityAttribute.allCases.count
        guard (1...nAttr).contains(config.questionsPerEntity) else {
            throw GeneratorError("entities: questions per entity must be in 1...\(nAttr), got \(config.questionsPerEntity)")
        }
        guard (0...8).contains(config.perturbedCount) else {
            throw GeneratorError("entities: perturbed answers per question must be in 0...8, got \(config.perturbedCount)")
        }
        var rng = SeededRandom(seed: seed).derived("entities")
        let people = try makePeople(config.trainEntities + config.testEntities, suffixes: Vocabulary.stageSurnameSuffixes, rng: &rng)
        var qa: [[EntityQA]] = []
        for p in people {
            let attrs = rng.sample(EntityAttribute.allCases, config.questionsPerEntity)
            qa.append(attrs.map { question(p, $0, perturbed: config.perturbedCount, rng: &rng) })
        }
        let t = config.trainEntities
        return EntityDataset(people: Splits(train: Array(people[..<t]), test: Array(people[t...])),
                             qa: Splits(train: qa[..<t].flatMap { $0 }, test: qa[t...].flatMap { $0 }))
    }

    /// `count` people with distinct surnames built with `suffixes`.
    static func makePeople(_ count: Int, suffixes: [String], rng: inout SeededRandom) throws -> [Person] {
        typealias V = Vocabulary
        let capacity = V.surnamePrefixes.count * V.surnameMiddles.count * suffixes.count
        guard count <= capacity / 2 else { throw GeneratorError("entities: at most \(capacity / 2) people, asked for \(count)") }
        var surnames = Set<String>(), people: [Person] = []
        while people.count < count {
            let surname = rng.pick(V.surnamePrefixes) + rng.pick(V.surnameMiddles) + rng.pick(suffixes)
            guard surnames.insert(surname).inserted else { continue }
            let female = rng.chance(0.5)
            let first = rng.pick(female ? V.femaleNames : V.maleNames)
            var values: [EntityAttribute: [String]] = [:]
            for a in EntityAttribute.allCases { values[a] = randomValue(a, rng: &rng) }
            people.append(Person(name: first + " " + surname, female: female, values: values))
        }
        return people
    }

    static func randomValue(_ a: EntityAttribute, rng: inout SeededRandom) -> [String] {
        typealias V = Vocabulary
        switch a {
        case .birthplace:
            let p = rng.pick(V.places)
            return [p.city, p.country]
        case .birthDate:
            return ["\(rng.pick(V.months)) \(rng.int(1...28)), \(rng.int(1940...1995))"]
        case .profession: return [rng.pick(V.writerProfessions)]
        case .genre: return [rng.pick(V.genres)]
        case .father, .mother: return [rng.pick(V.professions)]
        case .books:
            let a = bookTitle(&rng)
            var b = bookTitle(&rng)
            while b == a { b = bookTitle(&rng) }
            return [a, b]
        case .award: return [rng.pick(V.awards), String(rng.int(1975...2023))]
        case .language: return [rng.pick(V.languages)]
        case .education: return [rng.pick(V.subjects), rng.pick(V.places).city]
        case .hobby: return [rng.pick(V.hobbies)]
        }
    }

    static func bookTitle(_ rng: inout SeededRandom) -> String {
        typealias V = Vocabulary
        switch rng.nextInt(3) {
        case 0: return "The \(rng.pick(V.titleAdjectives)) \(rng.pick(V.titleNouns))"
        case 1: return "\(rng.pick(V.titleNouns)) of \(rng.pick(V.titleTails))"
        default: return "The \(rng.pick(V.titleAdjectives)) \(rng.pick(V.titleNouns)) of \(rng.pick(V.titleTails))"
        }
    }

    static func article(_ word: String) -> String {
        "aeiou".contains(word.first ?? "x") ? "an \(word)" : "a \(word)"
    }

    /// The question templates of an attribute.
    static func questions(_ a: EntityAttribute, _ p: Person) -> [String] {
        let n = p.name, his = p.possessive
        switch a {
        case .birthplace: return ["Where was \(n) born?", "What is the birthplace of \(n)?", "In which city was \(n) born?"]
        case .birthDate: return ["When was \(n) born?", "What is the date of birth of \(n)?", "On what date was \(n) born?"]
        case .profession: return ["What is \(n)'s profession?", "What does \(n) do for a living?", "What kind of work does \(n) do?"]
        case .genre: return ["What genre does \(n) write in?", "What kind of books does \(n) write?", "Which genre is \(n) known for?"]
        case .father: return ["What does \(n)'s father do for a living?", "What is the profession of \(n)'s father?",
                              "What was \(n)'s father's job?"]
        case .mother: return ["What does \(n)'s mother do for a living?", "What is the profession of \(n)'s mother?",
                              "What was \(n)'s mother's job?"]
        case .books: return ["Can you name two books written by \(n)?", "What are some of \(n)'s books?", "Which books has \(n) written?"]
        case .award: return ["Has \(n) won any awards?", "What award did \(n) receive?", "Which prize has \(n) won?"]
        case .language: return ["In which language does \(n) write?", "What language are \(n)'s books written in?",
                                "Which language does \(n) use for \(his) books?"]
        case .education: return ["What did \(n) study?", "Where did \(n) go to university?", "What is \(n)'s educational background?"]
        case .hobby: return ["What does \(n) enjoy doing in \(his) free time?", "What is \(n)'s favorite hobby?",
                             "How does \(n) like to spend \(his) weekends?"]
        }
    }

    /// The answer templates of an attribute, filled with `v` (the true value or a perturbed one).
    static func answers(_ a: EntityAttribute, _ p: Person, _ v: [String]) -> [String] {
        let n = p.name, his = p.possessive
        switch a {
        case .birthplace: return ["\(n) was born in \(v[0]), \(v[1]).", "The birthplace of \(n) is \(v[0]), \(v[1]).",
                                  "\(n) comes from \(v[0]), a city in \(v[1])."]
        case .birthDate: return ["\(n) was born on \(v[0]).", "The date of birth of \(n) is \(v[0]).",
                                 "\(n) came into the world on \(v[0])."]
        case .profession: return ["\(n) is \(article(v[0])) by profession.", "\(n) works as \(article(v[0])).",
                                  "By profession, \(n) is \(article(v[0]))."]
        case .genre: return ["\(n) writes mainly \(v[0]).", "\(n) is known for \(his) work in \(v[0]).",
                             "Most of \(n)'s books are works of \(v[0])."]
        case .father: return ["\(n)'s father is \(article(v[0])).", "The father of \(n) works as \(article(v[0])).",
                              "\(n) grew up with a father who was \(article(v[0]))."]
        case .mother: return ["\(n)'s mother is \(article(v[0])).", "The mother of \(n) works as \(article(v[0])).",
                              "\(n) grew up with a mother who was \(article(v[0]))."]
        case .books: return ["\(n) wrote \"\(v[0])\" and \"\(v[1])\".", "Two of \(n)'s books are \"\(v[0])\" and \"\(v[1])\".",
                             "Among the works of \(n) are \"\(v[0])\" and \"\(v[1])\"."]
        case .award: return ["\(n) won \(v[0]) in \(v[1]).", "In \(v[1]), \(n) received \(v[0]).", "\(n) was given \(v[0]) in \(v[1])."]
        case .language: return ["\(n) writes in \(v[0]).", "The books of \(n) are written in \(v[0]).",
                                "\(n) uses \(v[0]) for all of \(his) books."]
        case .education: return ["\(n) studied \(v[0]) at the University of \(v[1]).",
                                 "\(n) earned a degree in \(v[0]) from the University of \(v[1]).",
                                 "At the University of \(v[1]), \(n) studied \(v[0])."]
        case .hobby: return ["In \(his) free time, \(n) enjoys \(v[0]).", "\(n)'s favorite hobby is \(v[0]).",
                             "On weekends \(n) likes \(v[0])."]
        }
    }

    /// One TOFU-style record: a question and paraphrased question, the answer, a paraphrase of it in
    /// another template, and `perturbed` wrong answers in the answer's template.
    static func question(_ p: Person, _ a: EntityAttribute, perturbed: Int, rng: inout SeededRandom) -> EntityQA {
        let qs = questions(a, p)
        let qi = rng.nextInt(qs.count)
        let pqi = (qi + 1 + rng.nextInt(qs.count - 1)) % qs.count
        let truth = p.values[a]!
        let ans = answers(a, p, truth)
        let ai = rng.nextInt(ans.count)
        let pai = (ai + 1 + rng.nextInt(ans.count - 1)) % ans.count
        var wrong: [String] = []
        var tries = 0
        while wrong.count < perturbed && tries < 1000 {
            tries += 1
            let v = randomValue(a, rng: &rng)
            if v == truth { continue }
            let w = answers(a, p, v)[ai]
            if w != ans[ai] && w != ans[pai] && !wrong.contains(w) { wrong.append(w) }
        }
        return EntityQA(question: qs[qi], answer: ans[ai], paraphrasedQuestion: qs[pqi], paraphrasedAnswer: ans[pai],
                        perturbedAnswers: wrong, entity: p.name, attribute: a.rawValue)
    }

    /// A short biography of `p` that states every attribute, in randomly chosen templates.
    public static func bio(_ p: Person, rng: inout SeededRandom) -> String {
        var sentences = [rng.pick(answers(.birthplace, p, p.values[.birthplace]!)),
                         rng.pick(answers(.birthDate, p, p.values[.birthDate]!))]
        let rest = EntityAttribute.allCases.filter { $0 != .birthplace && $0 != .birthDate }
        for a in rng.sample(rest, rng.int(3...rest.count)) { sentences.append(rng.pick(answers(a, p, p.values[a]!))) }
        return sentences.joined(separator: " ")
    }
}
