// Small dense Float64 linear algebra for the theory module: exactly what the closed forms need
// (products, Cholesky solves, symmetric eigenvalues, singular values, orthonormal bases).
// Matrices here are tens to hundreds on a side, so clarity wins over blocking.

/// A dense row-major Float64 matrix.
public struct Matrix: Equatable, Sendable {
    public let rows: Int
    public let cols: Int
    public var data: [Double]

    public init(rows: Int, cols: Int, repeating value: Double = 0) {
        precondition(rows >= 0 && cols >= 0, "Matrix: negative shape \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        data = [Double](repeating: value, count: rows * cols)
    }

    public init(rows: Int, cols: Int, data: [Double]) {
        precondition(data.count == rows * cols, "Matrix: \(rows)x\(cols) needs \(rows * cols) values, got \(data.count)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// From nested rows (all of the same length).
    public init(_ nested: [[Double]]) {
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "Matrix: ragged rows")
        self.init(rows: nested.count, cols: c, data: nested.flatMap { $0 })
    }

    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    @inline(__always) public subscript(i: Int, j: Int) -> Double {
        get { data[i * cols + j] }
        set { data[i * cols + j] = newValue }
    }

    public func row(_ i: Int) -> [Double] { Array(data[(i * cols)..<((i + 1) * cols)]) }

    public func column(_ j: Int) -> [Double] { (0..<rows).map { self[$0, j] } }

    /// The matrix made of the given rows, in order.
    public func selectingRows(_ indices: [Int]) -> Matrix {
        var out = Matrix(rows: indices.count, cols: cols)
        for (r, i) in indices.enumerated() {
            for j in 0..<cols { out[r, j] = self[i, j] }
        }
        return out
    }

    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t[j, i] = self[i, j] } }
        return t
    }

    public static func * (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.cols == b.rows, "Matrix product: \(a.rows)x\(a.cols) · \(b.rows)x\(b.cols)")
        var c = Matrix(rows: a.rows, cols: b.cols)
        let n = b.cols
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    for i in 0..<a.rows {
                        for k in 0..<a.cols {
                            let aik = pa[i * a.cols + k]
                            if aik == 0 { continue }
                            let brow = k * n, crow = i * n
                            for j in 0..<n { pc[crow + j] += aik * pb[brow + j] }
                        }
                    }
                }
            }
        }
        return c
    }

    /// A·v.
    public static func * (a: Matrix, v: [Double]) -> [Double] {
        precondition(a.cols == v.count, "Matrix-vector product: \(a.rows)x\(a.cols) · \(v.count)")
        var out = [Double](repeating: 0, count: a.rows)
        a.data.withUnsafeBufferPointer { pa in
            v.withUnsafeBufferPointer { pv in
                for i in 0..<a.rows {
                    var s = 0.0
                    let base = i * a.cols
                    for j in 0..<a.cols { s += pa[base + j] * pv[j] }
                    out[i] = s
                }
            }
        }
        return out
    }

    /// Aᵀ·v without forming the transpose.
    public func transposeTimes(_ v: [Double]) -> [Double] {
        precondition(rows == v.count, "Transposed matrix-vector product: (\(rows)x\(cols))ᵀ · \(v.count)")
        var out = [Double](repeating: 0, count: cols)
        for i in 0..<rows where v[i] != 0 {
            let s = v[i]
            for j in 0..<cols { out[j] += self[i, j] * s }
        }
        return out
    }

    /// AᵀA (the Gram matrix of the columns).
    public var gram: Matrix { transposed * self }

    public static func + (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.rows == b.rows && a.cols == b.cols, "Matrix sum: \(a.rows)x\(a.cols) + \(b.rows)x\(b.cols)")
        return Matrix(rows: a.rows, cols: a.cols, data: zip(a.data, b.data).map { $0 + $1 })
    }

    public static func * (s: Double, a: Matrix) -> Matrix {
        Matrix(rows: a.rows, cols: a.cols, data: a.data.map { s * $0 })
    }

    /// A + s·I.
    public func addingDiagonal(_ s: Double) -> Matrix {
        precondition(rows == cols, "addingDiagonal: matrix is \(rows)x\(cols), not square")
        var m = self
        for i in 0..<rows { m[i, i] += s }
        return m
    }

    /// Stacks the rows of `a` above those of `b`.
    public static func stacking(_ a: Matrix, _ b: Matrix) -> Matrix {
        precondition(a.cols == b.cols || a.rows == 0 || b.rows == 0, "stacking: \(a.cols) vs \(b.cols) columns")
        let c = a.rows == 0 ? b.cols : a.cols
        return Matrix(rows: a.rows + b.rows, cols: c, data: a.data + b.data)
    }
}

// MARK: - Vectors

@inline(__always) public func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "dot: lengths \(a.count) and \(b.count)")
    var s = 0.0
    for i in a.indices { s += a[i] * b[i] }
    return s
}

/// Euclidean norm, scaled to avoid overflow and underflow.
public func norm(_ a: [Double]) -> Double {
    let m = a.reduce(0) { max($0, abs($1)) }
    guard m > 0, m.isFinite else { return m }
    var s = 0.0
    for x in a { let y = x / m; s += y * y }
    return m * s.squareRoot()
}

public func sub(_ a: [Double], _ b: [Double]) -> [Double] {
    precondition(a.count == b.count, "sub: lengths \(a.count) and \(b.count)")
    return zip(a, b).map { $0 - $1 }
}

public func add(_ a: [Double], _ b: [Double]) -> [Double] {
    precondition(a.count == b.count, "add: lengths \(a.count) and \(b.count)")
    return zip(a, b).map { $0 + $1 }
}

public func scale(_ s: Double, _ a: [Double]) -> [Double] { a.map { s * $0 } }

// MARK: - Decompositions

public enum LinearAlgebraError: Error, CustomStringConvertible, Equatable {
    case notPositiveDefinite(pivot: Int, value: Double)
    case shape(String)

    public var description: String {
        switch self {
        case let .notPositiveDefinite(p, v):
            return "Cholesky: matrix is not positive definite (pivot \(p) is \(v))"
        case let .shape(s): return s
        }
    }
}

public enum LinearAlgebra {
    /// The lower-triangular L with A = L·Lᵀ, for symmetric positive definite A.
    public static func cholesky(_ a: Matrix) throws -> Matrix {
        guard a.rows == a.cols else { throw LinearAlgebraError.shape("Cholesky: matrix is \(a.rows)x\(a.cols), not square") }
        let n = a.rows
        var l = Matrix(rows: n, cols: n)
        for j in 0..<n {
            var s = a[j, j]
            for k in 0..<j { s -= l[j, k] * l[j, k] }
            guard s > 0, s.isFinite else { throw LinearAlgebraError.notPositiveDefinite(pivot: j, value: s) }
            let ljj = s.squareRoot()
            l[j, j] = ljj
            for i in (j + 1)..<max(n, j + 1) {
                var t = a[i, j]
                for k in 0..<j { t -= l[i, k] * l[j, k] }
                l[i, j] = t / ljj
            }
        }
        return l
    }

    /// Solves L·Lᵀ·x = b given the Cholesky factor L.
    public static func choleskySolve(_ l: Matrix, _ b: [Double]) -> [Double] {
        let n = l.rows
        precondition(b.count == n, "choleskySolve: factor is \(n)x\(n), right-hand side has \(b.count)")
        var y = b
        for i in 0..<n {
            var s = y[i]
            for k in 0..<i { s -= l[i, k] * y[k] }
            y[i] = s / l[i, i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = y[i]
            for k in (i + 1)..<max(n, i + 1) { s -= l[k, i] * y[k] }
            y[i] = s / l[i, i]
        }
        return y
    }

    /// x with A·x = b for symmetric positive definite A.
    public static func solveSPD(_ a: Matrix, _ b: [Double]) throws -> [Double] {
        choleskySolve(try cholesky(a), b)
    }

    /// Eigenvalues (ascending) and eigenvectors (the columns of `vectors`, in the same order) of a
    /// symmetric matrix, by the cyclic Jacobi method. Accurate to a few ulps of ‖A‖.
    public static func symmetricEigen(_ a: Matrix) -> (values: [Double], vectors: Matrix) {
        precondition(a.rows == a.cols, "symmetricEigen: matrix is \(a.rows)x\(a.cols), not square")
        let n = a.rows
        var m = a
        var v = Matrix.identity(n)
        let total = a.data.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += m[i, j] * m[i, j] } }
            if off <= 1e-30 * total || off == 0 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(n, p + 1) {
                    let apq = m[p, q]
                    if apq == 0 { continue }
                    // Rotation that zeroes m[p, q] (the stable formulas with |t| ≤ 1).
                    let theta = (m[q, q] - m[p, p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let mkp = m[k, p], mkq = m[k, q]
                        m[k, p] = c * mkp - s * mkq
                        m[k, q] = s * mkp + c * mkq
                    }
                    for k in 0..<n {
                        let mpk = m[p, k], mqk = m[q, k]
                        m[p, k] = c * mpk - s * mqk
                        m[q, k] = s * mpk + c * mqk
                    }
                    for k in 0..<n {
                        let vkp = v[k, p], vkq = v[k, q]
                        v[k, p] = c * vkp - s * vkq
                        v[k, q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { m[$0, $0] < m[$1, $1] || (m[$0, $0] == m[$1, $1] && $0 < $1) }
        var vectors = Matrix(rows: n, cols: n)
        for (newJ, oldJ) in order.enumerated() { for i in 0..<n { vectors[i, newJ] = v[i, oldJ] } }
        return (order.map { m[$0, $0] }, vectors)
    }

    /// Singular values of A (descending), by one-sided Jacobi on the columns (Hestenes), which
    /// keeps small singular values accurate where AᵀA would square their error.
    public static func singularValues(_ a: Matrix) -> [Double] {
        // Work on the orientation with fewer columns: the non-zero singular values are the same.
        var u = a.cols <= a.rows ? a : a.transposed
        let n = u.cols, m = u.rows
        for _ in 0..<60 {
            var rotated = false
            for p in 0..<n {
                for q in (p + 1)..<max(n, p + 1) {
                    var alpha = 0.0, beta = 0.0, gamma = 0.0
                    for i in 0..<m {
                        alpha += u[i, p] * u[i, p]
                        beta += u[i, q] * u[i, q]
                        gamma += u[i, p] * u[i, q]
                    }
                    if gamma == 0 || abs(gamma) <= 1e-15 * (alpha * beta).squareRoot() { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let c = 1 / (1 + t * t).squareRoot(), s = c * t
                    for i in 0..<m {
                        let x = u[i, p], y = u[i, q]
                        u[i, p] = c * x - s * y
                        u[i, q] = s * x + c * y
                    }
                }
            }
            if !rotated { break }
        }
        return (0..<n).map { j in norm(u.column(j)) }.sorted(by: >)
    }

    /// An orthonormal basis of the row space of X, as the columns of a d×r matrix (r = rank),
    /// by modified Gram-Schmidt with one re-orthogonalisation pass. Rows whose remainder is below
    /// `relativeTolerance` times their norm are treated as dependent.
    public static func rowSpaceBasis(_ x: Matrix, relativeTolerance: Double = 1e-10) -> Matrix {
        var basis: [[Double]] = []
        for i in 0..<x.rows {
            let r0 = x.row(i)
            let n0 = norm(r0)
            guard n0 > 0 else { continue }
            var r = r0
            for _ in 0..<2 {
                for q in basis {
                    let c = dot(q, r)
                    for j in r.indices { r[j] -= c * q[j] }
                }
            }
            let nr = norm(r)
            if nr > relativeTolerance * n0 { basis.append(r.map { $0 / nr }) }
        }
        var q = Matrix(rows: x.cols, cols: basis.count)
        for (j, b) in basis.enumerated() { for i in 0..<x.cols { q[i, j] = b[i] } }
        return q
    }
}
