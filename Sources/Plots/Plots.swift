// Plots: self-contained SVG charts (line plots with log axes and bands, heatmaps) for reports.
//
// Output is a pure function of the input: numbers are written by our own fixed-point formatter
// (no locale, no platform printf), colours come from a fixed palette, and iteration order is the
// order of the arrays given. Same input, same bytes.

/// How an axis maps data to position.
public enum AxisScale: String, Sendable, Codable {
    case linear
    /// Base-10 logarithmic; non-positive values are not drawn.
    case log10
}

/// A per-point shaded range around a series (min/max, a confidence interval, ...).
public struct Band: Sendable, Equatable {
    public var lower: [Double]
    public var upper: [Double]
    public init(lower: [Double], upper: [Double]) {
        self.lower = lower
        self.upper = upper
    }
}

/// One named line of a `LineChart`. Points with a non-finite coordinate (or a non-positive value
/// on a log axis) are skipped and break the line into separate segments.
public struct Series: Sendable, Equatable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    public var band: Band?
    /// A CSS colour; nil picks the next colour of the palette.
    public var color: String?
    public var dashed: Bool
    /// Draw a small circle at every point as well as the line.
    public var markers: Bool

    public init(name: String, x: [Double], y: [Double], band: Band? = nil, color: String? = nil,
                dashed: Bool = false, markers: Bool = false) {
        self.name = name
        self.x = x
        self.y = y
        self.band = band
        self.color = color
        self.dashed = dashed
        self.markers = markers
    }

    /// A series whose x values are 0, 1, 2, ...
    public init(name: String, y: [Double], band: Band? = nil, color: String? = nil, dashed: Bool = false,
                markers: Bool = false) {
        self.init(name: name, x: (0..<y.count).map(Double.init), y: y, band: band, color: color,
                  dashed: dashed, markers: markers)
    }
}

/// The fixed categorical palette (colour-blind friendly, in a stable order).
public let plotPalette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                          "#7f7f7f", "#bcbd22", "#17becf"]

/// A line chart with any number of named series, optional bands, a linear or log10 y axis,
/// axis titles, nicely rounded ticks, a legend and a title.
public struct LineChart: Sendable {
    public var title: String
    public var xTitle: String
    public var yTitle: String
    public var xScale: AxisScale
    public var yScale: AxisScale
    public var series: [Series]
    public var width: Int
    public var height: Int

    public init(title: String = "", xTitle: String = "", yTitle: String = "", xScale: AxisScale = .linear,
                yScale: AxisScale = .linear, series: [Series] = [], width: Int = 720, height: Int = 440) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.xScale = xScale
        self.yScale = yScale
        self.series = series
        self.width = width
        self.height = height
    }

    /// The chart as a complete SVG document.
    public func svg() -> String {
        let w = Double(max(width, 200)), h = Double(max(height, 150))
        let left = 78.0, top = title.isEmpty ? 20.0 : 40.0
        var right = 18.0
        let legendRows = series.isEmpty ? 0 : series.count
        let bottom = 52.0
        var plotW = w - left - right
        let plotH = h - top - bottom

        // Data ranges over every drawable value, bands included.
        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for (i, x) in s.x.enumerated() where i < s.y.count {
                guard Self.usable(x, xScale) else { continue }
                if Self.usable(s.y[i], yScale) { xs.append(x); ys.append(s.y[i]) }
                if let b = s.band {
                    if i < b.lower.count, Self.usable(b.lower[i], yScale) { xs.append(x); ys.append(b.lower[i]) }
                    if i < b.upper.count, Self.usable(b.upper[i], yScale) { xs.append(x); ys.append(b.upper[i]) }
                }
            }
        }
        let hasData = !ys.isEmpty
        let xAxis = Axis(values: xs, scale: xScale)
        let yAxis = Axis(values: ys, scale: yScale)
        func px(_ x: Double) -> Double { left + xAxis.fraction(x) * plotW }
        func py(_ y: Double) -> Double { top + (1 - yAxis.fraction(y)) * plotH }

        // Legend: inside the plot area, in the corner that hides no data (ties: top right, top
        // left, bottom right, bottom left); when every corner would hide a point or a line, it
        // goes to the right of the plot area, which narrows to make room.
        let longest = series.map { $0.name.count }.max() ?? 0
        let boxW = min(w / 3, 36 + 7 * Double(longest)), boxH = 8 + 17 * Double(legendRows)
        var legendOrigin: (Double, Double)? = nil
        if legendRows > 0 {
            var pixels: [(Double, Double)] = []
            for s in series {
                var previous: (Double, Double)? = nil
                for (j, x) in s.x.enumerated() where j < s.y.count {
                    guard Self.usable(x, xScale) && Self.usable(s.y[j], yScale) else { previous = nil; continue }
                    let p = (px(x), py(s.y[j]))
                    if let q = previous {  // sample the segment so a line through a corner counts
                        for k in 1..<8 { let t = Double(k) / 8; pixels.append((q.0 + t * (p.0 - q.0), q.1 + t * (p.1 - q.1))) }
                    }
                    pixels.append(p); previous = p
                }
            }
            let corners = [(left + plotW - boxW - 6, top + 6), (left + 6, top + 6),
                           (left + plotW - boxW - 6, top + plotH - boxH - 6), (left + 6, top + plotH - boxH - 6)]
            for c in corners where boxW <= plotW - 12 && boxH <= plotH - 12 {
                let hidden = pixels.contains { $0.0 >= c.0 - 4 && $0.0 <= c.0 + boxW + 4 && $0.1 >= c.1 - 4 && $0.1 <= c.1 + boxH + 4 }
                if !hidden { legendOrigin = c; break }
            }
            if legendOrigin == nil {
                right = 18 + boxW + 12
                plotW = w - left - right
                legendOrigin = (left + plotW + 12, top)
            }
        }

        var out = SVGWriter(width: w, height: h)
        if !title.isEmpty {
            out.text(title, x: w / 2, y: 24, anchor: "middle", size: 16, extra: " font-weight=\"bold\" class=\"title\"")
        }
        out.line("<rect class=\"plot-area\" x=\"\(num(left))\" y=\"\(num(top))\" width=\"\(num(plotW))\" height=\"\(num(plotH))\" fill=\"#ffffff\" stroke=\"#444444\"/>")

        // Grid and ticks.
        out.line("<g class=\"y-ticks\" font-size=\"11\">")
        for t in yAxis.ticks {
            let y = py(t.value)
            out.line("<line x1=\"\(num(left))\" y1=\"\(num(y))\" x2=\"\(num(left + plotW))\" y2=\"\(num(y))\" stroke=\"#e5e5e5\"/>")
            out.line("<line x1=\"\(num(left - 4))\" y1=\"\(num(y))\" x2=\"\(num(left))\" y2=\"\(num(y))\" stroke=\"#444444\"/>")
            out.line("<text class=\"tick\" data-value=\"\(attr(t.value))\" x=\"\(num(left - 7))\" y=\"\(num(y + 4))\" text-anchor=\"end\">\(t.label)</text>")
        }
        out.line("</g>")
        out.line("<g class=\"x-ticks\" font-size=\"11\">")
        for t in xAxis.ticks {
            let x = px(t.value)
            out.line("<line x1=\"\(num(x))\" y1=\"\(num(top))\" x2=\"\(num(x))\" y2=\"\(num(top + plotH))\" stroke=\"#f0f0f0\"/>")
            out.line("<line x1=\"\(num(x))\" y1=\"\(num(top + plotH))\" x2=\"\(num(x))\" y2=\"\(num(top + plotH + 4))\" stroke=\"#444444\"/>")
            out.line("<text class=\"tick\" data-value=\"\(attr(t.value))\" x=\"\(num(x))\" y=\"\(num(top + plotH + 17))\" text-anchor=\"middle\">\(t.label)</text>")
        }
        out.line("</g>")
        if !xTitle.isEmpty {
            out.text(xTitle, x: left + plotW / 2, y: h - 12, anchor: "middle", size: 13, extra: " class=\"x-title\"")
        }
        if !yTitle.isEmpty {
            let cx = 16.0, cy = top + plotH / 2
            out.text(yTitle, x: cx, y: cy, anchor: "middle", size: 13,
                     extra: " class=\"y-title\" transform=\"rotate(-90 \(num(cx)) \(num(cy)))\"")
        }
        if !hasData {
            out.text("no data", x: left + plotW / 2, y: top + plotH / 2, anchor: "middle", size: 14,
                     extra: " class=\"no-data\" fill=\"#888888\"")
        }

        // Bands first so that every line is drawn above every band.
        out.line("<g class=\"series-group\" clip-path=\"url(#\(SVGWriter.clipToken))\">")
        for (i, s) in series.enumerated() {
            guard let band = s.band else { continue }
            let colour = s.color ?? plotPalette[i % plotPalette.count]
            var polys: [String] = []
            var upper: [(Double, Double)] = [], lower: [(Double, Double)] = []
            func flush() {
                if upper.count >= 1 {
                    var d = "M" + upper.map { "\(num($0.0)),\(num($0.1))" }.joined(separator: " L")
                    d += " L" + lower.reversed().map { "\(num($0.0)),\(num($0.1))" }.joined(separator: " L") + " Z"
                    polys.append(d)
                }
                upper.removeAll()
                lower.removeAll()
            }
            for (j, x) in s.x.enumerated() {
                if j < band.lower.count, j < band.upper.count, Self.usable(x, xScale),
                   Self.usable(band.lower[j], yScale), Self.usable(band.upper[j], yScale) {
                    upper.append((px(x), py(band.upper[j])))
                    lower.append((px(x), py(band.lower[j])))
                } else {
                    flush()
                }
            }
            flush()
            if !polys.isEmpty {
                out.line("<path class=\"band\" data-series=\"\(escapeXML(s.name))\" d=\"\(polys.joined(separator: " "))\" fill=\"\(escapeXML(colour))\" fill-opacity=\"0.18\" stroke=\"none\"/>")
            }
        }
        for (i, s) in series.enumerated() {
            let colour = s.color ?? plotPalette[i % plotPalette.count]
            var d = ""
            var segments: [[(Double, Double)]] = [[]]
            for (j, x) in s.x.enumerated() {
                if j < s.y.count, Self.usable(x, xScale), Self.usable(s.y[j], yScale) {
                    let p = (px(x), py(s.y[j]))
                    d += (d.isEmpty ? "" : " ") + (segments[segments.count - 1].isEmpty ? "M" : "L") + "\(num(p.0)),\(num(p.1))"
                    segments[segments.count - 1].append(p)
                } else if !segments[segments.count - 1].isEmpty {
                    segments.append([])
                }
            }
            let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
            if !d.isEmpty {
                out.line("<path class=\"series\" data-series=\"\(escapeXML(s.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(escapeXML(colour))\" stroke-width=\"2\"\(dash)/>")
            }
            // A lone point between gaps draws no visible line, so it always gets a marker.
            for seg in segments where s.markers || seg.count == 1 {
                for p in seg {
                    out.line("<circle class=\"marker\" cx=\"\(num(p.0))\" cy=\"\(num(p.1))\" r=\"2.5\" fill=\"\(escapeXML(colour))\"/>")
                }
            }
        }
        out.line("</g>")

        if let (bx, by) = legendOrigin {
            out.line("<g class=\"legend\" font-size=\"12\">")
            out.line("<rect x=\"\(num(bx))\" y=\"\(num(by))\" width=\"\(num(boxW))\" height=\"\(num(boxH))\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#bbbbbb\"/>")
            for (i, s) in series.enumerated() {
                let colour = s.color ?? plotPalette[i % plotPalette.count]
                let y = by + 13 + 17 * Double(i)
                let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
                out.line("<line x1=\"\(num(bx + 6))\" y1=\"\(num(y))\" x2=\"\(num(bx + 26))\" y2=\"\(num(y))\" stroke=\"\(escapeXML(colour))\" stroke-width=\"2\"\(dash)/>")
                out.text(s.name, x: bx + 31, y: y + 4, anchor: "start", size: 12, extra: " class=\"legend-label\"")
            }
            out.line("</g>")
        }
        return out.finish(clip: (left, top, plotW, plotH))
    }

    static func usable(_ v: Double, _ scale: AxisScale) -> Bool {
        v.isFinite && (scale == .linear || v > 0)
    }
}

/// A matrix drawn as coloured cells with row and column labels, a colour bar, and (optionally)
/// each value printed in its cell. NaN cells are grey and print "n/a".
public struct Heatmap: Sendable {
    public enum ColorScale: String, Sendable {
        /// White to dark blue: larger is darker.
        case sequential
        /// Blue through white to red, centred on zero.
        case diverging
    }

    public var title: String
    public var rowLabels: [String]
    public var columnLabels: [String]
    /// values[row][column]
    public var values: [[Double]]
    public var colorScale: ColorScale
    public var showValues: Bool
    /// Significant digits of printed values.
    public var digits: Int
    public var rowTitle: String
    public var columnTitle: String
    /// Fixed colour range; nil uses the data's min and max.
    public var range: ClosedRange<Double>?

    public init(title: String = "", rowLabels: [String], columnLabels: [String], values: [[Double]],
                colorScale: ColorScale = .sequential, showValues: Bool = true, digits: Int = 3,
                rowTitle: String = "", columnTitle: String = "", range: ClosedRange<Double>? = nil) {
        self.title = title
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.values = values
        self.colorScale = colorScale
        self.showValues = showValues
        self.digits = digits
        self.rowTitle = rowTitle
        self.columnTitle = columnTitle
        self.range = range
    }

    /// The heatmap as a complete SVG document.
    public func svg() -> String {
        let rows = max(values.count, rowLabels.count)
        let cols = max(values.map(\.count).max() ?? 0, columnLabels.count)
        let cell = 64.0, cellH = 34.0
        let labelW = 12 + 7 * Double(rowLabels.map(\.count).max() ?? 0) + (rowTitle.isEmpty ? 0 : 22)
        let top = (title.isEmpty ? 16.0 : 40.0) + (columnTitle.isEmpty ? 0 : 20) + 22
        let left = max(labelW, 40)
        let barW = 90.0
        // Wide enough for the title (about 9 px a character at 16 px bold).
        let w = max(left + Double(cols) * cell + barW, 9 * Double(title.count) + 40), h = top + Double(max(rows, 1)) * cellH + 20
        func value(_ r: Int, _ c: Int) -> Double {
            r < values.count && c < values[r].count ? values[r][c] : .nan
        }
        let finite = values.flatMap { $0 }.filter(\.isFinite)
        var lo = range?.lowerBound ?? finite.min() ?? 0, hi = range?.upperBound ?? finite.max() ?? 1
        if colorScale == .diverging, range == nil {
            let a = max(abs(lo), abs(hi))
            lo = -a
            hi = a
        }
        if !(hi > lo) { hi = lo + 1 }
        func colour(_ v: Double) -> (String, Bool) {
            guard v.isFinite else { return ("#d9d9d9", false) }
            let f = min(max((0.5 * v - 0.5 * lo) / (0.5 * hi - 0.5 * lo), 0), 1)
            switch colorScale {
            case .sequential:
                let c = mix((247, 251, 255), (8, 48, 107), f)
                return (hex(c), f > 0.55)
            case .diverging:
                let c = f < 0.5 ? mix((33, 102, 172), (247, 247, 247), f * 2) : mix((247, 247, 247), (178, 24, 43), (f - 0.5) * 2)
                return (hex(c), abs(f - 0.5) > 0.35)
            }
        }

        var out = SVGWriter(width: w, height: h)
        if !title.isEmpty {
            out.text(title, x: w / 2, y: 24, anchor: "middle", size: 16, extra: " font-weight=\"bold\" class=\"title\"")
        }
        if !columnTitle.isEmpty {
            out.text(columnTitle, x: left + Double(cols) * cell / 2, y: top - 28, anchor: "middle", size: 13,
                     extra: " class=\"column-title\"")
        }
        if !rowTitle.isEmpty {
            let cx = 14.0, cy = top + Double(rows) * cellH / 2
            out.text(rowTitle, x: cx, y: cy, anchor: "middle", size: 13,
                     extra: " class=\"row-title\" transform=\"rotate(-90 \(num(cx)) \(num(cy)))\"")
        }
        out.line("<g class=\"column-labels\" font-size=\"12\">")
        for c in 0..<cols {
            let label = c < columnLabels.count ? columnLabels[c] : ""
            out.text(label, x: left + (Double(c) + 0.5) * cell, y: top - 8, anchor: "middle", size: 12, extra: "")
        }
        out.line("</g>")
        out.line("<g class=\"row-labels\" font-size=\"12\">")
        for r in 0..<rows {
            let label = r < rowLabels.count ? rowLabels[r] : ""
            out.text(label, x: left - 6, y: top + (Double(r) + 0.5) * cellH + 4, anchor: "end", size: 12, extra: "")
        }
        out.line("</g>")
        out.line("<g class=\"cells\" font-size=\"11\">")
        for r in 0..<rows {
            for c in 0..<cols {
                let v = value(r, c)
                let (fill, dark) = colour(v)
                let x = left + Double(c) * cell, y = top + Double(r) * cellH
                out.line("<rect class=\"cell\" data-row=\"\(r)\" data-column=\"\(c)\" data-value=\"\(attr(v))\" x=\"\(num(x))\" y=\"\(num(y))\" width=\"\(num(cell))\" height=\"\(num(cellH))\" fill=\"\(fill)\" stroke=\"#ffffff\"/>")
                if showValues {
                    let label = v.isFinite ? formatSignificant(v, digits: max(digits, 1)) : "n/a"
                    out.line("<text class=\"cell-value\" x=\"\(num(x + cell / 2))\" y=\"\(num(y + cellH / 2 + 4))\" text-anchor=\"middle\" fill=\"\(dark ? "#ffffff" : "#222222")\">\(escapeXML(label))</text>")
                }
            }
        }
        out.line("</g>")
        // Colour bar: ten steps from low (bottom) to high (top).
        let bx = left + Double(cols) * cell + 16, barH = max(Double(rows) * cellH, 60)
        out.line("<g class=\"color-bar\" font-size=\"11\">")
        for i in 0..<10 {
            let f = (Double(i) + 0.5) / 10
            let (fill, _) = colour(lo + f * (hi - lo))
            out.line("<rect x=\"\(num(bx))\" y=\"\(num(top + barH * (1 - Double(i + 1) / 10)))\" width=\"14\" height=\"\(num(barH / 10))\" fill=\"\(fill)\"/>")
        }
        out.text(formatSignificant(hi, digits: 3), x: bx + 18, y: top + 10, anchor: "start", size: 11, extra: "")
        out.text(formatSignificant(lo, digits: 3), x: bx + 18, y: top + barH, anchor: "start", size: 11, extra: "")
        out.line("</g>")
        return out.finish(clip: nil)
    }
}

// MARK: - Axes and ticks

/// One labelled tick: its data value and the label as SVG text content (already escaped).
struct Tick: Equatable {
    var value: Double
    var label: String
}

struct Axis {
    var lo: Double
    var hi: Double
    var scale: AxisScale
    var ticks: [Tick]

    init(values: [Double], scale: AxisScale) {
        self.scale = scale
        var lo = values.min() ?? (scale == .log10 ? 1 : 0)
        var hi = values.max() ?? (scale == .log10 ? 10 : 1)
        switch scale {
        case .linear:
            if hi == lo {
                let pad = lo == 0 ? 1 : abs(lo) * 0.1
                lo -= pad
                hi += pad
            }
            let t = NiceTicks.linear(lo, hi)
            self.lo = Swift.min(lo, t.first ?? lo)
            self.hi = Swift.max(hi, t.last ?? hi)
            ticks = t.map { Tick(value: $0, label: escapeXML(NiceTicks.label($0, step: t.count > 1 ? t[1] - t[0] : 1))) }
        case .log10:
            // Clamped to the decades a Double can hold, so that 10^b stays finite.
            var a = max(NiceTicks.log10Floor(lo), -300), b = min(NiceTicks.log10Ceil(hi), 300)
            if a >= b { a = min(a, b) - 1; b = a + 2 }
            self.lo = pow10(a)
            self.hi = pow10(b)
            ticks = NiceTicks.log10(lo: a, hi: b).map { Tick(value: $0.value, label: $0.label) }
        }
    }

    /// Position in [0, 1] along the axis.
    func fraction(_ v: Double) -> Double {
        switch scale {
        case .linear: return (0.5 * v - 0.5 * lo) / (0.5 * hi - 0.5 * lo)  // halves: no overflow near ±max
        case .log10: return (plotLog10(v) - plotLog10(lo)) / (plotLog10(hi) - plotLog10(lo))
        }
    }
}

/// Tick placement with "nice" numbers (1, 2 or 5 times a power of ten).
public enum NiceTicks {
    /// About `target` ticks covering [lo, hi], at multiples of a nice step.
    public static func linear(_ lo: Double, _ hi: Double, target: Int = 6) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [] }
        let step = niceStep((hi - lo) / Double(max(target - 1, 1)))
        let first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
        guard last - first < 1000 else { return [] }
        var out: [Double] = []
        var k = first
        while k <= last {
            // k * step rather than accumulation, and snapped to zero, so labels are exact.
            let v = k * step
            out.append(abs(v) < step * 1e-9 ? 0 : v)
            k += 1
        }
        return out
    }

    /// The nearest of 1, 2, 5 × 10^n to raw (on a rough log scale).
    public static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let e = log10Floor(raw)
        let base = pow10(e)
        let f = raw / base
        let m: Double = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10
        return m * base
    }

    /// Ticks of a log10 axis spanning decades lo...hi: every power of ten (every few decades when
    /// there are many), plus 2× and 5× when the axis spans at most two decades.
    public static func log10(lo: Int, hi: Int) -> [(value: Double, label: String)] {
        let span = hi - lo
        let every = span <= 8 ? 1 : Int((Double(span) / 8).rounded(.up))
        var out: [(Double, String)] = []
        var e = lo
        while e <= hi {
            if (e - lo) % every == 0 { out.append((pow10(e), powerLabel(e))) }
            if span <= 2, e < hi {
                out.append((2 * pow10(e), escapeXML(formatSignificant(2 * pow10(e), digits: 1))))
                out.append((5 * pow10(e), escapeXML(formatSignificant(5 * pow10(e), digits: 1))))
            }
            e += 1
        }
        return out
    }

    /// "10" with the exponent as a superscript (values between 0.01 and 1000 are written out).
    static func powerLabel(_ e: Int) -> String {
        if (-2...3).contains(e) { return escapeXML(formatSignificant(pow10(e), digits: 1)) }
        let exponent = e < 0 ? "\u{2212}\(-e)" : "\(e)"
        return "10<tspan dy=\"-6\" font-size=\"8\">\(exponent)</tspan><tspan dy=\"6\"></tspan>"
    }

    static func label(_ v: Double, step: Double) -> String {
        let e = log10Floor(step)
        // Very small steps or very large values read better in exponent notation.
        if e < -5 || abs(v) >= 1e7 { return formatSignificant(v, digits: 4) }
        return formatFixed(v, decimals: max(0, -e))
    }

    static func log10Floor(_ v: Double) -> Int {
        var e = Int(Foundationless.log10(v).rounded(.down))
        // log10 can be off by one ulp near exact powers: correct with exact comparisons.
        while pow10(e) > v { e -= 1 }
        while pow10(e + 1) <= v { e += 1 }
        return e
    }

    static func log10Ceil(_ v: Double) -> Int {
        let e = log10Floor(v)
        return pow10(e) == v ? e : e + 1
    }
}

// MARK: - Formatting and escaping

/// Escapes the five XML special characters and drops characters XML 1.0 forbids.
public func escapeXML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for u in s.unicodeScalars {
        switch u {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default:
            let v = u.value
            if v == 0x9 || v == 0xA || v == 0xD || (v >= 0x20 && v != 0xFFFE && v != 0xFFFF) {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out
}

/// `v` rounded to `decimals` places, written without exponent ("-0" is written "0").
public func formatFixed(_ v: Double, decimals: Int) -> String {
    guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "Inf" : "-Inf") }
    let d = min(max(decimals, 0), 15)
    let scale = pow10(d)
    let scaled = (abs(v) * scale).rounded()
    guard scaled < 9e15 else { return formatSignificant(v, digits: 6) }
    let n = UInt64(scaled)
    let intPart = n / UInt64(scale), frac = n % UInt64(scale)
    var s = (v < 0 && n != 0 ? "-" : "") + String(intPart)
    if d > 0 {
        let f = String(frac)
        s += "." + String(repeating: "0", count: d - f.count) + f
    }
    return s
}

/// `v` with `digits` significant digits, in fixed notation for moderate magnitudes and
/// "1.23e-7" notation otherwise; trailing zeros are removed.
public func formatSignificant(_ v: Double, digits: Int) -> String {
    guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "Inf" : "-Inf") }
    if v == 0 { return "0" }
    let digits = min(max(digits, 1), 15)
    var e = NiceTicks.log10Floor(abs(v))
    // Rounding can carry into the next decade (9.99 -> 10.0).
    let mant = (abs(v) / pow10(e) * pow10(digits - 1)).rounded()
    if mant >= pow10(digits) { e += 1 }
    func trim(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }
    if e >= -4 && e < 7 {
        return trim(formatFixed(v, decimals: max(digits - 1 - e, 0)))
    }
    let m = v / pow10(e)
    return trim(formatFixed(m, decimals: digits - 1)) + "e" + String(e)
}

/// A coordinate with two decimals.
func num(_ v: Double) -> String { formatFixed(v, decimals: 2) }

/// A data value for an attribute: full precision in a stable form.
func attr(_ v: Double) -> String { formatSignificant(v, digits: 10) }

/// Exact powers of ten for the exponents charts use (products of exact factors; 10^-k by
/// division so that 0.1 is the nearest double to 0.1).
func pow10(_ e: Int) -> Double {
    if e >= 0 {
        var r = 1.0
        for _ in 0..<min(e, 330) { r *= 10 }
        return r
    }
    var r = 1.0
    for _ in 0..<min(-e, 330) { r *= 10 }
    return 1 / r
}

func mix(_ a: (Double, Double, Double), _ b: (Double, Double, Double), _ f: Double) -> (Double, Double, Double) {
    (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
}

func hex(_ c: (Double, Double, Double)) -> String {
    let digits = Array("0123456789abcdef")
    var s = "#"
    for v in [c.0, c.1, c.2] {
        let n = Int(min(max(v.rounded(), 0), 255))
        s.append(digits[n / 16])
        s.append(digits[n % 16])
    }
    return s
}

/// log10 without Foundation, so the module has no dependencies at all.
enum Foundationless {
    static func log10(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .nan }
        // x = m · 2^e with m in [1, 2): log10 x = (e + log2 m) · log10(2).
        let e = Double(x.exponent)
        let m = x.significand
        // log2 m via ln m with the atanh series: ln m = 2·atanh((m-1)/(m+1)).
        let z = (m - 1) / (m + 1), z2 = z * z
        var term = z, sum = 0.0
        var k = 1.0
        while k < 60 {
            sum += term / k
            term *= z2
            k += 2
        }
        let ln = 2 * sum
        return e * 0.301_029_995_663_981_2 + ln * 0.434_294_481_903_251_8
    }
}

func plotLog10(_ x: Double) -> Double { Foundationless.log10(x) }

struct SVGWriter {
    private var body: [String] = []
    let width: Double, height: Double

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    mutating func line(_ s: String) { body.append(s) }

    mutating func text(_ s: String, x: Double, y: Double, anchor: String, size: Int, extra: String) {
        body.append("<text x=\"\(num(x))\" y=\"\(num(y))\" text-anchor=\"\(anchor)\" font-size=\"\(size)\"\(extra)>\(escapeXML(s))</text>")
    }

    /// Stands for the clip path's id until the body is complete.
    static let clipToken = "@CLIP@"

    func finish(clip: (Double, Double, Double, Double)?) -> String {
        // The clip id is a hash of the content: deterministic, yet distinct for different charts
        // inlined in one HTML page (ids are global to a document).
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for l in body { for b in l.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
        let clipID = "plot-clip-" + String(h, radix: 16)
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        if let c = clip {
            s += "<defs><clipPath id=\"\(clipID)\"><rect x=\"\(num(c.0))\" y=\"\(num(c.1))\" width=\"\(num(c.2))\" height=\"\(num(c.3))\"/></clipPath></defs>\n"
        }
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        for l in body { s += (l.contains(Self.clipToken) ? l.replacingToken(Self.clipToken, with: clipID) : l) + "\n" }
        s += "</svg>\n"
        return s
    }
}

extension String {
    func replacingToken(_ token: String, with value: String) -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: token) {
            out += rest[..<r.lowerBound] + value
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
