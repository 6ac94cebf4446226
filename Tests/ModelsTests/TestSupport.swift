import Foundation
import Testing
@testable import Models

enum Fixtures {
    static var root: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    static func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static let modelNames = ["llama_linear", "llama3_tied", "qwen2_sharded"]
}

/// A fresh temporary directory, removed by the caller with `cleanup`.
func makeTempDirectory(_ label: String = "models") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("palimpsest-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func cleanup(_ url: URL) { try? FileManager.default.removeItem(at: url) }

/// Copies a fixture checkpoint into a temp directory so a test may damage it.
func copyFixture(_ name: String) throws -> URL {
    let dir = try makeTempDirectory(name)
    let target = dir.appendingPathComponent(name)
    try FileManager.default.copyItem(at: Fixtures.url(name), to: target)
    return target
}

/// Runs `body`, expecting a `ModelIOError` of `kind`; returns it for more checks.
@discardableResult
func expectModelIOError(_ kind: ModelIOError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: () throws -> Void) -> ModelIOError? {
    do {
        try body()
        Issue.record("expected a \(kind) error, got success", sourceLocation: sourceLocation)
    } catch let e as ModelIOError {
        #expect(e.kind == kind, "wrong kind: \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected ModelIOError.\(kind), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
