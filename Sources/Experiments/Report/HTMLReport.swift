import Foundation
import Plots

/// The run's report as one self-contained HTML page: curves of every metric over unlearning
/// steps (one line per path, seeds as a band), the tables of the Markdown summary, and the
/// path-divergence heatmaps.
public struct HTMLReport {
    public var title: String
    public var analysis: ExperimentAnalysis
    public var markdown: MarkdownReport

    public init(title: String, analysis: ExperimentAnalysis, speedThreshold: Double = EvaluationSpec.defaultSpeedThreshold) {
        self.title = title
        self.analysis = analysis
        self.markdown = MarkdownReport(title: title, analysis: analysis, speedThreshold: speedThreshold)
    }

    static let curveMetrics: [(key: String, title: String, axis: String)] = [
        ("forget_score", "Forget score", "forget score (drop of refusal log-likelihood per token)"),
        ("fact_utility", "Fact utility", "1 − |Δ mean log-likelihood of entity answers|"),
        ("math_accuracy", "Math accuracy", "exact-match accuracy"),
    ]

    /// Probability-mass curves are drawn per stage order: several orders share a forget position.
    static let orderCurveMetrics: [(key: String, title: String, axis: String)] = [
        ("mass_share_u", "Share of the unlearning target U", "softmax share of U among C, U, R"),
        ("mass_loglik_c", "log π(C), the paraphrase", "prompt-mean sequence log-likelihood (nats)"),
        ("mass_loglik_u", "log π(U), the unlearning target", "prompt-mean sequence log-likelihood (nats)"),
        ("mass_loglik_r", "log π(R), the refusal", "prompt-mean sequence log-likelihood (nats)"),
    ]

    /// One row of charts per metric (one chart per algorithm), one line per entry of `lines`.
    func curveSection(_ metrics: [(key: String, title: String, axis: String)],
                      lines: [(name: String, curve: (String, String) -> [(step: Int, value: SeedStatistic)])],
                      withRetrained: Bool, width: Int, height: Int) -> String {
        let a = analysis
        var body = ""
        for metric in metrics where a.records.contains(where: { $0.metrics[metric.key] != nil && $0.algorithm != "retrained" }) {
            body += "<h2>\(metric.title) over unlearning steps</h2>\n<div class=\"row\">\n"
            for algorithm in a.algorithms {
                var series: [Series] = []
                for line in lines {
                    let curve = line.curve(metric.key, algorithm)
                    guard !curve.isEmpty else { continue }
                    let band = a.seeds.count > 1 ? Band(lower: curve.map(\.value.min), upper: curve.map(\.value.max)) : nil
                    series.append(Series(name: line.name, x: curve.map { Double($0.step) }, y: curve.map(\.value.mean), band: band, markers: true))
                }
                if withRetrained, let retrained = a.retrained(metric.key), let steps = a.steps.first.map({ [$0, a.steps.last!] }) {
                    series.append(Series(name: "retrained", x: steps.map(Double.init), y: [retrained.mean, retrained.mean], color: "#555555", dashed: true))
                }
                guard !series.isEmpty else { continue }
                let chart = LineChart(title: "\(metric.title): \(algorithm)", xTitle: "unlearning step", yTitle: metric.axis,
                                      series: series, width: width, height: height)
                body += "<figure>\(inline(chart.svg()))</figure>\n"
            }
            body += "</div>\n"
        }
        return body
    }

    public func render() -> String {
        let a = analysis
        var body = "<h1>\(escapeXML(title))</h1>\n"
        body += "<p>Seeds: \(a.seeds.map(String.init).joined(separator: ", ")). Lines are means over seeds; shaded bands span the seeds' minimum to maximum.</p>\n"
        // Recency curves: one line per forget position. Mass curves: one line per stage order,
        // as several orders share a position.
        let byPosition = a.positions.map { p in (name: "p=\(p)", curve: { (m: String, alg: String) in a.curve(m, algorithm: alg, position: p) }) }
        let byOrder = a.orders.map { path in (name: path.joined(separator: " → "), curve: { (m: String, alg: String) in a.curve(m, algorithm: alg, path: path) }) }
        body += curveSection(Self.curveMetrics, lines: byPosition, withRetrained: true, width: 520, height: 360)
        body += curveSection(Self.orderCurveMetrics, lines: byOrder, withRetrained: false, width: 720, height: 400)
        for algorithm in a.algorithms {
            guard let (labels, matrix) = a.meanDivergence(algorithm: algorithm) else { continue }
            let map = Heatmap(title: "Jeffreys divergence between paths: \(algorithm)", rowLabels: labels, columnLabels: labels, values: matrix)
            body += "<figure>\(inline(map.svg()))</figure>\n"
        }
        body += "<h2>Tables</h2>\n" + tablesHTML(markdown.render())
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escapeXML(title))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; max-width: 1120px; margin: 2em auto; color: #222; }
        .row { display: flex; flex-wrap: wrap; gap: 8px; } figure { margin: 0; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        </style></head><body>
        \(body)
        </body></html>

        """
    }

    /// An SVG document without its XML declaration, for inline use.
    private func inline(_ svg: String) -> String {
        guard svg.hasPrefix("<?xml"), let end = svg.range(of: "?>\n") else { return svg }
        return String(svg[end.upperBound...])
    }

    /// Converts the Markdown summary's headings, paragraphs and pipe tables to HTML.
    private func tablesHTML(_ markdown: String) -> String {
        var html = "", inTable = false, headerDone = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("|") {
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces) }
                if cells.allSatisfy({ $0 == "---" }) { headerDone = true; continue }
                if !inTable { html += "<table>\n"; inTable = true; headerDone = false }
                let tag = headerDone ? "td" : "th"
                html += "<tr>" + cells.map { "<\(tag)>\(escapeXML($0))</\(tag)>" }.joined() + "</tr>\n"
                continue
            }
            if inTable { html += "</table>\n"; inTable = false }
            if line.hasPrefix("# ") { continue }
            if line.hasPrefix("## ") { html += "<h3>\(escapeXML(String(line.dropFirst(3))))</h3>\n" }
            else if !line.isEmpty { html += "<p>\(escapeXML(line))</p>\n" }
        }
        if inTable { html += "</table>\n" }
        return html
    }
}
