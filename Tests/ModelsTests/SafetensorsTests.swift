import Foundation
import Testing
@testable import Models

/// Builds a safetensors file from a header text and a data buffer of `dataBytes` bytes.
func rawSafetensors(header: String, dataBytes: Int, lengthOverride: UInt64? = nil, truncateTo: Int? = nil) -> Data {
    var d = Data()
    let h = Data(header.utf8)
    var n = (lengthOverride ?? UInt64(h.count)).littleEndian
    d.append(Data(bytes: &n, count: 8))
    d.append(h)
    d.append(Data((0..<dataBytes).map { UInt8(truncatingIfNeeded: $0) }))
    if let t = truncateTo { d = d.prefix(t) }
    return d
}

@Suite struct SafetensorsTests {
    @Test func readsF32F16BF16LikeTorch() throws {
        let file = try SafetensorsFile(url: Fixtures.url("dtypes.safetensors"))
        let expected = try Fixtures.json("dtypes.json")
        #expect(file.metadata == ["format": "pt", "note": "dtypes"])
        for name in ["f32", "f16", "bf16", "empty", "scalar"] {
            let e = try #require(file.entry(name))
            let ref = expected[name] as! [String: Any]
            #expect(e.shape == (ref["shape"] as! [Int]))
            let values = (ref["values"] as! [NSNumber]).map { $0.floatValue }
            let got = try file.floats(name)
            #expect(got.map(\.bitPattern) == values.map(\.bitPattern), "tensor \(name)")
        }
        #expect(file.entry("f16")?.dtype == .F16 && file.entry("bf16")?.dtype == .BF16 && file.entry("scalar")?.shape == [])
    }

    @Test func writerRoundTripsAndRoundsLikeTorch() throws {
        let dir = try makeTempDirectory("st")
        defer { cleanup(dir) }
        let ref = try Fixtures.json("dtypes.json")
        let source = ((ref["f32"] as! [String: Any])["values"] as! [NSNumber]).map { $0.floatValue }
        let tensors = [NamedTensor(name: "a", shape: [3, 5], values: source),
                       NamedTensor(name: "empty", shape: [0, 4], values: []),
                       NamedTensor(name: "b \"quoted\"", shape: [2], values: [1, -2])]
        for dtype in [SafetensorsDType.F32, .F16, .BF16] {
            let url = dir.appendingPathComponent("\(dtype.rawValue).safetensors")
            try SafetensorsWriter.write(tensors, dtype: dtype, metadata: ["format": "pt"], to: url)
            let data = try Data(contentsOf: url)
            let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            #expect(n % 8 == 0)
            let file = try SafetensorsFile(url: url)
            #expect(file.names == ["a", "empty", "b \"quoted\""])
            let got = try file.floats("a")
            let want: [Float]
            switch dtype {
            case .F16: want = (ref["round_f16"] as! [NSNumber]).map { $0.floatValue }
            case .BF16: want = (ref["round_bf16"] as! [NSNumber]).map { $0.floatValue }
            default: want = source
            }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(dtype)")
            #expect(try file.floats("b \"quoted\"") == [1, -2])
        }
        expectModelIOError(.writeFailed) {
            try SafetensorsWriter.write([tensors[0], tensors[0]], to: dir.appendingPathComponent("dup.safetensors"))
        }
        expectModelIOError(.unsupportedDType) {
            try SafetensorsWriter.write(tensors, dtype: .I64, to: dir.appendingPathComponent("i.safetensors"))
        }
    }

    /// Writes `data` and returns the error opening it gives.
    func openError(_ data: Data, _ kind: ModelIOError.Kind, sourceLocation: SourceLocation = #_sourceLocation) throws -> ModelIOError? {
        let dir = try makeTempDirectory("bad")
        defer { cleanup(dir) }
        let url = dir.appendingPathComponent("bad.safetensors")
        try data.write(to: url)
        let e = expectModelIOError(kind, sourceLocation: sourceLocation) { _ = try SafetensorsFile(url: url) }
        #expect(e?.file == url.path, sourceLocation: sourceLocation)
        return e
    }

    @Test func rejectsMalformedFiles() throws {
        let good = #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}"#
        let dir = try makeTempDirectory("ok")
        defer { cleanup(dir) }
        try rawSafetensors(header: good, dataBytes: 22).write(to: dir.appendingPathComponent("ok.safetensors"))
        #expect(try SafetensorsFile(url: dir.appendingPathComponent("ok.safetensors")).names == ["a", "b"])

        var e = try openError(Data([1, 2, 3]), .malformedHeader)
        #expect(e?.message.contains("3 bytes") == true)
        e = try openError(rawSafetensors(header: good, dataBytes: 22, lengthOverride: 5000), .malformedHeader)
        #expect(e?.message.contains("header length 5000") == true)
        e = try openError(rawSafetensors(header: good, dataBytes: 22, lengthOverride: 200_000_000), .malformedHeader)
        #expect(e?.message.contains("exceeds the limit") == true)
        // Truncated data: the last tensor runs past the end.
        e = try openError(rawSafetensors(header: good, dataBytes: 22, truncateTo: 8 + good.utf8.count + 20), .badTensor)
        #expect(e?.message.contains("\"b\"") == true && e?.message.contains("past the end") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[10,16]}}"#, dataBytes: 16), .badTensor)
        #expect(e?.message.contains("overlapping") == true && e?.message.contains("\"b\"") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[20,26]}}"#, dataBytes: 26), .badTensor)
        #expect(e?.message.contains("hole") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#, dataBytes: 16), .badTensor)
        #expect(e?.message.contains("\"a\"") == true && e?.message.contains("24 bytes") == true && e?.message.contains("hold 16") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, dataBytes: 20), .badTensor)
        #expect(e?.message.contains("trailing") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, dataBytes: 8), .badTensor)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), .malformedHeader)
        #expect(e?.message.contains("duplicate key \"a\"") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, dataBytes: 1), .badTensor)
        #expect(e?.message.contains("unknown dtype \"Q4\"") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4), .badTensor)
        e = try openError(rawSafetensors(header: #"  {"a":1}"#, dataBytes: 0), .malformedHeader)
        #expect(e?.message.contains("'{'") == true)
        e = try openError(rawSafetensors(header: #"{"a":{"dtype":"F32""#, dataBytes: 0), .malformedHeader)
        e = try openError(rawSafetensors(header: #"{"__metadata__":{"k":1}}"#, dataBytes: 0), .malformedHeader)
        #expect(e?.message.contains("__metadata__") == true)
        // Spaces after the JSON (writer padding) are fine; a zero-length file of tensors is fine.
        try rawSafetensors(header: "{}      ", dataBytes: 0).write(to: dir.appendingPathComponent("empty.safetensors"))
        #expect(try SafetensorsFile(url: dir.appendingPathComponent("empty.safetensors")).entries.isEmpty)
        _ = expectModelIOError(.unreadable) { _ = try SafetensorsFile(url: dir.appendingPathComponent("absent.safetensors")) }
    }

    @Test func nonFloatTensorsAreRefusedOnLoad() throws {
        let dir = try makeTempDirectory("i64")
        defer { cleanup(dir) }
        let url = dir.appendingPathComponent("ids.safetensors")
        try rawSafetensors(header: #"{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, dataBytes: 16).write(to: url)
        let file = try SafetensorsFile(url: url)
        let e = expectModelIOError(.unsupportedDType) { _ = try file.floats("ids") }
        #expect(e?.message.contains("\"ids\"") == true && e?.message.contains("I64") == true)
        let bytes = file.withRawBytes(file.entry("ids")!) { Array($0) }
        #expect(bytes == (0..<16).map { UInt8($0) })
    }
}
