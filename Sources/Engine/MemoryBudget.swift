import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How much memory a load may claim, so that a checkpoint or dataset too large for the machine
/// is refused before anything is allocated instead of ending in the OOM killer.
///
/// The budget is the machine's physical memory, or `PALIMPSEST_MEMORY_LIMIT` when set: bytes,
/// or a number with a K, M, G or T suffix (powers of 1024), e.g. `PALIMPSEST_MEMORY_LIMIT=512M`.
/// A larger value than the physical memory is allowed (swap, or a deliberate attempt).
public enum MemoryBudget {
    /// The environment variable that overrides the physical memory.
    public static let environmentVariable = "PALIMPSEST_MEMORY_LIMIT"

    /// Physical memory in bytes (nil where the system does not say).
    public static var physicalBytes: Int? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        let (b, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : b
    }

    /// The budget in bytes and where it comes from; nil when neither the override nor the system
    /// gives one (then nothing is refused).
    public static func limit(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (bytes: Int, source: String)? {
        if let text = environment[environmentVariable] {
            guard let bytes = parseBytes(text) else {
                throw MemoryBudgetError(message: "\(environmentVariable)=\"\(text)\" is not a size (expected bytes, or a number with K, M, G or T, e.g. 8G)")
            }
            return (bytes, "\(environmentVariable)=\(text)")
        }
        return physicalBytes.map { ($0, "physical memory") }
    }

    /// Parses `123`, `64K`, `1.5G`, `2T` (case-insensitive, an optional trailing `B` or `iB`).
    public static func parseBytes(_ text: String) -> Int? {
        var s = text.trimmingCharacters(in: .whitespaces).uppercased()
        if s.hasSuffix("IB") { s.removeLast(2) } else if s.hasSuffix("B") { s.removeLast() }
        var scale = 1.0
        if let last = s.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
            scale = pow(1024, Double(power))
            s.removeLast()
        }
        guard let v = Double(s), v.isFinite, v >= 0 else { return nil }
        let bytes = v * scale
        guard bytes < 9.0e18 else { return nil }
        return Int(bytes)
    }

    /// Throws when `bytes` exceed the budget. `what` says what needs them ("loading the weights
    /// of /path (1.2M parameters as Float32)").
    public static func require(_ bytes: Int, for what: String,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let (limit, source) = try limit(environment: environment), bytes > limit else { return }
        throw MemoryBudgetError(message: "\(what) needs \(format(bytes)) of memory, but only \(format(limit)) is available (\(source)); "
                                + "set \(environmentVariable) to override")
    }

    /// `bytes` for people: `1.50 GiB (1610612736 bytes)`.
    public static func format(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(bytes), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(bytes) bytes" : "\(String(format: "%.2f", v)) \(units[i]) (\(bytes) bytes)"
    }
}

/// A load refused because it would not fit in memory (or a malformed budget override).
public struct MemoryBudgetError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public var description: String { message }
}
