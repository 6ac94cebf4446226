/// JSON helpers shared by targets that do not depend on each other (Models, Tokenizers, Datasets).

/// Appends `s` as a JSON string literal to `out`: quotes, backslashes and control characters below
/// U+0020 escaped (`\n`, `\r`, `\t`, else `\u00XX`); every other character, non-ASCII included, as UTF-8.
public func appendJSONQuoted(_ s: String, to out: inout String) {
    out.append("\"")
    // Bytes below 0x80 never occur inside a multi-byte UTF-8 sequence, so escaping byte by byte is
    // safe; most strings need no escape at all.
    if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
        out.append(s)
    } else {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count + 16)
        let hex = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case 0x22: bytes.append(0x5C); bytes.append(0x22)
            case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(hex[Int(b >> 4)])
                bytes.append(hex[Int(b & 15)])
            default: bytes.append(b)
            }
        }
        out.append(String(decoding: bytes, as: UTF8.self))
    }
    out.append("\"")
}

/// `s` as a JSON string literal (see `appendJSONQuoted`).
public func jsonQuoted(_ s: String) -> String {
    var out = ""
    appendJSONQuoted(s, to: &out)
    return out
}
