import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Experiments

/// Hostile experiment files and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct SpecHostileInputTests {
    /// /dev/zero never ends: refused unread.
    @Test func endlessFilesAreRefusedUnread() {
        do {
            _ = try ExperimentSpec.load(contentsOf: URL(fileURLWithPath: "/dev/zero"))
            Issue.record("expected a refusal")
        } catch let e as SpecError {
            #expect(e.file == "/dev/zero" && e.description.contains("not a regular file"), "\(e)")
        } catch { Issue.record("unexpected \(error)") }
    }

    /// Experiment and stages files share one bounded read: a link to /dev/zero, a FIFO (which
    /// no one writes) and a file over 16 MiB are refused unread, quickly, naming the file; a
    /// link to a real file is followed.
    @Test func linksToEndlessFilesFifosAndHugeFilesAreRefusedUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let zero = dir.appendingPathComponent("zero.yaml")
        try FileManager.default.createSymbolicLink(atPath: zero.path, withDestinationPath: "/dev/zero")
        let fifo = dir.appendingPathComponent("fifo.yaml")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let huge = dir.appendingPathComponent("huge.yaml")
        #expect(FileManager.default.createFile(atPath: huge.path, contents: nil))
        let handle = try FileHandle(forWritingTo: huge)
        try handle.truncate(atOffset: UInt64(16 << 20) + 1)   // sparse: nothing is written
        try handle.close()
        let loaders: [(String, (URL) throws -> Void)] = [
            ("experiment", { _ = try ExperimentSpec.load(contentsOf: $0) }),
            ("stages", { _ = try StageSequence.load(from: $0) }),
        ]
        for (what, load) in loaders {
            for (url, expected) in [(zero, "not a regular file (found a character device)"), (fifo, "not a regular file (found a FIFO)"),
                                    (huge, "the file is 16777217 bytes; at most 16777216 (16 MiB)")] {
                let start = Date()
                do {
                    try load(url)
                    Issue.record("\(what) \(url.lastPathComponent): expected a refusal")
                } catch let e as SpecError {
                    #expect(e.file == url.path && e.issues.count == 1, "\(e)")
                    #expect(e.description.contains(expected), "\(e)")
                } catch { Issue.record("\(what): unexpected \(error)") }
                #expect(Date().timeIntervalSince(start) < 5)
            }
        }
        // A link to a real stages file is read through.
        let real = dir.appendingPathComponent("real.yaml")
        try "stages:\n  - {data: d.jsonl}\n".write(to: real, atomically: true, encoding: .utf8)
        let link = dir.appendingPathComponent("link.yaml")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: real.path)
        #expect(try StageSequence.load(from: link).stages.count == 1)
    }

    /// Fuzz finding: `unlearning.steps: 4444444444444441` with the default evaluation schedule
    /// (every step) made the reader allocate 35 PB for the list of evaluation steps.
    @Test func hugeStepCountsGiveABoundedEvaluationSchedule() throws {
        func parse(_ evaluation: String) throws -> ExperimentSpec {
            try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke.replacingOccurrences(of: "  steps: 3\n", with: "  steps: 4444444444444441\n")
                                     .replacingOccurrences(of: "\nevaluation:\n", with: "\nevaluation:\n" + evaluation))
        }
        for evaluation in ["", "  every: 1\n"] {
            do {
                _ = try parse(evaluation)
                Issue.record("expected a SpecError")
            } catch let e as SpecError {
                #expect(e.description.contains("more than 100000 evaluations"), "\(e)")
            }
        }
        let spec = try parse("  every: 1000000000000\n")
        #expect(spec.evaluation.steps.count == 4446 && spec.evaluation.steps.last == 4444444444444441)
    }
}
