import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Datasets

/// Dataset files too large for memory, and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct DatasetHostileInputTests {
    func file(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-hostile-\(UUID().uuidString).jsonl")
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func fileLargerThanTheMemoryLimitIsRefusedBeforeReading() throws {
        let text = String(repeating: "{\"text\": \"a line of text\"}\n", count: 10)
        let url = try file(text)
        defer { try? FileManager.default.removeItem(at: url) }
        let small = LoadOptions(memoryLimit: 100)
        for load in [{ _ = try loadRecords(from: url, options: small) }, { _ = try loadDocuments(from: url, options: small) },
                     { _ = try loadExamples(from: url, options: small) }] as [() throws -> Void] {
            do {
                try load()
                Issue.record("expected the load to be refused")
            } catch let e as DataError {
                #expect(e.file == url.path)
                #expect(e.message.contains("needs \(text.utf8.count) bytes") && e.message.contains("only 100 bytes"), "\(e.message)")
                #expect(e.message.contains("forEachRecord"))
            }
        }
        // Streaming reads any size; with room the same file loads.
        var n = 0
        try forEachRecord(in: url, options: small) { _ in n += 1 }
        #expect(n == 10)
        #expect(try loadRecords(from: url, options: LoadOptions(memoryLimit: text.utf8.count)).records.count == 10)
        #expect(try loadRecords(from: url).records.count == 10)
    }

    /// safety/refusals.json is read whole, so it is bounded: a FIFO that no one writes is refused
    /// quickly, unread, naming the file.
    @Test func refusalsFifoIsRefusedUnread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-data-\(UUID().uuidString)")
        let safety = dir.appendingPathComponent(DatasetKind.safety.rawValue)
        try FileManager.default.createDirectory(at: safety, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let refusals = safety.appendingPathComponent("refusals.json")
        #expect(mkfifo(refusals.path, 0o600) == 0)
        let start = Date()
        do {
            _ = try DataDirectory.load(from: dir)
            Issue.record("expected a refusal")
        } catch let e as DataError {
            #expect(e.file == refusals.path && e.message == "not a regular file (found a FIFO)", "\(e)")
        }
        #expect(Date().timeIntervalSince(start) < 5)
    }
}
