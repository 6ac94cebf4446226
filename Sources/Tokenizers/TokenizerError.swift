import FileSupport
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

extension Tokenizer {
    /// The most bytes read from a tokenizer JSON file (real tokenizer.json files are at most tens of MB).
    public static let maxFileBytes = 1 << 30
}

/// Reads a tokenizer JSON file, refusing unread anything that is not a regular file (a FIFO or
/// /dev/zero would never end; links are followed) or is over `Tokenizer.maxFileBytes`.
func readTokenizerFile(_ url: URL) throws -> Data {
    do { return try readBoundedFile(atPath: url.path, limit: Tokenizer.maxFileBytes) } catch {
        switch error {
        case .notFound:
            throw TokenizerError(.fileNotFound, file: url.path, "cannot read the file: no such file")
        case .unreadable(let reason):
            throw TokenizerError(.fileNotFound, file: url.path, "cannot read the file: \(reason)")
        case .notRegularFile(let found):
            throw TokenizerError(.invalidArgument, file: url.path, "not a regular file (found \(found))")
        case .tooLarge(let size?, let limit):
            throw TokenizerError(.invalidArgument, file: url.path, "the file is \(size) bytes; at most \(limit) are read")
        case .tooLarge(nil, let limit):
            throw TokenizerError(.invalidArgument, file: url.path, "the file grew past \(limit) bytes while being read; at most \(limit) are read")
        }
    }
}
