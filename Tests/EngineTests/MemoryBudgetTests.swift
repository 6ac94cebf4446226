import Foundation
import Testing
@testable import Engine

@Suite struct MemoryBudgetTests {
    @Test func parsesSizes() {
        #expect(MemoryBudget.parseBytes("123") == 123)
        #expect(MemoryBudget.parseBytes("64K") == 65536)
        #expect(MemoryBudget.parseBytes("1.5g") == 1_610_612_736)
        #expect(MemoryBudget.parseBytes("2TiB") == 2 << 40)
        #expect(MemoryBudget.parseBytes(" 8MB ") == 8 << 20)
        for bad in ["", "x", "-1", "1Q", "nan", "inf", "99999999T"] { #expect(MemoryBudget.parseBytes(bad) == nil, "\(bad)") }
    }

    @Test func refusesWhatExceedsTheBudgetWithBothSizes() throws {
        let env = [MemoryBudget.environmentVariable: "1M"]
        try MemoryBudget.require(1 << 20, for: "x", environment: env)
        do {
            try MemoryBudget.require((1 << 20) + 1, for: "loading y", environment: env)
            Issue.record("expected a refusal")
        } catch let e as MemoryBudgetError {
            #expect(e.message.hasPrefix("loading y needs 1.00 MiB (1048577 bytes)"), "\(e.message)")
            #expect(e.message.contains("only 1.00 MiB (1048576 bytes) is available (PALIMPSEST_MEMORY_LIMIT=1M)"), "\(e.message)")
        }
        #expect(throws: MemoryBudgetError.self) { try MemoryBudget.require(1, for: "x", environment: [MemoryBudget.environmentVariable: "lots"]) }
        // Without the override the physical memory is the budget.
        let physical = try #require(MemoryBudget.physicalBytes)
        #expect(physical > 1 << 20)
        #expect(try MemoryBudget.limit(environment: [:])?.bytes == physical)
        #expect(throws: MemoryBudgetError.self) { try MemoryBudget.require(Int.max, for: "x", environment: [:]) }
    }
}
