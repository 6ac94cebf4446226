import Foundation
import Testing
@testable import Engine

/// Fused causal attention (GQA, KV-cache offsets, left padding) against Float64.
@Suite struct AttentionGradTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var batch: Int, tq: Int, tk: Int, heads: Int, kvHeads: Int, headDim: Int, offset: Int
        var pad: [Int]? = nil
        var testDescription: String { "B\(batch) Tq\(tq) Tk\(tk) H\(heads)/\(kvHeads) D\(headDim) off\(offset) pad\(pad ?? [])" }
    }

    static let cases: [Case] = [
        Case(batch: 1, tq: 1, tk: 1, heads: 1, kvHeads: 1, headDim: 1, offset: 0),     // sequence length 1, single head
        Case(batch: 2, tq: 5, tk: 5, heads: 3, kvHeads: 3, headDim: 4, offset: 0),     // GQA ratio 1
        Case(batch: 2, tq: 4, tk: 4, heads: 4, kvHeads: 2, headDim: 3, offset: 0),     // ratio 2, odd headDim
        Case(batch: 1, tq: 3, tk: 3, heads: 7, kvHeads: 1, headDim: 2, offset: 0),     // ratio 7
        Case(batch: 1, tq: 17, tk: 17, heads: 2, kvHeads: 1, headDim: 8, offset: 0),   // odd length
        Case(batch: 2, tq: 3, tk: 7, heads: 2, kvHeads: 1, headDim: 4, offset: 4),     // KV cache: past keys
        Case(batch: 1, tq: 1, tk: 6, heads: 2, kvHeads: 2, headDim: 4, offset: 5),     // one new token
        Case(batch: 1, tq: 2, tk: 9, heads: 1, kvHeads: 1, headDim: 4, offset: 3),     // spare keys after the queries
        Case(batch: 3, tq: 5, tk: 5, heads: 2, kvHeads: 1, headDim: 4, offset: 0, pad: [0, 2, 5]),   // left padding, one row all pad
        Case(batch: 2, tq: 2, tk: 6, heads: 4, kvHeads: 2, headDim: 2, offset: 4, pad: [3, 1]),
        Case(batch: 1, tq: 70, tk: 70, heads: 1, kvHeads: 1, headDim: 2, offset: 0),   // more than one row block
        Case(batch: 1, tq: 66, tk: 75, heads: 2, kvHeads: 1, headDim: 3, offset: 9, pad: [70]),  // blocks + cache + padding
        // Whole micro-tiles (12 queries or keys), head dims spanning two 32-column panels:
        Case(batch: 2, tq: 26, tk: 26, heads: 2, kvHeads: 1, headDim: 36, offset: 0, pad: [0, 7]),
        Case(batch: 1, tq: 25, tk: 37, heads: 2, kvHeads: 1, headDim: 33, offset: 12),
    ]

    @Test(arguments: cases)
    func attentionMatchesReference(_ c: Case) {
        let q = randn([c.batch, c.tq, c.heads * c.headDim], seed: 1)
        let k = randn([c.batch, c.tk, c.kvHeads * c.headDim], seed: 2)
        let v = randn([c.batch, c.tk, c.kvHeads * c.headDim], seed: 3)
        let scale = 1 / Double(c.headDim).squareRoot()
        GradCheck().run("attention \(c.testDescription)", inputs: [q, k, v]) {
            causalAttention($0[0], $0[1], $0[2], heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
                            queryOffset: c.offset, leftPadding: c.pad)
        } reference: {
            Ref.attention(q: $0[0], k: $0[1], v: $0[2], batch: c.batch, tq: c.tq, tk: c.tk, heads: c.heads, kvHeads: c.kvHeads,
                          headDim: c.headDim, offset: c.offset, pad: c.pad, scale: scale)
        }
    }

    @Test func attentionCustomScaleAndFrozenInputs() {
        let q = randn([1, 4, 6], seed: 4), k = randn([1, 4, 6], seed: 5, grad: false), v = randn([1, 4, 6], seed: 6)
        GradCheck().run("attention scale 0.7, constant k", inputs: [q, k, v]) {
            causalAttention($0[0], $0[1], $0[2], heads: 3, kvHeads: 3, headDim: 2, scale: 0.7)
        } reference: {
            Ref.attention(q: $0[0], k: $0[1], v: $0[2], batch: 1, tq: 4, tk: 4, heads: 3, kvHeads: 3, headDim: 2,
                          offset: 0, pad: nil, scale: 0.7)
        }
    }

    @Test func incrementalDecodingMatchesFullSequence() {
        // Running the last token alone against cached keys gives the full pass's last row.
        let (t, h, kv, d) = (6, 4, 2, 4)
        let q = randn([2, t, h * d], seed: 7, grad: false), k = randn([2, t, kv * d], seed: 8, grad: false)
        let v = randn([2, t, kv * d], seed: 9, grad: false)
        let full = causalAttention(q, k, v, heads: h, kvHeads: kv, headDim: d)
        let last = Autograd.withNoGrad {
            causalAttention(q.narrow(axis: 1, start: t - 1, length: 1), k, v, heads: h, kvHeads: kv, headDim: d, queryOffset: t - 1)
        }
        let expected = full.narrow(axis: 1, start: t - 1, length: 1).toArray()
        for (a, b) in zip(last.toArray(), expected) { #expect(abs(a - b) <= 1e-6 * (1 + abs(b))) }
    }
}
