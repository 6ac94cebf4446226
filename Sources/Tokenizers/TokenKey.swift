import Foundation

/// A token string compared and hashed by its exact UTF-8 bytes. Swift's `String` equality is canonical
/// equivalence ("é" == "e\u{301}"), but vocabularies hold both spellings as different tokens.
struct TokenKey: Hashable {
    let bytes: [UInt8]

    init(_ s: String) { bytes = Array(s.utf8) }
    init(bytes: [UInt8]) { self.bytes = bytes }
    init(scalars: [UInt32]) {
        var b: [UInt8] = []
        b.reserveCapacity(scalars.count)
        for c in scalars { forEachUTF8Byte(c) { b.append($0) } }
        bytes = b
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    // Hash the bytes in one call (Array's own hashing feeds the hasher one element at a time).
    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (a: TokenKey, b: TokenKey) -> Bool {
        a.bytes.count == b.bytes.count && a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
        }
    }
}
