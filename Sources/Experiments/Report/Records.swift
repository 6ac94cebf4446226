import Datasets
import FileSupport
import Foundation

/// One evaluation of one model during (or before) unlearning: the rows of `metrics.jsonl`.
public struct MetricRecord: Codable, Equatable, Sendable {
    public var seed: Int
    /// The order of stages the model was trained on.
    public var path: [String]
    /// 1-based position of the forget stage in the path (nil for retrained models).
    public var position: Int?
    /// Algorithm label, or "retrained" for the gold-standard models.
    public var algorithm: String
    public var step: Int
    /// Metric name → value: `forget_score`, `fact_utility`, `math_accuracy`, `refusal_loglik`, ...
    public var metrics: [String: Double]

    public init(seed: Int, path: [String], position: Int?, algorithm: String, step: Int, metrics: [String: Double]) {
        self.seed = seed; self.path = path; self.position = position; self.algorithm = algorithm; self.step = step; self.metrics = metrics
    }
}

/// Pairwise comparisons of one seed's models after unlearning.
public struct ComparisonRecord: Codable, Equatable, Sendable {
    public var seed: Int
    public var algorithm: String
    /// Path labels (e.g. "p=1"), in the order of the matrix rows.
    public var labels: [String]
    /// Jeffreys divergence between the unlearned models of two paths (symmetric, zero diagonal);
    /// empty when the experiment does not measure it.
    public var divergence: [[Double]]
    /// Per path: distance of the unlearned model to the retrained model (metric name → value).
    public var toRetrained: [[String: Double]]

    enum CodingKeys: String, CodingKey { case seed, algorithm, labels, divergence, toRetrained }

    /// Reading refuses rows and matrices that do not match the labels: the report indexes them by
    /// label, and a damaged `comparisons.jsonl` trapped it out of range.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seed = try c.decode(Int.self, forKey: .seed)
        algorithm = try c.decode(String.self, forKey: .algorithm)
        labels = try c.decode([String].self, forKey: .labels)
        divergence = try c.decode([[Double]].self, forKey: .divergence)
        toRetrained = try c.decode([[String: Double]].self, forKey: .toRetrained)
        let n = labels.count
        guard toRetrained.count == n else {
            throw DecodingError.dataCorruptedError(forKey: .toRetrained, in: c, debugDescription: "\(toRetrained.count) rows for \(n) labels")
        }
        guard divergence.isEmpty || (divergence.count == n && divergence.allSatisfy { $0.count == n }) else {
            throw DecodingError.dataCorruptedError(forKey: .divergence, in: c,
                debugDescription: "expected an empty or \(n) × \(n) matrix for \(n) labels, found rows of \(divergence.map(\.count))")
        }
    }

    public init(seed: Int, algorithm: String, labels: [String], divergence: [[Double]], toRetrained: [[String: Double]]) {
        self.seed = seed; self.algorithm = algorithm; self.labels = labels; self.divergence = divergence; self.toRetrained = toRetrained
    }
}

/// Reads and writes the metric files of a run as JSONL (one record a line) and CSV.
public enum MetricFiles {
    public static func jsonl<T: Encodable>(_ records: [T]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var out = Data()
        for r in records { out.append(try encoder.encode(r)); out.append(0x0A) }
        return out
    }

    public static func readJSONL<T: Decodable>(_ type: T.Type, from url: URL) throws -> [T] {
        let data: Data
        do { data = try readBoundedFile(atPath: url.path, limit: maxStoreDataBytes) } catch {
            throw StoreError(path: url.path, message: error == .notFound ? "missing or unreadable" : error.description)
        }
        let decoder = JSONDecoder()
        var records: [T] = []
        for (i, line) in data.split(separator: 0x0A, omittingEmptySubsequences: true).enumerated() {
            do { records.append(try decoder.decode(T.self, from: Data(line))) } catch {
                throw StoreError(path: url.path, message: "line \(i + 1) is not a valid record: \(error)")
            }
        }
        return records
    }

    /// A CSV with one row per record and one column per metric (sorted), empty where absent.
    public static func csv(_ records: [MetricRecord]) -> String {
        let names = Array(Set(records.flatMap { $0.metrics.keys })).sorted()
        var lines = [(["seed", "path", "position", "algorithm", "step"] + names).joined(separator: ",")]
        for r in records {
            var fields = [String(r.seed), "\"\(r.path.joined(separator: " > "))\"", r.position.map(String.init) ?? "", r.algorithm, String(r.step)]
            fields += names.map { r.metrics[$0].map { String($0) } ?? "" }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Mean and spread of one quantity over seeds.
public struct SeedStatistic: Equatable, Sendable {
    public var mean: Double
    public var min: Double
    public var max: Double
    public var count: Int
    public var halfRange: Double { (max - min) / 2 }

    public init?(_ values: [Double]) {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else { return nil }
        mean = finite.reduce(0, +) / Double(finite.count)
        min = finite.min()!; max = finite.max()!; count = finite.count
    }

    /// "1.26 ± 0.03" (half-range over seeds), or "1.26" for a single seed.
    public func formatted(_ digits: Int = 2) -> String {
        count > 1 ? String(format: "%.\(digits)f ± %.\(digits)f", mean, halfRange) : String(format: "%.\(digits)f", mean)
    }
}
