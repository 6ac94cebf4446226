import Datasets
import FileSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Markers a unit leaves while it runs and when it fails, next to `done.json`, so that
/// `palimpsest status` can tell running and failed units apart from the store alone — also
/// for units run by Slurm tasks on other machines. Markers are advisory: `done.json` alone
/// decides whether a unit is finished.
public struct UnitMarker: Codable, Equatable, Sendable {
    public var id: String
    public var hash: String
    public var host: String
    public var pid: Int32
    public var time: String
    /// The Slurm task that ran the unit (`JOBID_TASK`), when it ran under Slurm.
    public var slurmTask: String?
    /// The error, for a failed unit.
    public var error: String?
}

extension RunStore {
    public func startedURL(for unit: PlanUnit) -> URL { directory(for: unit).appendingPathComponent("running.json") }
    public func failedURL(for unit: PlanUnit) -> URL { directory(for: unit).appendingPathComponent("failed.json") }

    func marker(for unit: PlanUnit, error: String?) -> UnitMarker {
        let env = ProcessInfo.processInfo.environment
        var task: String?
        if let job = env["SLURM_ARRAY_JOB_ID"], let index = env["SLURM_ARRAY_TASK_ID"] { task = "\(job)_\(index)" }
        else if let job = env["SLURM_JOB_ID"] { task = job }
        return UnitMarker(id: unit.id, hash: unit.hash, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                          time: ISO8601DateFormatter().string(from: Date()), slurmTask: task, error: error)
    }

    /// Best effort: a marker that cannot be written never stops the work.
    func markStarted(_ unit: PlanUnit) {
        try? FileManager.default.removeItem(at: failedURL(for: unit))
        if let data = try? JSONEncoder().encode(marker(for: unit, error: nil)) { try? writeAtomically(data, to: startedURL(for: unit)) }
    }

    func markFailed(_ unit: PlanUnit, error: String) {
        if let data = try? JSONEncoder().encode(marker(for: unit, error: error)) { try? writeAtomically(data, to: failedURL(for: unit)) }
        try? FileManager.default.removeItem(at: startedURL(for: unit))
    }

    func clearMarkers(_ unit: PlanUnit) {
        try? FileManager.default.removeItem(at: startedURL(for: unit))
        try? FileManager.default.removeItem(at: failedURL(for: unit))
    }

    /// The marker of a started or failed attempt at this version of the unit.
    public func startedMarker(of unit: PlanUnit) -> UnitMarker? { readMarker(startedURL(for: unit), unit) }
    public func failedMarker(of unit: PlanUnit) -> UnitMarker? { readMarker(failedURL(for: unit), unit) }

    private func readMarker(_ url: URL, _ unit: PlanUnit) -> UnitMarker? {
        guard let data = try? readBoundedFile(atPath: url.path, limit: maxStoreRecordBytes), let m = try? JSONDecoder().decode(UnitMarker.self, from: data), m.hash == unit.hash else { return nil }
        return m
    }
}
