import Foundation
@testable import Training

/// Loads a committed reference fixture (written by scripts/reference/training_fixtures.py).
func loadFixture<T: Decodable>(_ name: String, as: T.Type = T.self) throws -> T {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw TrainingError.empty(context: "fixture", message: "Fixtures/\(name).json is missing from the test bundle")
    }
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}

/// ‖a − b‖ / ‖b‖ (or ‖a‖ when b is zero).
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count)")
    var d = 0.0, n = 0.0
    for i in a.indices { d += (a[i] - b[i]) * (a[i] - b[i]); n += b[i] * b[i] }
    return n == 0 ? d.squareRoot() : (d / n).squareRoot()
}

/// Owns Float buffers standing in for engine tensors in the tests.
final class Buffers {
    var storage: [UnsafeMutableBufferPointer<Float>] = []
    func make(_ values: [Float]) -> UnsafeMutableBufferPointer<Float> {
        let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
        _ = p.initialize(from: values)
        storage.append(p)
        return p
    }
    func make(count: Int) -> UnsafeMutableBufferPointer<Float> { make([Float](repeating: 0, count: count)) }
    deinit { for p in storage { p.deallocate() } }
}
