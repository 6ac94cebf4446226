import ArgumentParser
import Foundation
import Tokenizers

/// Helpers shared by the tokenizer commands.
enum TokenizerCLI {
    /// A failure reported as "Error: message" (without the usage text ValidationError adds).
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ message: String) { description = message }
    }

    /// Reads a file (or standard input) as lines of raw bytes; invalid UTF-8 becomes U+FFFD.
    static func readLines(_ path: String?) throws -> [String] {
        let data: Data
        if let path {
            guard let d = FileManager.default.contents(atPath: path) else { throw Failure("cannot read \(path)") }
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines.map { String(decoding: $0, as: UTF8.self) }
    }

    static func load(_ path: String) throws -> Tokenizer {
        do {
            return try Tokenizer.load(from: URL(fileURLWithPath: path))
        } catch let e as TokenizerError {
            throw Failure(e.description)
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode each input line to token ids (one JSON array per line), or decode with --decode.",
        discussion: "Input bytes that are not valid UTF-8 are replaced by U+FFFD before encoding."
    )

    @Option(help: "tokenizer.json, or a directory holding tokenizer.json (and tokenizer_config.json).")
    var tokenizer: String

    @Option(help: "Input file (default: standard input).")
    var input: String?

    @Flag(help: "Print JSON: arrays of ids when encoding, JSON strings when decoding.")
    var json = false

    @Flag(help: "Decode: each input line is a JSON array of ids.")
    var decode = false

    @Flag(help: "Do not add the post-processor's special tokens (e.g. BOS).")
    var noSpecialTokens = false

    @Flag(help: "When decoding, drop special tokens.")
    var skipSpecialTokens = false

    func run() throws {
        let tok = try TokenizerCLI.load(tokenizer)
        let lines = try TokenizerCLI.readLines(input)
        var out = ""
        if decode {
            for (n, line) in lines.enumerated() {
                guard let ids = try? JSONDecoder().decode([Int].self, from: Data(line.utf8)) else {
                    throw TokenizerCLI.Failure("line \(n + 1): expected a JSON array of integer ids")
                }
                let text = tok.decode(ids, skipSpecialTokens: skipSpecialTokens)
                if json {
                    let encoded = try JSONEncoder().encode(text)
                    out += String(decoding: encoded, as: UTF8.self) + "\n"
                } else {
                    out += text + "\n"
                }
            }
        } else {
            for ids in tok.encodeBatch(lines, addSpecialTokens: !noSpecialTokens) {
                out += "[" + ids.map(String.init).joined(separator: json ? "," : ", ") + "]\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Measure encoding throughput (MB/s of UTF-8 input), single thread and on every core."
    )

    @Option(help: "tokenizer.json or a directory holding it.")
    var tokenizer: String

    @Option(help: "Text to encode, one document per line (default: a built-in sample repeated to ~2 MB).")
    var input: String?

    @Option(help: "Timed repetitions; the best is reported.")
    var repeats: Int = 3

    @Option(help: "Threads for the batch measurement (default: every core).")
    var threads: Int?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be > 0") }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let tok = try TokenizerCLI.load(tokenizer)
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        var lines = try input.map { try TokenizerCLI.readLines($0) } ?? []
        if input == nil {
            let sample = "The quick brown fox jumps over the lazy dog; it's 2024 and the year's 365 days pass. "
            lines = (0..<24_000).map { "\($0): " + sample }
        }
        let bytes = lines.reduce(0) { $0 + $1.utf8.count }
        var best1 = Double.infinity, bestN = Double.infinity
        var count = 0
        var hash: UInt64 = 0
        for _ in 0..<repeats {
            let a = DispatchTime.now().uptimeNanoseconds
            var c = 0
            var h: UInt64 = 0
            for line in lines {
                for id in tok.encode(line, addSpecialTokens: false) {
                    h = h &* 1_000_003 &+ UInt64(id + 1)
                    c += 1
                }
            }
            let b = DispatchTime.now().uptimeNanoseconds
            best1 = min(best1, Double(b - a) / 1e9)
            count = c; hash = h
        }
        let workers = threads ?? ProcessInfo.processInfo.activeProcessorCount
        for _ in 0..<repeats {
            let a = DispatchTime.now().uptimeNanoseconds
            _ = tok.encodeBatch(lines, addSpecialTokens: false, threads: workers)
            let b = DispatchTime.now().uptimeNanoseconds
            bestN = min(bestN, Double(b - a) / 1e9)
        }
        let mb = Double(bytes) / 1e6
        if json {
            print("{\"bytes\":\(bytes),\"lines\":\(lines.count),\"tokens\":\(count),\"hash\":\(hash),"
                  + "\"load_s\":\(String(format: "%.3f", loadSeconds)),"
                  + "\"mbps_1\":\(String(format: "%.3f", mb / best1)),\"mbps_n\":\(String(format: "%.3f", mb / bestN)),"
                  + "\"threads\":\(workers)}")
        } else {
            print(String(format: "load %.3f s; %.2f MB, %d lines, %d tokens", loadSeconds, mb, lines.count, count))
            print(String(format: "1 thread:  %8.2f MB/s", mb / best1))
            print(String(format: "%d threads: %8.2f MB/s", workers, mb / bestN))
        }
    }
}

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Build tokenizers.",
        subcommands: [TokenizerTrain.self]
    )
}

struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a byte-level BPE tokenizer; writes tokenizer.json and tokenizer_config.json."
    )

    @Option(help: "Training text: each line is one document, or a .json file holding an array of documents.")
    var corpus: String

    @Option(help: "Vocabulary size, special tokens and the 256 byte tokens included.")
    var vocabSize: Int

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Pairs seen fewer times are not merged.")
    var minFrequency: Int = 2

    @Option(name: .customLong("special-token"), help: "A special token (repeatable; the first is end-of-sequence).")
    var specialTokens: [String] = ["<|endoftext|>"]

    @Option(help: "Pre-tokenizer regex: gpt2 or llama3.")
    var split: String = "gpt2"

    func run() throws {
        guard let splitKind = BPETrainer.Split(rawValue: split) else {
            throw ValidationError("--split must be gpt2 or llama3, found \(split)")
        }
        guard minFrequency >= 0 else { throw ValidationError("--min-frequency must be >= 0") }
        let lines: [String]
        if corpus.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: corpus),
                  let docs = try? JSONDecoder().decode([String].self, from: data) else {
                throw TokenizerCLI.Failure("\(corpus): expected a JSON array of strings")
            }
            lines = docs
        } else {
            lines = try TokenizerCLI.readLines(corpus)
        }
        let trainer = BPETrainer(vocabularySize: vocabSize, minimumFrequency: minFrequency,
                                 specialTokens: specialTokens, split: splitKind)
        do {
            let result = try trainer.train(lines)
            try result.save(to: URL(fileURLWithPath: out))
            print("wrote \(out)/tokenizer.json: \(result.tokens.count) tokens, \(result.merges.count) merges")
        } catch let e as TokenizerError {
            throw TokenizerCLI.Failure(e.description)
        }
    }
}
