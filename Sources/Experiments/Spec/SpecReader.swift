import Foundation
import Yams

/// One problem found in an experiment file, located by its key path (and line when known).
public struct SpecIssue: Error, Equatable, CustomStringConvertible, Sendable {
    public var path: String
    public var line: Int?
    public var message: String

    public var description: String {
        if let line { return "line \(line): \(path.isEmpty ? "(root)" : path): \(message)" }
        return "\(path.isEmpty ? "(root)" : path): \(message)"
    }
}

/// Every problem of an experiment file, reported together before anything runs.
public struct SpecError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var issues: [SpecIssue]
    public var description: String {
        "\(file): \(issues.count) problem\(issues.count == 1 ? "" : "s"):\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Collects issues while a spec is read, so that validation reports all of them at once.
final class SpecDiagnostics {
    var issues: [SpecIssue] = []
    func add(_ path: String, _ line: Int?, _ message: String) { issues.append(SpecIssue(path: path, line: line, message: message)) }
}

/// A cursor over a YAML node that knows its key path and records typed-read problems.
///
/// Reads never throw: a wrong type or a missing required key records an issue and yields
/// `nil`, so that one pass finds every problem in the file.
struct SpecNode {
    let node: Node?
    let path: String
    let diagnostics: SpecDiagnostics

    var line: Int? { node?.mark.map { $0.line } }
    var isPresent: Bool {
        guard let node else { return false }
        if case .scalar(let s) = node, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return false }
        return true
    }

    func fail(_ message: String) { diagnostics.add(path, line, message) }

    func child(_ key: String) -> SpecNode {
        var value: Node? = nil
        if case .mapping(let m)? = node { value = m[Node(key)] }
        return SpecNode(node: value, path: path.isEmpty ? key : "\(path).\(key)", diagnostics: diagnostics)
    }

    /// The keys of a mapping, checking that each is one of `allowed` (suggesting near misses).
    @discardableResult
    func keys(allowed: [String]) -> [String] {
        guard let node else { return [] }
        guard case .mapping(let m) = node else { fail("expected a mapping (key: value pairs)"); return [] }
        var result: [String] = []
        for (k, _) in m {
            guard let key = k.string else { diagnostics.add(path, k.mark?.line, "keys must be strings"); continue }
            result.append(key)
            if !allowed.contains(key) {
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                let hint = allowed.min(by: { editDistance($0, key) < editDistance($1, key) }).flatMap { editDistance($0, key) <= 2 ? " (did you mean '\($0)'?)" : nil } ?? ""
                diagnostics.add(keyPath, k.mark?.line, "unknown key\(hint); allowed: \(allowed.joined(separator: ", "))")
            }
        }
        return result
    }

    func elements() -> [SpecNode] {
        guard let node, isPresent else { return [] }
        guard case .sequence(let s) = node else { fail("expected a list"); return [] }
        return s.enumerated().map { SpecNode(node: $0.element, path: "\(path)[\($0.offset)]", diagnostics: diagnostics) }
    }

    func mappingEntries() -> [(String, SpecNode)] {
        guard let node, isPresent else { return [] }
        guard case .mapping(let m) = node else { fail("expected a mapping (key: value pairs)"); return [] }
        return m.compactMap { k, v in
            guard let key = k.string else { return nil }
            return (key, SpecNode(node: v, path: path.isEmpty ? key : "\(path).\(key)", diagnostics: diagnostics))
        }
    }

    var isSequence: Bool { if case .sequence? = node { return true } else { return false } }
    var isMapping: Bool { if case .mapping? = node { return true } else { return false } }

    func string(required: Bool = false) -> String? {
        guard isPresent, let node else { if required { fail("required") }; return nil }
        guard case .scalar(let s) = node else { fail("expected a string"); return nil }
        return s.string
    }

    func int(required: Bool = false) -> Int? {
        guard isPresent, let node else { if required { fail("required") }; return nil }
        guard case .scalar = node, let v = node.int else { fail("expected an integer, found '\(node.string ?? "a collection")'"); return nil }
        return v
    }

    func double(required: Bool = false) -> Double? {
        guard isPresent, let node else { if required { fail("required") }; return nil }
        guard case .scalar = node else { fail("expected a number"); return nil }
        if let v = node.int { return Double(v) }
        // YAML 1.1 resolves 1e-4 (no dot) as a string; accept any decimal that Double parses.
        if let v = node.float ?? node.string.flatMap(Double.init) { return v }
        fail("expected a number, found '\(node.string ?? "")'"); return nil
    }

    func bool(required: Bool = false) -> Bool? {
        guard isPresent, let node else { if required { fail("required") }; return nil }
        guard case .scalar = node, let v = node.bool else { fail("expected true or false, found '\(node.string ?? "a collection")'"); return nil }
        return v
    }

    func oneOf(_ choices: [String], required: Bool = false) -> String? {
        guard let s = string(required: required) else { return nil }
        guard choices.contains(s) else { fail("must be one of \(choices.joined(separator: ", ")), found '\(s)'"); return nil }
        return s
    }

    func strings() -> [String]? {
        guard isPresent else { return nil }
        if case .scalar? = node { return string().map { [$0] } }
        return elements().compactMap { $0.string(required: true) }
    }

    func ints() -> [Int]? {
        guard isPresent else { return nil }
        if case .scalar? = node { return int().map { [$0] } }
        return elements().compactMap { $0.int(required: true) }
    }

    func doubles() -> [Double]? {
        guard isPresent else { return nil }
        if case .scalar? = node { return double().map { [$0] } }
        return elements().compactMap { $0.double(required: true) }
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]; row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
