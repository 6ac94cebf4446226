/// Open-addressing map from a UInt64 key to a UInt64 value (BPE merge table: pair -> rank, new id).
/// Faster than `Dictionary` here because the hash is one multiply and there is no resilience overhead.
struct PairTable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    private static let empty = UInt64.max
    private(set) var count = 0

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) private static func hash(_ k: UInt64) -> Int {
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// Inserts or overwrites.
    mutating func set(_ key: UInt64, _ value: UInt64) {
        var i = Self.hash(key) & mask
        while keys[i] != Self.empty {
            if keys[i] == key { values[i] = value; return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = value
        count += 1
    }

    @inline(__always) func get(_ key: UInt64) -> UInt64? {
        keys.withUnsafeBufferPointer { k in
            var i = Self.hash(key) & mask
            while true {
                let found = k[i]
                if found == key { return values.withUnsafeBufferPointer { $0[i] } }
                if found == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}

/// Open-addressing map from byte strings to runs of Int32 values kept in one arena (the BPE word cache
/// and the byte-level vocabulary). Lookups take a pointer, so the hot loop allocates nothing.
struct BytesTable {
    private var slots: [Int32]
    private var hashes: [UInt64] = []
    private var keyStart: [Int32] = []
    private var keyLen: [Int32] = []
    private var valueStart: [Int32] = []
    private var valueLen: [Int32] = []
    private var keyBytes: [UInt8] = []
    private var valueArena: [Int32] = []
    private var mask: Int

    init(capacity: Int = 1 << 12) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    var count: Int { hashes.count }
    var memoryBytes: Int { keyBytes.count + valueArena.count * 4 + hashes.count * 24 + slots.count * 4 }

    @inline(__always) static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(p.count)
        var i = 0
        let n = p.count
        guard n > 0, let base = p.baseAddress else { return h }
        let raw = UnsafeRawPointer(base)
        while i + 8 <= n {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ w) &* 0x100_0000_01B3
            h ^= h >> 32
            i += 8
        }
        if i < n {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < n { w |= UInt64(p[i]) << shift; shift += 8; i += 1 }
            h = (h ^ w) &* 0x100_0000_01B3
        }
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return h
    }

    /// The values stored for `key`, passed to `body`; returns false when absent.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64, _ body: (UnsafeBufferPointer<Int32>) -> Void) -> Bool {
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let e = Int(slots[i])
                if e < 0 { return false }
                if hashes[e] == h, Int(keyLen[e]) == key.count {
                    let start = Int(keyStart[e])
                    let same = key.count == 0 || keyBytes.withUnsafeBufferPointer { kb in
                        memcmp(kb.baseAddress! + start, key.baseAddress!, key.count) == 0
                    }
                    if same {
                        valueArena.withUnsafeBufferPointer { va in
                            body(UnsafeBufferPointer(rebasing: va[Int(valueStart[e])..<Int(valueStart[e] + valueLen[e])]))
                        }
                        return true
                    }
                }
                i = (i + 1) & mask
            }
        }
    }

    func get(_ key: [UInt8]) -> [Int32]? {
        var result: [Int32]?
        let found = key.withUnsafeBufferPointer { k -> Bool in
            guard k.baseAddress != nil else { return false }
            return lookup(k, hash: Self.hash(k)) { result = Array($0) }
        }
        return found ? result : nil
    }

    /// Adds a key that is not present yet.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64, values: UnsafeBufferPointer<Int32>) {
        if (hashes.count + 1) * 2 > slots.count { grow() }
        let e = Int32(hashes.count)
        hashes.append(h)
        keyStart.append(Int32(keyBytes.count))
        keyLen.append(Int32(key.count))
        keyBytes.append(contentsOf: key)
        valueStart.append(Int32(valueArena.count))
        valueLen.append(Int32(values.count))
        valueArena.append(contentsOf: values)
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = e
    }

    mutating func insert(_ key: [UInt8], values: [Int32]) {
        guard !key.isEmpty else { return }  // pieces are never empty
        key.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in insert(k, hash: Self.hash(k), values: v) }
        }
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (e, h) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(e)
        }
    }

    mutating func removeAll() {
        self = BytesTable()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
