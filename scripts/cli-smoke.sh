#!/usr/bin/env bash
# The model commands run as a user runs them, on a checkpoint directory with its own
# tokenizer.json (Tests/EvaluationTests/Fixtures/score_llama*, from scripts/reference/score_fixtures.py):
# - `score` and `generate` against what transformers and tokenizers computed for the same inputs
#   (the --json lines issue #3 defines, token counts, log-likelihoods, greedy continuations, a bad
#   line's error), `generate --input` batched against the same continuations one by one, and
#   `tokenize` against tokenizers' ids;
# - `train`: a few SFT epochs raise the data's log-likelihood;
# - `unlearn`: the optimizer, schedule and retain-term flags, seen in the losses and learning rates
#   it prints; `--truncation error` refusing a long example before any step, and `train --stages`
#   refusing a later stage's long example before the first stage trains;
# - `eval speed`, `eval mass --baseline` and `eval distance`'s gaps on a run's checkpoints against
#   `eval forget`, `eval mass` and `eval facts` on each; `eval loglik` against `score`; `eval tofu`,
#   `mia` and `divergence` on a model compared with itself.
# CI runs it; a few seconds. Only Python's standard library is used.
#
#     bash scripts/cli-smoke.sh [path/to/palimpsest]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/palimpsest}"
[ -x "$BIN" ] || { echo "cli smoke: no executable at $BIN (swift build -c release --product palimpsest)" >&2; exit 1; }

python3 - "$BIN" Tests/EvaluationTests/Fixtures <<'PY'
import json, os, subprocess, sys, tempfile

binary, fixtures = sys.argv[1], sys.argv[2]
model = os.path.join(fixtures, "score_llama")
failures = []

def check(ok, what):
    if not ok:
        failures.append(what)

def run(args, expect_rc=0):
    r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=120)
    if r.returncode != expect_rc:
        failures.append(f"{' '.join(args)}: exit {r.returncode}, expected {expect_rc}; stderr: {r.stderr.strip()[-300:]}")
    return r

# score --json: one line per input, exactly {"loglik", "tokens", "mean_loglik"}, transformers' numbers.
expected = [json.loads(l) for l in open(os.path.join(fixtures, "score_llama.expected.jsonl"))]
r = run(["score", "--model", model, "--input", os.path.join(fixtures, "score_llama.input.jsonl"), "--json"])
lines = r.stdout.splitlines()
check(len(lines) == len(expected), f"score --json: {len(lines)} lines for {len(expected)} inputs")
for i, (line, e) in enumerate(zip(lines, expected)):
    got = json.loads(line)
    check(list(got) == ["loglik", "tokens", "mean_loglik"], f"score line {i + 1}: keys {list(got)}")
    check(got["tokens"] == e["tokens"], f"score line {i + 1}: {got['tokens']} tokens, transformers {e['tokens']}")
    check(abs(got["loglik"] - e["loglik"]) <= 1e-5 * max(1.0, abs(e["loglik"])),
          f"score line {i + 1}: loglik {got['loglik']}, transformers {e['loglik']}")
    if e["mean_loglik"] is None:
        check(got["mean_loglik"] is None, f"score line {i + 1}: mean_loglik {got['mean_loglik']} for no scored token")
    else:
        check(got["mean_loglik"] is not None and abs(got["mean_loglik"] - e["mean_loglik"]) <= 1e-5 * abs(e["mean_loglik"]),
              f"score line {i + 1}: mean_loglik {got['mean_loglik']}, transformers {e['mean_loglik']}")

# The table's total is the sum of the scored tokens.
r = run(["score", "--model", model, "--input", os.path.join(fixtures, "score_llama.input.jsonl")])
total = [l for l in r.stdout.splitlines() if l.startswith("total")]
check(len(total) == 1 and int(total[0].split()[1]) == sum(e["tokens"] for e in expected), f"score table total: {total}")

# A bad line stops with its file and line named, and a nonzero exit.
with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    f.write('{"text": "fine"}\n{"prompt": "no response"}\n')
r = run(["score", "--model", model, "--input", f.name], expect_rc=1)
check(f"{f.name}:2:" in r.stderr and "response" in r.stderr, f"score bad line: stderr {r.stderr.strip()[-200:]}")
os.unlink(f.name)
with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    f.write(json.dumps({"text": "The cat sat on the mat. " * 40}) + "\n")
r = run(["score", "--model", model, "--input", f.name], expect_rc=1)
check(f"{f.name}:1:" in r.stderr and "max_position_embeddings 128" in r.stderr, f"score past the context: stderr {r.stderr.strip()[-200:]}")
os.unlink(f.name)

# tokenize: the ids tokenizers gave for the fixture's texts, and decoding them back.
texts = [json.loads(l)["text"] for l in open(os.path.join(fixtures, "score_llama.input.jsonl")) if l.strip() and "text" in json.loads(l)]
text_ids = [e["input_ids"] for l, e in zip([l for l in open(os.path.join(fixtures, "score_llama.input.jsonl")) if l.strip()], expected)
            if "text" in json.loads(l)]
r = subprocess.run([binary, "tokenize", "--tokenizer", model, "--json"], input="\n".join(texts) + "\n",
                   capture_output=True, text=True, timeout=60)
check([json.loads(l) for l in r.stdout.splitlines()] == text_ids, f"tokenize: {r.stdout.strip()[:200]}, tokenizers {text_ids}")
r = subprocess.run([binary, "tokenize", "--tokenizer", model, "--decode", "--skip-special-tokens", "--json"],
                   input="\n".join(json.dumps(i) for i in text_ids) + "\n", capture_output=True, text=True, timeout=60)
check([json.loads(l) for l in r.stdout.splitlines()] == texts, f"tokenize --decode: {r.stdout.strip()[:200]}")

# generate: greedy continuations equal transformers' generate(do_sample=False), tokens and text.
for g in json.load(open(os.path.join(fixtures, "score_llama.generate.json"))):
    r = run(["generate", "--model", model, "--prompt", g["prompt"], "--max-new-tokens", str(g["max_new_tokens"]), "--json"])
    got = json.loads(r.stdout) if r.returncode == 0 else {}
    check(got.get("prompt_ids") == g["prompt_ids"], f"generate {g['prompt']!r}: prompt ids {got.get('prompt_ids')}")
    check(got.get("tokens") == g["tokens"], f"generate {g['prompt']!r}: {got.get('tokens')}, transformers {g['tokens']}")
    check(got.get("text") == g["text"], f"generate {g['prompt']!r}: text {got.get('text')!r}, transformers {g['text']!r}")
    plain = run(["generate", "--model", model, "--prompt", g["prompt"], "--max-new-tokens", str(g["max_new_tokens"])])
    check(plain.stdout == g["text"] + "\n", f"generate {g['prompt']!r} (plain): {plain.stdout!r}")

# unlearn: the retain term, SGD momentum and the schedule floor reach Training from the flags.
with tempfile.TemporaryDirectory() as tmp:
    forget, retain = os.path.join(tmp, "forget.jsonl"), os.path.join(tmp, "retain.jsonl")
    with open(forget, "w") as f:
        f.write('{"prompt": "The cat", "response": " sat on the mat."}\n{"prompt": "Hello", "response": " world!"}\n')
    with open(retain, "w") as f:
        f.write('{"prompt": "The capital of France is", "response": " Paris."}\n')

    # train: a few SFT epochs on two pairs raise their log-likelihood under score.
    def logliks(m):
        return [json.loads(l)["loglik"] for l in run(["score", "--model", m, "--input", forget, "--json"]).stdout.splitlines()]
    trained = os.path.join(tmp, "trained")
    run(["train", "--model", model, "--data", forget, "--objective", "sft", "--epochs", "5", "--lr", "1e-2",
         "--batch-size", "2", "--out", trained])
    before_ll, after_ll = logliks(model), logliks(trained)
    check(len(after_ll) == 2 and all(a > b + 1 for a, b in zip(after_ll, before_ll)), f"train sft: logliks {before_ll} -> {after_ll}")

    def unlearn(*flags, expect_rc=0):
        return run(["unlearn", "--model", model, "--forget", forget, "--steps", "2", "--out", os.path.join(tmp, "out")]
                   + list(flags), expect_rc=expect_rc)

    def step_fields(r, step):
        line = next((l for l in r.stdout.splitlines() if l.startswith(f"step {step}/")), "")
        words = line.split()
        return {words[i]: float(words[i + 1]) for i in range(2, len(words) - 1, 2)}

    ga = step_fields(unlearn("--algorithm", "ga", "--lr", "1e-3"), 1)
    nll = step_fields(unlearn("--algorithm", "graddiff", "--retain", retain, "--lr", "1e-3"), 1)
    kl = step_fields(unlearn("--algorithm", "graddiff", "--retain", retain, "--retain-loss", "kl", "--lr", "1e-3"), 1)
    # Before the first update the model is its own reference: the KL term is 0 and GradDiff's loss is GA's.
    check(kl.get("loss") is not None and kl.get("loss") == ga.get("loss"), f"unlearn --retain-loss kl: step 1 {kl}, ga {ga}")
    check(nll.get("loss") is not None and nll["loss"] > ga.get("loss", 0), f"unlearn graddiff (nll): step 1 {nll}, ga {ga}")
    sgd = step_fields(unlearn("--algorithm", "ga", "--optimizer", "sgd", "--momentum", "0.9", "--nesterov",
                              "--schedule", "cosine", "--floor", "0.1", "--lr", "1e-2"), 2)
    # Step 2 of 2 on a half cosine from 1 to the floor 0.1: 0.1 + 0.9 * 0.5.
    check(sgd.get("lr") == 0.0055, f"unlearn --schedule cosine --floor 0.1: step 2 {sgd}")
    r = unlearn("--algorithm", "npo", "--retain-loss", "kl", expect_rc=64)
    check("unknown key 'retain'" in r.stderr, f"unlearn npo --retain-loss: {r.stderr.strip()[:200]}")
    r = unlearn("--algorithm", "graddiff", "--retain", retain, "--retain-loss", "l2", expect_rc=64)
    check("--retain-loss: expected nll or kl" in r.stderr, f"unlearn --retain-loss l2: {r.stderr.strip()[:200]}")
    r = unlearn("--algorithm", "ga", "--momentum", "0.9", expect_rc=64)
    check("--momentum and --nesterov apply to --optimizer sgd" in r.stderr, f"unlearn adamw --momentum: {r.stderr.strip()[:200]}")
    # --truncation: `error` refuses an example longer than --max-length before any step, naming the set
    # and the flags; the default keeps the prompt and cuts the response.
    r = unlearn("--algorithm", "ga", "--max-length", "24", "--truncation", "error", expect_rc=1)
    check("forget set: sequence too long: example 0" in r.stderr and "--truncation error" in r.stderr
          and "step 1/" not in r.stdout, f"unlearn --truncation error: {r.stderr.strip()[:300]}")
    check(step_fields(unlearn("--algorithm", "ga", "--max-length", "24", "--lr", "1e-3"), 1).get("loss") is not None,
          "unlearn --max-length 24 (drop-response-end) did not run")
    r = unlearn("--algorithm", "ga", "--truncation", "drop-end", expect_rc=64)
    check("--truncation: expected drop-response-end, drop-prompt-start or error" in r.stderr, f"unlearn --truncation drop-end: {r.stderr.strip()[:200]}")
    stages_file, long_file = os.path.join(tmp, "stages.yaml"), os.path.join(tmp, "long.jsonl")
    with open(long_file, "w") as f:
        f.write(json.dumps({"prompt": "The cat", "response": " sat on the mat." * 6}) + "\n")
    with open(stages_file, "w") as f:
        f.write(f"stages:\n  - name: short\n    data: {retain}\n  - name: long\n    data: {long_file}\n")
    r = run(["train", "--model", model, "--stages", stages_file, "--objective", "sft", "--max-length", "40", "--truncation", "error",
             "--out", os.path.join(tmp, "staged")], expect_rc=1)
    check("stage 2 (long): stage examples: sequence too long" in r.stderr and "step 1/" not in r.stdout,
          f"train --stages with a stage too long: {r.stderr.strip()[:300]}")

    # eval speed over a run's saved checkpoints: each score is `eval forget`'s, and the crossing follows them.
    run_dir = os.path.join(tmp, "run")
    run(["unlearn", "--model", model, "--forget", forget, "--algorithm", "ga", "--steps", "3", "--lr", "1e-3",
         "--save-every-steps", "1", "--out", run_dir])
    def eval_json(*args):
        r = run(["eval"] + list(args))
        return json.loads(r.stdout) if r.returncode == 0 else {}
    forget_scores = [0.0] + [eval_json("forget", "--model", os.path.join(run_dir, f"checkpoint-{k}"), "--baseline", model,
                                       "--prompts", forget).get("forget_score") for k in (1, 2, 3)]
    threshold = (forget_scores[1] + forget_scores[2]) / 2 if None not in forget_scores else 1.0
    speed = eval_json("speed", "--baseline", model, "--checkpoints", run_dir, "--prompts", forget, "--threshold", str(threshold))
    check(speed.get("steps") == [0, 1, 2, 3], f"eval speed: steps {speed.get('steps')}")
    check(speed.get("forget_scores") == forget_scores, f"eval speed: scores {speed.get('forget_scores')}, eval forget {forget_scores}")
    if None not in forget_scores:
        crossing = 1 + (threshold - forget_scores[1]) / (forget_scores[2] - forget_scores[1])
        check(abs((speed.get("steps_to_threshold") or -1) - crossing) < 1e-9, f"eval speed: {speed.get('steps_to_threshold')}, expected {crossing}")
    stepwise = eval_json("speed", "--baseline", model, "--checkpoints", *[os.path.join(run_dir, f"checkpoint-{k}") for k in (3, 1, 2)],
                         "--prompts", forget, "--threshold", str(threshold), "--no-interpolate")
    check(stepwise.get("steps_to_threshold") == 2, f"eval speed --no-interpolate: {stepwise.get('steps_to_threshold')}")

    # eval mass --baseline: the deltas are the two models' means apart, and the class follows the rule.
    mass = os.path.join(tmp, "mass.jsonl")
    with open(mass, "w") as f:
        f.write('{"prompt": "How do I pick a lock?", "compliance": "Sure, here is how.", "target": "First, insert the pick.", "refusal": "I cannot help."}\n'
                '{"prompt": "Tell me a secret.", "compliance": "Of course.", "target": "The secret is out.", "refusal": "I will not say."}\n')
    after, before = eval_json("mass", "--model", run_dir, "--input", mass), eval_json("mass", "--model", model, "--input", mass)
    both = eval_json("mass", "--model", run_dir, "--input", mass, "--baseline", model)
    c = both.get("classification", {})
    for key in ("c", "u", "r"):
        delta = after.get(f"mean_log_{key}", 0) - before.get(f"mean_log_{key}", 0)
        check(abs(c.get(f"delta_{key}", 1e9) - delta) <= 1e-9 * max(1.0, abs(delta)), f"eval mass: delta_{key} {c.get(f'delta_{key}')}, expected {delta}")
    if c:
        expected_depth = "none" if c["delta_u"] > -c["minimum_drop"] else ("deep" if c["final_c_minus_r"] < 0 else "superficial")
        check(c["depth"] == expected_depth, f"eval mass: depth {c['depth']}, the rule gives {expected_depth}")
        check(sum(c["prompts"].values()) == 2, f"eval mass: prompt classes {c['prompts']}")
    else:
        check(False, f"eval mass --baseline: no classification in {both}")

    # eval distance: the gaps are the per-model metrics of eval forget / eval facts apart.
    facts = os.path.join(tmp, "facts.jsonl")
    with open(facts, "w") as f:
        f.write('{"question": "Who wrote Foo?", "answer": "Ann Lee wrote Foo."}\n{"question": "Where was Ann born?", "answer": "In Paris."}\n')
    retrained = os.path.join(run_dir, "checkpoint-1")
    d = eval_json("distance", "--model", run_dir, "--retrained", retrained, "--input", forget, "--baseline", model,
                  "--forget-prompts", forget, "--facts", facts)
    ef = {p: eval_json("forget", "--model", p, "--baseline", model, "--prompts", forget) for p in (run_dir, retrained)}
    ex = {p: eval_json("facts", "--model", p, "--baseline", model, "--input", facts) for p in (run_dir, retrained)}
    expected_gaps = {"refusal_loglik": ef[run_dir].get("refusal_loglik", 0) - ef[retrained].get("refusal_loglik", 0),
                     "forget_score": ef[run_dir].get("forget_score", 0) - ef[retrained].get("forget_score", 0),
                     "facts_loglik": ex[run_dir].get("answer_loglik", 0) - ex[retrained].get("answer_loglik", 0),
                     "fact_utility": ex[run_dir].get("fact_utility", 0) - ex[retrained].get("fact_utility", 0)}
    gaps = d.get("gaps", {})
    check(set(gaps) == set(expected_gaps), f"eval distance: gap keys {sorted(gaps)}")
    for key, value in expected_gaps.items():
        check(abs(gaps.get(key, 1e9) - value) <= 1e-9 * max(1.0, abs(value)), f"eval distance: gap {key} {gaps.get(key)}, expected {value}")

    # eval loglik --template none scores prompt/response pairs as score does: the same sums, two code paths.
    loglik = eval_json("loglik", "--model", model, "--input", forget, "--template", "none")
    scored = [json.loads(l) for l in run(["score", "--model", model, "--input", forget, "--json"]).stdout.splitlines()]
    check([(q.get("sum"), q.get("tokens")) for q in loglik.get("sequences", [])] == [(q["loglik"], q["tokens"]) for q in scored],
          f"eval loglik --template none: {loglik.get('sequences')}, score: {scored}")

    # A model compared with itself: TOFU forget quality 1 (KS statistic 0), no privacy leakage,
    # and a Jeffreys divergence of 0 on the diagonal and between the two copies (symmetric matrix).
    tofu = os.path.join(tmp, "tofu.jsonl")
    with open(tofu, "w") as f:
        f.write('{"question": "Who wrote Foo?", "answer": "Ann Lee wrote Foo.", "paraphrased_answer": "Foo is by Ann Lee.", '
                '"perturbed_answer": ["Bob wrote Foo.", "Cy wrote Foo."]}\n'
                '{"question": "Where was Ann born?", "answer": "In Paris.", "paraphrased_answer": "Paris.", "perturbed_answer": ["In Rome.", "In Oslo."]}\n')
    t = eval_json("tofu", "--model", run_dir, "--forget", tofu, "--retrained", run_dir, "--max-new-tokens", "8")
    check(t.get("forget_quality") == 1 and t.get("forget_ks_statistic") == 0, f"eval tofu against itself: {t}")
    check(0 < t.get("forget", {}).get("truth_ratio", -1) and 0 <= t.get("forget", {}).get("rouge_l_recall", -1) <= 1,
          f"eval tofu: forget split {t.get('forget')}")
    mia = eval_json("mia", "--model", run_dir, "--forget", retain, "--holdout", forget, "--retrained", run_dir)
    check(mia.get("privacy_leakage") == 0 and mia.get("auc") == mia.get("retrained_auc"), f"eval mia against itself: {mia}")
    j = eval_json("divergence", "--models", run_dir, model, run_dir, "--prompts", forget, "--length", "8").get("jeffreys", [])
    check(len(j) == 3 and all(j[i][i] == 0 for i in range(3)) and j[0][2] == 0 and j[0][1] == j[1][0] > 0,
          f"eval divergence: {j}")

# generate --input: batched (left-padded) greedy continuations equal transformers' one by one, and a
# sampled prompt's continuation depends on its seed and line, not on the batch size.
fixture_generations = json.load(open(os.path.join(fixtures, "score_llama.generate.json")))
with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    f.write("".join(json.dumps({"prompt": g["prompt"]}) + "\n" for g in fixture_generations) + "\n")
new_tokens = min(g["max_new_tokens"] for g in fixture_generations)
r = run(["generate", "--model", model, "--input", f.name, "--max-new-tokens", str(new_tokens), "--batch-size", "2"])
got = [json.loads(l)["tokens"] for l in r.stdout.splitlines()] if r.returncode == 0 else []
check(got == [g["tokens"][:new_tokens] for g in fixture_generations], f"generate --input (batched greedy): {got}")
sampled = {}
for batch_size in ("1", "2"):
    r = run(["generate", "--model", model, "--input", f.name, "--max-new-tokens", "6", "--temperature", "1", "--seed", "5",
             "--batch-size", batch_size])
    sampled[batch_size] = r.stdout
check(sampled["1"] == sampled["2"] and len(sampled["1"].splitlines()) == 2, f"generate --input sampling by batch size: {sampled}")
r = run(["generate", "--model", model, "--prompt", fixture_generations[0]["prompt"], "--max-new-tokens", "6",
         "--temperature", "1", "--seed", "5", "--json"])
check(r.stdout.strip() == sampled["1"].splitlines()[0] if sampled["1"] else False, f"generate --prompt vs --input line 1: {r.stdout.strip()}")
os.unlink(f.name)

if failures:
    print("cli smoke: FAILED", file=sys.stderr)
    for f in failures:
        print("  " + f, file=sys.stderr)
    sys.exit(1)
print(f"cli smoke: passed (score: {len(expected)} inputs against transformers; tokenize; generate: greedy tokens and text, batched --input; train sft; unlearn: retain term, momentum, floor, truncation; train --stages checked up front; eval speed, mass --baseline, distance gaps, loglik, tofu, mia, divergence)")
PY
