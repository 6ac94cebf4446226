import Foundation

/// The two-sample Kolmogorov–Smirnov test, two-sided, with the p-value computed the way
/// `scipy.stats.ks_2samp(x, y)` computes it by default (`method="auto"`):
///
/// - statistic D = max over all observed values v of |F_x(v) − F_y(v)| (empirical CDFs, ties included);
/// - if max(n_x, n_y) ≤ 10 000, the exact p-value P(D ≥ d) under the null: for n_x = n_y the
///   reflection formula, otherwise the lattice-path recursion of Hodges as rearranged by Viehmann
///   (2021) to give 1 − P directly; d is first snapped to the lattice h / lcm(n_x, n_y);
/// - otherwise (or if the exact value is not a probability) the asymptotic p-value: the one-sample
///   two-sided Kolmogorov distribution with n = round(n_x·n_y / (n_x + n_y)) (round half to even),
///   evaluated with the Simard–L'Ecuyer algorithm choice (Ruben–Gambino, Durbin matrix,
///   Pomeranz, Pelz–Good, or twice the one-sided Smirnov tail).
///
/// Cost: the exact path for unequal sizes visits the band of the lattice that D allows, at worst
/// n_x·n_y cells (about a second at 10 000 × 9 999 with a large D); equal sizes and the asymptotic
/// path are O(n) apart from sorting.
public enum KolmogorovSmirnov {
    public enum Method: String, Sendable, Codable { case exact, asymptotic }

    public struct Result: Equatable, Sendable, Codable {
        /// The KS statistic D.
        public var statistic: Double
        /// Two-sided p-value.
        public var pValue: Double
        public var method: Method
    }

    /// scipy's size limit for the exact computation in `method="auto"`.
    public static let maxExactSampleSize = 10_000

    /// Two-sided two-sample KS test. Throws on an empty sample or NaN.
    public static func twoSample(_ x: [Double], _ y: [Double], metric: String = "Kolmogorov-Smirnov test") throws -> Result {
        try requireNonEmpty(x, metric, "the first sample")
        try requireNonEmpty(y, metric, "the second sample")
        try requireNoNaN(x, metric, "the first sample")
        try requireNoNaN(y, metric, "the second sample")
        let a = x.sorted(), b = y.sorted()
        let n1 = a.count, n2 = b.count
        var maxS = -Double.infinity, minS = Double.infinity
        for v in a + b {
            let diff = Double(upperBound(a, v)) / Double(n1) - Double(upperBound(b, v)) / Double(n2)
            maxS = max(maxS, diff)
            minS = min(minS, diff)
        }
        let lowS = min(max(-minS, 0), 1)
        var d = lowS > maxS ? lowS : maxS

        if max(n1, n2) <= maxExactSampleSize {
            let g = gcd(n1, n2)
            let lcm = Double((n1 / g) * n2)
            let h = Int((d * lcm).rounded(.toNearestOrEven))
            d = Double(h) / lcm
            if h == 0 { return Result(statistic: d, pValue: 1, method: .exact) }
            let p = n1 == n2 ? probOutsideSquare(n: n1, h: h) : probOutsideBand(n1, n2, g: g, h: h)
            if p >= 0 && p <= 1 { return Result(statistic: d, pValue: p, method: .exact) }
        }
        let big = Double(max(n1, n2)), small = Double(min(n1, n2))
        let en = (big * small / (big + small)).rounded(.toNearestOrEven)
        let p = oneSampleTwoSidedSurvival(n: Int(en), d: d)
        return Result(statistic: d, pValue: min(max(p, 0), 1), method: .asymptotic)
    }

    // MARK: - exact two-sample distribution

    private static func upperBound(_ s: [Double], _ v: Double) -> Int {
        var lo = 0, hi = s.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if s[mid] <= v { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    private static func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

    /// P(D_{n,n} ≥ h/n) = 2·Σ_k (−1)^(k+1) C(2n, n − kh)/C(2n, n), evaluated as a nested product
    /// 2·A₁(1 − A₂(1 − A₃(…))) to avoid the cancellation of the alternating sum.
    static func probOutsideSquare(n: Int, h: Int) -> Double {
        var p = 0.0
        var k = n / h
        while k >= 0 {
            var term = 1.0
            for j in 0..<h { term = Double(n - k * h - j) * term / Double(n + k * h + j + 1) }
            p = term * (1 - p)
            k -= 1
        }
        return 2 * p
    }

    /// The share of monotone lattice paths from (0,0) to (m,n) that touch |x/m − y/n| ≥ h/lcm(m,n).
    ///
    /// Q(i,j) is the probability that a uniformly random path to (i,j) has touched the boundary: 1 on
    /// the boundary, and otherwise Q(i,j) = (i·Q(i−1,j) + j·Q(i,j−1)) / (i + j), because the last step
    /// came from the left with probability i/(i+j). One column is kept; only the band of inside cells is
    /// updated (the cells outside it hold 1).
    static func probOutsideBand(_ a: Int, _ b: Int, g: Int, h: Int) -> Double {
        let m = max(a, b), n = min(a, b)
        let mg = m / g, ng = n / g
        // Cell (i, j) is inside the band iff |ng·i − mg·j| < h.
        // Up to 10⁸ cells for samples of 10 000: the inner loop runs on a raw pointer.
        var column = [Double](repeating: 1, count: n + 1)
        return column.withUnsafeMutableBufferPointer { col -> Double in
            let firstTop = min(ceilDiv(h, mg) - 1, n)
            if firstTop >= 0 { for j in 0...firstTop { col[j] = 0 } }
            for i in 1...m {
                let lo = max(floorDiv(ng * i - h, mg) + 1, 0)
                let hi = min(ceilDiv(ng * i + h, mg) - 1, n)
                if hi < lo { return 1 }
                let di = Double(i)
                var below = lo == 0 ? 0.0 : 1.0
                var j = lo
                while j <= hi {
                    let dj = Double(j)
                    let v = (col[j] * di + below * dj) / (di + dj)
                    col[j] = v
                    below = v
                    j += 1
                }
                if lo > 0 { col[lo - 1] = 1 }
            }
            return col[n]
        }
    }

    // MARK: - one-sample two-sided Kolmogorov distribution (scipy.stats.kstwo)

    private static let e128 = 0x1p128
    private static let em128 = 0x1p-128

    /// P(D_n ≥ d) for the one-sample two-sided KS statistic with n observations (`scipy.stats.kstwo.sf`).
    /// NaN for n ≤ 0 or NaN d, as scipy.
    public static func oneSampleTwoSidedSurvival(n: Int, d x: Double) -> Double {
        if n <= 0 || x.isNaN { return .nan }
        if x >= 1 { return 0 }
        if x <= 0 { return 1 }
        let nd = Double(n)
        let t = nd * x
        if t <= 1 {
            if t <= 0.5 { return 1 }
            let prob: Double
            if n <= 140 {
                var p = 1.0
                for i in 1...n { p *= Double(i) * (1.0 / nd) * (2 * t - 1) }
                prob = p
            } else {
                prob = exp(logFactorialOverPower(n) + nd * log(2 * t - 1))
            }
            return clip(1 - prob)
        }
        if t >= nd - 1 { return clip(2 * pow(1 - x, nd)) }
        if x >= 0.5 { return clip(2 * smirnovSurvival(n: n, d: x)) }
        let nxx = t * x
        if n <= 140 {
            if nxx <= 0.754693 { return clip(1 - durbinMatrixCDF(n: n, d: x)) }
            if nxx <= 4 { return clip(1 - pomeranzCDF(n: n, d: x)) }
            return clip(2 * smirnovSurvival(n: n, d: x))
        }
        if nxx >= 370 { return 0 }
        if nxx >= 2.2 { return clip(2 * smirnovSurvival(n: n, d: x)) }
        let cdf: Double
        if nxx >= 18 {
            cdf = 1
        } else if n <= 100_000 && nd * pow(x, 1.5) <= 1.4 {
            cdf = durbinMatrixCDF(n: n, d: x)
        } else {
            cdf = pelzGoodCDF(n: n, d: x)
        }
        return clip(1 - cdf)
    }

    private static func clip(_ p: Double) -> Double { min(max(p, 0), 1) }

    /// log(n!/nⁿ) by Stirling's series with the n·log n term removed up front.
    private static func logFactorialOverPower(_ n: Int) -> Double {
        let coeffs: [Double] = [-2.955065359477124183e-2, 6.4102564102564102564e-3,
                                -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                                -5.952380952380952381e-4, 7.9365079365079365079e-4,
                                -2.7777777777777777778e-3, 8.3333333333333333333e-2]
        let nd = Double(n), rn = 1 / nd
        let z = rn / nd
        var poly = 0.0
        for c in coeffs { poly = poly * z + c }
        return log(nd) / 2 - nd + log(2 * Double.pi) / 2 + rn * poly
    }

    /// Durbin's matrix method (Marsaglia–Tsang–Wang): P(D_n ≤ d) = n!/nⁿ · (Hⁿ)_{kk}, with d = (k − h)/n,
    /// H of size 2k − 1, and scaling by 2¹²⁸ to stay in range.
    static func durbinMatrixCDF(n: Int, d: Double) -> Double {
        if d >= 1 { return 1 }
        let nd = Double(n) * d
        if nd <= 0.5 { return 0 }
        let k = Int(nd.rounded(.up))
        let h = Double(k) - nd
        let m = 2 * k - 1
        var v = [Double](repeating: 0, count: m)
        var w = [Double](repeating: 0, count: m)
        var fac = 1.0
        for j in 1...m {
            w[j - 1] = fac
            fac /= Double(j)
            v[j - 1] = (1 - pow(h, Double(j))) * fac
        }
        let tt = pow(max(2 * h - 1, 0), Double(m)) - 2 * pow(h, Double(m))
        v[m - 1] = (1 + tt) * fac
        var H = [Double](repeating: 0, count: m * m)
        for c in 1..<max(m, 1) { for r in (c - 1)..<m { H[r * m + c] = w[r - c + 1] } }
        for r in 0..<m { H[r * m] = v[r] }
        for c in 0..<m { H[(m - 1) * m + c] = v[m - 1 - c] }
        var P = [Double](repeating: 0, count: m * m)
        for i in 0..<m { P[i * m + i] = 1 }
        var nn = n, expnt = 0, hExpnt = 0
        while nn > 0 {
            if nn % 2 == 1 {
                P = matmul(P, H, m)
                expnt += hExpnt
            }
            H = matmul(H, H, m)
            hExpnt *= 2
            if abs(H[(k - 1) * m + (k - 1)]) > e128 {
                for i in 0..<(m * m) { H[i] /= e128 }
                hExpnt += 128
            }
            nn /= 2
        }
        var p = P[(k - 1) * m + (k - 1)]
        for i in 1...n {
            p = Double(i) * p / Double(n)
            if abs(p) < em128 {
                p *= e128
                expnt -= 128
            }
        }
        if expnt != 0 { p = scalbn(p, expnt) }
        return clip(p)
    }

    private static func matmul(_ a: [Double], _ b: [Double], _ m: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * m)
        for i in 0..<m {
            for l in 0..<m {
                let ail = a[i * m + l]
                if ail == 0 { continue }
                for j in 0..<m { c[i * m + j] += ail * b[l * m + j] }
            }
        }
        return c
    }

    /// Pomeranz's recursion for P(D_n ≤ d): 2n + 1 convolutions of a sliding window with
    /// scaled Poisson weights, then multiplication by n!.
    static func pomeranzCDF(n: Int, d: Double) -> Double {
        let t = Double(n) * d
        let ll = Int(t.rounded(.down))
        let f = t - Double(ll)
        let g = min(f, 1 - f)
        let ceilf = f > 0 ? 1 : 0
        let roundf = f > 0.5 ? 1 : 0
        let npwrs = 2 * (ll + 1)
        var gpower = [Double](repeating: 1, count: npwrs)
        var twogpower = gpower, onem2gpower = gpower
        let gn = g / Double(n), twogn = 2 * g / Double(n), onem2gn = (1 - 2 * g) / Double(n)
        for k in 1..<npwrs {
            gpower[k] = gpower[k - 1] * gn / Double(k)
            twogpower[k] = twogpower[k - 1] * twogn / Double(k)
            onem2gpower[k] = onem2gpower[k - 1] * onem2gn / Double(k)
        }
        func window(_ i: Int) -> (Int, Int) {
            var j1: Int, j2: Int
            if i == 0 {
                j1 = -ll - ceilf - 1; j2 = ll + ceilf - 1
            } else {
                let half = (i + 1) / 2
                if (i + 1) % 2 == 0 {
                    if half == n + 1 {
                        j1 = n - ll - ceilf - 1; j2 = n + ll + ceilf - 1
                    } else {
                        j1 = half - 1 - ll - roundf - 1; j2 = half + ll - 1 + ceilf - 1
                    }
                } else {
                    j1 = half - 1 - ll - 1; j2 = half + ll + roundf - 1
                }
            }
            return (max(j1 + 2, 0), min(j2, n))
        }
        var v0 = [Double](repeating: 0, count: npwrs)
        var v1 = [Double](repeating: 0, count: npwrs)
        v1[0] = 1
        var v0s = 0, v1s = 0
        var expnt = 0
        var (j1, j2) = window(0)
        for i in 1..<(2 * n + 2) {
            let k1 = j1
            swap(&v0, &v1)
            swap(&v0s, &v1s)
            for q in 0..<npwrs { v1[q] = 0 }
            (j1, j2) = window(i)
            let pw = (i == 1 || i == 2 * n + 1) ? gpower : (i % 2 == 1 ? twogpower : onem2gpower)
            let len = j2 - k1 + 1
            if len > 0 {
                let segStart = k1 - v0s
                let segLen = max(0, min(len, npwrs - segStart))
                let pwLen = min(len, npwrs)
                let convStart = j1 - k1
                let convLen = j2 - j1 + 1
                var biggest = 0.0
                for q in 0..<max(convLen, 0) where q < npwrs {
                    let idx = convStart + q
                    var s = 0.0
                    // Full convolution term idx of seg (segLen) and pw (pwLen).
                    let aLo = max(0, idx - (pwLen - 1)), aHi = min(segLen - 1, idx)
                    if aLo <= aHi { for a in aLo...aHi { s += v0[segStart + a] * pw[idx - a] } }
                    v1[q] = s
                    biggest = max(biggest, s)
                }
                if biggest > 0 && biggest < em128 {
                    for q in 0..<npwrs { v1[q] *= e128 }
                    expnt -= 128
                }
                v1s = v0s + j1 - k1
            }
        }
        var ans = v1[n - v1s]
        for k in 1...n {
            if abs(ans) > e128 {
                ans *= em128
                expnt += 128
            }
            ans *= Double(k)
        }
        if expnt != 0 { ans = scalbn(ans, expnt) }
        return clip(ans)
    }

    /// Pelz–Good asymptotic series for P(D_n ≤ d), for small d·√n.
    static func pelzGoodCDF(n: Int, d x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let pi2 = Double.pi * Double.pi, pi4 = pi2 * pi2, pi6 = pi4 * pi2
        let z = Double(n).squareRoot() * x
        let z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2
        let qlog = -pi2 / 8 / z2
        if qlog < -708 { return 0 }
        var q = exp(qlog)
        let k1a = -z2, k1b = pi2 / 4
        let k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4, k2c = pi4 * (1 - 2 * z2) / 16
        let k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16
        let k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * pow(z, 8)
        var K = [0.0, 0.0, 0.0, 0.0]
        let maxk = Int((16 * z / Double.pi).rounded(.up))
        var k = maxk
        while k >= 1 {
            let mm = Double(2 * k - 1)
            let m2 = mm * mm, m4 = m2 * m2, m6 = m4 * m2
            let qp = pow(q, Double(8 * k))
            let coeffs = [1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6]
            for i in 0..<4 { K[i] = K[i] * qp + coeffs[i] }
            k -= 1
        }
        let s2pi = (2 * Double.pi).squareRoot()
        let div = [z, 6 * z4, 72 * pow(z, 7), 6480 * pow(z, 10)]
        for i in 0..<4 { K[i] = K[i] * q * s2pi / div[i] }
        q = exp(-pi2 / 2 / z2)
        var k2extra = 0.0, k3extra = 0.0
        let sqrt3z = 3.0.squareRoot() * z
        var kk = maxk
        while kk >= 1 {
            let kd = Double(kk), ks = kd * kd
            let qp = pow(q, ks)
            k2extra += ks * qp
            let kspi = Double.pi * kd
            k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks * qp
            kk -= 1
        }
        K[2] += k2extra * pi2 * s2pi / (-36 * z3)
        K[3] += k3extra * pi2 * s2pi / (216 * z6)
        var total = 0.0
        for i in 0..<4 { total += K[i] / pow(Double(n), Double(i) / 2) }
        return total
    }

    // MARK: - one-sided Smirnov tail

    /// P(D⁺_n ≥ d) by the Birnbaum–Tingey sum
    /// d·Σ_{v=0}^{⌊n(1−d)⌋} C(n,v) (d + v/n)^(v−1) (1 − d − v/n)^(n−v), with scipy's special cases
    /// (n = 1, d ≤ 1/n, d ≥ 1 − 1/n, tails below e^−708, and the n > 10⁶ approximation). All the terms
    /// are positive, so the sum is taken in log space without cancellation.
    static func smirnovSurvival(n: Int, d x: Double) -> Double {
        if x.isNaN || x < 0 || x > 1 { return .nan }
        if n == 1 { return 1 - x }
        if x == 0 { return 1 }
        if x == 1 { return 0 }
        let nd = Double(n)
        let nx = nd * x
        let nxErr = fma(nd, x, -nx)  // n·x = nx + nxErr exactly
        var nxFloor = nx.rounded(.down)
        var alpha = (nx - nxFloor) + nxErr
        if alpha < 0 { nxFloor -= 1; alpha += 1 }
        if alpha >= 1 { nxFloor += 1; alpha -= 1 }
        if nxFloor == 0 || (nxFloor == 1 && alpha == 0) {
            return clip(1 - x * pow(1 + x, nd - 1))
        }
        if -2 * nd * x * x < -708.3964185322641 { return 0 }
        if Int(nxFloor) >= n - 1 { return clip(pow(1 - x, nd)) }
        if n > 1_000_000 {
            let logp = -pow(6 * nd * x + 1, 2) / 18 / nd
            // scipy's closed-form approximation p ≈ exp(−(6nx + 1)² / 18n) for very large n.
            return logp < -log(2.0) ? exp(logp) : clip(1 - (-expm1(logp)))
        }
        var logTerms = [Double]()
        // log C(n, v) is accumulated with Neumaier compensation: it grows to ~n·log 2 while the terms
        // must keep ~1e-12 relative accuracy, and plain summation loses that for n ≳ 10⁴.
        var logC = 0.0, logCErr = 0.0
        for v in 0...n {
            if v > 0 {
                let inc = log(Double(n - v + 1) / Double(v))
                let t = logC + inc
                logCErr += abs(logC) >= abs(inc) ? (logC - t) + inc : (inc - t) + logC
                logC = t
            }
            // 1 − x − v/n = ((n − v) − n·x) / n, with n·x carried in two parts for accuracy.
            let base = ((Double(n - v) - nx) - nxErr) / nd
            if base <= 0 { break }
            let up = x + Double(v) / nd
            logTerms.append((logC + logCErr) + Double(v - 1) * log(up) + Double(n - v) * log(base))
        }
        let top = logTerms.max() ?? -.infinity
        if top == -.infinity { return 0 }
        var s = 0.0
        for t in logTerms { s += exp(t - top) }
        return clip(x * exp(top + log(s)))
    }
}
