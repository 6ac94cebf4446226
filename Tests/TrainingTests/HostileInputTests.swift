import Engine
import Testing
@testable import Training

/// Options from a spec, a stages file or the command line with values near Int.max: each is
/// refused by name instead of overflowing (a trap) or listing batches without limit.
@Suite struct TrainingHostileInputTests {
    private func examples(_ n: Int) -> [Example] { (0..<n).map { Example(prompt: [1], response: [Int32(2 + $0 % 5), 3]) } }

    private func expectInvalid(_ context: String, _ expected: String, _ body: () throws -> Void) {
        do { try body(); Issue.record("expected a refusal: \(expected)") } catch let e as TrainingError {
            guard case .invalidOption(let c, let m) = e else { Issue.record("unexpected \(e)"); return }
            #expect(c == context && m.contains(expected), "\(e)")
        } catch { Issue.record("unexpected \(error)") }
    }

    /// `1 + replayPerBatch` rows times the longest row overflowed when checking a token budget;
    /// without a budget, every batch drew that many replay rows.
    @Test func hugeReplayCountsAreRefused() {
        let options = BatchingOptions(batchSize: 2, maxTokens: 64, maxContext: 16, replayPerBatch: .max)
        expectInvalid("batching.replayPerBatch", "must be at most 65536, got 9223372036854775807") {
            _ = try Batcher(examples: examples(4), replayPool: examples(3), options: options, seed: 1)
        }
    }

    /// Every epoch's batches are listed up front: an epoch count near Int.max listed without end.
    @Test func epochCountsBeyondTheStepLimitAreRefusedBeforeListing() throws {
        let batcher = try Batcher(examples: examples(10), options: BatchingOptions(batchSize: 4, maxContext: 16), seed: 1)
        expectInvalid("Batcher.plan", "9223372036854775807 epochs of 3 batches are more than 1000000 optimizer steps") {
            _ = try batcher.plan(epochs: .max)
        }
        #expect(try batcher.plan(epochs: 2).count == 6)
        expectInvalid("Batcher.plan", "333334 epochs of 3 batches") { _ = try batcher.plan(epochs: 333_334) }
    }

    /// The unlearner lists `steps + 1` forget batches: `steps` = Int.max overflowed.
    @Test func unlearningStepsBeyondTheLimitAreRefused() {
        var options = UnlearningOptions(steps: .max, batchSize: 4, maxContext: 16, padId: 0, optimizer: .sgd(SGDConfig()),
                                        schedule: ScheduleSpec(kind: .constant), objective: .gradientAscent, seed: 1)
        expectInvalid("UnlearningOptions.steps", "must be at most 1000000, got 9223372036854775807") { try options.validate() }
        options.steps = 1_000_000
        #expect(throws: Never.self) { try options.validate() }
    }

    /// A warmup fraction of a step count near Int.max is 2^63 as a Double, which `Int(_:)`
    /// trapped on; warmup + decay steps overflowed the schedule's check.
    @Test func schedulesOfHugeStepCountsResolveWithoutOverflow() throws {
        let s = try ScheduleSpec(kind: .linear, warmup: 1).resolve(totalSteps: .max)
        #expect(s.warmupSteps == .max && s.totalSteps == .max)
        // Each half rounds up past half of the steps (as 0.5 of 3 steps does): refused, not overflowed.
        expectInvalid("schedule", "warmup (4611686018427387904) + decay (4611686018427387904) steps exceed the 9223372036854775806 total steps") {
            _ = try ScheduleSpec(kind: .wsd, warmup: 0.5, decay: 0.5).resolve(totalSteps: .max - 1)
        }
        expectInvalid("schedule", "warmup (5) + decay (9223372036854775807) steps exceed the 10 total steps") {
            _ = try LearningRateSchedule(kind: .wsd, totalSteps: 10, warmupSteps: 5, decaySteps: .max)
        }
        #expect(try ScheduleSpec(kind: .wsd, warmup: 0.02, decay: 0.02).resolve(totalSteps: 100).warmupSteps == 2)
    }
}
