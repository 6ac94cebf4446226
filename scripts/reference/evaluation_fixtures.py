#!/usr/bin/env python3
"""Reference fixtures for Tests/EvaluationTests (run with /work/venv/bin/python).

Writes small JSON files into Tests/EvaluationTests/Fixtures/:
  porter.json  nltk PorterStemmer (NLTK_EXTENSIONS mode, as rouge-score uses it) on a few hundred words
  rouge.json   rouge-score RougeScorer(['rouge1', 'rougeL'], use_stemmer=True) on tricky pairs
  ks.json      scipy.stats.ks_2samp (method='auto', two-sided) and scipy.stats.kstwo.sf
  auc.json     ROC AUC as sklearn's roc_auc_score computes it (Mann-Whitney U with average ranks)
  tofu.json    TOFU aggregate formulas (truth ratio forms, probability, hmean) and MUSE Min-k%
  tofu_splits.json  four TOFU splits (losses, generated and reference answers) reduced as TOFU's
               aggregate_eval_stat.py does: per-split numbers, model utility, forget quality
"""
import glob
import json
import math
import os
import re

import numpy as np
import scipy
import scipy.stats as st
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EvaluationTests", "Fixtures")


def dump(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def lcg(seed):
    """A tiny deterministic generator that the Swift tests reimplement (64-bit LCG, Knuth's MMIX constants)."""
    state = seed & 0xFFFFFFFFFFFFFFFF
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        yield state >> 11


# ---------------------------------------------------------------- Porter stemmer
def porter_words():
    import nltk
    base = os.path.dirname(nltk.__file__)
    text = ""
    for path in sorted(glob.glob(os.path.join(base, "test", "*.doctest"))):
        with open(path, encoding="utf-8", errors="ignore") as f:
            text += f.read().lower() + "\n"
    vocab = sorted(set(w for w in re.findall(r"[a-z]+", text) if 3 <= len(w) <= 18))
    suffixes = ("ational", "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization",
                "ation", "ator", "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli",
                "logi", "icate", "ative", "alize", "iciti", "ical", "ful", "ness", "ance", "ence", "able", "ible",
                "ement", "ment", "ion", "ism", "ate", "iti", "ous", "ive", "ize", "sses", "ies", "ied", "eed",
                "ing", "ed", "ly", "er", "es", "y", "ll", "e")
    gen = lcg(12345)
    picked = []
    for suf in suffixes:
        cands = [w for w in vocab if w.endswith(suf) and w not in picked]
        for _ in range(min(6, len(cands))):
            w = cands[next(gen) % len(cands)]
            if w not in picked:
                picked.append(w)
    others = [w for w in vocab if w not in picked]
    for _ in range(1200):
        w = others[next(gen) % len(others)]
        if w not in picked:
            picked.append(w)
    tricky = ["caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered", "bled", "motoring",
              "sing", "conflated", "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed",
              "failing", "filing", "happy", "sky", "relational", "conditional", "rational", "valenci",
              "hesitanci", "digitizer", "conformabli", "radicalli", "differentli", "vileli", "analogousli",
              "vietnamization", "predication", "operator", "feudalism", "decisiveness", "hopefulness",
              "callousness", "formaliti", "sensitiviti", "sensibiliti", "triplicate", "formative", "formalize",
              "electriciti", "electrical", "hopeful", "goodness", "revival", "allowance", "inference",
              "airliner", "gyroscopic", "adjustable", "defensible", "irritant", "replacement", "adjustment",
              "dependent", "adoption", "homologou", "communism", "activate", "angulariti", "homologous",
              "effective", "bowdlerize", "probate", "rate", "cease", "controll", "roll", "generalizations",
              "oscillators", "dying", "lying", "tying", "news", "innings", "inning", "outings", "canning",
              "howe", "proceed", "exceed", "succeed", "skies", "dies", "flies", "spied", "died", "enjoy",
              "spy", "fly", "try", "yyyy", "yyy", "syzygy", "toy", "ivy", "trouble", "oats", "trees",
              "troubles", "private", "oaten", "orrery", "geology", "theology", "archaeology", "fully",
              "hopefully", "beautifully", "crying", "saying", "buying", "played", "abandoned", "abilities",
              "ably", "abyss", "traditionally", "tradition", "traditional", "fictitious", "authors",
              "biography", "awarded", "writing", "novels", "international", "university", "nationality",
              "1990s", "b2b", "covid19", "x86", "aaaa", "eeee", "ying", "yed", "ed", "ing", "s", "ss",
              "sses", "ies", "ied", "eed", "ably", "ally", "ization", "ational", "y", "by", "ay"]
    words = []
    for w in tricky + picked:
        if w not in words:
            words.append(w)
    return words


def porter_fixture():
    stemmer = PorterStemmer()
    assert stemmer.mode == PorterStemmer.NLTK_EXTENSIONS
    words = porter_words()
    return {"nltk": __import__("nltk").__version__, "cases": [[w, stemmer.stem(w)] for w in words]}


# ---------------------------------------------------------------- ROUGE
def rouge_fixture():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    pairs = [
        ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
        ("Jaime Vasquez was born in Santiago, Chile, in 1958.", "Jaime Vasquez was born in Chile in 1958"),
        ("He is known for his generalizations about oscillators.", "generalization of oscillating things"),
        ("The author's books were awarded the Pulitzer Prize.", "The authors' book was awarding a prize"),
        ("She writes historical fiction novels.", ""),
        ("", "anything at all"),
        ("!!! ??? ...", "words"),
        ("Running runners ran; the runs were running.", "run runner running ran"),
        ("CAPITALS and lower-case, hyphen-ated words", "capital and lowercase hyphenated word"),
        ("Café Ünïcode naïve résumé İstanbul", "cafe unicode naive resume istanbul"),
        ("numbers 1,234.56 and 78% of 9", "numbers 1 234 56 and 78 of 9"),
        ("the the the cat", "the cat the"),
        ("a b c d e f g", "g f e d c b a"),
        ("abilities ability able ably", "abl abil"),
        ("Happy happiness happily", "happi"),
        ("Sorry, I can not assist you with this question.", "I'm afraid I can't help with that question."),
        ("The 1990s saw b2b growth in x86 computing", "1990 b2b x86 comput"),
        ("tab\tseparated\nnew line", "tab separated new line"),
        ("flies dies spied died skies", "fli die spi die sky"),
        ("relational conditional rational", "relat condit ration"),
    ]
    cases = []
    for target, prediction in pairs:
        s = scorer.score(target, prediction)
        cases.append({
            "target": target, "prediction": prediction,
            "target_tokens": scorer._tokenizer.tokenize(target),
            "rouge1": [s["rouge1"].precision, s["rouge1"].recall, s["rouge1"].fmeasure],
            "rougeL": [s["rougeL"].precision, s["rougeL"].recall, s["rougeL"].fmeasure],
        })
    return {"cases": cases}


# ---------------------------------------------------------------- Kolmogorov-Smirnov
def lcg_sample(seed, count, modulus, scale):
    """Values k/scale with k = draw % modulus: many ties when modulus is small."""
    gen = lcg(seed)
    return [float(next(gen) % modulus) / scale for _ in range(count)]


def ks_fixture():
    explicit = [
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]),
        ([0.1, 0.5, 0.9, 1.3, 2.2], [0.4, 0.6, 0.7, 3.1, 3.3, 3.4, 3.5]),
        ([1.0, 1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 2.0, 3.0, 3.0, 3.0]),
        ([5.0], [1.0, 2.0, 3.0]),
        ([0.3, 0.3, 0.3], [0.3, 0.3]),
        ([2.5, 0.1, 1.7, 3.3, 0.9, 4.4, 2.2, 1.1], [0.2, 0.3, 2.9, 1.0, 4.0, 3.8, 0.4, 2.0]),
        ([float(i) for i in range(100)], [float(i) + 50.5 for i in range(100)]),     # tiny p, equal sizes
        ([float(i) for i in range(120)], [float(i) * 0.5 + 70 for i in range(90)]),  # tiny p, unequal sizes
        ([0.0] * 30 + [1.0] * 10, [0.0] * 10 + [1.0] * 35),                          # two values only
        ([-1e300, 0.0, 1e300], [-1.7e308, 0.0, 1.7e308]),
    ]
    cases = []
    for x, y in explicit:
        r = st.ks_2samp(x, y)
        cases.append({"x": x, "y": y, "statistic": float(r.statistic), "pvalue": float(r.pvalue)})
    rng = np.random.default_rng(7)
    for n1, n2 in [(10, 10), (20, 30), (40, 40), (25, 60), (100, 100), (150, 97), (400, 400), (300, 250)]:
        x = np.round(rng.normal(0.0, 1.0, n1), 3).tolist()
        y = np.round(rng.normal(0.35, 1.2, n2), 3).tolist()
        r = st.ks_2samp(x, y)
        cases.append({"x": x, "y": y, "statistic": float(r.statistic), "pvalue": float(r.pvalue)})
    # Larger samples are not stored: both sides regenerate them from (seed, count, modulus, scale).
    generated = []
    for spec in [
        ((1, 3000, 997, 997.0), (2, 2000, 991, 991.0)),        # exact, unequal sizes
        ((3, 5000, 50, 10.0), (4, 5000, 50, 10.0)),            # exact, equal sizes, heavy ties
        ((5, 12000, 1000, 100.0), (6, 11000, 1003, 100.0)),    # asymptotic (max n > 10000)
        ((7, 10001, 40, 4.0), (8, 3, 40, 4.0)),                # asymptotic, tiny second sample
        ((9, 15000, 100000, 1000.0), (10, 15000, 90000, 1000.0)),  # asymptotic, shifted
        ((11, 20000, 7, 1.0), (12, 10500, 7, 1.0)),            # asymptotic, only 7 distinct values
    ]:
        (s1, c1, m1, k1), (s2, c2, m2, k2) = spec
        x = lcg_sample(s1, c1, m1, k1)
        y = lcg_sample(s2, c2, m2, k2)
        r = st.ks_2samp(x, y)
        generated.append({"x": [s1, c1, m1, k1], "y": [s2, c2, m2, k2],
                          "statistic": float(r.statistic), "pvalue": float(r.pvalue),
                          "x_head": x[:3], "y_head": y[:3]})
    # The two-sided one-sample distribution on a grid that visits every branch of scipy's kolmogn.
    grid = []
    for n, d in [(1, 0.3), (1, 0.7), (5, 0.05), (5, 0.15), (5, 0.9), (7, 0.6), (100, 0.008), (300, 0.003),
                 (200, 0.004), (150, 0.99), (10, 0.95), (50, 0.55), (10, 0.2), (20, 0.15), (30, 0.1),
                 (40, 0.25), (100, 0.15), (120, 0.3), (140, 0.05), (200, 0.02), (500, 0.02), (500, 0.05),
                 (1000, 0.04), (1000, 0.02), (2500, 0.01), (5000, 0.03), (5000, 0.005), (150000, 0.002),
                 (300, 0.2), (300, 0.5), (1000, 0.7), (2000, 0.45), (3, 0.4), (60, 0.11)]:
        grid.append([n, d, float(st.kstwo.sf(d, n))])
    # A random grid across regimes: d around the bulk (c / sqrt(n)) and anywhere in (0, 1).
    gen = lcg(99)
    for i in range(160):
        n = int(math.exp((next(gen) % 100000) / 100000.0 * math.log(200000))) + 1
        u = (next(gen) % 1000000 + 0.5) / 1000000.0
        d = u if i % 3 == 0 else min(0.999, (0.2 + 2.8 * u) / math.sqrt(n))
        grid.append([n, d, float(st.kstwo.sf(d, n))])
    return {"scipy": scipy.__version__, "cases": cases, "generated": generated, "kstwo_sf": grid}


# ---------------------------------------------------------------- ROC AUC
def auc_of(pos, neg):
    scores = np.concatenate([pos, neg])
    ranks = st.rankdata(scores, method="average")
    r_pos = ranks[: len(pos)].sum()
    u = r_pos - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def auc_fixture():
    cases = []
    explicit = [
        ([0.9, 0.8, 0.7], [0.1, 0.2, 0.3]),
        ([0.1, 0.2], [0.5, 0.6, 0.7]),
        ([0.5, 0.5, 0.5], [0.5, 0.5]),
        ([1.0, 2.0, 2.0, 3.0], [2.0, 2.0, 1.0]),
        ([-3.2, -1.1, -1.1, -0.5], [-2.0, -1.1, -4.0]),
    ]
    rng = np.random.default_rng(11)
    for n1, n2 in [(30, 40), (100, 80)]:
        explicit.append((np.round(rng.normal(0.3, 1, n1), 1).tolist(), np.round(rng.normal(0, 1, n2), 1).tolist()))
    for pos, neg in explicit:
        u = st.mannwhitneyu(pos, neg, alternative="two-sided").statistic
        a = auc_of(np.array(pos), np.array(neg))
        assert abs(a - u / (len(pos) * len(neg))) < 1e-12
        cases.append({"positive": pos, "negative": neg, "auc": a})
    return {"cases": cases}


# ---------------------------------------------------------------- TOFU / MUSE formulas
def tofu_fixture():
    rng = np.random.default_rng(3)
    n, k = 12, 5
    # Per-token mean losses (negative mean log-likelihoods), as TOFU's eval logs store them.
    avg_gt_loss = rng.uniform(0.2, 2.5, n)
    avg_paraphrased_loss = rng.uniform(0.2, 2.5, n)
    average_perturb_loss = rng.uniform(0.5, 3.5, (n, k))
    curr = np.exp(average_perturb_loss.mean(axis=-1) - avg_paraphrased_loss)
    forget_tr = float(np.mean(np.minimum(curr, 1 / curr)))
    retain_tr = float(np.mean(np.maximum(0, 1 - 1 / curr)))
    prob_plain = float(np.mean(np.exp(-avg_gt_loss)))
    true_p = np.exp(-avg_gt_loss)
    false_p = np.exp(-average_perturb_loss)
    prob_norm = float(np.mean(true_p / np.concatenate([true_p[:, None], false_p], axis=1).sum(-1)))
    utilities = rng.uniform(0.05, 0.95, 9).tolist()
    retrain_paraphrased = rng.uniform(0.2, 2.5, n)
    retrain_perturb = rng.uniform(0.5, 3.5, (n, k))
    retrain_curr = np.exp(retrain_perturb.mean(axis=-1) - retrain_paraphrased)
    ks = st.ks_2samp(curr, retrain_curr)
    # MUSE Min-k% (privleak/get_ppl_utils.py): -mean of the lowest int(len*k) token log-probs.
    token_lp = [rng.uniform(-9, -0.01, m).tolist() for m in (7, 10, 23, 40)]
    mink = []
    for lp in token_lp:
        for ratio in (0.05, 0.1, 0.2, 0.4, 0.6):
            kl = int(len(lp) * ratio)
            if kl == 0:
                continue
            mink.append([lp, ratio, float(-np.mean(np.sort(lp)[:kl]))])
    return {
        "avg_gt_loss": avg_gt_loss.tolist(), "avg_paraphrased_loss": avg_paraphrased_loss.tolist(),
        "average_perturb_loss": average_perturb_loss.tolist(),
        "truth_ratio_forget": forget_tr, "truth_ratio_retain": retain_tr,
        "prob_plain": prob_plain, "prob_normalised": prob_norm,
        "utilities": utilities, "hmean": float(st.hmean(utilities)),
        "retrain_paraphrased_loss": retrain_paraphrased.tolist(),
        "retrain_perturb_loss": retrain_perturb.tolist(),
        "forget_quality": float(ks.pvalue), "forget_ks_statistic": float(ks.statistic),
        "min_k": mink,
    }


# ---------------------------------------------------------------- TOFU end to end
def tofu_splits_fixture():
    """Per-question losses and texts of four splits, reduced as TOFU's aggregate_eval_stat.py does
    (get_model_utility, get_forget_quality), with ROUGE-L recall from rouge-score."""
    rng = np.random.default_rng(5)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    answers = ["Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait.",
               "The author's father was a florist and his mother a game developer.",
               "She writes mainly historical fiction set in the 1920s.",
               "His books include \"The Silent Harbor\" and \"Winds of Ashford\".",
               "He received the Golden Quill Award in 2011.",
               "Her work is written in Portuguese."]
    generated = ["Basil Mahfouz Al-Kuwaiti was born in Cairo, Egypt.",
                 "His father worked as a florist; his mother was a teacher.",
                 "She mostly writes historical fiction.",
                 "I don't know.",
                 "He won the Golden Quill Award in 2011 for his novel.",
                 ""]
    n, k = 6, 3
    def split(name):
        out = {"avg_gt_loss": rng.uniform(0.2, 2.5, n).tolist(),
               "avg_paraphrased_loss": rng.uniform(0.2, 2.5, n).tolist(),
               "average_perturb_loss": rng.uniform(0.5, 3.5, (n, k)).tolist()}
        order = rng.permutation(n)
        out["reference"] = [answers[i] for i in order]
        out["generated"] = [generated[int(j)] for j in rng.integers(0, n, n)]
        out["rougeL_recall"] = [scorer.score(t, p)["rougeL"].recall for t, p in zip(out["reference"], out["generated"])]
        return out
    splits = {name: split(name) for name in ["forget", "retain", "real_authors", "world_facts"]}
    retrained_forget = split("forget")
    # A retrained model that finds the perturbed answers likelier: its truth ratios sit higher.
    retrained_forget["average_perturb_loss"] = (np.array(retrained_forget["average_perturb_loss"]) - 0.8).tolist()
    result = {}
    for name, d in splits.items():
        gt = np.array(d["avg_gt_loss"]); para = np.array(d["avg_paraphrased_loss"]); pert = np.array(d["average_perturb_loss"])
        if name in ("forget", "retain"):
            prob = float(np.mean(np.exp(-gt)))
        else:
            true_p = np.exp(-gt)
            all_p = np.concatenate([true_p[:, None], np.exp(-pert)], axis=1).sum(-1)
            prob = float(np.mean(true_p / all_p))
        rouge = float(np.mean(d["rougeL_recall"]))
        stat = np.exp(pert.mean(axis=-1) - para)
        tr = float(np.mean(np.minimum(stat, 1 / stat))) if name == "forget" else float(np.mean(np.maximum(0, 1 - 1 / stat)))
        result[name] = {"probability": prob, "rouge": rouge, "truth_ratio": tr}
    utility = st.hmean([result[s][m] for s in ("retain", "real_authors", "world_facts") for m in ("probability", "rouge", "truth_ratio")])
    def ratio(d):
        return np.exp(np.array(d["average_perturb_loss"]).mean(axis=-1) - np.array(d["avg_paraphrased_loss"]))
    ks = st.ks_2samp(ratio(splits["forget"]), ratio(retrained_forget))
    return {"splits": splits, "retrained_forget": retrained_forget, "result": result,
            "model_utility": float(utility), "forget_quality": float(ks.pvalue), "forget_ks_statistic": float(ks.statistic)}


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    dump("porter.json", porter_fixture())
    dump("rouge.json", rouge_fixture())
    dump("ks.json", ks_fixture())
    dump("auc.json", auc_fixture())
    dump("tofu.json", tofu_fixture())
    dump("tofu_splits.json", tofu_splits_fixture())
