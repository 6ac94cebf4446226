import Foundation
import Testing
@testable import Training

private struct ScheduleCase: Decodable {
    let spec: ScheduleSpec
    let totalSteps: Int
    let warmupSteps: Int
    let decaySteps: Int?
    let multipliers: [Double]
}
private struct SchedulesFixture: Decodable { let cases: [ScheduleCase] }

@Suite struct ScheduleTests {
    @Test func multipliersMatchTransformers() throws {
        let f: SchedulesFixture = try loadFixture("schedules")
        #expect(f.cases.count == 22)
        for c in f.cases {
            let s = try c.spec.resolve(totalSteps: c.totalSteps)
            #expect(s.warmupSteps == c.warmupSteps, "\(c.spec)")
            #expect(s.decaySteps == (c.decaySteps ?? 0), "\(c.spec)")
            let got = s.multipliers
            #expect(got.count == c.multipliers.count)
            for (k, (a, b)) in zip(got, c.multipliers).enumerated() {
                #expect(abs(a - b) <= 1e-7, "\(c.spec) total \(c.totalSteps) step \(k): \(a) vs \(b)")
            }
        }
    }

    @Test func paperWSDShape() throws {
        let s = try ScheduleSpec.paperWSD.resolve(totalSteps: 200)
        #expect(s.warmupSteps == 4 && s.decaySteps == 4)
        #expect(s.multiplier(at: 0) == 0 && s.multiplier(at: 2) == 0.5 && s.multiplier(at: 4) == 1)
        #expect(s.multiplier(at: 195) == 1 && s.multiplier(at: 196) == 1 && s.multiplier(at: 198) == 0.5)
    }

    @Test func impossibleSchedulesAreErrors() throws {
        for bad in [ScheduleSpec(kind: .wsd, warmup: -0.1), ScheduleSpec(kind: .wsd, warmup: 0.6, decay: 0.5),
                    ScheduleSpec(kind: .linear, warmup: 1.5), ScheduleSpec(kind: .cosine, floor: 2),
                    ScheduleSpec(kind: .linear, decay: 0.1), ScheduleSpec(kind: .constant, floor: 0.1),
                    ScheduleSpec(kind: .wsd, warmup: .nan), ScheduleSpec(kind: .cosine, cycles: 0)] {
            #expect(throws: TrainingError.self) { try bad.resolve(totalSteps: 10) }
        }
        #expect(throws: TrainingError.self) { try ScheduleSpec(kind: .constant).resolve(totalSteps: 0) }
        // Fractions that are fine alone but whose rounded-up step counts exceed the total.
        #expect(throws: TrainingError.self) { try ScheduleSpec(kind: .wsd, warmup: 0.5, decay: 0.45).resolve(totalSteps: 3) }
        #expect(throws: TrainingError.self) { try LearningRateSchedule(kind: .linear, totalSteps: 5, warmupSteps: 6) }
    }

    @Test func codable() throws {
        let s = try JSONDecoder().decode(ScheduleSpec.self, from: Data(#"{"kind":"wsd","warmup":0.02,"decay":0.02}"#.utf8))
        #expect(s == .paperWSD)
        #expect(try JSONDecoder().decode(ScheduleSpec.self, from: JSONEncoder().encode(s)) == s)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ScheduleSpec.self, from: Data(#"{"kind":"wsd","warmpu":0.02}"#.utf8))
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ScheduleSpec.self, from: Data(#"{"kind":"step"}"#.utf8)) }
    }
}

@Suite struct OptionCodingTests {
    @Test func optionsDecodeWithDefaultsAndRejectUnknownKeys() throws {
        let dec = JSONDecoder()
        #expect(try dec.decode(AdamWConfig.self, from: Data(#"{"weightDecay":0}"#.utf8)) == AdamWConfig(weightDecay: 0))
        #expect(try dec.decode(SGDConfig.self, from: Data(#"{"momentum":0.9,"nesterov":true}"#.utf8)) == SGDConfig(momentum: 0.9, nesterov: true))
        let b = try dec.decode(BatchingOptions.self, from: Data(#"{"batchSize":32,"maxContext":256,"replayPerBatch":16}"#.utf8))
        #expect(b == BatchingOptions(batchSize: 32, maxContext: 256, replayPerBatch: 16))
        #expect(try dec.decode(BatchingOptions.self, from: JSONEncoder().encode(b)) == b)
        #expect(throws: DecodingError.self) { try dec.decode(AdamWConfig.self, from: Data(#"{"weight_decay":0}"#.utf8)) }
        #expect(throws: DecodingError.self) { try dec.decode(BatchingOptions.self, from: Data(#"{"batchSize":32}"#.utf8)) }
        #expect(throws: DecodingError.self) {
            try dec.decode(BatchingOptions.self, from: Data(#"{"batchSize":32,"maxContext":8,"truncation":"cut"}"#.utf8))
        }
    }
}
