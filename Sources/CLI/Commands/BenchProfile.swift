import Engine
import JSONSupport
import Foundation
import Models

/// `bench train --profile`: where a step's time goes, op by op.
extension BenchTrain {
    /// Runs `steps` more steps of each phase under an `OpProfiler` (after one warm-up step) and
    /// prints the time per op kind per step, the most expensive first.
    func printProfile(_ model: CausalLM, batch b: Int, seq t: Int) throws {
        var rng = SeededRandom(seed: 4)
        func ids() -> [Int32] { (0..<(b * t)).map { _ in Int32(rng.nextInt(model.config.vocabSize)) } }
        if phase != "forward" {
            let optimizer = try BenchAdamW(parameters: model.namedParameters.map { ($0.name, $0.tensor) })
            let profiler = OpProfiler()
            let wall = try profiledSteps(profiler) {
                let batchIDs = ids()
                try profiler.collect {
                    profiler.mark()
                    let loss = model.loss(batchIDs, labels: batchIDs, batch: b, length: t)
                    loss.backward()
                    try profiler.time("optimizer", "AdamW") { try optimizer.step() }
                }
            }
            report(profiler.entries, profile: "train", wall: wall)
        }
        if phase != "train" {
            let profiler = OpProfiler()
            let wall = profiledSteps(profiler) {
                let batchIDs = ids()
                _ = Autograd.withNoGrad {
                    profiler.collect { model.loss(batchIDs, labels: batchIDs, batch: b, length: t).item() }
                }
            }
            report(profiler.entries, profile: "forward", wall: wall)
        }
    }

    /// Runs `step` once to warm up, then `steps` times under `profiler`; returns the timed steps' wall seconds.
    /// (That includes drawing the batch inside `step`: microseconds.)
    private func profiledSteps(_ profiler: OpProfiler, _ step: () throws -> Void) rethrows -> Double {
        var wall = 0.0
        for index in 0...steps {
            if index == 1 { profiler.reset() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            try step()
            if index > 0 { wall += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        }
        return wall
    }

    private func report(_ entries: [OpProfiler.Entry], profile: String, wall: Double) {
        let n = Double(steps)
        let total = entries.reduce(0) { $0 + $1.seconds }
        if json {
            for e in entries {
                print("{\"profile\":\"\(profile)\",\"phase\":\"\(e.phase)\",\"op\":\(jsonQuoted(e.op)),"
                      + "\"calls_per_step\":\(String(format: "%g", Double(e.calls) / n)),"
                      + "\"ms_per_step\":\(String(format: "%.3f", e.seconds / n * 1000)),"
                      + "\"share\":\(String(format: "%.4f", total > 0 ? e.seconds / total : 0))}")
            }
            return
        }
        print("")
        print(String(format: "profile of %d %@ steps: %.1f ms per step, %.1f ms of it in ops (forward ops are timed from the end of the previous op)",
                     steps, profile == "train" ? "training" : "forward (no grad)", wall / n * 1000, total / n * 1000))
        let width = max(2, entries.map(\.op.count).max() ?? 2)
        print("phase      " + "op".padding(toLength: width, withPad: " ", startingAt: 0) + "  calls   ms/step   share")
        for e in entries {
            print(e.phase.padding(toLength: 10, withPad: " ", startingAt: 0) + " "
                  + e.op.padding(toLength: width, withPad: " ", startingAt: 0)
                  + String(format: "  %5g  %8.2f  %5.1f%%", Double(e.calls) / n, e.seconds / n * 1000, 100 * e.seconds / max(total, 1e-12)))
        }
    }
}
