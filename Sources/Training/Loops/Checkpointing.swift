import Foundation
import Models

/// Writes `checkpoint-<step>/` HF checkpoint directories beside a run's output at step or epoch
/// intervals. Pass `save(after:model:)` as (part of) the loops' `progress` callback.
///
/// Each checkpoint is written into a hidden temporary directory and renamed into place, so a
/// directory named `checkpoint-N` is always complete. The loops throw on a non-finite loss or
/// gradient before changing the model, and the checkpoint writer refuses non-finite tensors,
/// so every checkpoint written is finite: after a divergence `last` is the last good one.
public final class IntervalCheckpoints {
    public let directory: URL
    public let everySteps: Int?
    public let everyEpochs: Int?
    public let companionFiles: [URL]
    /// The latest checkpoint written: its step and directory.
    public private(set) var last: (step: Int, url: URL)?

    /// - Parameters:
    ///   - directory: where `checkpoint-<step>/` directories go (created when needed).
    ///   - everySteps: save after every this many optimizer steps.
    ///   - everyEpochs: save at the end of every this many epochs (passes over the data).
    public init(directory: URL, everySteps: Int? = nil, everyEpochs: Int? = nil, companionFiles: [URL] = []) throws {
        if let n = everySteps { try require(n >= 1, "checkpoints.everySteps", "must be >= 1, got \(n)") }
        if let n = everyEpochs { try require(n >= 1, "checkpoints.everyEpochs", "must be >= 1, got \(n)") }
        self.directory = directory; self.everySteps = everySteps; self.everyEpochs = everyEpochs
        self.companionFiles = companionFiles
    }

    /// Whether the step of `report` is due for a checkpoint.
    public func isDue(_ report: StepReport) -> Bool {
        if let n = everySteps, report.step % n == 0 { return true }
        if let n = everyEpochs, report.endsEpoch, report.epoch % n == 0 { return true }
        return false
    }

    /// Saves `model` as `checkpoint-<step>` when the step is due.
    public func save(after report: StepReport, model: CausalLM) throws {
        guard isDue(report) else { return }
        let url = directory.appendingPathComponent("checkpoint-\(report.step)")
        try Self.saveAtomically(model, to: url, companionFiles: companionFiles)
        last = (report.step, url)
    }

    /// Writes an HF checkpoint directory all at once: into `.NAME.partial-PID` beside it, then
    /// renamed over `url` (an existing directory there is replaced only once the new one is
    /// complete). On failure nothing is left behind and an earlier directory at `url` is kept.
    public static func saveAtomically(_ model: CausalLM, to url: URL, companionFiles: [URL]? = nil) throws {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        let partial = parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
            if fm.fileExists(atPath: partial.path) { try fm.removeItem(at: partial) }
        } catch {
            throw ModelIOError(.writeFailed, file: parent.path, "cannot prepare the checkpoint directory (\(error.localizedDescription))")
        }
        do {
            try model.save(to: partial, companionFiles: companionFiles)
        } catch {
            try? fm.removeItem(at: partial)
            throw error
        }
        var old: URL? = nil
        if fm.fileExists(atPath: url.path) {
            let aside = parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())-old")
            try? fm.removeItem(at: aside)
            guard rename(url.path, aside.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fm.removeItem(at: partial)
                throw ModelIOError(.writeFailed, file: url.path, "cannot replace the existing checkpoint (\(reason))")
            }
            old = aside
        }
        guard rename(partial.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old.path, url.path) }
            try? fm.removeItem(at: partial)
            throw ModelIOError(.writeFailed, file: url.path, "cannot move the written checkpoint into place (\(reason))")
        }
        if let old { try? fm.removeItem(at: old) }
    }
}
