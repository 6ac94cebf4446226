import Foundation

/// A learning-rate schedule as written in a spec: its shape and fractions of the stage's steps.
///
/// Fractions become step counts with `ceil(totalSteps × fraction)`, as transformers'
/// `TrainingArguments.get_warmup_steps` does for `warmup_ratio`. YAML/JSON form:
/// `{kind: wsd, warmup: 0.02, decay: 0.02, floor: 0}`; missing keys take the defaults below,
/// unknown keys are an error.
public struct ScheduleSpec: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Hashable, Sendable, CaseIterable {
        /// Linear warmup from 0, then 1.
        case constant
        /// Linear warmup from 0, then linear decay to 0 at `totalSteps`.
        case linear
        /// Linear warmup from 0, then a cosine from 1 to `floor`.
        case cosine
        /// Warmup-stable-decay: linear warmup from `floor` to 1, constant 1, linear decay to
        /// `floor` over the final `decay` fraction, then `floor`.
        case wsd
    }

    public var kind: Kind
    /// Fraction of the steps spent warming up, in [0, 1].
    public var warmup: Double
    /// Fraction of the steps spent decaying (wsd only), in [0, 1].
    public var decay: Double
    /// Lowest multiplier reached (cosine and wsd), in [0, 1].
    public var floor: Double
    /// Number of cosine waves over the decay (cosine only; 0.5 = a half-cosine down to the floor).
    public var cycles: Double

    public init(kind: Kind, warmup: Double = 0, decay: Double = 0, floor: Double = 0, cycles: Double = 0.5) {
        self.kind = kind; self.warmup = warmup; self.decay = decay; self.floor = floor; self.cycles = cycles
    }

    /// The paper's schedule: 2% linear warmup, constant, 2% linear decay (to 0).
    public static let paperWSD = ScheduleSpec(kind: .wsd, warmup: 0.02, decay: 0.02)

    /// The step counts of this schedule for a stage of `totalSteps` optimizer steps.
    public func resolve(totalSteps: Int) throws -> LearningRateSchedule {
        try validate()
        try require(totalSteps >= 1, "ScheduleSpec.totalSteps", "must be >= 1, got \(totalSteps)")
        // At most totalSteps, without converting a Double of 2^63 (totalSteps near Int.max) to Int.
        func steps(_ fraction: Double) -> Int {
            let s = (Double(totalSteps) * fraction).rounded(.up)
            return s >= Double(totalSteps) ? totalSteps : Int(s)
        }
        let w = steps(warmup)
        let d = kind == .wsd ? steps(decay) : 0
        return try LearningRateSchedule(kind: kind, totalSteps: totalSteps, warmupSteps: w, decaySteps: d,
                                        floor: floor, cycles: cycles)
    }

    public func validate() throws {
        func fraction(_ x: Double, _ name: String) throws {
            try require(x.isFinite && x >= 0 && x <= 1, "schedule.\(name)", "must be a fraction in [0, 1], got \(x)")
        }
        try fraction(warmup, "warmup")
        try fraction(decay, "decay")
        try fraction(floor, "floor")
        try require(cycles.isFinite && cycles > 0, "schedule.cycles", "must be finite and > 0, got \(cycles)")
        try require(kind == .wsd || decay == 0, "schedule.decay",
                    "only the wsd schedule has a decay fraction; \(kind.rawValue) got \(decay)")
        try require(kind == .cosine || kind == .wsd || floor == 0, "schedule.floor",
                    "only cosine and wsd schedules have a floor; \(kind.rawValue) got \(floor)")
        try require(warmup + decay <= 1, "schedule", "warmup + decay fractions exceed 1: \(warmup) + \(decay)")
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        try c.checkKeys(["kind", "warmup", "decay", "floor", "cycles"], "schedule")
        let kindName = try c.decode(String.self, forKey: AnyKey("kind"))
        guard let kind = Kind(rawValue: kindName) else {
            throw DecodingError.dataCorruptedError(forKey: AnyKey("kind"), in: c,
                debugDescription: "schedule: unknown kind '\(kindName)'; expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.init(kind: kind, warmup: try c.value("warmup", default: 0), decay: try c.value("decay", default: 0),
                  floor: try c.value("floor", default: 0), cycles: try c.value("cycles", default: 0.5))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(kind.rawValue, forKey: AnyKey("kind"))
        try c.encode(warmup, forKey: AnyKey("warmup"))
        if kind == .wsd { try c.encode(decay, forKey: AnyKey("decay")) }
        if kind == .cosine || kind == .wsd { try c.encode(floor, forKey: AnyKey("floor")) }
        if kind == .cosine { try c.encode(cycles, forKey: AnyKey("cycles")) }
    }
}

/// A resolved schedule: a pure function from optimizer step to learning-rate multiplier.
///
/// Step convention (transformers' `LambdaLR` schedulers): the optimizer step with 0-based
/// index `k` uses `baseLR × multiplier(at: k)`; so with warmup the very first update has
/// multiplier 0 (constant, linear, cosine) or `floor` (wsd). Formulas, with W warmup steps,
/// D decay steps, T total steps:
///
/// - constant: k < W: k / max(1, W); else 1 (`get_constant_schedule_with_warmup`)
/// - linear:   k < W: k / max(1, W); else max(0, (T − k) / max(1, T − W)) (`get_linear_schedule_with_warmup`)
/// - cosine:   k < W: k / max(1, W); else with p = (k − W) / max(1, T − W),
///             max(0, f + (1 − f)·½(1 + cos(2π·cycles·p))) (`get_cosine_schedule_with_warmup`;
///             the floor f as `get_cosine_with_min_lr_schedule_with_warmup`'s `min_lr_rate`)
/// - wsd:      k < W: f + (1 − f)·k / max(1, W); k < T − D: 1;
///             k < T: f + (1 − f)·(1 − (k − T + D) / max(1, D)); else f
///             (`get_wsd_schedule` with linear warmup and decay, `min_lr_ratio` = f)
///
/// Steps at or past T follow the same formulas (as transformers does); a trainer should not
/// ask for them.
public struct LearningRateSchedule: Hashable, Sendable {
    public let kind: ScheduleSpec.Kind
    public let totalSteps: Int
    public let warmupSteps: Int
    public let decaySteps: Int
    public let floor: Double
    public let cycles: Double

    /// A schedule with explicit step counts (use `ScheduleSpec.resolve` for fractions).
    public init(kind: ScheduleSpec.Kind, totalSteps: Int, warmupSteps: Int = 0, decaySteps: Int = 0,
                floor: Double = 0, cycles: Double = 0.5) throws {
        try require(totalSteps >= 1, "schedule.totalSteps", "must be >= 1, got \(totalSteps)")
        try require(warmupSteps >= 0 && warmupSteps <= totalSteps, "schedule.warmupSteps",
                    "must be in 0...\(totalSteps), got \(warmupSteps)")
        try require(decaySteps >= 0 && (kind == .wsd || decaySteps == 0), "schedule.decaySteps",
                    "must be >= 0 and only set for wsd, got \(decaySteps) for \(kind.rawValue)")
        try require(decaySteps <= totalSteps - warmupSteps, "schedule",
                    "warmup (\(warmupSteps)) + decay (\(decaySteps)) steps exceed the \(totalSteps) total steps")
        try require(floor.isFinite && floor >= 0 && floor <= 1, "schedule.floor", "must be in [0, 1], got \(floor)")
        try require(cycles.isFinite && cycles > 0, "schedule.cycles", "must be finite and > 0, got \(cycles)")
        self.kind = kind; self.totalSteps = totalSteps; self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps; self.floor = floor; self.cycles = cycles
    }

    /// The multiplier of the base learning rate at 0-based optimizer step `k`.
    public func multiplier(at k: Int) -> Double {
        precondition(k >= 0, "LearningRateSchedule.multiplier: step must be >= 0, got \(k)")
        let s = Double(k), w = Double(warmupSteps)
        switch kind {
        case .constant:
            return k < warmupSteps ? s / max(1, w) : 1
        case .linear:
            if k < warmupSteps { return s / max(1, w) }
            return max(0, Double(totalSteps - k) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            if k < warmupSteps { return s / max(1, w) }
            let progress = Double(k - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            let f = 0.5 * (1 + cos(Double.pi * cycles * 2 * progress))
            return max(0, f * (1 - floor) + floor)
        case .wsd:
            let stable = totalSteps - warmupSteps - decaySteps
            if k < warmupSteps {
                return max(0, (s / max(1, w)) * (1 - floor) + floor)
            }
            if k < warmupSteps + stable { return 1 }
            if k < warmupSteps + stable + decaySteps {
                let progress = Double(k - warmupSteps - stable) / Double(max(1, decaySteps))
                return max(0, (1 - progress) * (1 - floor) + floor)
            }
            return floor
        }
    }

    /// Multipliers of steps 0..<totalSteps.
    public var multipliers: [Double] { (0..<totalSteps).map(multiplier(at:)) }
}
