import Datasets
import FileSupport
import Foundation

/// An experiment bound to its run directory: writes the resolved spec and plan, runs the
/// units, gathers their metrics and writes the report.
public struct ExperimentRun {
    public var spec: ExperimentSpec
    public var plan: ExperimentPlan
    public var store: RunStore

    public init(spec: ExperimentSpec, directory: URL) throws {
        self.spec = spec
        self.plan = ExperimentPlan(spec: spec)
        self.store = try RunStore(root: directory)
    }

    /// Opens an existing run directory (for `status` and `report`).
    public static func open(_ directory: URL) throws -> ExperimentRun {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StoreError(path: directory.path, message: "no such run directory")
        }
        let store = try RunStore(root: directory)
        let data: Data
        do { data = try readBoundedFile(atPath: store.specURL.path, limit: maxStoreRecordBytes) } catch {
            guard error == .notFound else { throw StoreError(path: store.specURL.path, message: error.description) }
            throw StoreError(path: directory.path, message: "not a run directory (no spec.json); start one with `palimpsest run SPEC.yaml --out DIR`")
        }
        do {
            let spec = try JSONDecoder().decode(ExperimentSpec.self, from: data)
            let problems = spec.storedSpecProblems()
            guard problems.isEmpty else {
                throw StoreError(path: store.specURL.path, message: "unusable spec: " + problems.map(\.description).joined(separator: "; "))
            }
            return try ExperimentRun(spec: spec, directory: directory)
        } catch let error as DecodingError {
            throw StoreError(path: store.specURL.path, message: "unreadable spec: \(error)")
        }
    }

    /// Records the resolved spec and plan. A directory that holds a different experiment is refused.
    public func prepare() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let specData = try encoder.encode(spec)
        if let existing = try? readBoundedFile(atPath: store.specURL.path, limit: maxStoreRecordBytes), existing != specData,
           let old = try? JSONDecoder().decode(ExperimentSpec.self, from: existing), old.name != spec.name {
            throw StoreError(path: store.root.path, message: "holds the run of experiment '\(old.name)', not '\(spec.name)'; choose another --out")
        }
        try writeAtomically(specData, to: store.specURL)
        try writeAtomically(try encoder.encode(plan), to: store.planURL)
    }

    /// Progress of each kind of unit: finished / total.
    public func status() -> [(kind: PlanUnit.Kind, done: Int, total: Int)] {
        let kinds: [PlanUnit.Kind] = [.data, .tokenizer, .base, .stage, .unlearn, .evaluateRetrained, .compare]
        return kinds.compactMap { kind in
            let units = plan.units.filter { $0.kind == kind }
            guard !units.isEmpty else { return nil }
            return (kind, units.filter { store.completion(of: $0) != nil }.count, units.count)
        }
    }

    /// Metric and comparison records of every finished unit, in plan order.
    public func collect() throws -> (metrics: [MetricRecord], comparisons: [ComparisonRecord]) {
        var metrics: [MetricRecord] = [], comparisons: [ComparisonRecord] = []
        for unit in plan.units {
            guard let done = store.completion(of: unit) else { continue }
            let dir = store.directory(for: unit)
            if let file = done.outputs["metrics"] {
                metrics += try MetricFiles.readJSONL(MetricRecord.self, from: dir.appendingPathComponent(file))
            }
            if let file = done.outputs["comparisons"] {
                comparisons += try MetricFiles.readJSONL(ComparisonRecord.self, from: dir.appendingPathComponent(file))
            }
        }
        return (metrics, comparisons)
    }

    /// Writes metrics.jsonl, metrics.csv, summary.md and report.html; returns the report's URL.
    @discardableResult
    public func writeReport() throws -> URL {
        // A report write killed half-way leaves its temporary files here.
        try store.removeTemporaries(in: store.root, recursive: false, onlyAbandoned: true)
        let (metrics, comparisons) = try collect()
        try writeAtomically(try MetricFiles.jsonl(metrics), to: store.root.appendingPathComponent("metrics.jsonl"))
        try writeAtomically(Data(MetricFiles.csv(metrics).utf8), to: store.root.appendingPathComponent("metrics.csv"))
        try writeAtomically(try MetricFiles.jsonl(comparisons), to: store.root.appendingPathComponent("comparisons.jsonl"))
        let analysis = ExperimentAnalysis(records: metrics, comparisons: comparisons)
        let title = "Palimpsest: \(spec.name)"
        try writeAtomically(Data(MarkdownReport(title: title, analysis: analysis, speedThreshold: spec.evaluation.resolvedSpeedThreshold).render().utf8), to: store.root.appendingPathComponent("summary.md"))
        let html = store.root.appendingPathComponent("report.html")
        try writeAtomically(Data(HTMLReport(title: title, analysis: analysis, speedThreshold: spec.evaluation.resolvedSpeedThreshold).render().utf8), to: html)
        return html
    }
}
