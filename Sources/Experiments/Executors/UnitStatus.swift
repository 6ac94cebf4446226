import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where one unit stands, from the store and (for Slurm runs) the scheduler.
public struct UnitStatus: Equatable, Sendable {
    public enum State: String, Sendable { case done, running, queued, failed, waiting }
    public var unit: String
    public var state: State
    /// Why it failed, which task runs it, ...
    public var detail: String?
    /// The Slurm log of its latest task.
    public var log: String?

    /// Reads every unit's state. `record` and `slurmStates` come from a Slurm run (nil for a
    /// local one, or when squeue is not available).
    public static func read(run: ExperimentRun, record: SlurmRecord?, slurmStates: [String: String]?) -> [UnitStatus] {
        let tasks = record?.latestTasks() ?? [:]
        let host = ProcessInfo.processInfo.hostName
        return run.plan.units.map { unit in
            if run.store.completion(of: unit) != nil { return UnitStatus(unit: unit.id, state: .done) }
            let task = tasks[unit.id]
            let log = task.map { SlurmExecutor.logPath(root: run.store.root, task: $0) }
            if let failed = run.store.failedMarker(of: unit) {
                // A failed attempt may already be retried by a newer task.
                if let task, let state = slurmStates?[task], SlurmTaskState(task: task, state: state).isActive, failed.slurmTask != task {
                    return UnitStatus(unit: unit.id, state: state == "RUNNING" ? .running : .queued, detail: "retry: task \(task) \(state.lowercased())", log: log)
                }
                return UnitStatus(unit: unit.id, state: .failed, detail: failed.error.map(firstLine), log: log)
            }
            let started = run.store.startedMarker(of: unit)
            if let task, let states = slurmStates {
                switch states[task] {
                case .some(let state) where SlurmTaskState(task: task, state: state).isActive:
                    return UnitStatus(unit: unit.id, state: state == "RUNNING" || state == "COMPLETING" ? .running : .queued, detail: "task \(task) \(state.lowercased())", log: log)
                case .some(let state):
                    if started != nil || state != "CANCELLED" {
                        return UnitStatus(unit: unit.id, state: .failed, detail: "task \(task) ended \(state) without finishing the unit", log: log)
                    }
                    return UnitStatus(unit: unit.id, state: .waiting, detail: "task \(task) cancelled: a unit it needs failed", log: log)
                case .none:
                    if started != nil {
                        return UnitStatus(unit: unit.id, state: .failed, detail: "task \(task) ended without finishing the unit", log: log)
                    }
                    return UnitStatus(unit: unit.id, state: .waiting, log: log)
                }
            }
            if let started {
                if started.host == host, started.slurmTask == nil, !processAlive(started.pid) {
                    return UnitStatus(unit: unit.id, state: .failed, detail: "interrupted (process \(started.pid) is gone)")
                }
                return UnitStatus(unit: unit.id, state: .running, detail: "on \(started.host)" + (started.slurmTask.map { ", task \($0)" } ?? ""), log: log)
            }
            return UnitStatus(unit: unit.id, state: .waiting)
        }
    }
}

private func firstLine(_ s: String) -> String {
    String(s.split(whereSeparator: \.isNewline).first ?? "")
}

/// Alive and not a zombie.
private func processAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return kill(pid, 0) == 0 }
    guard let close = stat.lastIndex(of: ")") else { return true }
    return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}
