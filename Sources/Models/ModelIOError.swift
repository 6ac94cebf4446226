/// An error reading or writing a model: a checkpoint, a config, a safetensors file.
///
/// The description always names the file and, where there is one, the tensor or config field,
/// with what was expected and what was found.
public struct ModelIOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, for callers and tests that branch on it.
    public enum Kind: String, Sendable {
        /// The file or directory does not exist or cannot be read.
        case unreadable
        /// The safetensors length prefix or header is malformed.
        case malformedHeader
        /// A tensor's entry disagrees with itself or the data buffer (offsets, dtype size).
        case badTensor
        /// A tensor the config requires is absent.
        case missingTensor
        /// A tensor the config does not know is present.
        case unexpectedTensor
        /// A tensor's shape disagrees with the config.
        case shapeMismatch
        /// A dtype Palimpsest cannot load as Float32.
        case unsupportedDType
        /// config.json is not JSON, or a field has the wrong type or an invalid value.
        case badConfig
        /// An architecture or option Palimpsest does not implement.
        case unsupported
        /// Writing failed.
        case writeFailed
        /// Loading would need more memory than the budget (`Engine.MemoryBudget`) allows.
        case tooLarge
        /// A tensor to be saved holds NaN or infinity (diverged weights are never written).
        case nonFinite
    }

    public let kind: Kind
    /// The file concerned (a path).
    public let file: String
    public let message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
