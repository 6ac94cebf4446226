import Testing
@testable import Plots

/// A minimal XML well-formedness checker: balanced, properly nested tags, quoted attributes with
/// unique names, only the predefined entities (or character references), no raw `<` or `&` in
/// text. Returns the elements met (name and attributes) or throws a message. Enough to catch
/// what an SVG writer can get wrong without depending on libxml2.
struct MiniXML {
    struct Element { var name: String; var attributes: [String: String] }
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func parse(_ text: String) throws -> [Element] {
        let s = Array(text.unicodeScalars)
        var i = 0, stack: [String] = [], elements: [Element] = []
        var sawRoot = false
        func fail(_ m: String) -> Failure { Failure(description: "\(m) at scalar \(i)") }
        func checkEntities(_ chunk: ArraySlice<Unicode.Scalar>) throws {
            var j = chunk.startIndex
            while j < chunk.endIndex {
                if chunk[j] == "<" { throw fail("raw < in text") }
                if chunk[j] == "&" {
                    guard let semi = chunk[j...].firstIndex(of: ";") else { throw fail("unterminated entity") }
                    let name = String(String.UnicodeScalarView(chunk[(j + 1)..<semi]))
                    let ok = ["amp", "lt", "gt", "quot", "apos"].contains(name)
                        || (name.hasPrefix("#") && name.count > 1 && name.dropFirst().allSatisfy { $0.isHexDigit || $0 == "x" })
                    if !ok { throw fail("bad entity &\(name);") }
                    j = semi
                }
                j += 1
            }
        }
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c.properties.isAlphabetic || c.properties.numericType != nil || c == "-" || c == "_" || c == ":" || c == ".")
        }
        while i < s.count {
            if s[i] == "<" {
                if s[i...].starts(with: "<?".unicodeScalars) {
                    guard let end = String(String.UnicodeScalarView(s[i...])).firstRange(of: "?>") else { throw fail("unterminated PI") }
                    i += String(String.UnicodeScalarView(s[i...]))[..<end.upperBound].unicodeScalars.count
                    continue
                }
                if s[i...].starts(with: "<!--".unicodeScalars) {
                    guard let end = String(String.UnicodeScalarView(s[i...])).firstRange(of: "-->") else { throw fail("unterminated comment") }
                    i += String(String.UnicodeScalarView(s[i...]))[..<end.upperBound].unicodeScalars.count
                    continue
                }
                let closing = i + 1 < s.count && s[i + 1] == "/"
                i += closing ? 2 : 1
                var name = ""
                while i < s.count, isNameChar(s[i]) { name.unicodeScalars.append(s[i]); i += 1 }
                if name.isEmpty { throw fail("empty tag name") }
                if closing {
                    while i < s.count, s[i] == " " { i += 1 }
                    guard i < s.count, s[i] == ">" else { throw fail("bad closing tag") }
                    guard stack.popLast() == name else { throw fail("mismatched </\(name)>") }
                    i += 1
                    continue
                }
                if stack.isEmpty {
                    if sawRoot { throw fail("second root element <\(name)>") }
                    sawRoot = true
                }
                var attrs: [String: String] = [:]
                while true {
                    while i < s.count, s[i] == " " || s[i] == "\n" { i += 1 }
                    guard i < s.count else { throw fail("unterminated tag") }
                    if s[i] == ">" { i += 1; stack.append(name); break }
                    if s[i] == "/" {
                        guard i + 1 < s.count, s[i + 1] == ">" else { throw fail("bad />") }
                        i += 2
                        break
                    }
                    var an = ""
                    while i < s.count, isNameChar(s[i]) { an.unicodeScalars.append(s[i]); i += 1 }
                    guard !an.isEmpty, i + 1 < s.count, s[i] == "=", s[i + 1] == "\"" else { throw fail("bad attribute in <\(name)>") }
                    i += 2
                    let start = i
                    while i < s.count, s[i] != "\"" { i += 1 }
                    guard i < s.count else { throw fail("unterminated attribute") }
                    try checkEntities(s[start..<i])
                    guard attrs[an] == nil else { throw fail("duplicate attribute \(an)") }
                    attrs[an] = String(String.UnicodeScalarView(s[start..<i]))
                    i += 1
                }
                elements.append(Element(name: name, attributes: attrs))
            } else {
                let start = i
                while i < s.count, s[i] != "<" { i += 1 }
                if stack.isEmpty, !s[start..<i].allSatisfy({ $0.properties.isWhitespace }) { throw fail("text outside root") }
                try checkEntities(s[start..<i])
            }
        }
        guard stack.isEmpty else { throw Failure(description: "unclosed <\(stack.last!)>") }
        guard sawRoot else { throw Failure(description: "no root element") }
        return elements
    }
}

func sampleChart() -> LineChart {
    LineChart(title: "Distance between paths", xTitle: "step t", yTitle: "d(θ_AB, θ_BA)", yScale: .log10,
              series: [
                Series(name: "measured", y: [1e-3, 3e-3, 1e-2, 0.05, 0.2, 1.1],
                       band: Band(lower: [5e-4, 1e-3, 5e-3, 0.03, 0.1, 0.8], upper: [2e-3, 5e-3, 2e-2, 0.08, 0.3, 1.5])),
                Series(name: "bound", y: [1e-4, 3e-4, 1e-3, 4e-3, 1e-2, 5e-2], dashed: true),
              ])
}

@Test func lineChartIsWellFormedXMLWithOnePathPerSeries() throws {
    let svg = sampleChart().svg()
    let elements = try MiniXML.parse(svg)
    #expect(elements.first?.name == "svg")
    let paths = elements.filter { $0.name == "path" && $0.attributes["class"] == "series" }
    #expect(paths.map { $0.attributes["data-series"] } == ["measured", "bound"])
    for p in paths {
        let d = p.attributes["d"] ?? ""
        #expect(d.hasPrefix("M"))
        #expect(d.filter { $0 == "L" }.count == 5)  // six points: one move, five lines
    }
    let bands = elements.filter { $0.name == "path" && $0.attributes["class"] == "band" }
    #expect(bands.count == 1 && bands[0].attributes["data-series"] == "measured")
    #expect(bands[0].attributes["d"]?.hasSuffix("Z") == true)
    #expect(elements.filter { $0.attributes["stroke-dasharray"] != nil }.count == 2)  // the line and its legend key
    #expect(svg.contains(">Distance between paths</text>"))
    // The clip path is defined once and referenced by its id; ids differ between charts.
    let clip = try #require(elements.first { $0.name == "clipPath" }?.attributes["id"])
    #expect(svg.contains("clip-path=\"url(#\(clip))\""))
    let other = try MiniXML.parse(LineChart(series: [Series(name: "x", y: [1, 2])]).svg())
    #expect(other.first { $0.name == "clipPath" }?.attributes["id"] != clip)
    #expect(svg.contains(">step t</text>"))
}

@Test func logAxisTicksArePowersOfTen() throws {
    let elements = try MiniXML.parse(sampleChart().svg())
    // The y ticks are the children of the y-ticks group: collect their data values.
    let ticks = elements.filter { $0.name == "text" && $0.attributes["class"] == "tick" }
    let values = ticks.compactMap { $0.attributes["data-value"] }.compactMap(Double.init)
    // Data spans 1e-4 ... 1.5, so the y axis runs from 1e-4 to 10 with one tick per decade.
    let yValues = values.filter { $0 < 0.5 || $0 >= 1 }.filter { v in
        [1e-4, 1e-3, 1e-2, 0.1, 1, 10].contains { abs($0 - v) <= 1e-12 * $0 }
    }
    #expect(yValues.count == 6 + 1)  // six decades, and the x tick "1" shares a value with one of them
    let decades = Set(values.filter { $0 > 0 }.map { Foundationless.log10($0) }.filter { abs($0 - $0.rounded()) < 1e-9 }.map { Int($0.rounded()) })
    #expect(decades.isSuperset(of: [-4, -3, -2, -1, 0, 1]))
    // No y tick that is not a power of ten when the axis spans more than two decades.
    let svg = sampleChart().svg()
    let yGroup = svg.components(between: "<g class=\"y-ticks\"", and: "</g>")
    let yTickValues = yGroup.split(separator: "\n").compactMap { line -> Double? in
        guard let r = line.firstRange(of: "data-value=\"") else { return nil }
        return Double(line[r.upperBound...].prefix { $0 != "\"" })
    }
    #expect(yTickValues.count == 6)
    for v in yTickValues {
        let l = Foundationless.log10(v)
        #expect(abs(l - l.rounded()) < 1e-9, "tick \(v) is not a power of ten")
    }
    #expect(yGroup.contains("10<tspan dy=\"-6\" font-size=\"8\">\u{2212}4</tspan>"))
}

@Test func narrowLogAxisAddsTwoAndFive() {
    let ticks = NiceTicks.log10(lo: 0, hi: 1).map(\.value)
    #expect(ticks == [1, 2, 5, 10])
}

@Test func niceLinearTicks() {
    #expect(NiceTicks.linear(0, 50, target: 6) == [0, 10, 20, 30, 40, 50])
    let u = NiceTicks.linear(-0.13, 0.92, target: 6)
    #expect(u.count == 7 && u.first == -0.2 && u[1] == 0)
    #expect(u.map { NiceTicks.label($0, step: 0.2) } == ["-0.2", "0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
    let t = NiceTicks.linear(0.013, 0.087)
    #expect(t.first! <= 0.013 && t.last! >= 0.087)
    #expect(NiceTicks.niceStep(0.037) == 0.05)
    #expect(NiceTicks.niceStep(3) == 5)
    #expect(NiceTicks.niceStep(10) == 10)
    #expect(formatFixed(-0.0001, decimals: 2) == "0.00")
    #expect(formatFixed(2.5, decimals: 1) == "2.5")
    #expect(formatFixed(-12.345, decimals: 2) == "-12.35" || formatFixed(-12.345, decimals: 2) == "-12.34")
    #expect(formatSignificant(0.000123456, digits: 3) == "0.000123")
    #expect(formatSignificant(1.0e-7, digits: 3) == "1e-7")
    #expect(formatSignificant(9.996, digits: 3) == "10")
    #expect(formatSignificant(123456789, digits: 3) == "1.23e8")
}

@Test func textIsEscaped() throws {
    let chart = LineChart(title: "a < b & \"c\" > 'd'", xTitle: "x<y", yTitle: "&",
                          series: [Series(name: "<script>&amp;", y: [1, 2, 3])])
    let svg = chart.svg()
    _ = try MiniXML.parse(svg)
    #expect(svg.contains("a &lt; b &amp; &quot;c&quot; &gt; &apos;d&apos;"))
    #expect(svg.contains("data-series=\"&lt;script&gt;&amp;amp;\""))
    #expect(!svg.contains("<script>"))
    #expect(escapeXML("a\u{0}b\u{1}c") == "abc")
}

@Test func outputIsDeterministic() {
    #expect(sampleChart().svg() == sampleChart().svg())
    let h = Heatmap(rowLabels: ["a"], columnLabels: ["x", "y"], values: [[1, 2]])
    #expect(h.svg() == h.svg())
}

@Test func nanAndEmptySeriesAreHandled() throws {
    let chart = LineChart(yScale: .log10, series: [
        Series(name: "gappy", y: [1, .nan, 3, 4, -1, 0, 8, .infinity]),
        Series(name: "empty", x: [], y: []),
        Series(name: "all nan", y: [.nan, .nan]),
    ])
    let elements = try MiniXML.parse(chart.svg())
    let paths = elements.filter { $0.name == "path" && $0.attributes["class"] == "series" }
    #expect(paths.count == 1)
    let d = paths[0].attributes["d"] ?? ""
    // Segments: [1], [3, 4], [8] -> three moves, one line.
    #expect(d.filter { $0 == "M" }.count == 3)
    #expect(d.filter { $0 == "L" }.count == 1)
    // The isolated points get markers so they remain visible.
    #expect(elements.filter { $0.name == "circle" }.count == 2)
    #expect(!chart.svg().contains("NaN"))
    // Every series is still named in the legend.
    #expect(elements.filter { $0.attributes["class"] == "legend-label" }.count == 3)

    let empty = LineChart(title: "nothing", series: []).svg()
    let e2 = try MiniXML.parse(empty)
    #expect(e2.contains { $0.attributes["class"] == "no-data" })
    let emptyLog = LineChart(yScale: .log10, series: [Series(name: "neg", y: [-1, 0])]).svg()
    _ = try MiniXML.parse(emptyLog)
    #expect(!emptyLog.contains("NaN") && !emptyLog.contains("Inf"))
}

@Test func extremeValuesStayFinite() throws {
    let charts = [
        LineChart(yScale: .log10, series: [Series(name: "huge", y: [Double.leastNormalMagnitude / 1e8, 1e-200, 1e300, 1.7e308])]),
        LineChart(series: [Series(name: "wide", y: [-1.7e308, 0, 1.7e308])]),
        LineChart(series: [Series(name: "tiny", y: [1e-12, 3e-12, 2e-12])]),
        LineChart(series: [Series(name: "big", y: [1e9, 3e9, 2e9])]),
    ]
    for c in charts {
        let svg = c.svg()
        _ = try MiniXML.parse(svg)
        #expect(!svg.contains("NaN") && !svg.contains("Inf") && !svg.contains("nan") && !svg.contains("inf"))
    }
    #expect(charts[2].svg().contains(">1e-12</text>") || charts[2].svg().contains(">1.5e-12</text>"))
    #expect(charts[3].svg().contains(">2e9</text>"))
}

@Test func constantSeriesGetsARange() throws {
    let svg = LineChart(series: [Series(name: "flat", y: [2, 2, 2])]).svg()
    _ = try MiniXML.parse(svg)
    #expect(!svg.contains("NaN") && !svg.contains("Inf"))
}

@Test func heatmapCellsLabelsAndValues() throws {
    let h = Heatmap(title: "Path × metric", rowLabels: ["p=1", "p=2"], columnLabels: ["forget", "retain", "<x>"],
                    values: [[0.1, 0.25, .nan], [1.0, 0.5, 0.75]], digits: 2, rowTitle: "path", columnTitle: "metric")
    let svg = h.svg()
    let elements = try MiniXML.parse(svg)
    let cells = elements.filter { $0.attributes["class"] == "cell" }
    #expect(cells.count == 6)
    #expect(cells.map { $0.attributes["data-value"]! } == ["0.1", "0.25", "NaN", "1", "0.5", "0.75"])
    // Lowest value is the lightest colour, highest the darkest; NaN is grey.
    #expect(cells[0].attributes["fill"] == "#f7fbff")
    #expect(cells[3].attributes["fill"] == "#08306b")
    #expect(cells[2].attributes["fill"] == "#d9d9d9")
    #expect(svg.contains(">0.25</text>") && svg.contains(">n/a</text>") && svg.contains(">&lt;x&gt;</text>"))
    #expect(svg.contains(">Path × metric</text>"))
    let diverging = Heatmap(rowLabels: ["r"], columnLabels: ["a", "b", "c"], values: [[-2, 0, 1]], colorScale: .diverging).svg()
    let d = try MiniXML.parse(diverging).filter { $0.attributes["class"] == "cell" }
    #expect(d[1].attributes["fill"] == "#f7f7f7")  // zero is the neutral middle
    #expect(d[0].attributes["fill"] == "#2166ac")
    let empty = Heatmap(rowLabels: [], columnLabels: [], values: []).svg()
    _ = try MiniXML.parse(empty)
}

extension String {
    /// The text from the first `start` up to the next `end` after it (empty if absent).
    func components(between start: String, and end: String) -> String {
        guard let a = firstRange(of: start), let b = self[a.upperBound...].firstRange(of: end) else { return "" }
        return String(self[a.lowerBound..<b.lowerBound])
    }
}

/// The legend box (first rect of the legend group) and the plot area, as numbers.
private func legendAndPlot(_ svg: String) throws -> (legend: [Double], plot: [Double]) {
    let elements = try MiniXML.parse(svg)
    let plot = try #require(elements.first { $0.attributes["class"] == "plot-area" })
    let g = try #require(elements.firstIndex { $0.name == "g" && $0.attributes["class"] == "legend" })
    let box = try #require(elements[g...].first { $0.name == "rect" })
    func nums(_ e: MiniXML.Element) -> [Double] { ["x", "y", "width", "height"].map { Double(e.attributes[$0] ?? "") ?? .nan } }
    return (nums(box), nums(plot))
}

@Test func legendSitsInAFreeCornerOrOutsideThePlot() throws {
    // Rising lines leave the top-left corner free: the legend goes there, inside the plot.
    let rising = LineChart(series: [Series(name: "a", y: [0, 1, 2, 3, 4]), Series(name: "b", y: [0, 0.5, 1, 2, 4])])
    let (l1, p1) = try legendAndPlot(rising.svg())
    #expect(l1[0] < p1[0] + p1[2] / 2 && l1[1] < p1[1] + p1[3] / 2)
    #expect(l1[0] >= p1[0] && l1[0] + l1[2] <= p1[0] + p1[2])
    // Lines through all four corners: no corner is free, so the legend moves right of the plot.
    let crossing = LineChart(series: [Series(name: "up", y: [0, 1, 2, 3, 4]), Series(name: "down", y: [4, 3, 2, 1, 0])])
    let (l2, p2) = try legendAndPlot(crossing.svg())
    #expect(l2[0] >= p2[0] + p2[2])
    #expect(l2[0] + l2[2] <= 720)
}
