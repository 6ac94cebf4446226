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
