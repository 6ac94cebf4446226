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
