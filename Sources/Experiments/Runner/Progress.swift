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

/// Shows progress: one live line (unit, step, loss, ETA; every running unit when several run at
/// once) rewritten in place on a terminal, or plain log lines at most every few seconds per unit
/// otherwise (CI, files, Slurm logs).
public final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let live: Bool
    private let output: (String) -> Void
    private var unitStart: [String: Date] = [:]
    private var lastPlain: [String: Date] = [:]
    /// Running units in the order they started, with their latest progress text.
    private var running: [(unit: PlanUnit, text: String, fraction: Double)] = []
    private var unitsDone = 0
    /// Whether units have run side by side: then every line names its unit.
    private var several = false
    private let unitsTotal: Int
    private let plainInterval: TimeInterval
    private let width: Int

    /// `live` defaults to whether standard error is a terminal; `width` (columns of the live line)
    /// to `COLUMNS` or 120.
    public init(unitsTotal: Int, live: Bool? = nil, plainInterval: TimeInterval = 5, width: Int? = nil, output: ((String) -> Void)? = nil) {
        self.unitsTotal = unitsTotal
        self.live = live ?? (isatty(STDERR_FILENO) != 0)
        self.plainInterval = plainInterval
        self.width = width ?? ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) }.map { max(40, $0) } ?? 120
        self.output = output ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public func started(_ unit: PlanUnit) {
        lock.lock(); defer { lock.unlock() }
        unitStart[unit.id] = Date()
        running.append((unit, "starting", 0))
        if running.count > 1 { several = true }
        emitLine("[\(unitsDone + running.count)/\(unitsTotal)] \(unit.label)")
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
        let fraction = p.totalSteps > 0 ? min(1, Double(p.step) / Double(p.totalSteps)) : 0
        if let i = running.firstIndex(where: { $0.unit.id == unit.id }) { running[i].text = text; running[i].fraction = fraction }
        if live {
            redrawLive()
        } else if now.timeIntervalSince(lastPlain[unit.id] ?? .distantPast) >= plainInterval || p.step == p.totalSteps {
            lastPlain[unit.id] = now
            output("  \(unit.label): \(text)\n")
        }
    }

    public func finished(_ unit: PlanUnit, seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        unitsDone += 1
        running.removeAll { $0.unit.id == unit.id }
        // With several units running, say which one finished.
        emitLine(several ? "  \(unit.label): done in \(Self.duration(seconds))" : "  done in \(Self.duration(seconds))")
        unitStart[unit.id] = nil
        lastPlain[unit.id] = nil
    }

    public func message(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        emitLine(text)
    }

    /// The live line: one unit's bar, or a short entry per running unit, cut to the width.
    private func redrawLive() {
        guard !running.isEmpty else { return }
        var line: String
        if running.count == 1 {
            let r = running[0], bar = 24, filled = min(bar, Int(Double(bar) * r.fraction))
            line = "  [" + String(repeating: "#", count: filled) + String(repeating: ".", count: bar - filled) + "] "
                + (several ? "\(r.unit.label): " : "") + r.text
        } else {
            line = "  " + running.map { "\($0.unit.label): \($0.text)" }.joined(separator: " | ")
        }
        if line.count > width - 1 { line = String(line.prefix(width - 2)) + "…" }
        output("\r\u{1B}[2K" + line)
    }

    /// A whole line above the live line, which is then drawn again.
    private func emitLine(_ text: String) {
        if live { output("\r\u{1B}[2K") }
        output(text + "\n")
        if live { redrawLive() }
    }

    static func duration(_ seconds: Double) -> String {
        // The ETA of a huge step count (unlearning.steps near Int.max) is past Int, or infinite:
        // Int(_:) trapped on it.
        guard seconds.isFinite, abs(seconds) < 1e15 else { return seconds.isNaN ? "?" : ">1000000h" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }
}
