import Foundation

/// A JSONL file that cannot be read as UTF-8 text, or one of its lines that is not a JSON object.
public struct JSONLinesError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based line, or nil for a problem with the whole file.
    public var line: Int?
    public var problem: String

    public init(file: String, line: Int?, _ problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String { line.map { "\(file):\($0): \(problem)" } ?? "\(file): \(problem)" }
}

/// The JSON objects on the non-blank lines of `text`, with their 1-based line numbers; `file`
/// names the source in errors.
public func parseJSONLines(_ text: String, file: String) throws(JSONLinesError) -> [(line: Int, object: [String: Any])] {
    var objects: [(line: Int, object: [String: Any])] = []
    for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !raw.allSatisfy(\.isWhitespace) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
            throw JSONLinesError(file: file, line: i + 1, "not a JSON object")
        }
        objects.append((i + 1, object))
    }
    return objects
}

/// `parseJSONLines` on a UTF-8 file of at most `limit` bytes (`readBoundedFile`: a FIFO or a
/// link to /dev/zero is refused unread).
public func readJSONLines(atPath path: String, limit: Int = 1 << 30) throws(JSONLinesError) -> [(line: Int, object: [String: Any])] {
    let data: Data
    do { data = try readBoundedFile(atPath: path, limit: limit) } catch {
        throw JSONLinesError(file: path, line: nil, "cannot read (\(error))")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw JSONLinesError(file: path, line: nil, "not UTF-8 text") }
    return try parseJSONLines(text, file: path)
}
