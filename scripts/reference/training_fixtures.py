"""Reference fixtures for the Training target (Tests/TrainingTests/Fixtures/*.json).

Run: /work/venv/bin/python scripts/reference/training_fixtures.py

- objectives.json: random logits / targets per role; per-sequence log-likelihoods computed by
  torch (float64) from the logits, every objective's loss and d loss / d logits by autograd.
  The Swift side recomputes log-likelihoods from the same logits, evaluates the objective on
  per-sequence statistics and maps the per-sequence weights back to logits.
- optimizers.json: parameters after 5 steps of torch.optim.AdamW / SGD (float32), gradient
  g = given_t + 0.5 * p at each step.
- clipping.json: torch.nn.utils.clip_grad_norm_ results.
- schedules.json: learning-rate multipliers of transformers' schedulers (base lr 1).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from transformers.optimization import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
    get_linear_schedule_with_warmup,
    get_wsd_schedule,
)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TrainingTests", "Fixtures")
rng = np.random.default_rng(20261129)
V, T = 7, 6


def f32(a):
    return np.asarray(a, dtype=np.float32)


def make_group(batch, prompt_lengths, response_lengths, scale=2.0):
    """Random float32 logits and shifted targets (-100 outside response predictions)."""
    logits = f32(rng.normal(size=(batch, T, V)) * scale)
    ref = f32(rng.normal(size=(batch, T, V)) * scale)
    targets = np.full((batch, T), -100, dtype=np.int64)
    for b in range(batch):
        p, r = prompt_lengths[b], response_lengths[b]
        assert p + r <= T and p >= 1
        ids = rng.integers(0, V, size=p + r)
        for pos in range(p, p + r):
            targets[b, pos - 1] = ids[pos]
    return {"logits": logits, "ref": ref, "targets": targets}


def seq_logp(logits, targets):
    """Summed log-likelihood of the non-ignored targets per sequence, and counts."""
    lp = F.log_softmax(logits, dim=-1)
    mask = targets != -100
    safe = targets.clamp(min=0)
    tok = lp.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * mask
    return tok.sum(-1), mask.sum(-1)


def seq_kl(logits, ref_logits, targets):
    """Sum over response positions of KL(ref || current)."""
    mask = targets != -100
    lq = F.log_softmax(logits, dim=-1)
    lr = F.log_softmax(ref_logits, dim=-1)
    kl = (lr.exp() * (lr - lq)).sum(-1) * mask
    return kl.sum(-1)


def mean_token_ll(lp, n):
    return lp.sum() / n.sum()


def npo_loss(lp, ref_lp, beta):
    return -(2 / beta) * F.logsigmoid(-beta * (lp - ref_lp)).mean()


def simnpo_loss(lp, n, beta, gamma, normalized):
    nll = -lp / n if normalized else -lp
    return -(2 / beta) * F.logsigmoid(beta * nll - gamma).mean()


def dpo_loss(lw, lw_ref, ll, ll_ref, beta):
    return -F.logsigmoid(beta * ((lw - lw_ref) - (ll - ll_ref))).mean()


def objectives():
    groups = {
        "forget": make_group(4, [2, 1, 3, 2], [3, 5, 2, 1]),
        "retain": make_group(3, [1, 2, 3], [4, 3, 2]),
        "alternative": make_group(4, [2, 1, 3, 2], [2, 4, 3, 3]),
        "chosen": make_group(3, [2, 2, 1], [3, 4, 2]),
        "rejected": make_group(3, [2, 2, 1], [2, 1, 5]),
        "target": make_group(3, [1, 3, 2], [5, 3, 2]),
    }

    cases = [
        ({"name": "sft"}, lambda S: -mean_token_ll(S["target"]["lp"], S["target"]["n"])),
        ({"name": "dpo", "beta": 0.1},
         lambda S: dpo_loss(S["chosen"]["lp"], S["chosen"]["ref_lp"], S["rejected"]["lp"], S["rejected"]["ref_lp"], 0.1)),
        ({"name": "dpo", "beta": 2.0},
         lambda S: dpo_loss(S["chosen"]["lp"], S["chosen"]["ref_lp"], S["rejected"]["lp"], S["rejected"]["ref_lp"], 2.0)),
        ({"name": "ga"}, lambda S: mean_token_ll(S["forget"]["lp"], S["forget"]["n"])),
        ({"name": "graddiff", "gamma": 1.0, "alpha": 1.0, "retain": "nll"},
         lambda S: mean_token_ll(S["forget"]["lp"], S["forget"]["n"]) - mean_token_ll(S["retain"]["lp"], S["retain"]["n"])),
        ({"name": "graddiff", "gamma": 0.7, "alpha": 1.3, "retain": "kl"},
         lambda S: 0.7 * mean_token_ll(S["forget"]["lp"], S["forget"]["n"]) + 1.3 * S["retain"]["kl"].sum() / S["retain"]["n"].sum()),
        ({"name": "npo", "beta": 0.5}, lambda S: npo_loss(S["forget"]["lp"], S["forget"]["ref_lp"], 0.5)),
        ({"name": "npo", "beta": 0.1}, lambda S: npo_loss(S["forget"]["lp"], S["forget"]["ref_lp"], 0.1)),
        ({"name": "npo_rt", "beta": 0.5, "alpha": 1.0, "retain": "nll"},
         lambda S: npo_loss(S["forget"]["lp"], S["forget"]["ref_lp"], 0.5) - mean_token_ll(S["retain"]["lp"], S["retain"]["n"])),
        ({"name": "simnpo", "beta": 2.5, "gamma": 0.0, "length_normalized": True},
         lambda S: simnpo_loss(S["forget"]["lp"], S["forget"]["n"], 2.5, 0.0, True)),
        ({"name": "simnpo", "beta": 2.5, "gamma": 0.3, "length_normalized": True},
         lambda S: simnpo_loss(S["forget"]["lp"], S["forget"]["n"], 2.5, 0.3, True)),
        ({"name": "simnpo_code", "beta": 1.0},
         lambda S: simnpo_loss(S["forget"]["lp"], S["forget"]["n"], 1.0, 0.0, False)),
        ({"name": "simnpo_rt", "beta": 2.5, "gamma": 0.0, "length_normalized": True, "alpha": 0.5, "retain": "nll"},
         lambda S: simnpo_loss(S["forget"]["lp"], S["forget"]["n"], 2.5, 0.0, True) - 0.5 * mean_token_ll(S["retain"]["lp"], S["retain"]["n"])),
        ({"name": "idkdpo", "beta": 0.1},
         lambda S: dpo_loss(S["alternative"]["lp"], S["alternative"]["ref_lp"], S["forget"]["lp"], S["forget"]["ref_lp"], 0.1)),
        ({"name": "idkdpo", "beta": 0.5, "alpha": 1.0, "retain": "nll"},
         lambda S: dpo_loss(S["alternative"]["lp"], S["alternative"]["ref_lp"], S["forget"]["lp"], S["forget"]["ref_lp"], 0.5)
         - mean_token_ll(S["retain"]["lp"], S["retain"]["n"])),
    ]

    out_cases = []
    for spec, fn in cases:
        S, leaves = {}, {}
        for role, g in groups.items():
            x = torch.tensor(g["logits"], dtype=torch.float64, requires_grad=True)
            ref = torch.tensor(g["ref"], dtype=torch.float64)
            tg = torch.tensor(g["targets"])
            lp, n = seq_logp(x, tg)
            with torch.no_grad():
                ref_lp, _ = seq_logp(ref, tg)
            S[role] = {"lp": lp, "n": n.to(torch.float64), "ref_lp": ref_lp, "kl": seq_kl(x, ref, tg)}
            leaves[role] = x
        loss = fn(S)
        loss.backward()
        grads = {role: x.grad.numpy().ravel().tolist() for role, x in leaves.items()
                 if x.grad is not None and float(x.grad.abs().sum()) > 0}
        out_cases.append({"objective": spec, "loss": float(loss.detach()), "logitGradients": grads})

    out_groups = {}
    for role, g in groups.items():
        x = torch.tensor(g["logits"], dtype=torch.float64)
        tg = torch.tensor(g["targets"])
        lp, n = seq_logp(x, tg)
        ref_lp, _ = seq_logp(torch.tensor(g["ref"], dtype=torch.float64), tg)
        kl = seq_kl(x, torch.tensor(g["ref"], dtype=torch.float64), tg)
        out_groups[role] = {
            "batch": g["logits"].shape[0], "length": T, "vocab": V,
            "logits": g["logits"].ravel().tolist(), "referenceLogits": g["ref"].ravel().tolist(),
            "targets": g["targets"].ravel().tolist(),
            "logLikelihood": lp.tolist(), "referenceLogLikelihood": ref_lp.tolist(),
            "tokenCounts": n.tolist(), "klToReference": kl.tolist(),
        }
    return {"groups": out_groups, "cases": out_cases}


PARAMS = [("layers.0.mlp.up_proj.weight", [4, 5]), ("layers.0.mlp.up_proj.bias", [4]),
          ("layers.0.input_layernorm.weight", [5]), ("lm_head.weight", [3, 4]), ("embed.weight", [3, 2])]


def default_decay(name, shape):
    return len(shape) > 1 and "norm" not in name.lower() and "bias" not in name.lower()


def optimizers():
    init = {name: f32(rng.normal(size=shape)) for name, shape in PARAMS}
    steps = 5
    given = [{name: f32(rng.normal(size=shape)) for name, shape in PARAMS} for _ in range(steps)]
    lrs = [0.01, 0.02, 0.015, 0.01, 0.005]

    def run(make):
        ps = {name: torch.nn.Parameter(torch.tensor(init[name])) for name, _ in PARAMS}
        opt = make(ps)
        for t in range(steps):
            for name, _ in PARAMS:
                # grad depends on the current parameter so the state really evolves
                ps[name].grad = torch.tensor(given[t][name]) + 0.5 * ps[name].detach()
            for g in opt.param_groups:
                g["lr"] = lrs[t]
            opt.step()
        return {name: ps[name].detach().numpy().ravel().tolist() for name, _ in PARAMS}

    def groups(ps, wd):
        dec = [ps[n] for n, s in PARAMS if default_decay(n, s)]
        nod = [ps[n] for n, s in PARAMS if not default_decay(n, s)]
        return [{"params": dec, "weight_decay": wd}, {"params": nod, "weight_decay": 0.0}]

    cases = []
    for cfg in [dict(beta1=0.9, beta2=0.999, eps=1e-8, weightDecay=0.1, amsgrad=False),
                dict(beta1=0.8, beta2=0.95, eps=1e-6, weightDecay=0.01, amsgrad=True),
                dict(beta1=0.9, beta2=0.999, eps=1e-8, weightDecay=0.0, amsgrad=False)]:
        res = run(lambda ps: torch.optim.AdamW(groups(ps, cfg["weightDecay"]), lr=lrs[0],
                                               betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                                               amsgrad=cfg["amsgrad"], foreach=False))
        cases.append({"optimizer": "adamw", "config": {k: float(v) for k, v in cfg.items()}, "final": res})
    for cfg in [dict(momentum=0.0, dampening=0.0, nesterov=False, weightDecay=0.0),
                dict(momentum=0.9, dampening=0.1, nesterov=False, weightDecay=0.01),
                dict(momentum=0.9, dampening=0.0, nesterov=True, weightDecay=0.05)]:
        res = run(lambda ps: torch.optim.SGD(groups(ps, cfg["weightDecay"]), lr=lrs[0], momentum=cfg["momentum"],
                                             dampening=cfg["dampening"], nesterov=cfg["nesterov"], foreach=False))
        cases.append({"optimizer": "sgd", "config": {k: float(v) for k, v in cfg.items()}, "final": res})
    return {
        "parameters": [{"name": n, "shape": s, "initial": init[n].ravel().tolist(),
                        "decay": default_decay(n, s)} for n, s in PARAMS],
        "givenGradients": [{n: given[t][n].ravel().tolist() for n, _ in PARAMS} for t in range(steps)],
        "gradientParameterFactor": 0.5,
        "learningRates": lrs,
        "cases": cases,
    }


def clipping():
    grads = {name: f32(rng.normal(size=shape)) for name, shape in PARAMS}
    cases = []
    for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (0.5, float("inf"))]:
        ps = [torch.nn.Parameter(torch.zeros(s)) for _, s in PARAMS]
        for p, (n, _) in zip(ps, PARAMS):
            p.grad = torch.tensor(grads[n])
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
        cases.append({"maxNorm": max_norm, "norm": "l2" if norm_type == 2.0 else "infinity", "totalNorm": float(total),
                      "clipped": {n: p.grad.numpy().ravel().tolist() for p, (n, _) in zip(ps, PARAMS)}})
    return {"gradients": {n: grads[n].ravel().tolist() for n, _ in PARAMS}, "cases": cases}


def schedules():
    def lrs(make, total):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = make(opt)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    def ceil_steps(total, frac):  # TrainingArguments.get_warmup_steps for a ratio
        return math.ceil(total * frac)

    cases = []
    for total, wfrac in [(20, 0.15), (20, 0.0), (7, 0.5), (50, 0.02)]:
        w = ceil_steps(total, wfrac)
        cases.append({"spec": {"kind": "constant", "warmup": wfrac}, "totalSteps": total, "warmupSteps": w,
                      "multipliers": lrs(lambda o: get_constant_schedule_with_warmup(o, w), total)})
        cases.append({"spec": {"kind": "linear", "warmup": wfrac}, "totalSteps": total, "warmupSteps": w,
                      "multipliers": lrs(lambda o: get_linear_schedule_with_warmup(o, w, total), total)})
        cases.append({"spec": {"kind": "cosine", "warmup": wfrac}, "totalSteps": total, "warmupSteps": w,
                      "multipliers": lrs(lambda o: get_cosine_schedule_with_warmup(o, w, total), total)})
        cases.append({"spec": {"kind": "cosine", "warmup": wfrac, "floor": 0.1}, "totalSteps": total, "warmupSteps": w,
                      "multipliers": lrs(lambda o: get_cosine_with_min_lr_schedule_with_warmup(o, w, total, min_lr_rate=0.1), total)})
    for total, wfrac, dfrac, floor in [(100, 0.02, 0.02, 0.0), (20, 0.1, 0.2, 0.0), (20, 0.15, 0.3, 0.1),
                                       (9, 0.0, 0.5, 0.05), (18, 0.02, 0.02, 0.0), (10, 0.3, 0.7, 0.0)]:
        w, d = ceil_steps(total, wfrac), ceil_steps(total, dfrac)
        cases.append({"spec": {"kind": "wsd", "warmup": wfrac, "decay": dfrac, "floor": floor}, "totalSteps": total,
                      "warmupSteps": w, "decaySteps": d,
                      "multipliers": lrs(lambda o: get_wsd_schedule(o, w, d, num_training_steps=total,
                                                                    warmup_type="linear", decay_type="linear",
                                                                    min_lr_ratio=floor), total)})
    return {"cases": cases}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, fn in [("objectives", objectives), ("optimizers", optimizers), ("clipping", clipping), ("schedules", schedules)]:
        path = os.path.join(OUT, name + ".json")
        with open(path, "w") as f:
            json.dump(fn(), f, separators=(",", ":"))
        print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
