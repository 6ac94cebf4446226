import Foundation
import JSONSupport
#if canImport(Glibc)
import Glibc
#endif

/// A named Float32 tensor held in host memory: the unit the checkpoint reader and writer trade in.
public struct NamedTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count,
                     "NamedTensor \"\(name)\": shape \(shape) has \(shape.reduce(1, *)) elements, values has \(values.count)")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Writes safetensors files.
public enum SafetensorsWriter {
    /// Throws `ModelIOError.Kind.nonFinite` naming the first tensor that holds NaN or infinity,
    /// with how many such values it has and where the first one is.
    public static func requireFinite(_ tensors: [NamedTensor], file: String) throws {
        for t in tensors {
            let bad = t.values.withUnsafeBufferPointer { p -> (count: Int, first: Int)? in
                var count = 0, first = -1
                for i in 0..<p.count where !p[i].isFinite {
                    if first < 0 { first = i }
                    count += 1
                }
                return count == 0 ? nil : (count, first)
            }
            if let bad {
                throw ModelIOError(.nonFinite, file: file,
                    "cannot save: tensor \"\(t.name)\" holds \(bad.count) non-finite value\(bad.count == 1 ? "" : "s") (first: \(t.values[bad.first]) at flat index \(bad.first) of shape \(t.shape)); the weights have diverged, nothing was written")
            }
        }
    }

    /// Writes `tensors` (in the given order) to `url` as `dtype` (F32, F16 or BF16).
    ///
    /// The header is padded with spaces to a multiple of 8 bytes so the data buffer is aligned.
    /// The file is written to a temporary name beside `url` and renamed into place, so a reader
    /// never sees half a file.
    ///
    /// A tensor holding NaN or infinity is refused (`ModelIOError.Kind.nonFinite`, naming it)
    /// before anything is written, unless `allowNonFinite`: a diverged model never becomes a
    /// checkpoint that looks valid.
    public static func write(_ tensors: [NamedTensor], dtype: SafetensorsDType = .F32,
                             metadata: [String: String] = ["format": "pt"], allowNonFinite: Bool = false, to url: URL) throws {
        let path = url.path
        if !allowNonFinite { try requireFinite(tensors, file: path) }
        guard dtype.isLoadable else {
            throw ModelIOError(.unsupportedDType, file: path, "cannot write dtype \(dtype.rawValue); use F32, F16 or BF16")
        }
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted {
            throw ModelIOError(.writeFailed, file: path, "duplicate tensor name \"\(t.name)\"")
        }
        if tensors.contains(where: { $0.name == "__metadata__" }) {
            throw ModelIOError(.writeFailed, file: path, "\"__metadata__\" is reserved and cannot name a tensor")
        }
        var header = "{"
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }.joined(separator: ",")
            header += "}"
        }
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * dtype.size
            if header.count > 1 { header += "," }
            header += "\(jsonQuoted(t.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw ModelIOError(.writeFailed, file: path, "cannot create \(tmp.path): \(String(cString: strerror(errno)))")
        }
        // Plain write(2) so that a full disk (ENOSPC, EFBIG) is reported by its name.
        func writeAll(_ raw: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < raw.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #else
                let n = Darwin.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ModelIOError(.writeFailed, file: path, "write failed: \(String(cString: strerror(errno))); the destination is untouched")
                }
                offset += n
            }
        }
        do {
            var prefix = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &prefix) { try writeAll($0) }
            try headerBytes.withUnsafeBytes { try writeAll($0) }
            for t in tensors where !t.values.isEmpty {
                // Convert in chunks so a large tensor needs no second full-size copy.
                let chunk = 1 << 20
                var start = 0
                while start < t.values.count {
                    let end = min(start + chunk, t.values.count)
                    var data = Data(count: (end - start) * dtype.size)
                    t.values.withUnsafeBufferPointer { src in
                        data.withUnsafeMutableBytes { dst in
                            DTypeConversion.fromFloat(UnsafeBufferPointer(rebasing: src[start..<end]), dtype: dtype, into: dst)
                        }
                    }
                    try data.withUnsafeBytes { try writeAll($0) }
                    start = end
                }
            }
            if fsync(fd) != 0 {
                throw ModelIOError(.writeFailed, file: path, "fsync failed: \(String(cString: strerror(errno)))")
            }
            close(fd)
        } catch {
            close(fd)
            unlink(tmp.path)
            throw error
        }
        if rename(tmp.path, path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw ModelIOError(.writeFailed, file: path, "cannot move the written file into place (\(reason))")
        }
    }
}
