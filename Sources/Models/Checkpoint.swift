import Engine
import Foundation
import JSONSupport

/// An HF checkpoint directory: `config.json` plus `model.safetensors` or a sharded set listed
/// in `model.safetensors.index.json`; with neither, every other `*.safetensors` file in the
/// directory (a PEFT adapter's excepted) is read as a shard.
///
/// Opening reads only headers (the files are memory-mapped) and checks every tensor against the
/// config: no missing or unknown names, every shape as the config implies, a loadable dtype.
public struct Checkpoint: Sendable {
    public static let configFileName = "config.json"
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"
    /// Files copied alongside the weights when present (tokenizer and generation settings).
    public static let companionFileNames = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                            "generation_config.json", "chat_template.jinja"]

    public let directory: URL
    public let config: ModelConfig
    /// The safetensors files, in shard order.
    public let files: [SafetensorsFile]
    private let locations: [String: (file: Int, entry: SafetensorsEntry)]

    /// Opens and validates the checkpoint in `directory`.
    public init(directory: URL) throws {
        self.directory = directory
        let configURL = directory.appendingPathComponent(Self.configFileName)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelIOError(.unreadable, file: configURL.path, "no config.json in the checkpoint directory")
        }
        config = try ModelConfig.load(from: configURL)
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent(Self.indexFileName)
        let singleURL = directory.appendingPathComponent(Self.singleFileName)
        var files: [SafetensorsFile] = []
        var locations: [String: (file: Int, entry: SafetensorsEntry)] = [:]
        if fm.fileExists(atPath: indexURL.path) {
            let map = try Self.readIndex(indexURL)
            var shardNames: [String] = []
            for (_, shard) in map where !shardNames.contains(shard) { shardNames.append(shard) }
            shardNames.sort()
            // Open every shard before cross-checking, so a missing file is reported as such.
            let opened = try shardNames.map { try SafetensorsFile(url: directory.appendingPathComponent($0)) }
            for (shard, file) in zip(shardNames, opened) {
                let listed = Set(map.filter { $0.1 == shard }.map(\.0))
                for e in file.entries {
                    guard listed.contains(e.name) else {
                        throw ModelIOError(.unexpectedTensor, file: file.path,
                                           "tensor \"\(e.name)\" is in this shard but \(Self.indexFileName) does not list it here")
                    }
                    locations[e.name] = (files.count, e)
                }
                for name in listed where file.entry(name) == nil {
                    throw ModelIOError(.missingTensor, file: file.path,
                                       "\(Self.indexFileName) places tensor \"\(name)\" in this shard, but it is not there")
                }
                files.append(file)
            }
        } else if fm.fileExists(atPath: singleURL.path) {
            let file = try SafetensorsFile(url: singleURL)
            for e in file.entries { locations[e.name] = (0, e) }
            files.append(file)
        } else if let names = try? fm.contentsOfDirectory(atPath: directory.path),
                  case let shards = names.filter({ $0.hasSuffix(".safetensors") && $0 != LoRA.weightsFileName && !$0.hasPrefix(".") }).sorted(),
                  !shards.isEmpty {
            // Neither an index nor model.safetensors: every safetensors file in the directory (other
            // than a PEFT adapter's) is a shard, and no tensor may be in two of them.
            for name in shards {
                let file = try SafetensorsFile(url: directory.appendingPathComponent(name))
                for e in file.entries {
                    if let earlier = locations[e.name] {
                        throw ModelIOError(.unexpectedTensor, file: file.path,
                                           "tensor \"\(e.name)\" is also in \(files[earlier.file].path); with no \(Self.indexFileName), each tensor must be in exactly one safetensors file")
                    }
                    locations[e.name] = (files.count, e)
                }
                files.append(file)
            }
        } else {
            let other = ["pytorch_model.bin", "model.bin", "consolidated.00.pth"].first { fm.fileExists(atPath: directory.appendingPathComponent($0).path) }
            throw ModelIOError(.unreadable, file: directory.path,
                               "no \(Self.singleFileName), \(Self.indexFileName) or other safetensors file in the directory"
                               + (other.map { " (found \($0): only safetensors checkpoints are supported)" } ?? ""))
        }
        self.files = files
        self.locations = locations
        // Listing the config's parameters is only safe once the files are known to hold about as
        // many tensors: a config may claim 10^12 layers. A few missing are named one by one below.
        let held = files.reduce(0) { $0 + $1.entries.count }
        if let implied = config.parameterTensorCount, implied > held + 64 {
            throw ModelIOError(.missingTensor, file: directory.path,
                               "config.json implies \(implied) parameter tensors (\(config.numHiddenLayers) layers), but the safetensors files hold only \(held)")
        }
        try Self.validate(config: config, locations: locations, files: files, directory: directory)
    }

    /// Reads `weight_map` as (tensor, shard file) pairs, rejecting paths outside the directory.
    private static func readIndex(_ url: URL) throws -> [(String, String)] {
        // An index lists one line per tensor: a few hundred KB even for large models.
        let data = try readSmallFile(url, limit: 256 << 20, what: "the shard index")
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch {
            throw ModelIOError(.malformedHeader, file: url.path, "not valid JSON: \(error)")
        }
        guard case .object(let top) = json, let wm = top.first(where: { $0.0 == "weight_map" })?.1 else {
            throw ModelIOError(.malformedHeader, file: url.path, "field \"weight_map\": required but absent")
        }
        guard case .object(let members) = wm else {
            throw ModelIOError(.malformedHeader, file: url.path, "field \"weight_map\": expected an object, found \(wm.typeName)")
        }
        return try members.map { name, v in
            guard case .string(let shard) = v else {
                throw ModelIOError(.malformedHeader, file: url.path, "weight_map[\"\(name)\"]: expected a file name, found \(v.typeName)")
            }
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw ModelIOError(.malformedHeader, file: url.path, "weight_map[\"\(name)\"]: \"\(shard)\" is not a file name in the checkpoint directory")
            }
            return (name, shard)
        }
    }

    /// Names HF leaves in some checkpoints that carry no parameters.
    static func isIgnorable(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    private static func validate(config: ModelConfig, locations: [String: (file: Int, entry: SafetensorsEntry)],
                                 files: [SafetensorsFile], directory: URL) throws {
        let specs = config.parameterSpecs
        let expected = Set(specs.map(\.name))
        for spec in specs {
            guard let (f, e) = locations[spec.name] else {
                throw ModelIOError(.missingTensor, file: files.count == 1 ? files[0].path : directory.path,
                                   "tensor \"\(spec.name)\" (shape \(spec.shape)) required by config.json is missing")
            }
            if e.shape != spec.shape {
                throw ModelIOError(.shapeMismatch, file: files[f].path,
                                   "tensor \"\(spec.name)\": config.json implies shape \(spec.shape), found \(e.shape)")
            }
            if !e.dtype.isLoadable {
                throw ModelIOError(.unsupportedDType, file: files[f].path,
                                   "tensor \"\(spec.name)\" has dtype \(e.dtype.rawValue); only F32, F16 and BF16 load as Float32")
            }
        }
        for (name, loc) in locations.sorted(by: { $0.key < $1.key }) where !expected.contains(name) && !isIgnorable(name) {
            // A tied checkpoint may still carry lm_head.weight; HF ties it and ignores the copy.
            if name == "lm_head.weight", config.tieWordEmbeddings, loc.entry.shape == [config.vocabSize, config.hiddenSize] { continue }
            throw ModelIOError(.unexpectedTensor, file: files[loc.file].path,
                               "tensor \"\(name)\" (shape \(loc.entry.shape)) is not a parameter of this \(config.architecture.hfClassName) config")
        }
    }

    /// Every tensor name in the checkpoint.
    public var tensorNames: [String] { locations.keys.sorted() }

    /// One tensor, converted to Float32.
    public func tensor(_ name: String) throws -> NamedTensor {
        guard let (f, e) = locations[name] else {
            throw ModelIOError(.missingTensor, file: directory.path, "no tensor named \"\(name)\"")
        }
        return NamedTensor(name: name, shape: e.shape, values: try files[f].floats(e))
    }

    /// Every parameter of the config as a Float32 tensor.
    ///
    /// A Float32 tensor borrows its bytes from the file's copy-on-write mapping (`borrow`): loading
    /// copies nothing, pages come from the page cache when first used, and an update writes a
    /// private copy of its page, never the file. Other dtypes (and Float32 off a 4-byte boundary)
    /// are converted on `threads` threads in pieces of a few MiB: filling fresh memory is mostly
    /// page faults, which the kernel serves on each core at once (on a 2-core VM, copying 2 GB into
    /// new pages took 3.9–7.5 s on one thread and 1.1–1.7 s on two).
    public func loadTensors(threads: Int = Parallel.threads, borrow: Bool = true) -> [String: Tensor] {
        let specs = config.parameterSpecs
        // `validate` saw every spec present, shaped as the config says, in a loadable dtype.
        let sources = specs.map { locations[$0.name]! }
        let tensors = zip(specs, sources).map { spec, source in
            (borrow ? files[source.file].borrowed(source.entry) : nil) ?? Tensor.uninitialized(spec.shape)
        }
        let piece = 1 << 20  // elements
        let pieces: [(tensor: Int, elements: Range<Int>)] = tensors.enumerated().flatMap { i, t in
            t.isBorrowed ? [] : stride(from: 0, to: t.count, by: piece).map { (i, $0..<min(t.count, $0 + piece)) }
        }
        Parallel.forEach(pieces.count, threads: threads) { k in
            let (i, elements) = pieces[k]
            let (f, e) = sources[i]
            tensors[i].withUnsafeMutableBufferPointer { all in
                files[f].read(e, elements: elements, into: UnsafeMutableBufferPointer(rebasing: all[elements]))
            }
        }
        return Dictionary(uniqueKeysWithValues: zip(specs.map(\.name), tensors))
    }

    /// The config's parameters, in `config.parameterSpecs` order, converted to Float32.
    public func loadParameters() throws -> [NamedTensor] {
        try config.parameterSpecs.map { try tensor($0.name) }
    }

    // MARK: Saving

    /// Writes an HF checkpoint directory transformers loads unchanged: `config.json` and the
    /// weights (one `model.safetensors`, or shards of at most `maxShardBytes` with an index),
    /// plus copies of `companionFiles` (e.g. the tokenizer files of the source checkpoint).
    ///
    /// `parameters` must match `config.parameterSpecs` exactly (names and shapes; any order).
    /// Stale weight files from an earlier save in the same directory are removed first.
    /// Parameters holding NaN or infinity are refused (`ModelIOError.Kind.nonFinite`) before the
    /// directory is touched.
    public static func save(config: ModelConfig, parameters: [NamedTensor], to directory: URL,
                            dtype: SafetensorsDType = .F32, maxShardBytes: Int? = nil,
                            companionFiles: [URL] = []) throws {
        try config.validate(file: directory.appendingPathComponent(configFileName).path)
        let byName = Dictionary(parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let specs = config.parameterSpecs
        var ordered: [NamedTensor] = []
        for spec in specs {
            guard let t = byName[spec.name] else {
                throw ModelIOError(.missingTensor, file: directory.path, "cannot save: parameter \"\(spec.name)\" is missing")
            }
            guard t.shape == spec.shape else {
                throw ModelIOError(.shapeMismatch, file: directory.path, "cannot save: parameter \"\(spec.name)\": config implies shape \(spec.shape), found \(t.shape)")
            }
            ordered.append(t)
        }
        if let extra = parameters.first(where: { p in !specs.contains { $0.name == p.name } }) {
            throw ModelIOError(.unexpectedTensor, file: directory.path, "cannot save: \"\(extra.name)\" is not a parameter of this config")
        }
        // Before the directory is touched: an earlier good checkpoint there stays intact.
        try SafetensorsWriter.requireFinite(ordered, file: directory.path)
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            for name in try fm.contentsOfDirectory(atPath: directory.path)
            where name == singleFileName || name == indexFileName || (name.hasPrefix("model-") && name.hasSuffix(".safetensors")) {
                try fm.removeItem(at: directory.appendingPathComponent(name))
            }
        } catch {
            throw ModelIOError(.writeFailed, file: directory.path, "cannot prepare the directory (\(error.localizedDescription))")
        }
        let configURL = directory.appendingPathComponent(configFileName)
        do { try config.encoded().write(to: configURL, options: .atomic) } catch {
            throw ModelIOError(.writeFailed, file: configURL.path, "\(error.localizedDescription)")
        }

        var shards: [[NamedTensor]] = [[]]
        var shardBytes = 0
        for t in ordered {
            let bytes = t.values.count * dtype.size
            if let limit = maxShardBytes, !shards[shards.count - 1].isEmpty, shardBytes + bytes > limit {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(t)
            shardBytes += bytes
        }
        if shards.count == 1 {
            try SafetensorsWriter.write(ordered, dtype: dtype, to: directory.appendingPathComponent(singleFileName))
        } else {
            var weightMap: [(String, JSONValue)] = []
            for (i, shard) in shards.enumerated() {
                let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                try SafetensorsWriter.write(shard, dtype: dtype, to: directory.appendingPathComponent(name))
                weightMap += shard.map { ($0.name, .string(name)) }
            }
            let total = ordered.reduce(0) { $0 + $1.values.count * dtype.size }
            let index: JSONValue = .object([("metadata", .object([("total_size", .int(total))])),
                                            ("weight_map", .object(weightMap.sorted { $0.0 < $1.0 }))])
            let indexURL = directory.appendingPathComponent(indexFileName)
            do { try Data((index.serialized(indent: 0) + "\n").utf8).write(to: indexURL, options: .atomic) } catch {
                throw ModelIOError(.writeFailed, file: indexURL.path, "\(error.localizedDescription)")
            }
        }
        for source in companionFiles {
            let target = directory.appendingPathComponent(source.lastPathComponent)
            guard source.standardizedFileURL != target.standardizedFileURL else { continue }
            do {
                if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
                try fm.copyItem(at: source, to: target)
            } catch {
                throw ModelIOError(.writeFailed, file: target.path, "cannot copy \(source.path) (\(error.localizedDescription))")
            }
        }
    }

    /// The companion files (tokenizer, generation config) present in this checkpoint.
    public var companionFiles: [URL] {
        Self.companionFileNames.map { directory.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }
}
