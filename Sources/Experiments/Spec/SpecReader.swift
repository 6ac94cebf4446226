import FileSupport
import Foundation
import Yams
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Throws every issue found so far, naming `file`.
    func throwIfAny(file: String) throws {
        guard issues.isEmpty else { throw SpecError(file: file, issues: issues) }
    }
}

/// A cursor over a YAML node that knows its key path and records typed-read problems.
///
/// Reads never throw: a wrong type or a missing required key records an issue and yields
/// `nil`, so that one pass finds every problem in the file.
struct SpecNode {
    let node: Node?
    let path: String
    let diagnostics: SpecDiagnostics

    /// The root of YAML text, with fresh diagnostics; text that is not YAML throws, naming `file`.
    static func root(yaml: String, file: String) throws -> SpecNode {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw SpecError(file: file, issues: [SpecIssue(path: "", line: nil, message: "not valid YAML: \(error)")])
        }
        return SpecNode(node: root, path: "", diagnostics: SpecDiagnostics())
    }

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
        guard case .scalar = node, let v = Self.integer(node) else { fail("expected an integer, found '\(node.string ?? "a collection")'"); return nil }
        return v
    }

    /// Yams' `node.int`, except that a YAML 1.1 sexagesimal integer (`1:30` is 90) is computed
    /// here with overflow checks: Yams multiplies its digits unchecked, so a value such as
    /// `1:1:1:1:1:1:1:1:1:1:1:1` trapped. Out of range, it is not an integer (nil).
    static func integer(_ node: Node) -> Int? {
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return nil }
        let text = s.string.replacingOccurrences(of: "_", with: "")
        let negative = text.hasPrefix("-")
        let body = negative || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        // Where Yams does not read sexagesimal (no ':', or a radix prefix), its reading is kept.
        guard body.contains(":"), !body.hasPrefix("0") else { return node.int }
        var value = 0
        for part in body.components(separatedBy: ":") {
            guard let digit = Int(part, radix: 10) else { return nil }
            let (shifted, o1) = value.multipliedReportingOverflow(by: 60)
            let (sum, o2) = shifted.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            value = sum
        }
        guard negative else { return value }
        let (negated, o) = 0.subtractingReportingOverflow(value)
        return o ? nil : negated
    }

    func double(required: Bool = false) -> Double? {
        guard isPresent, let node else { if required { fail("required") }; return nil }
        guard case .scalar = node else { fail("expected a number"); return nil }
        if let v = Self.integer(node) { return Double(v) }
        // YAML 1.1 resolves 1e-4 (no dot) as a string; accept any decimal that Double parses.
        if let v = node.float ?? node.string.flatMap(Double.init) { return v }
        fail("expected a number, found '\(node.string ?? "")'"); return nil
    }

    func bool(required: Bool = false) -> Bool? {
        guard isPresent, let node else { if required { fail("required") }; return nil }
        guard case .scalar = node, let v = node.bool else { fail("expected true or false, found '\(node.string ?? "a collection")'"); return nil }
        return v
    }

    /// An integer of at least `minimum` (nil when absent or wrong; a wrong one is recorded).
    func int(atLeast minimum: Int) -> Int? {
        guard let v = int() else { return nil }
        if let problem = SpecRule.atLeast(minimum, v) { fail(problem); return nil }
        return v
    }

    /// A finite number > 0 (nil when absent or wrong; a wrong one is recorded).
    func positiveDouble() -> Double? {
        guard let v = double() else { return nil }
        if let problem = SpecRule.finitePositive(v) { fail(problem); return nil }
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

/// Range rules shared by the readers of files and by checks of values given in code or on the
/// command line, so that one rule always words its problem the same way: the problem, or nil.
enum SpecRule {
    static func atLeast(_ minimum: Int, _ v: Int) -> String? {
        guard v < minimum else { return nil }
        return minimum == 1 ? "must be > 0, found \(v)" : "must be >= \(minimum), found \(v)"
    }

    static func finitePositive(_ v: Double) -> String? {
        v.isFinite && v > 0 ? nil : "must be finite and > 0, found \(formatNumber(v))"
    }
}

/// A relative path taken against `base` (the directory of the file that names it); absolute
/// paths, and any path when there is no base, are kept.
func resolvePath(_ path: String, against base: URL?) -> String {
    guard let base, !path.hasPrefix("/") else { return path }
    return base.appendingPathComponent(path).standardizedFileURL.path
}

/// The most bytes read from an experiment or stages file (real ones are a few KB).
let maxSpecFileBytes = 16 << 20

/// The UTF-8 text of a small YAML file, refused unread when it is not a regular file (a FIFO or
/// a link to /dev/zero would never end) or is larger than `maxSpecFileBytes`. `kind` names the
/// sort of file in the error, which names the file.
func readSpecFile(_ url: URL, kind: String) throws -> String {
    func refuse(_ message: String) -> SpecError {
        SpecError(file: url.path, issues: [SpecIssue(path: "", line: nil, message: message)])
    }
    let data: Data
    do { data = try readBoundedFile(atPath: url.path, limit: maxSpecFileBytes) } catch {
        switch error {
        case .notFound: throw refuse("cannot read the file: \(String(cString: strerror(ENOENT)))")
        case .unreadable(let reason): throw refuse("cannot read the file: \(reason)")
        case .notRegularFile(let found): throw refuse("not a regular file (found \(found)); \(kind) is a small YAML file")
        case .tooLarge(let size?, _):
            throw refuse("the file is \(size) bytes; at most \(maxSpecFileBytes) (16 MiB) are read from \(kind), which is a few KB")
        case .tooLarge(nil, _): throw refuse("the file is over \(maxSpecFileBytes) bytes (16 MiB); \(kind) is a few KB")
        }
    }
    guard let text = String(data: data, encoding: .utf8) else { throw refuse("not UTF-8 text") }
    return text
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
