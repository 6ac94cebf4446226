/// Experiments that ship with Palimpsest. `palimpsest demo` runs `demo` (`--experiment NAME` another);
/// `palimpsest demo --print-spec NAME` prints one as a starting point for one's own.
public enum BuiltinSpecs {
    public static let all: [String: String] = ["demo": demo, "demo-seeds": demoSeeds, "scaled": scaled, "mass": mass, "smoke": smoke]

    /// The demo with three seeds (three base models, three sets of paths and unlearning runs; the
    /// data and tokenizer are shared): the seed spread next to the path effect.
    public static let demoSeeds = paperProtocol(name: "demo-seeds", seeds: [1, 2, 3], preset: "pilot", vocabulary: 768,
                                                scale: 1, unlearningSteps: 10, evaluationSteps: [0, 1, 2, 4, 6, 8, 10])

    /// The demo's protocol scaled up: the `tiny` preset (vocabulary 2048), twice the data of every
    /// stage, twice the pretraining corpus, 20 unlearning steps, larger evaluation sets and two
    /// seeds. The same stages, positions and algorithms as `demo`; docs/guide.md gives its run time.
    public static let scaled = paperProtocol(name: "scaled", seeds: [1, 2], preset: "tiny", vocabulary: 2048,
                                             scale: 2, unlearningSteps: 20, evaluationSteps: [0, 1, 2, 4, 6, 8, 10, 15, 20])

    /// The paper's protocol at laptop scale (after ../shared/notes/demo-pilot.md): a 0.94M
    /// parameter Llama pretrained from scratch on format-rich documents, four stages with
    /// replay, the safety stage inserted at p = 1..4, the retrained baseline, GA, NPO and SimNPO.
    public static let demo = paperProtocol(name: "demo", seeds: [1], preset: "pilot", vocabulary: 768,
                                           scale: 1, unlearningSteps: 10, evaluationSteps: [0, 1, 2, 4, 6, 8, 10])

    /// The protocol of `demo` with its sizes as parameters: `scale` multiplies every dataset and
    /// evaluation set; epochs, batch sizes and learning rates stay the demo's (from demo-pilot.md).
    static func paperProtocol(name: String, seeds: [Int], preset: String, vocabulary: Int, scale: Int,
                              unlearningSteps: Int, evaluationSteps: [Int]) -> String {
        func list(_ xs: [Int]) -> String { "[" + xs.map(String.init).joined(separator: ", ") + "]" }
        return """
        name: \(name)
        seeds: \(list(seeds))
        data_seed: 0
        model: {preset: \(preset)}
        tokenizer:
          train: {dataset: pretrain, vocab_size: \(vocabulary), min_frequency: 2}
        datasets:
          pretrain: {generator: pretrain, size: \(20000 * scale)}
          instructions: {generator: instructions, size: \(800 * scale)}
          entities: {generator: entities, size: \(210 * scale)}
          math: {generator: math, size: \(1200 * scale), test_size: \(50 * scale)}
          safety: {generator: safety, size: \(128 * scale), test_size: \(32 * scale)}
        pretraining:
          data: pretrain
          objective: lm
          epochs: 1
          batch_size: 64
          optimizer: {name: adamw, lr: 2e-3, betas: [0.9, 0.95], weight_decay: 0.01}
          schedule: {kind: linear, warmup: 0.05}
          clip_norm: 1.0
        stages:
          - {name: instructions, data: instructions, epochs: 3, batch_size: 32, replay: {dataset: pretrain, per_batch: 16}, optimizer: {lr: 5e-4}}
          - {name: entities, data: entities, epochs: 10, batch_size: 32, replay: {dataset: pretrain, per_batch: 16}, optimizer: {lr: 5e-4}}
          - {name: math, data: math, epochs: 2, batch_size: 32, replay: {dataset: pretrain, per_batch: 16}, optimizer: {lr: 5e-4}}
          - {name: safety, data: safety, epochs: 10, batch_size: 32, replay: {dataset: pretrain, per_batch: 16}, optimizer: {lr: 5e-4}}
        forget: safety
        paths: insert_forget
        retrain: true
        unlearning:
          steps: \(unlearningSteps)
          batch_size: 32
          optimizer: {name: adamw, lr: 1e-4}
          schedule: constant
          algorithms:
            - ga
            - {name: npo, beta: 0.5}
            - {name: simnpo, beta: 1.0, gamma: 0}
        evaluation:
          steps: \(list(evaluationSteps))
          forget_prompts: safety.test
          paraphrases: 10
          facts: entities
          math: math.test
          math_at: ends
          divergence_samples: \(16 * scale)
          divergence_length: 24
          mia: {holdout: safety.test, k: 0.2, count: \(32 * scale)}
          tofu: {data: entities, count: \(32 * scale), max_new_tokens: 24}
        """
    }

    /// The probability-mass experiment of the paper's section 4.3: learn refusal R, compliance
    /// C and compliance U in all six orders, then gradient-ascend on U and track C, U and R.
    /// Each stage is trained until its response is learned (log π ≈ −1.5 nats for the last one:
    /// 100 steps at lr 1e-3), and GA is gentle enough (lr 3e-5) that the mass can be followed.
    public static let mass = """
    name: mass
    seeds: [1]
    model: {preset: pilot}
    tokenizer:
      train: {dataset: pretrain, vocab_size: 768}
    datasets:
      pretrain: {generator: pretrain, size: 10000}
      mass: {generator: mass, size: 40}
    pretraining:
      data: pretrain
      objective: lm
      epochs: 1
      batch_size: 64
      optimizer: {name: adamw, lr: 2e-3, betas: [0.9, 0.95], weight_decay: 0.01}
      schedule: {kind: linear, warmup: 0.05}
    stages:
      - {name: refusal, data: mass, response: refusal, epochs: 20, batch_size: 8, replay: {dataset: pretrain, per_batch: 8}, optimizer: {lr: 1e-3}}
      - {name: compliance_c, data: mass, response: compliance, epochs: 20, batch_size: 8, replay: {dataset: pretrain, per_batch: 8}, optimizer: {lr: 1e-3}}
      - {name: compliance_u, data: mass, response: target, epochs: 20, batch_size: 8, replay: {dataset: pretrain, per_batch: 8}, optimizer: {lr: 1e-3}}
    forget: compliance_u
    paths: permutations
    retrain: false
    unlearning:
      steps: 20
      optimizer: {lr: 3e-5}
      algorithms: [ga]
    evaluation:
      every: 2
      mass: mass
    """

    /// The demo's code path at a scale that runs in seconds: the end-to-end test in CI.
    public static let smoke = """
    name: smoke
    seeds: [1]
    model: {preset: pilot}
    tokenizer:
      train: {dataset: pretrain, vocab_size: 320}
    datasets:
      pretrain: {generator: pretrain, size: 400}
      instructions: {generator: instructions, size: 24}
      entities: {generator: entities, size: 14}
      math: {generator: math, size: 24, test_size: 4}
      safety: {generator: safety, size: 16, test_size: 4}
    pretraining:
      data: pretrain
      objective: lm
      batch_size: 32
      optimizer: {lr: 2e-3, betas: [0.9, 0.95], weight_decay: 0.01}
      schedule: {kind: linear, warmup: 0.05}
      clip_norm: 1.0
    stages:
      - {name: instructions, data: instructions, batch_size: 8, replay: {dataset: pretrain, per_batch: 4}}
      - {name: entities, data: entities, batch_size: 8, replay: {dataset: pretrain, per_batch: 4}}
      - {name: safety, data: safety, batch_size: 8, replay: {dataset: pretrain, per_batch: 4}}
    forget: safety
    unlearning:
      steps: 3
      batch_size: 8
      algorithms: [ga, {name: npo, beta: 0.5}]
    evaluation:
      forget_prompts: safety.test
      paraphrases: 3
      facts: entities
      math: math.test
      divergence_samples: 2
      divergence_length: 8
      mia: {holdout: safety.test, count: 8}
      tofu: {data: entities, count: 6, max_new_tokens: 8}
    """
}
