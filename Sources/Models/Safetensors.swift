import Engine
import Foundation
import JSONSupport

/// The element types a safetensors header may name.
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL
    case F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }

    /// Whether Palimpsest converts this type to Float32 on load.
    public var isLoadable: Bool { self == .F32 || self == .F16 || self == .BF16 }
}

/// One tensor's header entry, with offsets made absolute within the file.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range within the file (not the data buffer).
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A validated, memory-mapped safetensors file.
///
/// Opening checks every header rule: the length prefix against the file size, UTF-8 JSON
/// starting with `{`, no duplicate names, known dtypes, non-negative shapes, offsets inside the
/// data buffer, `end - begin == numel × dtype size`, and the buffer covered exactly with no holes
/// or overlaps. Tensor data is converted to Float32 only when asked for.
public struct SafetensorsFile: Sendable {
    /// Largest header accepted, as in the reference implementation.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Entries in header order.
    public let entries: [SafetensorsEntry]
    /// The `__metadata__` map (string to string), empty when absent.
    public let metadata: [String: String]
    private let index: [String: Int]
    private let file: MappedFile

    /// Opens and validates `url`.
    public init(url: URL) throws {
        try self.init(path: url.path)
    }

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let size = file.count
        guard size >= 8 else {
            throw ModelIOError(.malformedHeader, file: path, "file is \(size) bytes, too short for the 8-byte header length")
        }
        let n = file.withBytes(0..<8) { $0.loadUnaligned(as: UInt64.self).littleEndian }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw ModelIOError(.malformedHeader, file: path, "header length \(n) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        let headerLength = Int(n)
        guard 8 + headerLength <= size else {
            throw ModelIOError(.malformedHeader, file: path,
                               "header length \(headerLength) is longer than the file allows (file is \(size) bytes, at most \(size - 8) after the length)")
        }
        let json: JSONValue = try file.withBytes(8..<(8 + headerLength)) { bytes in
            guard bytes.first == UInt8(ascii: "{") else {
                throw ModelIOError(.malformedHeader, file: path, "header does not start with '{'")
            }
            guard String(validating: bytes, as: UTF8.self) != nil else {
                throw ModelIOError(.malformedHeader, file: path, "header is not valid UTF-8")
            }
            do { return try JSONValue.parse(bytes) } catch {
                throw ModelIOError(.malformedHeader, file: path, "header: \(error)")
            }
        }
        guard case .object(let members) = json else {
            throw ModelIOError(.malformedHeader, file: path, "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let bufferSize = size - dataStart
        var entries: [SafetensorsEntry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let meta) = value else {
                    throw ModelIOError(.malformedHeader, file: path, "__metadata__ is \(value.typeName), expected an object of strings")
                }
                for (k, v) in meta {
                    guard case .string(let s) = v else {
                        throw ModelIOError(.malformedHeader, file: path, "__metadata__[\"\(k)\"] is \(v.typeName), expected a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            entries.append(try Self.entry(name: name, value: value, path: path, dataStart: dataStart, bufferSize: bufferSize))
        }
        // The data buffer must be covered exactly: sort by start and walk.
        var cursor = 0
        var previous: String?
        for e in entries.sorted(by: { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }) {
            let begin = e.byteRange.lowerBound - dataStart
            if begin < cursor {
                throw ModelIOError(.badTensor, file: path,
                                   "tensor \"\(e.name)\" data_offsets start at \(begin), overlapping \"\(previous ?? "")\" which ends at \(cursor)")
            }
            if begin > cursor {
                throw ModelIOError(.badTensor, file: path,
                                   "data buffer has a hole: bytes \(cursor)..<\(begin) belong to no tensor (before \"\(e.name)\")")
            }
            cursor = e.byteRange.upperBound - dataStart
            previous = e.name
        }
        if cursor != bufferSize {
            throw ModelIOError(.badTensor, file: path,
                               "tensors cover \(cursor) bytes of the data buffer, but it is \(bufferSize) bytes (\(bufferSize > cursor ? "trailing bytes" : "truncated"))")
        }
        self.entries = entries
        self.metadata = metadata
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    private static func entry(name: String, value: JSONValue, path: String, dataStart: Int, bufferSize: Int) throws -> SafetensorsEntry {
        func bad(_ message: String) -> ModelIOError {
            ModelIOError(.badTensor, file: path, "tensor \"\(name)\": \(message)")
        }
        guard case .object(let fields) = value else { throw bad("entry is \(value.typeName), expected an object") }
        var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
        for (k, v) in fields {
            switch k {
            case "dtype": dtypeValue = v
            case "shape": shapeValue = v
            case "data_offsets": offsetsValue = v
            default: throw bad("unknown key \"\(k)\" (expected dtype, shape, data_offsets)")
            }
        }
        guard case .string(let dtypeName)? = dtypeValue else { throw bad("missing or non-string \"dtype\"") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw bad("unknown dtype \"\(dtypeName)\" (expected one of \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard case .array(let dims)? = shapeValue else { throw bad("missing or non-array \"shape\"") }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard case .int(let n) = d, n >= 0 else { throw bad("shape \(dims.map(describe)) has an entry that is not a non-negative integer") }
            shape.append(n)
            let (m, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw bad("shape \(shape) has too many elements") }
            count = m
        }
        guard case .array(let offs)? = offsetsValue, offs.count == 2,
              case .int(let begin) = offs[0], case .int(let end) = offs[1] else {
            throw bad("\"data_offsets\" must be an array of two integers [begin, end]")
        }
        guard begin >= 0, begin <= end else { throw bad("data_offsets [\(begin), \(end)] are not 0 <= begin <= end") }
        guard end <= bufferSize else {
            throw bad("data_offsets [\(begin), \(end)] run past the end of the data buffer (\(bufferSize) bytes)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, end - begin == bytes else {
            throw bad("shape \(shape) of \(dtypeName) needs \(count) × \(dtype.size) = \(bytes) bytes, but data_offsets [\(begin), \(end)] hold \(end - begin)")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
    }

    /// Names in header order.
    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) -> SafetensorsEntry? { index[name].map { entries[$0] } }

    /// The tensor `name` converted to Float32 (F32, F16 and BF16 only).
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entry(name) else {
            throw ModelIOError(.missingTensor, file: path, "no tensor named \"\(name)\"")
        }
        return try floats(e)
    }

    public func floats(_ e: SafetensorsEntry) throws -> [Float] {
        let n = e.elementCount
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBufferPointer { try read(e, into: $0) }
        return out
    }

    /// Converts the tensor into `destination`, which must hold exactly its element count.
    public func read(_ e: SafetensorsEntry, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard e.dtype.isLoadable else {
            throw ModelIOError(.unsupportedDType, file: path, "tensor \"\(e.name)\" has dtype \(e.dtype.rawValue); only F32, F16 and BF16 load as Float32")
        }
        precondition(destination.count == e.elementCount, "SafetensorsFile.read: destination holds \(destination.count), tensor \"\(e.name)\" has \(e.elementCount)")
        read(e, elements: 0..<e.elementCount, into: destination)
    }

    /// Converts elements `elements` of a loadable tensor into `destination` (exactly that many),
    /// then lets the pages wholly inside them leave the resident set. Pieces of one tensor can be
    /// converted on different threads.
    func read(_ e: SafetensorsEntry, elements: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(e.dtype.isLoadable && destination.count == elements.count && elements.upperBound <= e.elementCount,
                     "SafetensorsFile.read: \(elements) of tensor \"\(e.name)\" (\(e.elementCount) \(e.dtype.rawValue)) into \(destination.count)")
        let bytes = (e.byteRange.lowerBound + elements.lowerBound * e.dtype.size)..<(e.byteRange.lowerBound + elements.upperBound * e.dtype.size)
        file.withBytes(bytes) { src in
            DTypeConversion.toFloat(src, dtype: e.dtype, into: destination)
        }
        file.dropPages(bytes)
    }

    /// A Float32 tensor whose values stay where they lie in the mapped file (copy-on-write), or nil
    /// when it is stored in another dtype or not on a Float boundary (then it must be converted).
    func borrowed(_ e: SafetensorsEntry) -> Tensor? {
        guard e.dtype == .F32, e.elementCount > 0, let p = file.floats(e.byteRange) else { return nil }
        return Tensor.borrowing(p, shape: e.shape, owner: file)
    }

    /// The raw bytes of a tensor, for callers that handle other dtypes themselves.
    public func withRawBytes<R>(_ e: SafetensorsEntry, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try file.withBytes(e.byteRange, body)
    }
}

private func describe(_ v: JSONValue) -> String {
    switch v {
    case .int(let n): return String(n)
    case .double(let d): return String(d)
    case .string(let s): return "\"\(s)\""
    default: return v.typeName
    }
}

/// Conversions between stored element types and Float32. Reads are unaligned-safe.
enum DTypeConversion {
    static func toFloat(_ src: UnsafeRawBufferPointer, dtype: SafetensorsDType, into dst: UnsafeMutableBufferPointer<Float>) {
        let n = dst.count
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        switch dtype {
        case .F32:
            // memcpy is alignment-agnostic and the bytes are little-endian like the host.
            UnsafeMutableRawPointer(d).copyMemory(from: s, byteCount: n * 4)
        case .F16:
            for i in 0..<n {
                d[i] = Float(Float16(bitPattern: s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian))
            }
        case .BF16:
            for i in 0..<n {
                d[i] = Float(bitPattern: UInt32(s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16)
            }
        default:
            preconditionFailure("DTypeConversion.toFloat: \(dtype) is not a float type")
        }
    }

    /// Float32 to BF16 with round-to-nearest-even (NaN stays NaN), as PyTorch does.
    @inline(__always) static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    static func fromFloat(_ src: UnsafeBufferPointer<Float>, dtype: SafetensorsDType, into dst: UnsafeMutableRawBufferPointer) {
        let n = src.count
        guard n > 0, let s = src.baseAddress, let d = dst.baseAddress else { return }
        precondition(dst.count == n * dtype.size)
        switch dtype {
        case .F32:
            d.copyMemory(from: s, byteCount: n * 4)
        case .F16:
            for i in 0..<n { d.storeBytes(of: Float16(s[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .BF16:
            for i in 0..<n { d.storeBytes(of: bf16Bits(s[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        default:
            preconditionFailure("DTypeConversion.fromFloat: cannot write \(dtype)")
        }
    }
}
