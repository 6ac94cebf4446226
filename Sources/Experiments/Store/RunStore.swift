import Datasets
import FileSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The most bytes read whole from a record of a run directory (spec.json, done.json, a unit
/// marker, the Slurm record): real ones are a few KB. A FIFO or a link to /dev/zero left in a
/// run directory is refused (`readBoundedFile`) instead of hanging `status`, `report` or `check`.
let maxStoreRecordBytes = 16 << 20
/// The most bytes read whole from a JSON or JSONL data file of a run directory (metrics, a
/// checkpoint's tokenizer.json): tens of MB at most.
let maxStoreDataBytes = 1 << 30

/// A problem with the run directory, naming the path.
public struct StoreError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// The directory of one experiment run: the resolved spec, the plan, one directory per unit,
/// the metrics and the report.
///
/// A unit is finished when its directory holds `done.json` whose hash matches the unit's:
/// everything else in a unit directory is scratch that a re-run may overwrite.
public struct RunStore {
    public let root: URL

    public init(root: URL) throws {
        self.root = root
        do { try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw StoreError(path: root.path, message: "cannot create the run directory: \(error.localizedDescription)")
        }
        guard FileManager.default.isWritableFile(atPath: root.path) else {
            throw StoreError(path: root.path, message: "the run directory is not writable")
        }
    }

    public var specURL: URL { root.appendingPathComponent("spec.json") }
    public var planURL: URL { root.appendingPathComponent("plan.json") }
    public var logURL: URL { root.appendingPathComponent("log.jsonl") }
    public var unitsURL: URL { root.appendingPathComponent("units") }

    /// The directory of a unit: its id made filesystem-safe, plus the start of its hash so that
    /// an edited spec never reuses a stale unit.
    public func directory(for unit: PlanUnit) -> URL {
        let safe = unit.id.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }
        return unitsURL.appendingPathComponent(String(safe) + "-" + unit.hash.prefix(12))
    }

    /// The record a finished unit leaves behind.
    public struct Completion: Codable, Equatable {
        public var id: String
        public var hash: String
        public var seconds: Double
        /// Named outputs (file names relative to the unit directory, or small values).
        public var outputs: [String: String]
    }

    public func completion(of unit: PlanUnit) -> Completion? {
        let url = directory(for: unit).appendingPathComponent("done.json")
        guard let data = try? readBoundedFile(atPath: url.path, limit: maxStoreRecordBytes),
              let record = try? JSONDecoder().decode(Completion.self, from: data),
              record.hash == unit.hash else { return nil }
        return record
    }

    public func markDone(_ unit: PlanUnit, seconds: Double, outputs: [String: String]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let record = Completion(id: unit.id, hash: unit.hash, seconds: seconds, outputs: outputs)
        try writeAtomically(try encoder.encode(record), to: directory(for: unit).appendingPathComponent("done.json"))
    }

    /// Gets a unit's directory ready for a (re-)run: creates it, and removes the temporary files
    /// an interrupted attempt left behind (every writer renames its temporary into place, so
    /// any still there is abandoned; the unit's other scratch is overwritten by the new attempt).
    public func beginUnit(_ unit: PlanUnit) throws {
        let dir = directory(for: unit)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try removeTemporaries(in: dir, recursive: true, onlyAbandoned: false)
        } catch let e as StoreError { throw e } catch {
            throw StoreError(path: dir.path, message: "cannot prepare the unit directory: \(error.localizedDescription)")
        }
    }

    /// Removes temporary files (`.NAME.tmp-PID…`) in `dir`. With `onlyAbandoned`, only those whose
    /// writer (the PID in the name) is no longer running on this machine.
    public func removeTemporaries(in dir: URL, recursive: Bool, onlyAbandoned: Bool) throws {
        let fm = FileManager.default
        let names: [String]
        if recursive {
            names = (fm.enumerator(atPath: dir.path)?.allObjects as? [String]) ?? []
        } else {
            names = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
        }
        for name in names where StoreCheck.isTemporary((name as NSString).lastPathComponent) {
            if onlyAbandoned, let pid = StoreCheck.writerPID((name as NSString).lastPathComponent), kill(pid, 0) == 0 || errno != ESRCH {
                continue
            }
            do { try fm.removeItem(at: dir.appendingPathComponent(name)) } catch {
                throw StoreError(path: dir.appendingPathComponent(name).path, message: "cannot remove an abandoned temporary file: \(error.localizedDescription)")
            }
        }
    }

    /// Appends one JSON line to the structured log (one `write` per line).
    public func log(_ fields: [String: String]) {
        var fields = fields
        fields["time"] = ISO8601DateFormatter().string(from: Date())
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        let fd = open(logURL.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var line = data
        line.append(0x0A)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }
}
