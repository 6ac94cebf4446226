import Foundation

extension Tensor {
    /// Records `op` as this tensor's producer when `record` is set.
    @inline(__always)
    func recorded(_ record: Bool, _ op: @autoclosure () -> Op) -> Tensor {
        if let profiler = OpProfiler.active {
            let o = op()
            profiler.forwardOpEnded(o.profileName)
            if record { node = Node(o); _requiresGrad = true }
            return self
        }
        if record {
            node = Node(op())
            _requiresGrad = true
        }
        return self
    }

    /// A zero-copy view with a new shape of the same element count; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var dims = newShape
        let unknown = dims.indices.filter { dims[$0] == -1 }
        check(unknown.count <= 1, "reshape: more than one -1 in \(newShape) (from \(shape))")
        if let u = unknown.first {
            let known = dims.enumerated().filter { $0.offset != u }.reduce(1) { $0 * $1.element }
            check(known > 0 && count % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            dims[u] = count / known
        }
        let n = Tensor.checkedCount(dims, op: "reshape")
        check(n == count, "reshape: cannot reshape \(shape) (\(count) elements) to \(newShape) (\(n) elements)")
        return Tensor(shape: dims, storage: storage, offset: offset)
            .recorded(Autograd.shouldRecord(self), .reshape(self))
    }

    /// A zero-copy view of rows `range` along the leading axis.
    public func rows(_ range: Range<Int>) -> Tensor {
        check(!shape.isEmpty, "rows: scalar tensor has no leading axis")
        check(range.lowerBound >= 0 && range.upperBound <= shape[0] && !range.isEmpty,
                     "rows: range \(range) invalid for leading dimension \(shape[0]) of \(shape)")
        let inner = count / shape[0]
        var dims = shape
        dims[0] = range.count
        return Tensor(shape: dims, storage: storage, offset: offset + range.lowerBound * inner)
            .recorded(Autograd.shouldRecord(self), .sliceRows(self, start: range.lowerBound))
    }

    /// A copy of positions `start ..< start+length` along `axis` (negative counts from the end).
    public func narrow(axis: Int, start: Int, length: Int) -> Tensor {
        let ax = axis < 0 ? axis + shape.count : axis
        check(ax >= 0 && ax < shape.count, "narrow: axis \(axis) invalid for shape \(shape)")
        check(start >= 0 && length > 0 && start + length <= shape[ax],
                     "narrow: range \(start)..<\(start + length) invalid for axis \(ax) of size \(shape[ax]) in \(shape)")
        var dims = shape
        dims[ax] = length
        let out = Tensor.uninitialized(dims)
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        let src = pointer, dst = out.pointer
        for o in 0..<outer {
            (dst + o * length * inner).update(from: src + (o * shape[ax] + start) * inner, count: length * inner)
        }
        return out.recorded(Autograd.shouldRecord(self), .narrow(self, axis: ax, start: start))
    }
}

/// Concatenates tensors along `axis`; all other dimensions must match.
public func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
    check(!tensors.isEmpty, "concat: no tensors")
    let first = tensors[0].shape
    let ax = axis < 0 ? axis + first.count : axis
    check(ax >= 0 && ax < first.count, "concat: axis \(axis) invalid for shape \(first)")
    for t in tensors {
        check(t.shape.count == first.count && (0..<first.count).allSatisfy { $0 == ax || t.shape[$0] == first[$0] },
                     "concat: shapes \(tensors.map(\.shape)) differ outside axis \(ax)")
    }
    var dims = first
    dims[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
    let out = Tensor.uninitialized(dims)
    let outer = first[..<ax].reduce(1, *), inner = first[(ax + 1)...].reduce(1, *)
    var pos = 0
    for t in tensors {
        let len = t.shape[ax]
        let src = t.pointer
        for o in 0..<outer {
            (out.pointer + (o * dims[ax] + pos) * inner).update(from: src + o * len * inner, count: len * inner)
        }
        pos += len
    }
    let record = Autograd.isRecording && tensors.contains { $0.requiresGrad }
    return out.recorded(record, .concat(tensors, axis: ax))
}
