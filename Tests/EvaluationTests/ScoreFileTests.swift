import Evaluation
import Foundation
import Models
import Testing
import Tokenizers

/// `palimpsest score`'s input and output against transformers + tokenizers on a checkpoint directory
/// with its own tokenizer.json (scripts/reference/score_fixtures.py).
@Suite struct ScoreFileTests {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let checkpoint = fixtures.appendingPathComponent("score_llama")
    static let inputPath = fixtures.appendingPathComponent("score_llama.input.jsonl").path

    static func expected() throws -> [[String: Any]] {
        let text = try String(contentsOf: fixtures.appendingPathComponent("score_llama.expected.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func tokensAndLogLikelihoodsMatchTransformers() throws {
        let lm = try CausalLM(directory: Self.checkpoint)
        let tokenizer = try Tokenizer.load(from: Self.checkpoint)
        let requests = try ScoreFile.read(path: Self.inputPath, tokenizer: tokenizer, vocabSize: lm.config.vocabSize)
        let expected = try Self.expected()
        // Line 6 is blank: skipped, not an input.
        #expect(requests.map(\.line) == [1, 2, 3, 4, 5, 7, 8, 9, 10])
        try #require(requests.count == expected.count)
        for (request, e) in zip(requests, expected) {
            #expect(request.ids == (e["input_ids"] as! [Int]), "line \(request.line): token ids")
            // Everything from the first scored position on is scored, nothing before it (position 0
            // never is, whatever its label).
            let from = int(e["scored_from"])
            #expect(request.labels.indices.dropFirst().allSatisfy { ($0 >= from) == (request.labels[$0] != -100) }, "line \(request.line): scored span")
        }
        let results = ScoreFile.score(lm, requests, batchSize: 4)
        for (i, (result, e)) in zip(results, expected).enumerated() {
            let reference = double(e["loglik"])
            #expect(result.tokens == int(e["tokens"]), "line \(requests[i].line): tokens")
            #expect(abs(result.loglik - reference) <= 1e-5 * max(1, abs(reference)), "line \(requests[i].line): \(result.loglik) vs \(reference)")
            #expect((result.meanLoglik == nil) == (e["mean_loglik"] is NSNull))
            // The printed line carries exactly the issue's three fields, and they read back.
            let printed = try JSONSerialization.jsonObject(with: Data(result.jsonLine.utf8)) as! [String: Any]
            #expect(Set(printed.keys) == ["loglik", "tokens", "mean_loglik"])
            // (Foundation's JSON parser may round the last digit, so compare to 1e-14.)
            #expect(close(double(printed["loglik"]), result.loglik, rtol: 1e-14) && int(printed["tokens"]) == result.tokens)
            #expect((printed["mean_loglik"] is NSNull) == (result.meanLoglik == nil))
            if let mean = result.meanLoglik { #expect(close(double(printed["mean_loglik"]), mean, rtol: 1e-14)) }
        }
        // The seam case: "The ca" + "t sat ..." scores the token that straddles the join.
        #expect(results[3].tokens == results[0].tokens - 1)
        // Right padding is invisible: one line at a time gives the same sums.
        for (one, batched) in zip(ScoreFile.score(lm, requests, batchSize: 1), results) {
            #expect(abs(one.loglik - batched.loglik) <= 1e-5 * max(1, abs(batched.loglik)))
            #expect(one.tokens == batched.tokens)
        }
    }

    @Test func idsAndLabelsAreScoredAsGiven() throws {
        let lm = try CausalLM(directory: Self.checkpoint)
        let tokenizer = try Tokenizer.load(from: Self.checkpoint)
        let text = try ScoreFile.parseLine(#"{"text": "The cat sat on the mat."}"#, line: 1, file: "f", tokenizer: tokenizer, vocabSize: 320)
        let asIds = try ScoreFile.parseLine(Substring("{\"input_ids\": \(text.ids)}"), line: 2, file: "f", tokenizer: nil, vocabSize: 320)
        var masked = text.labels
        for t in 0..<4 { masked[t] = -100 }
        let withLabels = try ScoreFile.parseLine(Substring("{\"input_ids\": \(text.ids), \"labels\": \(masked)}"),
                                                 line: 3, file: "f", tokenizer: nil, vocabSize: 320)
        #expect(asIds.ids == text.ids && asIds.labels == text.labels)
        let r = ScoreFile.score(lm, [text, asIds, withLabels])
        #expect(r[0].tokens == r[1].tokens && abs(r[0].loglik - r[1].loglik) <= 1e-6 * abs(r[0].loglik))
        #expect(r[2].tokens == r[0].tokens - 3)
        // Masking the first positions drops exactly their terms.
        let perToken = try ModelScoring.tokenLogProbs(lm, [ScoredPair(prompt: [], response: text.ids.map(Int32.init))])[0]
        #expect(abs(r[2].loglik - perToken[3...].reduce(0, +)) <= 1e-4)
    }

    @Test func badLinesNameTheFileLineAndProblem() throws {
        let tokenizer = try Tokenizer.load(from: Self.checkpoint)
        func problem(_ line: String, tokenizer: Tokenizer? = nil, vocab: Int = 320) -> String? {
            do {
                _ = try ScoreFile.parse("\n" + line + "\n", file: "in.jsonl", tokenizer: tokenizer, vocabSize: vocab)
                return nil
            } catch {
                #expect(error.file == "in.jsonl" && error.line == 2)
                return error.description
            }
        }
        #expect(problem("not json")?.contains("in.jsonl:2: not a JSON object") == true)
        #expect(problem("[1, 2]")?.contains("not a JSON object") == true)
        #expect(problem(#"{"text": "a"}"#)?.contains("needs tokenizer.json") == true)
        #expect(problem(#"{"text": 5}"#, tokenizer: tokenizer)?.contains("\"text\" must be a string") == true)
        #expect(problem(#"{"prompt": "a", "response": 5}"#, tokenizer: tokenizer)?.contains("\"response\" must be a string") == true)
        #expect(problem(#"{"prompt": "a"}"#, tokenizer: tokenizer)?.contains("expected \"text\", \"prompt\" + \"response\"") == true)
        #expect(problem(#"{"input_ids": []}"#)?.contains("\"input_ids\" is empty") == true)
        #expect(problem(#"{"input_ids": [1, "a"]}"#)?.contains("must be a list of integers") == true)
        #expect(problem(#"{"input_ids": [1, 2], "labels": [1]}"#)?.contains("\"labels\" has 1 entries but \"input_ids\" has 2") == true)
        #expect(problem(#"{"input_ids": [1, 320]}"#)?.contains("token id 320 outside the model's vocabulary 0..<320") == true)
        #expect(problem(#"{"input_ids": [1, 2], "labels": [-100, 999]}"#)?.contains("label 999 outside") == true)
        #expect(problem(#"{"input_ids": [1, 2]}"#) == nil)
        // Longer than the model's positions.
        do {
            _ = try ScoreFile.parse(#"{"input_ids": [1, 2, 3]}"#, file: "in.jsonl", tokenizer: nil, vocabSize: 320, context: 2)
            Issue.record("a line longer than the context was accepted")
        } catch {
            #expect(error.description == "in.jsonl:1: 3 tokens, more than the model's context (max_position_embeddings 2)")
        }

        let missing = "/nonexistent/score.jsonl"
        #expect(throws: ScoreInputError.self) { try ScoreFile.read(path: missing, tokenizer: nil, vocabSize: 320) }
        do { _ = try ScoreFile.read(path: missing, tokenizer: nil, vocabSize: 320) } catch {
            #expect(error.description.hasPrefix("\(missing): cannot read"))
        }
    }
}
