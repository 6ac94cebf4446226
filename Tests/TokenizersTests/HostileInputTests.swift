import Foundation
import Testing
@testable import Tokenizers

/// Hostile tokenizer inputs and the fuzzer's findings (docs/hostile-inputs.md).
@Suite struct TokenizerHostileInputTests {
    /// /dev/zero never ends: refused unread instead of growing without bound.
    @Test func endlessFilesAreRefusedUnread() {
        for load in [{ _ = try Tokenizer(contentsOf: URL(fileURLWithPath: "/dev/zero")) },
                     { _ = try TokenizerConfig(contentsOf: URL(fileURLWithPath: "/dev/zero")) }] as [() throws -> Void] {
            do {
                try load()
                Issue.record("expected a refusal")
            } catch let e as TokenizerError {
                #expect(e.file == "/dev/zero" && e.message.contains("not a regular file"), "\(e)")
            } catch { Issue.record("unexpected \(error)") }
        }
    }
}
