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

/// Open-addressing map from byte strings to runs of Int32 values (the BPE word cache and the byte-level
/// vocabulary). It owns raw buffers so that the hot loop does no reference counting, no exclusivity
/// checks and no allocation; lookups take a pointer to the key.
final class BytesTable {
    private struct Entry {
        var hash: UInt64
        var keyStart: Int
        var keyLength: Int32
        var valueLength: Int32
        var valueStart: Int
    }

    private var slots: UnsafeMutablePointer<Int32>
    private var mask: Int
    private var entries: UnsafeMutablePointer<Entry>
    private var entryCapacity: Int
    private(set) var count = 0
    private var keys: UnsafeMutablePointer<UInt8>
    private var keyCount = 0, keyCapacity: Int
    private var values: UnsafeMutablePointer<Int32>
    private var valueCount = 0, valueCapacity: Int

    init(capacity: Int = 1 << 12) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: -1, count: size)
        mask = size - 1
        entryCapacity = max(8, capacity)
        entries = .allocate(capacity: entryCapacity)
        keyCapacity = 8 * entryCapacity
        keys = .allocate(capacity: keyCapacity)
        valueCapacity = 2 * entryCapacity
        values = .allocate(capacity: valueCapacity)
    }

    deinit {
        slots.deallocate(); entries.deallocate(); keys.deallocate(); values.deallocate()
    }

    var memoryBytes: Int { keyCapacity + 4 * valueCapacity + MemoryLayout<Entry>.stride * entryCapacity + 4 * (mask + 1) }

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

    /// The values stored for `key`, or nil. The buffer is valid until the table is next modified.
    @inline(__always)
    func find(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> UnsafeBufferPointer<Int32>? {
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[i])
            if e < 0 { return nil }
            let entry = entries[e]
            if entry.hash == h, Int(entry.keyLength) == key.count,
               key.count == 0 || memcmp(keys + entry.keyStart, key.baseAddress!, key.count) == 0 {
                return UnsafeBufferPointer(start: values + entry.valueStart, count: Int(entry.valueLength))
            }
            i = (i + 1) & mask
        }
    }

    /// The first value stored for `key`.
    subscript(key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { k in
            guard k.baseAddress != nil else { return nil }
            return find(k, hash: Self.hash(k))?.first
        }
    }

    func get(_ key: [UInt8]) -> [Int32]? {
        key.withUnsafeBufferPointer { k in
            guard k.baseAddress != nil else { return nil }
            return find(k, hash: Self.hash(k)).map { Array($0) }
        }
    }

    private static func grow<T>(_ p: inout UnsafeMutablePointer<T>, _ capacity: inout Int, used: Int, need: Int) {
        guard need > capacity else { return }
        var c = capacity * 2
        while c < need { c *= 2 }
        let q = UnsafeMutablePointer<T>.allocate(capacity: c)
        q.moveInitialize(from: p, count: used)
        p.deallocate()
        p = q
        capacity = c
    }

    /// Adds a key that is not present yet.
    func insert(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64, values v: UnsafeBufferPointer<Int32>) {
        if (count + 1) * 2 > mask + 1 { rehash(size: (mask + 1) * 2) }
        Self.grow(&entries, &entryCapacity, used: count, need: count + 1)
        Self.grow(&keys, &keyCapacity, used: keyCount, need: keyCount + key.count)
        Self.grow(&values, &valueCapacity, used: valueCount, need: valueCount + v.count)
        if let base = key.baseAddress { (keys + keyCount).initialize(from: base, count: key.count) }
        if let base = v.baseAddress { (values + valueCount).initialize(from: base, count: v.count) }
        (entries + count).initialize(to: Entry(hash: h, keyStart: keyCount, keyLength: Int32(key.count),
                                               valueLength: Int32(v.count), valueStart: valueCount))
        keyCount += key.count
        valueCount += v.count
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(count)
        count += 1
    }

    func insert(_ key: [UInt8], values: [Int32]) {
        guard !key.isEmpty else { return }  // pieces are never empty
        key.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in insert(k, hash: Self.hash(k), values: v) }
        }
    }

    private func rehash(size: Int) {
        slots.deallocate()
        slots = .allocate(capacity: size)
        slots.initialize(repeating: -1, count: size)
        mask = size - 1
        for e in 0..<count {
            var i = Int(truncatingIfNeeded: entries[e].hash) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(e)
        }
    }

    /// Forgets every entry (keeps the buffers).
    func removeAll() {
        slots.update(repeating: -1, count: mask + 1)
        count = 0; keyCount = 0; valueCount = 0
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
