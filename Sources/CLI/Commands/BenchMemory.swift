import ArgumentParser
import Engine
import Foundation
import Models

/// Resident memory of loading and generating with a large checkpoint, against its Float32 weight bytes.
struct BenchMemory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Peak resident memory of loading a random Qwen2.5-0.5B-shaped checkpoint and generating from it.",
        discussion: """
        Writes (once) a random checkpoint of the Qwen2.5-0.5B shape (hidden 896, 24 layers, 14 heads, \
        2 KV heads, intermediate 4864, vocab 151936, tied embeddings; Float32, about 2 GB) into --dir, \
        then loads it and generates greedily in a fresh process, and reports that process's peak \
        resident set size (getrusage) against the Float32 weight bytes. The target is at most 1.3x.
        """)

    @Option(help: "Checkpoint directory (written when it holds no config.json).")
    var dir: String = "/tmp/palimpsest-bench-memory"

    @Option(help: "Decoder layers (24 for the real shape; fewer for a quick check).")
    var layers: Int = 24

    @Option(help: "Tokens to generate.")
    var newTokens: Int = 16

    @Option(help: "Threads to use (default: every core).")
    var threads: Int?

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: .hidden)
    var measure = false

    static func config(layers: Int) -> ModelConfig {
        ModelConfig(architecture: .qwen2, vocabSize: 151_936, hiddenSize: 896, intermediateSize: 4864,
                    numHiddenLayers: layers, numAttentionHeads: 14, numKeyValueHeads: 2, rmsNormEps: 1e-6,
                    ropeTheta: 1_000_000, maxPositionEmbeddings: 32768, tieWordEmbeddings: true)
    }

    func run() throws {
        guard layers > 0, newTokens > 0 else { throw ValidationError("--layers and --new-tokens must be > 0") }
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be > 0") }
            Parallel.threads = threads
        }
        let url = URL(fileURLWithPath: dir)
        if measure { return try measureLoadAndGenerate(url) }
        let configURL = url.appendingPathComponent(Checkpoint.configFileName)
        let wanted = Self.config(layers: layers)
        let existing = try? ModelConfig.load(from: configURL)
        if existing?.numHiddenLayers != wanted.numHiddenLayers || existing?.vocabSize != wanted.vocabSize {
            let t0 = Date()
            try Checkpoint.save(config: wanted, parameters: wanted.initialParameters(seed: 1), to: url)
            FileHandle.standardError.write(Data(String(format: "wrote a random checkpoint to %@ in %.0f s\n",
                                                       url.path, Date().timeIntervalSince(t0)).utf8))
        }
        // Measure in a fresh process, so that writing the checkpoint does not count.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["bench", "memory", "--measure", "--dir", url.path, "--new-tokens", String(newTokens)]
            + (threads.map { ["--threads", String($0)] } ?? []) + (json ? ["--json"] : [])
        try child.run()
        child.waitUntilExit()
        if child.terminationStatus != 0 { throw ExitCode(child.terminationStatus) }
    }

    private func measureLoadAndGenerate(_ url: URL) throws {
        let t0 = Date()
        let model = try CausalLM(directory: url)
        let loaded = Date()
        let rssLoaded = BenchTrain.peakRSSMiB()
        let prompt = (0..<8).map { ($0 * 7919) % model.config.vocabSize }
        let result = try model.generate(prompts: [prompt], options: GenerationOptions(maxNewTokens: newTokens, temperature: 0))
        let done = Date()
        let rss = BenchTrain.peakRSSMiB()
        let weightBytes = Double(model.namedParameters.reduce(0) { $0 + $1.tensor.count } * 4)
        let weightMiB = weightBytes / 1_048_576
        let ratio = rss / weightMiB
        if json {
            print("{\"layers\":\(model.config.numHiddenLayers),\"parameters\":\(model.config.parameterCount),"
                  + "\"weight_mib\":\(String(format: "%.0f", weightMiB)),\"peak_rss_after_load_mib\":\(String(format: "%.0f", rssLoaded)),"
                  + "\"peak_rss_mib\":\(String(format: "%.0f", rss)),\"ratio\":\(String(format: "%.3f", ratio)),"
                  + "\"load_s\":\(String(format: "%.3f", loaded.timeIntervalSince(t0))),"
                  + "\"generated\":\(result[0].tokens.count),\"tokens_per_s\":\(String(format: "%.2f", Double(result[0].tokens.count) / done.timeIntervalSince(loaded))),"
                  + "\"prompt\":\(prompt),\"tokens\":\(result[0].tokens)}")
        } else {
            print(String(format: "%d parameters, Float32 weights %.0f MiB; peak RSS %.0f MiB after loading, %.0f MiB after generating %d tokens: %.3fx the weights (target <= 1.3x); load %.1f s, %.2f tokens/s",
                         model.config.parameterCount, weightMiB, rssLoaded, rss, result[0].tokens.count, ratio,
                         loaded.timeIntervalSince(t0), Double(result[0].tokens.count) / done.timeIntervalSince(loaded)))
        }
    }
}
