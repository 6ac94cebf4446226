import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a unit tells the runner while it works.
public struct UnitProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double?
    public var phase: String

    public init(phase: String, step: Int, totalSteps: Int, loss: Double? = nil) {
        self.phase = phase; self.step = step; self.totalSteps = totalSteps; self.loss = loss
    }
}

/// Shows progress: one live line (unit, step, loss, ETA) rewritten in place on a terminal, or
/// plain log lines at most every few seconds otherwise (CI, files, Slurm logs).
public final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let live: Bool
    private let output: (String) -> Void
    private var unitStart: [String: Date] = [:]
    private var lastPlain: [String: Date] = [:]
    private var unitsDone = 0
    private let unitsTotal: Int
    private let plainInterval: TimeInterval

    /// `live` defaults to whether standard error is a terminal.
    public init(unitsTotal: Int, live: Bool? = nil, plainInterval: TimeInterval = 5, output: ((String) -> Void)? = nil) {
        self.unitsTotal = unitsTotal
        self.live = live ?? (isatty(STDERR_FILENO) != 0)
        self.plainInterval = plainInterval
        self.output = output ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public func started(_ unit: PlanUnit) {
        lock.lock(); defer { lock.unlock() }
        unitStart[unit.id] = Date()
        emitLine("[\(unitsDone + 1)/\(unitsTotal)] \(unit.label)")
    }

    public func progress(_ unit: PlanUnit, _ p: UnitProgress) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        let elapsed = now.timeIntervalSince(unitStart[unit.id] ?? now)
        var text = "\(p.phase) step \(p.step)/\(p.totalSteps)"
        if let loss = p.loss { text += String(format: "  loss %.4f", loss) }
        if p.step > 0 && p.totalSteps > p.step {
            text += "  ETA " + Self.duration(elapsed / Double(p.step) * Double(p.totalSteps - p.step))
        }
        if live {
            let width = 24, filled = p.totalSteps > 0 ? min(width, width * p.step / p.totalSteps) : 0
            output("\r\u{1B}[2K  [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + text)
        } else if now.timeIntervalSince(lastPlain[unit.id] ?? .distantPast) >= plainInterval || p.step == p.totalSteps {
            lastPlain[unit.id] = now
            output("  \(unit.label): \(text)\n")
        }
    }

    public func finished(_ unit: PlanUnit, seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        unitsDone += 1
        if live { output("\r\u{1B}[2K") }
        emitLine("  done in \(Self.duration(seconds))")
    }

    public func message(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        emitLine(text)
    }

    private func emitLine(_ text: String) {
        if live { output("\r\u{1B}[2K") }
        output(text + "\n")
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }
}
