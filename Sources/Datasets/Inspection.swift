import Engine
import Foundation

/// Statistics of a list of lengths. Min, max, mean and total are exact; the median and the 95th
/// percentile are exact up to `LengthAccumulator.reservoirSize` values and estimated from a
/// uniform sample of that many beyond, so memory stays bounded on any file.
public struct LengthSummary: Equatable, Sendable, Codable {
    public var min = 0, max = 0, median = 0, p95 = 0
    public var mean = 0.0
    public var total = 0
    public var count = 0
}

/// Streams lengths into a `LengthSummary` with bounded memory (reservoir sampling, seeded).
struct LengthAccumulator {
    static let reservoirSize = 100_000
    private var sample: [Int32] = []
    private var rng = SeededRandom(seed: 0x1E4)
    private var s = LengthSummary()

    mutating func add(_ v: Int) {
        if s.count == 0 { s.min = v; s.max = v }
        s.min = Swift.min(s.min, v)
        s.max = Swift.max(s.max, v)
        s.total += v
        s.count += 1
        if sample.count < Self.reservoirSize {
            sample.append(Int32(clamping: v))
        } else {
            let j = rng.nextInt(s.count)
            if j < Self.reservoirSize { sample[j] = Int32(clamping: v) }
        }
    }

    var summary: LengthSummary {
        var out = s
        guard !sample.isEmpty else { return out }
        let sorted = sample.sorted()
        out.median = Int(sorted[(sorted.count - 1) / 2])
        out.p95 = Int(sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)])
        out.mean = Double(s.total) / Double(s.count)
        return out
    }
}

/// Length statistics of one field over a file.
public struct FieldSummary: Equatable, Sendable, Codable {
    public var name: String
    /// How many values the field had (a list field such as `perturbed_answer` counts each entry).
    public var count: Int
    public var characters: LengthSummary
    public var words: LengthSummary
    public var tokens: LengthSummary?
}

/// What `palimpsest data inspect` prints.
public struct Inspection: Sendable {
    public var report: LoadReport
    /// Raw keys of the JSON records and how many records had each (counted while reading).
    public var fields: [FieldSummary]
    public var samples: [DataRecord]
    public var tokenizer: String?

    /// Reads `url` once, streaming, in bounded memory: keeps the first `samples` records and running
    /// length statistics per field.
    public static func inspect(_ url: URL, options: LoadOptions = LoadOptions(), tokenizer: TokenCounter? = nil,
                               samples: Int = 1) throws -> Inspection {
        var order: [String] = []
        var chars: [String: LengthAccumulator] = [:], words: [String: LengthAccumulator] = [:], tokens: [String: LengthAccumulator] = [:]
        var kept: [DataRecord] = []
        let report = try forEachRecord(in: url, options: options) { r in
            if kept.count < samples { kept.append(r) }
            for (name, text) in r.textFields {
                if chars[name] == nil { order.append(name) }
                chars[name, default: LengthAccumulator()].add(text.count)
                words[name, default: LengthAccumulator()].add(whitespaceWords(text))
                if let tokenizer { tokens[name, default: LengthAccumulator()].add(tokenizer.count(text)) }
            }
        }
        let fields = order.map { n in
            FieldSummary(name: n, count: chars[n]!.summary.count, characters: chars[n]!.summary, words: words[n]!.summary,
                         tokens: tokens[n]?.summary)
        }
        return Inspection(report: report, fields: fields, samples: kept, tokenizer: tokenizer?.name)
    }

    /// A plain-text rendering.
    public func text(formatGiven: Bool) -> String {
        var s = "file: \(report.file)\n"
        s += "format: \(report.format?.rawValue ?? "unknown (no readable record)")\(formatGiven ? "" : " (detected)")\n"
        s += "records: \(report.records)"
        if report.skipped > 0 { s += ", skipped \(report.skipped) bad record(s)" }
        s += "\n"
        for e in report.errors { s += "  skipped: \(e)\n" }
        if !fields.isEmpty {
            s += "\nfield lengths (min / median / mean / p95 / max):\n"
            let w = fields.map(\.name.count).max() ?? 0
            for f in fields {
                let pad = f.name.padding(toLength: w, withPad: " ", startingAt: 0)
                s += "  \(pad)  \(f.count) values\n"
                s += "  \(String(repeating: " ", count: w))    characters \(Self.fmt(f.characters))\n"
                s += "  \(String(repeating: " ", count: w))    words      \(Self.fmt(f.words))\n"
                if let t = f.tokens { s += "  \(String(repeating: " ", count: w))    tokens     \(Self.fmt(t))  (total \(t.total))\n" }
            }
            if tokenizer == nil { s += "  (token statistics: pass --tokenizer)\n" }
        }
        for (i, r) in samples.enumerated() {
            s += "\nsample \(i + 1):\n"
            for (n, t) in r.textFields {
                let shown = t.count > 400 ? String(t.prefix(400)) + "…" : t
                s += "  \(n): \(shown.replacingOccurrences(of: "\n", with: "\n    "))\n"
            }
        }
        return s
    }

    static func fmt(_ l: LengthSummary) -> String {
        "\(l.min) / \(l.median) / \(String(format: "%.1f", l.mean)) / \(l.p95) / \(l.max)"
    }
}
