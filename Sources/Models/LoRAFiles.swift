import Engine
import Foundation
import JSONSupport

/// PEFT's adapter directory: `adapter_config.json` + `adapter_model.safetensors`.
extension LoRA {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"

    /// Writes the adapters so `PeftModel.from_pretrained(base, directory)` loads them:
    /// `adapter_config.json` (peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, lora_dropout,
    /// target_modules, bias none, fan_in_fan_out false, …) and `adapter_model.safetensors` (A and B
    /// under PEFT's names, F32).
    ///
    /// - Parameter baseModel: written as `base_model_name_or_path` (PEFT's auto classes load the
    ///   base from it; `PeftModel.from_pretrained` with an explicit base ignores it).
    public func save(to directory: URL, baseModel: String = "") throws {
        let fm = FileManager.default
        do { try fm.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ModelIOError(.writeFailed, file: directory.path, "cannot create the directory (\(error.localizedDescription))")
        }
        let targets = config.canonicalTargets.sorted()
        let json: JSONValue = .object([
            ("peft_type", .string("LORA")),
            ("task_type", .string("CAUSAL_LM")),
            ("base_model_name_or_path", .string(baseModel)),
            ("r", .int(config.rank)),
            ("lora_alpha", config.alpha == config.alpha.rounded() && abs(config.alpha) < 1e15 ? .int(Int(config.alpha)) : .double(config.alpha)),
            ("lora_dropout", .double(config.dropout)),
            ("target_modules", .array(targets.map { .string($0) })),
            ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)),
            ("use_rslora", .bool(config.useRSLoRA)),
            ("use_dora", .bool(false)),
            ("init_lora_weights", .bool(true)),
            ("inference_mode", .bool(true)),
            ("modules_to_save", .null),
            ("layers_to_transform", .null),
            ("layers_pattern", .null),
            ("rank_pattern", .object([])),
            ("alpha_pattern", .object([])),
            ("revision", .null),
        ])
        let configURL = directory.appendingPathComponent(Self.configFileName)
        do { try Data((json.serialized(indent: 0) + "\n").utf8).write(to: configURL, options: .atomic) } catch {
            throw ModelIOError(.writeFailed, file: configURL.path, "\(error.localizedDescription)")
        }
        let tensors = parameters.map { NamedTensor(name: $0.name, shape: $0.tensor.shape, values: $0.tensor.toArray()) }
        try SafetensorsWriter.write(tensors, dtype: .F32, to: directory.appendingPathComponent(Self.weightsFileName))
    }

    /// Reads a PEFT LoRA adapter directory and attaches it to `model` (freezing the base).
    ///
    /// Every module the config's `target_modules` matches (PEFT's rule: equal to the module path
    /// or ending with `.` + target) must have `lora_A.weight [r, in]` and `lora_B.weight [out, r]`;
    /// any other tensor is an error. Options Palimpsest does not implement (DoRA, bias training,
    /// fan_in_fan_out, per-module rank or alpha patterns, layer subsets, modules_to_save, regex
    /// targets) are rejected by name.
    ///
    /// - Throws: `ModelIOError` naming the file and the field or tensor; nothing is attached on error.
    @discardableResult
    public static func load(from directory: URL, into model: CausalLM, seed: UInt64 = 0) throws -> LoRA {
        let configURL = directory.appendingPathComponent(configFileName)
        let cpath = configURL.path
        guard FileManager.default.fileExists(atPath: cpath) else {
            throw ModelIOError(.unreadable, file: directory.path, "no \(configFileName) in the adapter directory")
        }
        let config = try readConfig(configURL, seed: seed)
        let weightsURL = directory.appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let bin = FileManager.default.fileExists(atPath: directory.appendingPathComponent("adapter_model.bin").path)
            throw ModelIOError(.unreadable, file: directory.path, "no \(weightsFileName) in the adapter directory"
                               + (bin ? " (found adapter_model.bin: only safetensors adapters are supported)" : ""))
        }
        let file = try SafetensorsFile(url: weightsURL)
        // Check every tensor before touching the model.
        let modules = model.linearModules
        for t in config.canonicalTargets where !modules.contains(where: { $0.name == t || $0.name.hasSuffix("." + t) }) {
            throw ModelIOError(.badConfig, file: cpath, "target_modules: \"\(t)\" matches no linear module of this \(model.config.architecture.hfClassName)")
        }
        var expected: [String: [Int]] = [:]
        for (name, lin) in modules where config.matches(name) {
            let out = lin.weight.shape[0], inF = lin.weight.shape[1]
            expected["base_model.model.\(name).lora_A.weight"] = [config.rank, inF]
            expected["base_model.model.\(name).lora_B.weight"] = [out, config.rank]
        }
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let e = file.entry(name) else {
                throw ModelIOError(.missingTensor, file: file.path, "tensor \"\(name)\" (shape \(shape)) is missing: \(configFileName) targets this module")
            }
            guard e.shape == shape else {
                throw ModelIOError(.shapeMismatch, file: file.path, "tensor \"\(name)\": r = \(config.rank) and the model imply shape \(shape), found \(e.shape)")
            }
            guard e.dtype.isLoadable else {
                throw ModelIOError(.unsupportedDType, file: file.path, "tensor \"\(name)\" has dtype \(e.dtype.rawValue); only F32, F16 and BF16 load as Float32")
            }
        }
        if let extra = file.entries.first(where: { expected[$0.name] == nil }) {
            throw ModelIOError(.unexpectedTensor, file: file.path,
                               "tensor \"\(extra.name)\" (shape \(extra.shape)) is not a LoRA A/B weight of a module \(configFileName) targets")
        }
        let lora: LoRA
        do { lora = try attach(to: model, config: config) } catch let e as LoRAError {
            throw ModelIOError(.badConfig, file: cpath, e.description)
        }
        for l in lora.layers {
            try l.a.withUnsafeMutableBufferPointer { try file.read(file.entry(l.nameA)!, into: $0) }
            try l.b.withUnsafeMutableBufferPointer { try file.read(file.entry(l.nameB)!, into: $0) }
        }
        return lora
    }

    /// Parses `adapter_config.json` into a `LoRAConfig`, rejecting what Palimpsest does not implement.
    static func readConfig(_ url: URL, seed: UInt64) throws -> LoRAConfig {
        let path = url.path
        let data = try readSmallFile(url, limit: 16 << 20, what: "the adapter config")
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch {
            throw ModelIOError(.badConfig, file: path, "not valid JSON: \(error)")
        }
        guard case .object(let members) = json else {
            throw ModelIOError(.badConfig, file: path, "expected a JSON object, found \(json.typeName)")
        }
        let fields = Dictionary(members, uniquingKeysWith: { a, _ in a })
        func bad(_ field: String, _ message: String) -> ModelIOError { ModelIOError(.badConfig, file: path, "field \"\(field)\": \(message)") }
        func number(_ field: String) throws -> Double? {
            switch fields[field] {
            case nil, .null?: return nil
            case .int(let n)?: return Double(n)
            case .double(let d)?: return d
            case let v?: throw bad(field, "expected a number, found \(v.typeName)")
            }
        }
        func string(_ field: String) throws -> String? {
            switch fields[field] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case let v?: throw bad(field, "expected a string, found \(v.typeName)")
            }
        }
        func flag(_ field: String) throws -> Bool {
            switch fields[field] {
            case nil, .null?: return false
            case .bool(let b)?: return b
            case let v?: throw bad(field, "expected a boolean, found \(v.typeName)")
            }
        }
        func isEmpty(_ field: String) -> Bool {
            switch fields[field] {
            case nil, .null?: return true
            case .object(let m)?: return m.isEmpty
            case .array(let a)?: return a.isEmpty
            default: return false
            }
        }
        if let t = try string("peft_type"), t != "LORA" { throw bad("peft_type", "expected \"LORA\", found \"\(t)\"") }
        if let t = try string("task_type"), t != "CAUSAL_LM" { throw bad("task_type", "expected \"CAUSAL_LM\", found \"\(t)\"") }
        if let b = try string("bias"), b != "none" { throw bad("bias", "only \"none\" is supported, found \"\(b)\"") }
        if try flag("fan_in_fan_out") { throw bad("fan_in_fan_out", "only false is supported (Llama / Qwen2 linear layers)") }
        if try flag("use_dora") { throw bad("use_dora", "DoRA is not supported") }
        if try flag("lora_bias") { throw bad("lora_bias", "a bias on lora_B is not supported") }
        for field in ["rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform", "exclude_modules",
                      "target_parameters", "layer_replication", "trainable_token_indices"] where !isEmpty(field) {
            throw bad(field, "is not supported (must be empty or null)")
        }
        guard let r = try number("r") else { throw bad("r", "required but absent") }
        guard r == r.rounded(), r >= 1, r < 1e9 else { throw bad("r", "must be an integer >= 1, found \(r)") }
        guard let alpha = try number("lora_alpha") else { throw bad("lora_alpha", "required but absent") }
        let dropout = try number("lora_dropout") ?? 0
        var targets: [String]
        switch fields["target_modules"] {
        case .array(let items)?:
            targets = try items.map {
                guard case .string(let s) = $0 else { throw bad("target_modules", "expected strings, found \($0.typeName)") }
                return s
            }
        case .string(let s)?:
            // PEFT reads a string as a regular expression over module paths.
            guard s.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else {
                throw bad("target_modules", "regular expressions (\"\(s)\") are not supported; list module names")
            }
            targets = [s]
        case nil, .null?: throw bad("target_modules", "required but absent")
        case let v?: throw bad("target_modules", "expected a list of module names, found \(v.typeName)")
        }
        let config = LoRAConfig(rank: Int(r), alpha: alpha, dropout: dropout, targets: targets, seed: seed,
                                useRSLoRA: try flag("use_rslora"))
        do { try config.validate() } catch let e as LoRAError {
            throw ModelIOError(.badConfig, file: path, e.description)
        }
        return config
    }
}
