import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Datasets

/// Dataset files too large for memory, and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct DatasetHostileInputTests {
    func file(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-hostile-\(UUID().uuidString).jsonl")
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func fileLargerThanTheMemoryLimitIsRefusedBeforeReading() throws {
        let text = String(repeating: "{\"text\": \"a line of text\"}\n", count: 10)
        let url = try file(text)
        defer { try? FileManager.default.removeItem(at: url) }
        let small = LoadOptions(memoryLimit: 100)
        for load in [{ _ = try loadRecords(from: url, options: small) }, { _ = try loadDocuments(from: url, options: small) },
                     { _ = try loadExamples(from: url, options: small) }] as [() throws -> Void] {
            do {
                try load()
                Issue.record("expected the load to be refused")
            } catch let e as DataError {
                #expect(e.file == url.path)
                #expect(e.message.contains("needs \(text.utf8.count) bytes") && e.message.contains("only 100 bytes"), "\(e.message)")
                #expect(e.message.contains("forEachRecord"))
            }
        }
        // Streaming reads any size; with room the same file loads.
        var n = 0
        try forEachRecord(in: url, options: small) { _ in n += 1 }
        #expect(n == 10)
        #expect(try loadRecords(from: url, options: LoadOptions(memoryLimit: text.utf8.count)).records.count == 10)
        #expect(try loadRecords(from: url).records.count == 10)
    }

    /// safety/refusals.json is read whole, so it is bounded: a FIFO that no one writes is refused
    /// quickly, unread, naming the file.
    @Test func refusalsFifoIsRefusedUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-data-\(UUID().uuidString)")
        let safety = dir.appendingPathComponent(DatasetKind.safety.rawValue)
        try FileManager.default.createDirectory(at: safety, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let refusals = safety.appendingPathComponent("refusals.json")
        #expect(mkfifo(refusals.path, 0o600) == 0)
        let start = Date()
        do {
            _ = try DataDirectory.load(from: dir)
            Issue.record("expected a refusal")
        } catch let e as DataError {
            #expect(e.file == refusals.path && e.message == "not a regular file (found a FIFO)", "\(e)")
        }
        #expect(Date().timeIntervalSince(start) < 5)
    }

    /// `palimpsest data generate --size` and a spec's sizes reach the generators unbounded: train +
    /// test counts near Int.max overflowed (a trap), a huge document count reserved memory without
    /// limit, and a negative train count with a positive total sliced out of range.
    @Test func generatorCountsOutsideTheirLimitAreRefusedByName() {
        func expectRefusal(_ expected: String, _ generate: () throws -> Void) {
            do { try generate(); Issue.record("expected a refusal: \(expected)") } catch let e as GeneratorError {
                #expect(e.message == expected, "\(e)")
            } catch { Issue.record("unexpected \(error)") }
        }
        var ins = InstructionConfig(); ins.trainCount = .max; ins.testCount = 1
        expectRefusal("instructions: train count must be in 0...10000000, got 9223372036854775807") { _ = try Instructions.generate(ins, seed: 1) }
        ins.trainCount = -1; ins.testCount = 3
        expectRefusal("instructions: train count must be in 0...10000000, got -1") { _ = try Instructions.generate(ins, seed: 1) }
        var math = MathConfig(); math.trainCount = 1; math.testCount = .max
        expectRefusal("math: test count must be in 0...10000000, got 9223372036854775807") { _ = try MathProblems.generate(math, seed: 1) }
        var safety = SafetyConfig(); safety.trainCount = .max; safety.testCount = 1
        expectRefusal("safety: train count must be in 0...10000000, got 9223372036854775807") { _ = try Safety.generate(safety, seed: 1) }
        var entities = EntityConfig(); entities.trainEntities = .max; entities.testEntities = 1
        expectRefusal("entities: train people must be in 0...10000000, got 9223372036854775807") { _ = try Entities.generate(entities, seed: 1) }
        var pretrain = PretrainConfig(); pretrain.documents = 1 << 50
        expectRefusal("pretrain: documents must be in 0...10000000, got 1125899906842624") { _ = try Pretraining.generate(pretrain, seed: 1) }
        // Sizes within the limits generate as before.
        ins.trainCount = 3; ins.testCount = 1
        #expect((try? Instructions.generate(ins, seed: 1)).map { [$0.train.count, $0.test.count] } == [3, 1])
    }
}
