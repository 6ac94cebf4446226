import Foundation
import Testing
@testable import Engine

/// Bad input stops with a precondition naming the op and the shapes (checked in a child
/// process), never reaches a kernel; NaN/Inf propagate and are reported with their location.
@Suite struct BadInputTests {
    @Test func shapeMismatchesStopTheProcess() async {
        await #expect(processExitsWith: .failure) {
            _ = linear(Tensor(zeros: [2, 3]), weight: Tensor(zeros: [4, 5]))
        }
        await #expect(processExitsWith: .failure) {
            _ = matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 5]))
        }
        await #expect(processExitsWith: .failure) {
            _ = add(Tensor(zeros: [2, 3]), Tensor(zeros: [2]))
        }
        await #expect(processExitsWith: .failure) {
            _ = causalAttention(Tensor(zeros: [1, 2, 8]), Tensor(zeros: [1, 2, 8]), Tensor(zeros: [1, 2, 8]),
                                heads: 3, kvHeads: 1, headDim: 4)
        }
        await #expect(processExitsWith: .failure) {
            // queryOffset + Tq beyond the keys
            _ = causalAttention(Tensor(zeros: [1, 2, 4]), Tensor(zeros: [1, 2, 4]), Tensor(zeros: [1, 2, 4]),
                                heads: 1, kvHeads: 1, headDim: 4, queryOffset: 1)
        }
        await #expect(processExitsWith: .failure) {
            _ = rmsNorm(Tensor(zeros: [2, 3]), weight: Tensor(zeros: [4]), eps: 1e-5)
        }
    }

    @Test func emptyAndOutOfRangeInputsStopTheProcess() async {
        await #expect(processExitsWith: .failure) { _ = Tensor(zeros: [2, 0]) }
        await #expect(processExitsWith: .failure) { _ = Tensor(zeros: [2, 3]).reshaped([4, -1]) }
        await #expect(processExitsWith: .failure) { _ = embedding(Tensor(zeros: [3, 2]), ids: [0, 3], shape: [2]) }
        await #expect(processExitsWith: .failure) { _ = crossEntropy(Tensor(zeros: [2, 3]), targets: [0, 5] as [Int32]) }
        await #expect(processExitsWith: .failure) { Tensor(zeros: [2]).backward() }
    }

    @Test func preconditionMessageNamesOpAndShapes() async throws {
        let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = linear(Tensor(zeros: [2, 3]), weight: Tensor(zeros: [4, 5]))
        }
        let text = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(text.contains("linear") && text.contains("[2, 3]") && text.contains("[4, 5]"), "stderr: \(text)")
    }

    @Test func nonFiniteValuesPropagateAndAreLocated() {
        let x = Tensor([1, 2, .nan, 4, 5, 6], shape: [2, 3])
        let w = Tensor([1, 0, 0, 0, 1, 0], shape: [2, 3])
        let y = linear(x, weight: w)   // the NaN poisons row 0 only
        #expect(y[0, 0].isNaN && y[0, 1].isNaN)
        #expect(y[1, 0] == 4 && y[1, 1] == 5)
        // softmax([0, inf, 1]): inf − inf = NaN poisons the whole row (as PyTorch).
        let sm = Tensor([0, .infinity, 1], shape: [1, 3]).softmax().toArray()
        #expect(sm.allSatisfy { $0.isNaN })
        let e = Tensor([1, -.infinity, .infinity, .nan], shape: [4]).exp().toArray()
        #expect(abs(e[0] - 2.7182817) <= 3e-7 && e[1] == 0 && e[2] == .infinity && e[3].isNaN)
        let l = Tensor([0, -1, .infinity], shape: [3]).log().toArray()
        #expect(l[0] == -.infinity && l[1].isNaN && l[2] == .infinity)
        let ls = Tensor([-.infinity, .infinity, -200], shape: [3]).logSigmoid().toArray()
        #expect(ls[0] == -.infinity && ls[1] == 0 && ls[2] == -200)
        let bad = y.firstNonFinite()
        #expect(bad?.index == 0 && bad?.coordinates == [0, 0])
        let clean = Tensor([1, 2], shape: [2])
        let report = Tensor.firstNonFinite(in: [("clean", clean), ("logits", y)])
        #expect(report == "logits [2, 2]: nan at [0, 0] (flat 0)")
        #expect(Tensor.firstNonFinite(in: [("clean", clean)]) == nil)
    }
}
