/// A coding key built from any string, to read "name + hyper-parameters" maps from YAML/JSON.
struct AnyKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

extension KeyedDecodingContainer where K == AnyKey {
    /// Rejects keys outside `allowed`, so a misspelt hyper-parameter is an error, not a silent default.
    func checkKeys(_ allowed: Set<String>, _ what: String) throws {
        for key in allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self,
                debugDescription: "\(what): unknown key '\(key.stringValue)'; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func value<T: Decodable>(_ key: String, default d: T) throws -> T {
        try decodeIfPresent(T.self, forKey: AnyKey(key)) ?? d
    }
}
