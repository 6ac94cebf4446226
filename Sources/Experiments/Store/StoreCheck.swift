import FileSupport
import Foundation
import Models

/// One finding of `ExperimentRun.verify()`.
public struct StoreFinding: CustomStringConvertible, Equatable, Sendable {
    public enum Severity: String, Sendable {
        /// A file that is truncated, unreadable, left over or inconsistent with its unit's record.
        case error
        /// Scratch of a unit that has not finished yet: a later run redoes it.
        case unfinished
    }
    public var severity: Severity
    public var path: String
    public var message: String
    public var description: String { "\(severity.rawValue): \(path): \(message)" }
}

extension ExperimentRun {
    /// Checks that the run directory is consistent: no temporary file left behind by an
    /// interrupted write, no unit directory that the plan does not know, every finished unit's
    /// record matches the unit and names outputs that exist, and every JSON, JSONL and
    /// safetensors file in finished units (and at the top level) parses completely. With
    /// `checkValues`, every checkpoint is loaded and its tensors checked to be finite.
    ///
    /// Reads only; safe while a run is going on (its in-flight temporary files are then reported).
    public func verify(checkValues: Bool = true) -> [StoreFinding] {
        var findings: [StoreFinding] = []
        func error(_ url: URL, _ message: String) { findings.append(StoreFinding(severity: .error, path: url.path, message: message)) }
        let fm = FileManager.default

        // Temporary files anywhere: every writer renames them into place, so one that is still
        // there was abandoned mid-write.
        if let walker = fm.enumerator(at: store.root, includingPropertiesForKeys: nil) {
            for case let url as URL in walker where StoreCheck.isTemporary(url.lastPathComponent) {
                error(url, "temporary file left by an interrupted write")
            }
        }
        for url in [store.specURL, store.planURL] {
            if let problem = StoreCheck.checkJSON(url) { error(url, problem) }
        }
        for name in ["metrics.jsonl", "comparisons.jsonl"] {
            let url = store.root.appendingPathComponent(name)
            if fm.fileExists(atPath: url.path), let problem = StoreCheck.checkJSONL(url) { error(url, problem) }
        }
        if fm.fileExists(atPath: store.logURL.path), let problem = StoreCheck.checkJSONL(store.logURL) { error(store.logURL, problem) }

        let known = Dictionary(plan.units.map { (store.directory(for: $0).lastPathComponent, $0) }, uniquingKeysWith: { a, _ in a })
        let present = (try? fm.contentsOfDirectory(atPath: store.unitsURL.path)) ?? []
        for name in present.sorted() where known[name] == nil && !StoreCheck.isTemporary(name) {
            error(store.unitsURL.appendingPathComponent(name), "not a unit of this run's plan (left over from an edited spec, or foreign)")
        }
        for unit in plan.units {
            let dir = store.directory(for: unit)
            guard fm.fileExists(atPath: dir.path) else { continue }
            let doneURL = dir.appendingPathComponent("done.json")
            let data: Data
            do { data = try readBoundedFile(atPath: doneURL.path, limit: maxStoreRecordBytes) } catch let failure {
                if failure == .notFound {
                    findings.append(StoreFinding(severity: .unfinished, path: dir.path, message: "unit \(unit.id) has not finished (its files are scratch)"))
                } else {
                    error(doneURL, failure.description)
                }
                continue
            }
            guard let done = try? JSONDecoder().decode(RunStore.Completion.self, from: data) else {
                error(doneURL, "unreadable completion record (truncated or not JSON)")
                continue
            }
            guard done.id == unit.id, done.hash == unit.hash else {
                error(doneURL, "records unit \(done.id) with hash \(done.hash.prefix(12)), the plan has \(unit.id) with \(unit.hash.prefix(12))")
                continue
            }
            for key in ["model", "metrics", "comparisons", "tokenizer"] {
                guard let value = done.outputs[key] else { continue }
                if !fm.fileExists(atPath: dir.appendingPathComponent(value).path) {
                    error(dir.appendingPathComponent(value), "output '\(key)' recorded in done.json is missing")
                }
            }
            findings += StoreCheck.checkFiles(in: dir, checkValues: checkValues)
        }
        return findings
    }
}

enum StoreCheck {
    /// Names the writers give their temporary files: `.NAME.tmp-…` (writeAtomically,
    /// SafetensorsWriter) and checkpoints being assembled (`.NAME.partial-…`).
    static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".partial-"))
    }

    /// The writer's process id in a temporary name (`.NAME.tmp-PID` or `.NAME.tmp-PID-RANDOM`).
    static func writerPID(_ name: String) -> pid_t? {
        guard let r = name.range(of: ".tmp-") ?? name.range(of: ".partial-") else { return nil }
        return pid_t(name[r.upperBound...].prefix { $0.isNumber })
    }

    /// The bytes of a file to check, or the problem that stopped its reading.
    static func read(_ url: URL) -> (data: Data?, problem: String?) {
        do { return (try readBoundedFile(atPath: url.path, limit: maxStoreDataBytes), nil) } catch {
            return (nil, error == .notFound ? "missing or unreadable" : error.description)
        }
    }

    static func checkJSON(_ url: URL) -> String? {
        let (contents, problem) = read(url)
        guard let data = contents else { return problem }
        do { _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            return "not valid JSON (\(data.count) bytes; truncated?)"
        }
        return nil
    }

    static func checkJSONL(_ url: URL) -> String? {
        let (contents, problem) = read(url)
        guard let data = contents else { return problem }
        if !data.isEmpty && data.last != 0x0A { return "the last line has no newline (truncated write)" }
        for (i, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            do { _ = try JSONSerialization.jsonObject(with: Data(line)) } catch { return "line \(i + 1) is not valid JSON" }
        }
        return nil
    }

    /// Every JSON, JSONL and safetensors file below `dir`; checkpoints (directories with
    /// config.json and weights) are opened as a whole.
    static func checkFiles(in dir: URL, checkValues: Bool) -> [StoreFinding] {
        var findings: [StoreFinding] = []
        func error(_ url: URL, _ message: String) { findings.append(StoreFinding(severity: .error, path: url.path, message: message)) }
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        for case let url as URL in walker where !isTemporary(url.lastPathComponent) {
            switch url.pathExtension {
            case "json": if let p = checkJSON(url) { error(url, p) }
            case "jsonl": if let p = checkJSONL(url) { error(url, p) }
            case "safetensors":
                do { _ = try SafetensorsFile(url: url) } catch { findings.append(StoreFinding(severity: .error, path: url.path, message: "\(error)")) }
            default: break
            }
            if url.lastPathComponent == Checkpoint.configFileName {
                let checkpoint = url.deletingLastPathComponent()
                do {
                    let c = try Checkpoint(directory: checkpoint)
                    if checkValues {
                        for t in try c.loadParameters() where t.values.contains(where: { !$0.isFinite }) {
                            error(checkpoint, "tensor \(t.name) holds NaN or infinity")
                        }
                    }
                } catch {
                    findings.append(StoreFinding(severity: .error, path: checkpoint.path, message: "checkpoint does not load: \(error)"))
                }
            }
        }
        return findings
    }
}
