import ArgumentParser
import Engine
import Foundation
import JSONSupport
import Models

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the speed of the engine's kernels and models.",
        subcommands: [BenchGEMM.self, BenchTrain.self, BenchAttention.self, BenchMemory.self, BenchTokenizer.self]
    )
}

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Time sgemm on the matrix shapes a model uses (forward and backward transposes)."
    )

    @Option(help: "Threads to use (default: every core).")
    var threads: Int?

    @Option(help: "Timed repetitions per shape; the median is reported.")
    var repeats: Int = 5

    @Flag(help: "Print one JSON object per line.")
    var json = false

    @Option(name: .customLong("shape"),
            help: "Only this product, as MxKxN with optional transposes, e.g. 2048x512x1408:NT (repeatable).")
    var shapes: [String] = []

    @Flag(help: "Only the forward product of each shape (a third of the default run).")
    var quick = false

    @Option(help: ArgumentHelp(
        "A shared library with cblas_sgemm (e.g. OpenBLAS) to time in the same process, call for call in alternation.",
        discussion: "Each repetition times one Palimpsest call and one reference call back to back (the order alternating), so both see the same state of a noisy machine; the ratio reported is the median of the per-pair ratios."))
    var reference: String?

    /// (M, K, N) of the forward products; the backward products are their transposes. The small
    /// model's shapes first, then the tiny model's (batch 8 x 128 tokens).
    static let shapes: [(Int, Int, Int)] = [
        (2048, 512, 1408), (2048, 1408, 512), (2048, 512, 8192), (2048, 1024, 2816), (2048, 512, 512),
        (1024, 128, 352), (1024, 128, 2048),
    ]

    func run() throws {
        let threads = threads ?? Parallel.threads
        guard threads > 0 else { throw ValidationError("--threads must be > 0") }
        guard repeats > 0 else { throw ValidationError("--repeats must be > 0") }
        var cases: [(m: Int, k: Int, n: Int, ta: Bool, tb: Bool)] = []
        if !shapes.isEmpty {
            cases = try shapes.map(Self.parseShape)
        } else {
            for (m, k, n) in Self.shapes {
                cases.append((m, k, n, false, true))   // forward: X[M,K] · W[N,K]^T
                if quick { continue }
                cases.append((m, n, k, false, false))  // dX = dY[M,N] · W[N,K]
                cases.append((n, m, k, true, false))   // dW = dY^T[N,M] · X[M,K]
            }
        }
        if let reference {
            try runAgainst(ReferenceBLAS(path: reference), cases: cases, threads: threads)
            return
        }
        if !json {
            print("sgemm kernel: \(GEMM.kernelName)")
            print("     M      K      N  tA tB threads   GFLOP/s")
        }
        for c in cases {
            let gflops = Self.measure(m: c.m, k: c.k, n: c.n, transA: c.ta, transB: c.tb, threads: threads, repeats: repeats)
            if json {
                print(jsonLine(["m": "\(c.m)", "k": "\(c.k)", "n": "\(c.n)", "transA": "\(c.ta)", "transB": "\(c.tb)",
                                "threads": "\(threads)", "gflops": jsonNumber(gflops, 2)]))
            } else {
                print(String(format: "%6d %6d %6d  %@  %@ %7d %9.2f", c.m, c.k, c.n, c.ta ? "T" : "N", c.tb ? "T" : "N", threads, gflops))
            }
        }
    }

    private func runAgainst(_ blas: ReferenceBLAS, cases: [(m: Int, k: Int, n: Int, ta: Bool, tb: Bool)], threads: Int) throws {
        guard blas.canSetThreads || threads == 1 else {
            throw ValidationError("--reference \(blas.path): the library has no known way to set its thread count; use --threads 1")
        }
        blas.setThreads(threads)
        if !json {
            print("sgemm kernel: \(GEMM.kernelName); reference: \(blas.symbol) from \(blas.path)")
            print("\(repeats) alternating pairs per shape; GFLOP/s medians and the median of the per-pair ratios")
            print("     M      K      N  tA tB threads  palimpsest  reference  ratio")
        }
        for c in cases {
            let r = try Self.measurePairs(blas, m: c.m, k: c.k, n: c.n, transA: c.ta, transB: c.tb, threads: threads, repeats: repeats)
            if json {
                print(jsonLine(["m": "\(c.m)", "k": "\(c.k)", "n": "\(c.n)", "transA": "\(c.ta)", "transB": "\(c.tb)",
                                "threads": "\(threads)", "gflops": jsonNumber(r.ours, 2), "reference_gflops": jsonNumber(r.reference, 2),
                                "ratio": jsonNumber(r.ratio, 4)]))
            } else {
                print(String(format: "%6d %6d %6d  %@  %@ %7d %11.2f %10.2f %5.0f%%", c.m, c.k, c.n, c.ta ? "T" : "N", c.tb ? "T" : "N",
                             threads, r.ours, r.reference, 100 * r.ratio))
            }
        }
    }

    /// Times Palimpsest and the reference in alternation on the same operands: medians of each
    /// side's GFLOP/s and of the per-pair ratio (Palimpsest's speed over the reference's).
    /// Fails when the two products differ by more than rounding.
    static func measurePairs(_ blas: ReferenceBLAS, m: Int, k: Int, n: Int, transA: Bool, transB: Bool,
                             threads: Int, repeats: Int) throws -> (ours: Double, reference: Double, ratio: Double) {
        let (a, b, lda, ldb) = operands(m: m, k: k, n: n, transA: transA, transB: transB)
        var c = [Float](repeating: 0, count: m * n), cRef = [Float](repeating: 0, count: m * n)
        var ours: [Double] = [], theirs: [Double] = [], ratios: [Double] = []
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    cRef.withUnsafeMutableBufferPointer { pr in
                        func timeOurs() -> Double {
                            timedSGEMM(m: m, k: k, n: n, transA: transA, transB: transB, a: pa, lda: lda, b: pb, ldb: ldb,
                                       c: pc, threads: threads)
                        }
                        func timeTheirs() -> Double {
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            blas.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1,
                                       a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                       beta: 0, c: pr.baseAddress!, ldc: n)
                            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                        }
                        _ = timeOurs(); _ = timeTheirs()  // warm-up: page faults, thread start
                        for rep in 0..<repeats {
                            let (t, r): (Double, Double)
                            if rep % 2 == 0 { t = timeOurs(); r = timeTheirs() } else { r = timeTheirs(); t = timeOurs() }
                            ours.append(t); theirs.append(r); ratios.append(r / t)
                        }
                    }
                }
            }
        }
        // Both compute the same sums in different orders: agreement to rounding shows that the
        // reference was called with the intended shapes and transposes.
        var worst: Float = 0, scale: Float = 0
        for i in c.indices { worst = max(worst, abs(c[i] - cRef[i])); scale = max(scale, abs(cRef[i])) }
        guard worst <= 1e-4 * max(scale, 1) * Float(k).squareRoot() else {
            throw ValidationError("--reference: results differ from Palimpsest's by \(worst) (largest |C| \(scale)) on \(m)x\(k)x\(n)")
        }
        func median(_ x: [Double]) -> Double { let s = x.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        let flop = 2.0 * Double(m) * Double(n) * Double(k)
        return (flop / median(ours) / 1e9, flop / median(theirs) / 1e9, median(ratios))
    }

    /// Parses `MxKxN` or `MxKxN:TT` (transposes of A and B, each `N` or `T`).
    static func parseShape(_ text: String) throws -> (m: Int, k: Int, n: Int, ta: Bool, tb: Bool) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let dims = parts[0].split(separator: "x").map { Int($0) }
        let flags = parts.count > 1 ? Array(parts[1]) : ["N", "N"]
        guard parts.count <= 2, dims.count == 3, let m = dims[0], let k = dims[1], let n = dims[2],
              m > 0, k > 0, n > 0, flags.count == 2, flags.allSatisfy({ $0 == "N" || $0 == "T" }) else {
            throw ValidationError("--shape '\(text)': expected MxKxN with positive sizes, optionally followed by :NN, :NT, :TN or :TT")
        }
        return (m, k, n, flags[0] == "T", flags[1] == "T")
    }

    /// The operands of an `m`×`k`×`n` product: A (m·k values) and B (k·n) filled with the same
    /// small values on every run, and their leading dimensions for the given transposes.
    static func operands(m: Int, k: Int, n: Int, transA: Bool, transB: Bool) -> (a: [Float], b: [Float], lda: Int, ldb: Int) {
        let a = (0..<(m * k)).map { Float(($0 * 7) % 13) * 0.01 - 0.06 }
        let b = (0..<(k * n)).map { Float(($0 * 5) % 11) * 0.01 - 0.05 }
        return (a, b, transA ? m : k, transB ? k : n)
    }

    /// Seconds one Palimpsest sgemm takes: C[m,n] = op(A)·op(B), C overwritten.
    static func timedSGEMM(m: Int, k: Int, n: Int, transA: Bool, transB: Bool,
                           a: UnsafeBufferPointer<Float>, lda: Int, b: UnsafeBufferPointer<Float>, ldb: Int,
                           c: UnsafeMutableBufferPointer<Float>, threads: Int) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a.baseAddress!, lda: lda,
                   b: b.baseAddress!, ldb: ldb, beta: 0, c: c.baseAddress!, ldc: n, threads: threads)
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// Palimpsest's GFLOP/s on one shape, from the median time of `repeats` runs after a warm-up.
    static func measure(m: Int, k: Int, n: Int, transA: Bool, transB: Bool, threads: Int, repeats: Int) -> Double {
        let (a, b, lda, ldb) = operands(m: m, k: k, n: n, transA: transA, transB: transB)
        var c = [Float](repeating: 0, count: m * n)
        var times: [Double] = []
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    for rep in 0...repeats {
                        let seconds = timedSGEMM(m: m, k: k, n: n, transA: transA, transB: transB, a: pa, lda: lda, b: pb, ldb: ldb,
                                                 c: pc, threads: threads)
                        if rep > 0 { times.append(seconds) }  // the first run warms up
                    }
                }
            }
        }
        times.sort()
        return 2.0 * Double(m) * Double(n) * Double(k) / times[times.count / 2] / 1e9
    }
}

/// The options every model-shaped benchmark takes: a preset, its batch and sequence length, threads.
struct BenchShape: ParsableArguments {
    @Option(help: "Model preset: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: String = "tiny"

    @Option(help: "Sequences per step (default: the preset's reference batch).")
    var batch: Int?

    @Option(help: "Tokens per sequence (default: the preset's reference length).")
    var seq: Int?

    @Option(help: "Threads to use (default: every core).")
    var threads: Int?

    /// The reference shapes of ENGINE.md's table.
    static func defaultShape(_ p: ModelPreset) -> (batch: Int, seq: Int) {
        switch p {
        case .pilot, .tiny: return (8, 128)
        case .small: return (4, 256)
        case .medium: return (2, 256)
        }
    }

    /// The preset, batch and sequence length, checked; sets `Parallel.threads` when given.
    func resolve(minimumSeq: Int) throws -> (preset: ModelPreset, batch: Int, seq: Int) {
        guard let p = ModelPreset(rawValue: preset) else {
            throw ValidationError("--preset: unknown preset \"\(preset)\" (expected one of \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let (b, t) = (batch ?? Self.defaultShape(p).batch, seq ?? Self.defaultShape(p).seq)
        guard b > 0, t >= minimumSeq else { throw ValidationError("--batch must be positive and --seq at least \(minimumSeq)") }
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be > 0") }
            Parallel.threads = threads
        }
        return (p, b, t)
    }
}

/// The engine side of the lockstep protocol (scripts/bench/lockstep.py): prints `ready`, then one
/// JSON line from `step` for each `train` or `forward` line read on standard input, and the peak
/// RSS when the input ends.
func serveLockstep(ready: String, _ step: (_ train: Bool) throws -> String) throws {
    print(ready)
    fflush(stdout)
    while let line = readLine() {
        let command = line.trimmingCharacters(in: .whitespaces)
        guard command == "train" || command == "forward" else {
            throw ValidationError("--lockstep: expected `train` or `forward` on standard input, found \"\(command)\"")
        }
        print(try step(command == "train"))
        fflush(stdout)
    }
    print("{\"peak_rss_mib\":\(String(format: "%.0f", BenchTrain.peakRSSMiB()))}")
}

/// One line of a benchmark's `--json` output: the fields in order, each value already JSON text
/// (`jsonNumber` for numbers, `jsonQuoted` for strings). The comparison scripts read these lines, and
/// a key written twice (as `peak_rss_mb` once was) is a programming error, caught here.
func jsonLine(_ fields: KeyValuePairs<String, String>) -> String {
    var seen = Set<String>()
    for (key, _) in fields { precondition(seen.insert(key).inserted, "jsonLine: key \(key) given twice") }
    return "{" + fields.map { "\(jsonQuoted($0.key)):\($0.value)" }.joined(separator: ",") + "}"
}

/// A number as JSON text with `digits` decimals; null when it is not finite (a diverged loss),
/// which JSON cannot write as a number.
func jsonNumber(_ x: Double, _ digits: Int) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "null" }
