import Testing
@testable import Engine

@Test func parallelRangesCoverEverything() {
    for total in [0, 1, 7, 100] {
        for parts in 1...5 {
            let ranges = (0..<parts).map { Parallel.range($0, of: parts, total: total) }
            #expect(ranges.map(\.count).reduce(0, +) == total)
            #expect(ranges.first!.lowerBound == 0 && ranges.last!.upperBound == total)
        }
    }
}

@Test func seededRandomIsReproducibleAndUniform() {
    var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
    let xs = (0..<1000).map { _ in a.nextDouble() }
    #expect(xs == (0..<1000).map { _ in b.nextDouble() })
    #expect(xs != (0..<1000).map { _ in c.nextDouble() })
    let mean = xs.reduce(0, +) / Double(xs.count)
    #expect(abs(mean - 0.5) < 0.05)
    var g = SeededRandom(seed: 7)
    let zs = (0..<20000).map { _ in g.nextGaussian() }
    let zm = zs.reduce(0, +) / Double(zs.count)
    let zv = zs.map { ($0 - zm) * ($0 - zm) }.reduce(0, +) / Double(zs.count)
    #expect(abs(zm) < 0.03 && abs(zv - 1) < 0.05)
    #expect((0..<100).allSatisfy { _ in (0..<7).contains(g.nextInt(7)) })
}
