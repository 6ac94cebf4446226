import Engine

/// Settings of the math word-problem generator. Difficulty is the number of arithmetic steps:
/// each step is one line `a op b = c` of the solution.
public struct MathConfig: Sendable, Equatable {
    public var trainCount: Int
    public var testCount: Int
    public var minSteps: Int
    public var maxSteps: Int
    /// Write GSM8K's calculator annotations (`12 + 7 = <<12+7=19>>19`).
    public var calculatorAnnotations: Bool
    /// Allow division steps (exact, only when the divisor divides the running total).
    public var division: Bool

    public init(trainCount: Int = 1200, testCount: Int = 50, minSteps: Int = 1, maxSteps: Int = 3,
                calculatorAnnotations: Bool = false, division: Bool = false) {
        self.trainCount = trainCount
        self.testCount = testCount
        self.minSteps = minSteps
        self.maxSteps = maxSteps
        self.calculatorAnnotations = calculatorAnnotations
        self.division = division
    }
}

public enum MathProblems {
    public static func generate(_ config: MathConfig, seed: UInt64) throws -> Splits<MathProblem> {
        try GeneratorError.checkCounts("math", ["train count": config.trainCount, "test count": config.testCount])
        var rng = SeededRandom(seed: seed).derived("math")
        let all = try make(count: config.trainCount + config.testCount, config: config, rng: &rng, excluding: [])
        return Splits(train: Array(all[..<config.trainCount]), test: Array(all[config.trainCount...]))
    }

    static func make(count: Int, config: MathConfig, rng: inout SeededRandom, excluding: Set<String>) throws -> [MathProblem] {
        guard count >= 0 else { throw GeneratorError("math: count must be >= 0, got \(count)") }
        guard config.minSteps >= 1, config.maxSteps >= config.minSteps, config.maxSteps <= 8 else {
            throw GeneratorError("math: steps must satisfy 1 <= min <= max <= 8, got \(config.minSteps)...\(config.maxSteps)")
        }
        var seen = Set<String>(), out: [MathProblem] = []
        out.reserveCapacity(count)
        var failures = 0
        while out.count < count {
            let p = problem(steps: rng.int(config.minSteps...config.maxSteps), config: config, rng: &rng)
            if seen.contains(p.question) || excluding.contains(p.question) {
                failures += 1
                if failures > 1000 + 10 * count { throw GeneratorError("math: cannot make \(count) distinct problems") }
                continue
            }
            seen.insert(p.question)
            out.append(p)
        }
        return out
    }

    /// A story about one person and one kind of item; every step changes the number of items.
    static func problem(steps: Int, config: MathConfig, rng: inout SeededRandom) -> MathProblem {
        typealias V = Vocabulary
        let female = rng.chance(0.5)
        let name = rng.pick(female ? V.femaleNames : V.maleNames)
        let She = female ? "She" : "He"
        let item = rng.pick(V.items)
        let friend = rng.pick(V.femaleNames + V.maleNames.filter { $0 != name })
        var v = rng.int(2...40)
        var story = ["\(name) has \(v) \(item)."]
        var lines: [String] = []
        func eq(_ a: Int, _ op: String, _ b: Int, _ c: Int) -> String {
            config.calculatorAnnotations ? "\(a) \(op) \(b) = <<\(a)\(op)\(b)=\(c)>>\(c)" : "\(a) \(op) \(b) = \(c)"
        }
        var question = "How many \(item) does \(name) have now?"
        var s = 0
        while s < steps {
            let last = s == steps - 1
            switch rng.nextInt(config.division && last ? 5 : 4) {
            case 0:
                let b = rng.int(1...25)
                let (verb, past) = rng.pick([("buys", "buying"), ("finds", "finding"), ("gets", "getting")])
                story.append("\(She) \(verb) \(b) more \(item).")
                lines.append("After \(past) \(b) more, \(name) has \(eq(v, "+", b, v + b)) \(item).")
                v += b
            case 1:
                guard v >= 2 else { continue }
                let b = rng.int(1...min(v - 1, 25))
                story.append(rng.chance(0.5) ? "\(She) gives \(b) \(item) to \(friend)." : "\(She) loses \(b) \(item).")
                lines.append("After that \(name) has \(eq(v, "-", b, v - b)) \(item) left.")
                v -= b
            case 2:
                guard s + 1 < steps else { continue }  // two lines: the product, then the sum
                let k = rng.int(2...6), m = rng.int(2...10)
                let box = rng.pick(V.containers)
                story.append("\(She) buys \(k) \(box) with \(m) \(item) in each.")
                lines.append("The \(box) hold \(eq(k, "*", m, k * m)) \(item).")
                lines.append("Now \(name) has \(eq(v, "+", k * m, v + k * m)) \(item).")
                v += k * m
                s += 1
            case 3:
                guard v <= 200 else { continue }
                let k = rng.int(2...3)
                story.append("Then the number of \(item) \(k == 2 ? "doubles" : "triples").")
                lines.append("\(k == 2 ? "Doubling" : "Tripling") gives \(eq(v, "*", k, v * k)) \(item).")
                v *= k
            default:
                let divisors = (2...6).filter { v % $0 == 0 && v / $0 >= 1 }
                guard let k = divisors.isEmpty ? nil : rng.pick(divisors) else { continue }
                let box = rng.pick(V.containers)
                question = "\(She) puts them equally into \(k) \(box). How many \(item) are in each of the \(box)?"
                lines.append("Each of the \(box) gets \(eq(v, "/", k, v / k)) \(item).")
                v /= k
            }
            s += 1
        }
        return MathProblem(question: (story + [question]).joined(separator: " "),
                           answer: (lines + ["#### \(v)"]).joined(separator: "\n"))
    }
}
