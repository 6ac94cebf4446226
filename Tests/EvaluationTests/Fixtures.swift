import Foundation

/// Loads a committed reference fixture (written by scripts/reference/evaluation_fixtures.py).
func fixture(_ name: String) throws -> [String: Any] {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw FixtureError(message: "missing fixture Fixtures/\(name).json")
    }
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    guard let dict = object as? [String: Any] else { throw FixtureError(message: "\(name).json is not an object") }
    return dict
}

struct FixtureError: Error { var message: String }

func doubles(_ any: Any?) -> [Double] { (any as! [Any]).map { ($0 as! NSNumber).doubleValue } }
func double(_ any: Any?) -> Double { (any as! NSNumber).doubleValue }
func int(_ any: Any?) -> Int { (any as! NSNumber).intValue }

/// |a − b| ≤ atol + rtol·|b|, with equal infinities and exact zeros accepted.
func close(_ a: Double, _ b: Double, rtol: Double = 1e-12, atol: Double = 0) -> Bool {
    if a == b { return true }
    return abs(a - b) <= atol + rtol * abs(b)
}

/// The 64-bit LCG that the fixture script uses to regenerate large samples (values k/scale, k = draw % modulus).
func lcgSample(seed: UInt64, count: Int, modulus: UInt64, scale: Double) -> [Double] {
    var state = seed
    var out = [Double]()
    out.reserveCapacity(count)
    for _ in 0..<count {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        out.append(Double((state >> 11) % modulus) / scale)
    }
    return out
}
