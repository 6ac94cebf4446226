import ArgumentParser
import Foundation
import Models
import Training

/// Checkpoints and micro-batches during `train` and `unlearn`, and what happens when the run diverges.
struct LongRunOptions: ParsableArguments {
    @Option(help: "Save an HF checkpoint --out/checkpoint-<step>/ every N optimizer steps.")
    var saveEverySteps: Int?

    @Option(help: "Save an HF checkpoint --out/checkpoint-<step>/ at the end of every N epochs (passes over the data, or over the forget set).")
    var saveEveryEpochs: Int?

    @Option(help: "Rows per forward/backward pass: gradients are accumulated over micro-batches into one update of --batch-size examples (same result up to rounding, less memory).")
    var microBatchSize: Int?

    func validate() throws {
        if let n = microBatchSize, n < 1 { throw ValidationError("--micro-batch-size must be >= 1, got \(n)") }
        if let n = saveEverySteps, n < 1 { throw ValidationError("--save-every-steps must be >= 1, got \(n)") }
        if let n = saveEveryEpochs, n < 1 { throw ValidationError("--save-every-epochs must be >= 1, got \(n)") }
    }

    /// The interval checkpointer, or nil when no interval is set. Refuses an --out that is a file.
    func checkpoints(out: String, companionFiles: [URL]) throws -> IntervalCheckpoints? {
        guard saveEverySteps != nil || saveEveryEpochs != nil else { return nil }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--out \(out) is a file; checkpoints need a directory")
        }
        return try IntervalCheckpoints(directory: URL(fileURLWithPath: out), everySteps: saveEverySteps,
                                       everyEpochs: saveEveryEpochs, companionFiles: companionFiles)
    }

    /// Runs the training loop; a non-finite loss or gradient becomes an error that says where
    /// the run stopped and which checkpoint is the last good one (none is written after it).
    func guarding<T>(_ checkpoints: IntervalCheckpoints?, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as TrainingError {
            guard case .nonFinite = e else { throw e }
            let kept: String
            if let last = checkpoints?.last {
                kept = "the last good checkpoint is \(last.url.path) (step \(last.step))"
            } else if checkpoints != nil {
                kept = "no checkpoint had been saved yet"
            } else {
                kept = "no checkpoint was saved (use --save-every-steps to keep intermediate ones)"
            }
            throw ModelCommandError("the run diverged and was stopped: \(e)\n\(kept); the final checkpoint was not written")
        }
    }
}
