import Foundation

/// Why a tokenizer could not be loaded, trained or saved. Every case names the file it concerns.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable, Sendable {
        case fileNotFound
        case malformedJSON
        case invalidField
        case unsupportedComponent
        case inconsistentVocabulary
        case missingSpecialToken
        case invalidArgument
    }

    public var kind: Kind
    /// The file concerned (or "<memory>" for JSON given as data).
    public var file: String
    public var message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

/// Reads a tokenizer JSON file, refusing unread anything that is not a regular file (a FIFO or
/// /dev/zero would never end) or is over 1 GiB (real tokenizer.json files are at most tens of MB).
func readTokenizerFile(_ url: URL) throws -> Data {
    let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
    guard attributes[.type] as? FileAttributeType == .typeRegular else {
        throw TokenizerError(.invalidArgument, file: url.path, "not a regular file")
    }
    if let size = attributes[.size] as? NSNumber, size.int64Value > 1 << 30 {
        throw TokenizerError(.invalidArgument, file: url.path, "the file is \(size) bytes; at most \(1 << 30) are read")
    }
    return try Data(contentsOf: url)
}
