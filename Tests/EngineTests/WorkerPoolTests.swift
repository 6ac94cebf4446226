import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Engine

@Suite struct WorkerPoolTests {
    @Test func everyItemRunsOnceBeforeTheRegionReturns() {
        let n = 257
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { hits.deallocate() }
        let h = UncheckedPointer(hits)
        for round in 0..<300 {
            hits.update(repeating: 0, count: n)
            let count = 1 + round % n
            GEMMWorkCounter(count).run(threads: 2) { i in h.pointer[i] += 1 }
            #expect((0..<count).allSatisfy { hits[$0] == 1 } && (count..<n).allSatisfy { hits[$0] == 0 }, "round \(round)")
        }
    }

    @Test func nonEscapingBodiesAndNestedRegions() {
        // Parallel.forEach hands a non-escaping closure to the pool: the runtime traps if any thread
        // still holds it when forEach returns. Inside, a nested region finds the pool busy and uses
        // Dispatch instead.
        let expected = (0..<8).reduce(0) { $0 + 40 * $1 + 6 }
        var total = 0
        for _ in 0..<200 {
            let sums = UnsafeMutablePointer<Int>.allocate(capacity: 8)
            defer { sums.deallocate() }
            let s = UncheckedPointer(sums)
            Parallel.forEach(8, threads: 2) { i in
                let inner = UnsafeMutablePointer<Int>.allocate(capacity: 4)
                defer { inner.deallocate() }
                let p = UncheckedPointer(inner)
                Parallel.forEach(4, threads: 2) { j in p.pointer[j] = i * 10 + j }
                s.pointer[i] = (0..<4).reduce(0) { $0 + inner[$1] }
            }
            total = (0..<8).reduce(0) { $0 + sums[$1] }
            if total != expected { break }
        }
        #expect(total == expected)
    }

    @Test func concurrentCallersEachGetTheirOwnItems() {
        // Experiment units run side by side, each with its own regions: one holds the pool, the
        // others fall back; every caller must see exactly its own items done.
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            let n = 64
            let out = UnsafeMutablePointer<Int>.allocate(capacity: n)
            defer { out.deallocate() }
            let o = UncheckedPointer(out)
            for round in 0..<200 {
                GEMMWorkCounter(n).run(threads: 2) { i in o.pointer[i] = caller * 1_000_000 + round * 1000 + i }
                if !(0..<n).allSatisfy({ out[$0] == caller * 1_000_000 + round * 1000 + $0 }) {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
