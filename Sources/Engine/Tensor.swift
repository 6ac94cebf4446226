import Foundation

/// Reference-counted Float32 buffer shared by a tensor and its views.
public final class TensorStorage: @unchecked Sendable {
    /// First element: 64-byte aligned when the storage owns its buffer, so SIMD loads never
    /// straddle cache lines needlessly; borrowed memory is only Float-aligned (kernels load unaligned).
    public let base: UnsafeMutablePointer<Float>
    /// Number of Float elements.
    public let count: Int

    /// Bytes actually allocated (a `StoragePool` size class), 0 when not pooled.
    private let pooledBytes: Int
    /// What keeps borrowed memory valid (e.g. a mapped file); nil when the buffer is this storage's own.
    let owner: AnyObject?

    init(count: Int, zeroed: Bool) {
        check(count > 0, "TensorStorage: count must be > 0, got \(count)")
        let (raw, bytes) = StoragePool.take(bytes: count * MemoryLayout<Float>.stride)
        base = raw.bindMemory(to: Float.self, capacity: count)
        self.count = count
        pooledBytes = bytes
        owner = nil
        if zeroed { base.initialize(repeating: 0, count: count) }
    }

    init(borrowing base: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        check(count > 0, "TensorStorage: count must be > 0, got \(count)")
        check(Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0, "TensorStorage: borrowed memory is not Float-aligned")
        self.base = base
        self.count = count
        pooledBytes = 0
        self.owner = owner
    }

    deinit {
        if owner == nil { StoragePool.give(UnsafeMutableRawPointer(base), bytes: pooledBytes) }
    }
}

/// Recycles large tensor buffers by size class.
///
/// A training step allocates the same activation and gradient sizes every step; without reuse
/// each large buffer is a fresh `mmap` whose pages the kernel faults in and zeroes on first touch
/// (a fifth of a small model's step). Freed buffers wait here for the next request of their size
/// class. The pool never holds more than what keeps the process's footprint (live + cached) within
/// its high-water mark of live bytes plus a small slack, so peak memory stays what the work needs.
enum StoragePool {
    /// Buffers below this size come from malloc directly (its own bins recycle them cheaply).
    static let minBytes = 1 << 14
    /// Footprint allowed above the live high-water mark: max(this, high-water / 8).
    static let minSlack = 64 << 20

    private static let lock = NSLock()
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var cached = 0
    nonisolated(unsafe) private static var live = 0
    nonisolated(unsafe) private static var highWater = 0

    /// Four classes per power of two (at most 19% rounding), aligned to 4 KiB pages.
    static func sizeClass(_ bytes: Int) -> Int {
        let pow2 = Int.bitWidth - (bytes - 1).leadingZeroBitCount  // bytes <= 1 << pow2
        let step = Swift.max(4096, 1 << Swift.max(0, pow2 - 3))
        return (bytes + step - 1) / step * step
    }

    /// A 64-byte aligned buffer of at least `bytes`, and the size to give back (0: not pooled).
    static func take(bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        if bytes < minBytes { return (UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), 0) }
        let size = sizeClass(bytes)
        lock.lock()
        live += size
        highWater = Swift.max(highWater, live)
        if var list = free[size], let p = list.popLast() {
            free[size] = list.isEmpty ? nil : list
            cached -= size
            lock.unlock()
            return (p, size)
        }
        // A miss: make room by releasing cached buffers of other sizes.
        var released: [UnsafeMutableRawPointer] = []
        let limit = highWater + Swift.max(minSlack, highWater / 8)
        while live + cached > limit, let (key, list) = free.first {
            released.append(list[list.count - 1])
            cached -= key
            free[key] = list.count == 1 ? nil : Array(list.dropLast())
        }
        lock.unlock()
        for p in released { p.deallocate() }
        return (UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64), size)
    }

    static func give(_ p: UnsafeMutableRawPointer, bytes: Int) {
        if bytes == 0 { p.deallocate(); return }
        lock.lock()
        live -= bytes
        let keep = live + cached + bytes <= highWater + Swift.max(minSlack, highWater / 8)
        if keep {
            free[bytes, default: []].append(p)
            cached += bytes
        }
        lock.unlock()
        if !keep { p.deallocate() }
    }

    /// Releases every cached buffer (e.g. before measuring memory).
    static func drain() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        cached = 0
        lock.unlock()
        for p in all { p.deallocate() }
    }
}

/// A row-major, contiguous Float32 tensor over reference-counted storage.
///
/// Tensors have reference semantics (like PyTorch): ops return new tensors, `reshaped` and
/// `rows` return zero-copy views sharing storage. A tensor produced by an op while gradient
/// recording is on (see `Autograd`) and from an input that requires a gradient remembers the
/// op, so `backward()` can run reverse-mode autodiff. Leaf tensors with `requiresGrad` are
/// parameters: `backward()` accumulates into their `grad`. Parameters with `requiresGrad ==
/// false` are frozen: nothing is computed or stored for them.
///
/// Writing into a tensor's buffer (`withUnsafeMutableBufferPointer`) while it is part of a
/// recorded graph changes what `backward()` sees; the optimizer does it only after backward.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    /// Dimensions, outermost first. `[]` is a scalar.
    public let shape: [Int]
    /// Number of elements (product of `shape`; 1 for a scalar).
    public let count: Int
    /// Shared buffer; this tensor covers `storage.base[offset ..< offset + count]`.
    public let storage: TensorStorage
    /// Element offset of this tensor inside `storage`.
    public let offset: Int
    /// Optional name used by diagnostics (`firstNonFinite`, error messages).
    public var name: String?

    /// The op that produced this tensor, when it was recorded for autodiff.
    var node: Node?
    var _requiresGrad: Bool = false
    /// Accumulated gradient of a leaf tensor (same shape), or nil before the first backward.
    /// Reading it after `resetGrad()` (before any gradient arrived) gives zeros.
    public internal(set) var grad: Tensor? {
        get { settleGrad(); return storedGrad }
        set { storedGrad = newValue; gradIsStale = false }
    }
    /// The gradient buffer as stored, stale contents included (see `resetGrad`).
    var storedGrad: Tensor?
    /// `storedGrad` holds old values that stand for zeros: the next gradient overwrites them.
    var gradIsStale = false

    init(shape: [Int], storage: TensorStorage, offset: Int = 0) {
        let n = Tensor.checkedCount(shape, op: "Tensor")
        check(offset >= 0 && offset + n <= storage.count,
                     "Tensor: view [\(offset), \(offset + n)) outside storage of \(storage.count) elements")
        self.shape = shape
        self.count = n
        self.storage = storage
        self.offset = offset
    }

    /// Validates a shape (no negative or zero dimensions) and returns its element count.
    static func checkedCount(_ shape: [Int], op: String) -> Int {
        var n = 1
        for d in shape {
            check(d > 0, "\(op): shape \(shape) has a \(d == 0 ? "zero-size (empty)" : "negative") dimension; empty tensors are not supported")
            let (p, o) = n.multipliedReportingOverflow(by: d)
            check(!o, "\(op): shape \(shape) overflows Int")
            n = p
        }
        return n
    }

    // MARK: - Creation

    /// A tensor of zeros.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        let n = Tensor.checkedCount(shape, op: "Tensor(zeros:)")
        self.init(shape: shape, storage: TensorStorage(count: n, zeroed: true))
        self.requiresGrad = requiresGrad
    }

    /// An uninitialised tensor, for code that writes every element before any is read (kernels,
    /// loaders): a large one's pages are then first touched by the writer, not by zeroing.
    public static func uninitialized(_ shape: [Int]) -> Tensor {
        let n = Tensor.checkedCount(shape, op: "Tensor")
        return Tensor(shape: shape, storage: TensorStorage(count: n, zeroed: false))
    }

    /// A tensor over `count(shape)` Floats at `base` that it does not own, such as a copy-on-write
    /// mapping of a checkpoint file: no copy is made, and `owner` stays alive as long as the tensor
    /// or any view of it. Writes go to that memory (a private mapping keeps them from the file).
    public static func borrowing(_ base: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) -> Tensor {
        let n = Tensor.checkedCount(shape, op: "Tensor.borrowing")
        return Tensor(shape: shape, storage: TensorStorage(borrowing: base, count: n, owner: owner))
    }

    /// Whether this tensor's memory is borrowed (`borrowing`) rather than its own.
    public var isBorrowed: Bool { storage.owner != nil }

    /// A tensor holding `values` in row-major order.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        let n = Tensor.checkedCount(shape, op: "Tensor(_:shape:)")
        check(values.count == n, "Tensor(_:shape:): \(values.count) values for shape \(shape) (\(n) elements)")
        self.init(shape: shape, storage: TensorStorage(count: n, zeroed: false))
        values.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: n) }
        self.requiresGrad = requiresGrad
    }

    /// A scalar tensor (shape `[]`).
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init([scalar], shape: [], requiresGrad: requiresGrad)
    }

    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], value: Float, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor.uninitialized(shape)
        t.pointer.initialize(repeating: value, count: t.count)
        t.requiresGrad = requiresGrad
        return t
    }

    /// A tensor of ones.
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, value: 1, requiresGrad: requiresGrad)
    }

    /// Normal(0, std²) values drawn in row-major order from `rng`.
    public static func randomNormal(_ shape: [Int], std: Float = 1, mean: Float = 0, rng: inout SeededRandom,
                                    requiresGrad: Bool = false) -> Tensor {
        let t = Tensor.uninitialized(shape)
        let p = t.pointer
        for i in 0..<t.count { p[i] = mean + std * Float(rng.nextGaussian()) }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform values in `[low, high)` drawn in row-major order from `rng`.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1, rng: inout SeededRandom,
                                     requiresGrad: Bool = false) -> Tensor {
        let t = Tensor.uninitialized(shape)
        let p = t.pointer
        for i in 0..<t.count { p[i] = low + (high - low) * Float(rng.nextDouble()) }
        t.requiresGrad = requiresGrad
        return t
    }

    // MARK: - Autodiff flags

    /// Whether gradients flow to this tensor. Settable only on leaves (tensors not produced
    /// by a recorded op): `true` makes a parameter, `false` freezes it.
    public var requiresGrad: Bool {
        get { _requiresGrad }
        set {
            check(node == nil, "requiresGrad can only be set on a leaf tensor (\(describeShort)); use detach()")
            _requiresGrad = newValue
            if !newValue { grad = nil }
        }
    }

    /// True when this tensor was not produced by a recorded op.
    public var isLeaf: Bool { node == nil }

    /// A tensor sharing this one's storage, with no autodiff history and no gradient.
    public func detach() -> Tensor { Tensor(shape: shape, storage: storage, offset: offset) }

    /// A deep copy of the values (new storage, no autodiff history, `requiresGrad` as given).
    public func clone(requiresGrad: Bool = false) -> Tensor {
        let t = Tensor.uninitialized(shape)
        t.pointer.update(from: pointer, count: count)
        t.requiresGrad = requiresGrad
        t.name = name
        return t
    }

    /// Index of the largest value along the last axis for every row (first one on ties; NaN
    /// counts as largest), e.g. greedy decoding from logits `[B, V]` → B token ids.
    public func argmaxLastAxis() -> [Int] {
        check(!shape.isEmpty, "argmaxLastAxis: scalar tensor \(describeShort)")
        let n = shape[shape.count - 1], rows = count / n
        let p = pointer
        return withExtendedLifetime(self) {
            (0..<rows).map { r in
                var best = 0
                for j in 1..<max(n, 1) where p[r * n + j] > p[r * n + best] || (p[r * n + j].isNaN && !p[r * n + best].isNaN) {
                    best = j
                }
                return best
            }
        }
    }

    /// Sets the gradient buffer to zero (keeps it allocated for the optimizer).
    public func zeroGrad() {
        if let g = grad { g.pointer.update(repeating: 0, count: g.count) }
    }

    /// Zeroes the gradient lazily, keeping its buffer: the next backward pass writes its first
    /// contribution over the old values instead of adding it to zeros, so a training step
    /// neither clears the buffer nor reads it back (a weight's gradient GEMM runs with beta 0).
    /// Reading `grad`, `withUnsafeMutableGradBufferPointer` or `settleGrad()` gives zeros until
    /// then; a pointer to the buffer kept from before shows unspecified values until the next
    /// backward pass or `settleGrad()`.
    public func resetGrad() {
        if storedGrad != nil { gradIsStale = true }
    }

    /// Writes the zeros a `resetGrad()` left pending, if no gradient has arrived since: call it
    /// before reading the gradient through a pointer kept from earlier.
    public func settleGrad() {
        guard gradIsStale else { return }
        if let g = storedGrad { g.pointer.update(repeating: 0, count: g.count) }
        gradIsStale = false
    }

    /// Drops the gradient buffer.
    public func clearGrad() { grad = nil }

    /// The leaf's gradient buffer, created (zeroed) if it does not exist yet.
    func ensureGrad() -> Tensor {
        if let g = grad { return g }
        let g = Tensor(zeros: shape)
        grad = g
        return g
    }

    /// The leaf's gradient buffer for a writer that either overwrites all of it (`overwrite`:
    /// the buffer is new or `resetGrad` left it stale) or adds to it. Either way the gradient
    /// counts as written afterwards, so the caller must write every element when told to overwrite.
    func gradForWriting() -> (buffer: Tensor, overwrite: Bool) {
        if let g = storedGrad {
            defer { gradIsStale = false }
            return (g, gradIsStale)
        }
        let g = Tensor.uninitialized(shape)
        storedGrad = g
        return (g, true)
    }

    // MARK: - Element access

    /// Pointer to this tensor's first element (valid while the tensor is alive).
    var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Calls `body` with this tensor's elements (row-major).
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeBufferPointer(start: pointer, count: count)) }
    }

    /// Calls `body` with this tensor's elements for writing. Views share the buffer.
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeMutableBufferPointer(start: pointer, count: count)) }
    }

    /// Calls `body` with this parameter's gradient buffer (created as zeros if absent).
    public func withUnsafeMutableGradBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        check(requiresGrad && isLeaf, "withUnsafeMutableGradBufferPointer: \(describeShort) is not a parameter (leaf with requiresGrad)")
        let g = ensureGrad()
        return try g.withUnsafeMutableBufferPointer(body)
    }

    /// The elements as an array (row-major).
    public func toArray() -> [Float] { withUnsafeBufferPointer { Array($0) } }

    /// The single value of a one-element tensor.
    public func item() -> Float {
        check(count == 1, "item(): tensor \(describeShort) has \(count) elements, expected 1")
        return withUnsafeBufferPointer { $0[0] }
    }

    /// Element at a multi-index.
    public subscript(_ index: Int...) -> Float {
        get { withUnsafeBufferPointer { $0[flatIndex(index)] } }
    }

    func flatIndex(_ index: [Int]) -> Int {
        check(index.count == shape.count, "Tensor subscript: \(index.count) indices for shape \(shape)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            check(i >= 0 && i < d, "Tensor subscript: index \(index) out of range for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }

    /// Multi-index of a flat (row-major) index.
    public func coordinates(ofFlatIndex flat: Int) -> [Int] {
        var rest = flat
        var idx = [Int](repeating: 0, count: shape.count)
        for a in stride(from: shape.count - 1, through: 0, by: -1) {
            idx[a] = rest % shape[a]
            rest /= shape[a]
        }
        return idx
    }

    var describeShort: String { "\(name.map { "'\($0)' " } ?? "")\(shape)" }

    public var description: String {
        let vals = toArray()
        let shown = vals.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor\(describeShort.hasPrefix("'") ? " " + describeShort : describeShort)[\(shown)\(vals.count > 8 ? ", ..." : "")]"
    }

    // MARK: - Diagnostics

    /// The first NaN or ±Inf element (flat index, coordinates, value), or nil if all are finite.
    public func firstNonFinite() -> (index: Int, coordinates: [Int], value: Float)? {
        withUnsafeBufferPointer { buf in
            for i in 0..<buf.count where !buf[i].isFinite {
                return (i, coordinates(ofFlatIndex: i), buf[i])
            }
            return nil
        }
    }

    /// Checks named tensors in order and describes the first non-finite value found
    /// (e.g. `"logits [2, 3, 5]: nan at [1, 0, 4] (flat 19)"`), or returns nil if all are finite.
    public static func firstNonFinite(in tensors: [(name: String, tensor: Tensor)]) -> String? {
        for (name, t) in tensors {
            if let bad = t.firstNonFinite() {
                return "\(name) \(t.shape): \(bad.value) at \(bad.coordinates) (flat \(bad.index))"
            }
        }
        return nil
    }
}

/// Stops with `message` when `condition` is false. Unlike `precondition`, the message is also
/// printed in optimised builds, so a bad shape is always reported by name.
@inline(__always)
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
           file: StaticString = #file, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
