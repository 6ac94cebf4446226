import Engine

/// A generator could not produce what was asked (too many distinct records for its templates).
public struct GeneratorError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// The most records (or people) one split of a generator makes: far more than a CPU run trains
    /// on, and a bound that keeps a mistyped size from overflowing a count or reserving memory
    /// without limit (sizes near Int.max trapped).
    public static let maxCount = 10_000_000

    /// Throws for the first count outside `0...maxCount`, naming the generator and the count.
    static func checkCounts(_ generator: String, _ counts: KeyValuePairs<String, Int>) throws {
        for (name, n) in counts where !(0...maxCount).contains(n) {
            throw GeneratorError("\(generator): \(name) must be in 0...\(maxCount), got \(n)")
        }
    }
}

/// The templated skills of the instruction-following stage (the S_inst analogue). Every response
/// is computed from the prompt's input, so it is always correct.
public enum InstructionTask: String, CaseIterable, Sendable, Codable {
    case uppercase, lowercase
    case countWords = "count-words"
    case sortWords = "sort-words"
    case reverseList = "reverse-list"
    case bulletList = "bullet-list"
    case numberedList = "numbered-list"
    case listCategory = "list-category"
    case countLetter = "count-letter"
    case reverseWord = "reverse-word"
    case antonym
    case largerNumber = "larger-number"
    case lastWord = "last-word"
    case jsonObject = "json-object"
    case titleCase = "title-case"
    case joinWords = "join-words"
    case acronym
    case repeatWord = "repeat-word"

    /// The six tasks of the demo recipe.
    public static let demo: [InstructionTask] = [.uppercase, .countWords, .sortWords, .reverseList, .bulletList, .antonym]
}

/// Settings of the instruction generator.
public struct InstructionConfig: Sendable, Equatable {
    public var trainCount: Int
    public var testCount: Int
    public var tasks: [InstructionTask]

    public init(trainCount: Int = 800, testCount: Int = 100, tasks: [InstructionTask] = InstructionTask.demo) {
        self.trainCount = trainCount
        self.testCount = testCount
        self.tasks = tasks
    }
}

/// Train and test splits with no record in both.
public struct Splits<Record> {
    public var train: [Record]
    public var test: [Record]
}

extension Splits: Sendable where Record: Sendable {}
extension Splits: Equatable where Record: Equatable {}

public enum Instructions {
    /// Distinct prompts, balanced over the tasks, split into train and test.
    public static func generate(_ config: InstructionConfig, seed: UInt64) throws -> Splits<Example> {
        try GeneratorError.checkCounts("instructions", ["train count": config.trainCount, "test count": config.testCount])
        var rng = SeededRandom(seed: seed).derived("instructions")
        let all = try make(count: config.trainCount + config.testCount, tasks: config.tasks, rng: &rng, excluding: [])
        return Splits(train: Array(all[..<config.trainCount]), test: Array(all[config.trainCount...]))
    }

    /// `count` examples with distinct prompts not in `excluding`, tasks in a balanced shuffled order.
    static func make(count: Int, tasks: [InstructionTask], rng: inout SeededRandom, excluding: Set<String>) throws -> [Example] {
        guard count >= 0 else { throw GeneratorError("instructions: count must be >= 0, got \(count)") }
        guard !tasks.isEmpty else { throw GeneratorError("instructions: no tasks selected") }
        var order = (0..<count).map { tasks[$0 % tasks.count] }
        order.shuffle(using: &rng)
        var seen = Set<String>(), out: [Example] = []
        out.reserveCapacity(count)
        for task in order {
            var made: Example?
            // A task with a small input space may run out of new prompts; fall back to the others.
            attempts: for t in [task] + tasks.filter({ $0 != task }) {
                for _ in 0..<60 {
                    let (p, r) = example(t, rng: &rng)
                    if !seen.contains(p) && !excluding.contains(p) {
                        made = Example(prompt: p, response: r, metadata: ["task": t.rawValue])
                        break attempts
                    }
                }
            }
            guard let e = made else {
                throw GeneratorError("instructions: cannot make \(count) distinct prompts from tasks \(tasks.map(\.rawValue))")
            }
            seen.insert(e.prompt)
            out.append(e)
        }
        return out
    }

    static func sentence(_ rng: inout SeededRandom) -> String {
        typealias V = Vocabulary
        let s: String
        switch rng.nextInt(3) {
        case 0: s = "the \(rng.pick(V.adjectives)) \(rng.pick(V.nouns)) \(rng.pick(V.verbs)) the \(rng.pick(V.nouns)) \(rng.pick(V.places2))"
        case 1: s = "a \(rng.pick(V.adjectives)) \(rng.pick(V.nouns)) \(rng.pick(V.verbs)) the \(rng.pick(V.adjectives)) \(rng.pick(V.nouns))"
        default: s = "the \(rng.pick(V.nouns)) \(rng.pick(V.verbs)) a \(rng.pick(V.nouns)) \(rng.pick(V.places2))"
        }
        return s.prefix(1).uppercased() + s.dropFirst() + "."
    }

    static func words(_ rng: inout SeededRandom, _ range: ClosedRange<Int>) -> [String] {
        rng.sample(Vocabulary.nouns, rng.int(range))
    }

    static func reversed(_ s: String) -> String { String(s.reversed()) }

    /// One (prompt, response) of `task`.
    static func example(_ task: InstructionTask, rng: inout SeededRandom) -> (String, String) {
        typealias V = Vocabulary
        switch task {
        case .uppercase:
            let s = sentence(&rng)
            let t = rng.pick(["Rewrite this sentence in capital letters: ", "Convert the following text to uppercase: ",
                              "Write this sentence using only capital letters: "])
            return (t + s, s.uppercased())
        case .lowercase:
            let s = sentence(&rng).uppercased()
            let t = rng.pick(["Rewrite this sentence in lowercase letters: ", "Convert the following text to lowercase: ",
                              "Write this text without capital letters: "])
            return (t + s, s.lowercased())
        case .countWords:
            let s = sentence(&rng)
            let t = rng.pick(["How many words are in this sentence: ", "Count the words in the following sentence: ",
                              "Tell me the number of words in this sentence: "])
            return (t + s, "There are \(s.split(separator: " ").count) words.")
        case .sortWords:
            let w = words(&rng, 3...6)
            let t = rng.pick(["Sort these words alphabetically: ", "Put these words in alphabetical order: ",
                              "Arrange the following words from A to Z: "])
            return (t + w.joined(separator: ", "), w.sorted().joined(separator: ", "))
        case .reverseList:
            let w = words(&rng, 3...6)
            let t = rng.pick(["Reverse the order of this list: ", "Write this list backwards: ",
                              "List these items in the opposite order: "])
            return (t + w.joined(separator: ", "), w.reversed().joined(separator: ", "))
        case .bulletList:
            let w = words(&rng, 2...5)
            let t = rng.pick(["Format these items as a bulleted list: ", "Make a bullet list of the following: ",
                              "Write these as bullet points: "])
            return (t + w.joined(separator: ", "), w.map { "- " + $0 }.joined(separator: "\n"))
        case .numberedList:
            let w = words(&rng, 2...5)
            let t = rng.pick(["Turn these items into a numbered list: ", "Write the following as a numbered list: ",
                              "Number these items: "])
            return (t + w.joined(separator: ", "), w.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: "\n"))
        case .listCategory:
            let c = rng.pick(V.categories)
            let k = rng.int(2...5)
            let p = rng.pick(["List \(k) \(c.name).", "Name \(k) \(c.name).", "Give me \(k) examples of \(c.name)."])
            let items = rng.sample(c.items, k)
            return (p, items.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: "\n"))
        case .countLetter:
            let w = rng.pick(V.nouns + V.adjectives + V.items.filter { !$0.contains(" ") })
            let letters = Array(w)
            let c: Character = rng.chance(0.8) ? rng.pick(letters) : rng.pick(Array("abcdefghijklmnopqrstuvwxyz"))
            let n = letters.filter { $0 == c }.count
            let p = rng.pick(["How many times does the letter \"\(c)\" appear in the word \"\(w)\"?",
                              "Count how often the letter \"\(c)\" occurs in \"\(w)\"."])
            return (p, "The letter \"\(c)\" appears \(n) \(n == 1 ? "time" : "times") in \"\(w)\".")
        case .reverseWord:
            let w = rng.pick(V.nouns + V.adjectives + V.verbs)
            let p = rng.pick(["Spell the word \"\(w)\" backwards.", "Write \"\(w)\" in reverse order.",
                              "Reverse the letters of \"\(w)\"."])
            return (p, reversed(w))
        case .antonym:
            let pair = rng.pick(V.antonyms)
            let (w, a) = rng.chance(0.5) ? (pair.0, pair.1) : (pair.1, pair.0)
            let p = rng.pick(["What is the opposite of \"\(w)\"?", "Give the antonym of \"\(w)\".",
                              "Which word means the opposite of \"\(w)\"?"])
            return (p, "The opposite of \"\(w)\" is \"\(a)\".")
        case .largerNumber:
            let a = rng.int(1...999)
            var b = rng.int(1...999)
            if b == a { b = a == 999 ? 998 : a + 1 }
            let p = rng.pick(["Which number is larger, \(a) or \(b)?", "Which is bigger: \(a) or \(b)?",
                              "Tell me the larger of \(a) and \(b)."])
            return (p, "\(max(a, b)) is larger than \(min(a, b)).")
        case .lastWord:
            let s = sentence(&rng)
            let p = rng.pick(["What is the last word of this sentence: ", "Tell me the final word of the following sentence: "]) + s
            return (p, "The last word is \"\(s.dropLast().split(separator: " ").last!)\".")
        case .jsonObject:
            let name = rng.pick(V.femaleNames + V.maleNames)
            let age = rng.int(18...90)
            let city = rng.pick(V.places).city
            let p = rng.pick(["Write a JSON object with the name \(name), the age \(age) and the city \(city).",
                              "Format as JSON: name \(name), age \(age), city \(city)."])
            return (p, "{\"age\": \(age), \"city\": \"\(city)\", \"name\": \"\(name)\"}")
        case .titleCase:
            let s = String(sentence(&rng).dropLast())
            let p = rng.pick(["Capitalize the first letter of every word: ", "Write this in title case: "]) + s
            return (p, s.split(separator: " ").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " "))
        case .joinWords:
            let w = words(&rng, 2...5)
            let (sep, name) = rng.pick([("-", "hyphens"), ("_", "underscores"), ("+", "plus signs")])
            let p = "Join these words with \(name): " + w.joined(separator: " ")
            return (p, w.joined(separator: sep))
        case .acronym:
            let w = rng.sample(V.adjectives + V.nouns, rng.int(2...5))
            let p = rng.pick(["Make an acronym from these words: ", "Write the first letter of each word in capitals: "]) + w.joined(separator: " ")
            return (p, w.map { $0.prefix(1).uppercased() }.joined())
        case .repeatWord:
            let w = rng.pick(V.nouns)
            let n = rng.int(2...6)
            let p = rng.pick(["Repeat the word \"\(w)\" \(n) times.", "Write \"\(w)\" \(n) times, separated by spaces."])
            return (p, Array(repeating: w, count: n).joined(separator: " "))
        }
    }
}
