import Datasets
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Models
import Testing
@testable import Experiments

/// `ExperimentRun.verify` finds what an interrupted or damaged run leaves behind, and the
/// runner cleans up after an interrupted attempt.
@Suite(.serialized) struct StoreCheckTests {
    /// A worker that writes one small checkpoint and one JSONL file (not metrics) per unit.
    struct FileWorker: UnitWorker {
        func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
            let config = ModelConfig(vocabSize: 8, hiddenSize: 4, intermediateSize: 8, numHiddenLayers: 1,
                                     numAttentionHeads: 1, numKeyValueHeads: 1)
            let params = config.parameterSpecs.map { NamedTensor(name: $0.name, shape: $0.shape, values: [Float](repeating: 0.5, count: $0.shape.reduce(1, *))) }
            try Checkpoint.save(config: config, parameters: params, to: directory.appendingPathComponent("model"))
            try writeAtomically(Data("{\"unit\":\"\(unit.id)\"}\n".utf8), to: directory.appendingPathComponent("values.jsonl"))
            return ["model": "model", "values": "values.jsonl"]
        }
    }

    static let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

    func freshRun() throws -> ExperimentRun {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-verify-\(UUID().uuidString)")
        let run = try ExperimentRun(spec: try ExperimentSpec.parse(yaml: BuiltinSpecs.smoke), directory: root)
        try run.prepare()
        return run
    }

    func errors(_ run: ExperimentRun) -> [String] {
        run.verify().filter { $0.severity == .error }.map(\.description)
    }

    /// Files of a run directory that are read whole go through the bounded reader: a FIFO that
    /// no one writes (or a link to /dev/zero) is reported, naming it, instead of hanging
    /// `status`, `report` or `status --verify`.
    @Test func storeFilesThatAreFifosAreRefusedUnread() throws {
        let run = try freshRun()
        defer { try? FileManager.default.removeItem(at: run.store.root) }
        let start = Date()
        func fifo(_ url: URL) throws {
            try? FileManager.default.removeItem(at: url)
            #expect(mkfifo(url.path, 0o600) == 0)
        }
        let unit = run.plan.units[0]
        try run.store.beginUnit(unit)
        let done = run.store.directory(for: unit).appendingPathComponent("done.json")
        try fifo(done)
        try fifo(run.store.planURL)
        let found = errors(run)
        for url in [done, run.store.planURL] {
            #expect(found.contains { $0.contains(url.path) && $0.contains("not a regular file (found a FIFO)") }, "\(found)")
        }
        #expect(run.store.completion(of: unit) == nil)

        let metrics = run.store.root.appendingPathComponent("metrics.jsonl")
        try fifo(metrics)
        do {
            _ = try MetricFiles.readJSONL(MetricRecord.self, from: metrics)
            Issue.record("expected a refusal")
        } catch let e as StoreError {
            #expect(e.path == metrics.path && e.message == "not a regular file (found a FIFO)", "\(e)")
        }

        try fifo(run.store.specURL)
        do {
            _ = try ExperimentRun.open(run.store.root)
            Issue.record("expected a refusal")
        } catch let e as StoreError {
            #expect(e.path == run.store.specURL.path && e.message == "not a regular file (found a FIFO)", "\(e)")
        }
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func cleanRunVerifiesAndEachKindOfDamageIsFound() throws {
        let run = try freshRun()
        defer { try? FileManager.default.removeItem(at: run.store.root) }
        // A first attempt that stopped half-way left a temporary file and unfinished scratch.
        let first = run.plan.units[0]
        try run.store.beginUnit(first)
        let dir = run.store.directory(for: first)
        let stale = dir.appendingPathComponent("model/.model.safetensors.tmp-999999")
        try FileManager.default.createDirectory(at: stale.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("half".utf8).write(to: stale)
        #expect(errors(run).count == 1 && errors(run)[0].contains("temporary file"))
        #expect(run.verify().contains { $0.severity == .unfinished })

        try Runner(plan: run.plan, store: run.store, worker: FileWorker(), display: Self.quiet).run()
        try run.writeReport()
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        #expect(errors(run) == [])
        #expect(!run.verify().contains { $0.severity == .unfinished })

        // A truncated safetensors file.
        let weights = dir.appendingPathComponent("model/model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count - 4).write(to: weights)
        #expect(errors(run).contains { $0.contains("model.safetensors") })
        try bytes.write(to: weights)
        // A non-finite weight.
        var bad = bytes
        bad.withUnsafeMutableBytes { raw in raw.storeBytes(of: Float.nan.bitPattern, toByteOffset: raw.count - 4, as: UInt32.self) }
        try bad.write(to: weights)
        #expect(errors(run).contains { $0.contains("NaN or infinity") })
        try bytes.write(to: weights)
        // A JSONL file cut mid-line.
        let values = dir.appendingPathComponent("values.jsonl")
        try Data("{\"unit\":".utf8).write(to: values)
        #expect(errors(run).contains { $0.contains("values.jsonl") })
        try Data("{}\n".utf8).write(to: values)
        // A missing output, a done.json of another unit, a foreign unit directory, a stray temporary.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model"))
        #expect(errors(run).contains { $0.contains("output 'model'") })
        let other = run.store.directory(for: run.plan.units[1]).appendingPathComponent("done.json")
        try FileManager.default.copyItem(at: other, to: dir.appendingPathComponent("done-copy.json"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("done.json"))
        try FileManager.default.copyItem(at: other, to: dir.appendingPathComponent("done.json"))
        #expect(errors(run).contains { $0.contains("records unit") })
        try FileManager.default.createDirectory(at: run.store.unitsURL.appendingPathComponent("old-unit-0123456789ab"), withIntermediateDirectories: true)
        #expect(errors(run).contains { $0.contains("not a unit of this run's plan") })
        try Data().write(to: run.store.root.appendingPathComponent(".metrics.csv.tmp-1-2"))
        #expect(errors(run).contains { $0.contains(".metrics.csv.tmp-1-2") })
    }

    @Test func reportRemovesOnlyTheTemporariesOfDeadWriters() throws {
        let run = try freshRun()
        defer { try? FileManager.default.removeItem(at: run.store.root) }
        let dead = run.store.root.appendingPathComponent(".summary.md.tmp-999999-1")
        let live = run.store.root.appendingPathComponent(".summary.md.tmp-\(getpid())-1")
        try Data().write(to: dead)
        try Data().write(to: live)
        try run.writeReport()
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(FileManager.default.fileExists(atPath: live.path))
    }
}
