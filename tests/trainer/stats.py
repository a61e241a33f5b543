"""Statistics for the sampler tests: does an engine draw tokens with the policy's probabilities?"""

from __future__ import annotations

import math

import torch


def chi2_rejects(counts: torch.Tensor, probs: torch.Tensor, z: float = 3.719) -> bool:
    """Pearson's chi-square goodness of fit; True when ``counts`` do not fit ``probs``.

    ``z`` is the upper normal point of the level (3.719: p < 1e-4); the chi-square quantile
    is Wilson-Hilferty's. Bins under 5 expected are pooled; any count where ``probs`` is 0
    (a token the filtered policy cannot produce) rejects outright.
    """
    if float(counts[probs == 0].sum()):
        return True
    n = float(counts.sum())
    small = probs * n < 5
    expected = torch.cat([probs[~small] * n, (probs[small].sum() * n)[None]])
    observed = torch.cat([counts[~small], counts[small].sum()[None]])
    observed, expected = observed[expected > 0], expected[expected > 0]
    df = len(expected) - 1
    if df < 1:
        return False  # one possible token: nothing to test
    stat = float(((observed - expected) ** 2 / expected).sum())
    return stat > df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def completion_logits(model, prompts, completions, group: int) -> list[torch.Tensor]:
    """The model's logits [len, vocab] at each completion token (teacher forcing), per row."""
    out = []
    for row, comp in enumerate(completions):
        prompt = list(prompts[row // group])
        if not comp:
            out.append(torch.zeros(0, 0))
            continue
        with torch.no_grad():
            out.append(model(torch.tensor([prompt + list(comp)])).logits[0, len(prompt) - 1 : -1].float())
    return out


def policy_residuals(model, prompts, completions, temperature: float, eos_ids, group: int,
                     logits: list[torch.Tensor] | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-token residuals with mean 0 when every token was drawn from the policy given its prefix.

    ``completions`` are grouped: rows ``[i*group, (i+1)*group)`` continue ``prompts[i]``. For a
    token x drawn from p (the model's softmax at ``temperature``, given the prefix):

    - ``surprise``: -log p(x) - H(p)
    - ``top``: 1[x is p's mode] - max p
    - ``stop``: 1[x ends the completion] - p(eos)
    - ``pair``: for disjoint pairs of one group (rows 0-1, 2-3, ...), while they share a
      prefix: 1[same next token] - sum p^2. Catches samples of a group that are not independent.

    ``logits`` (from :func:`completion_logits`) saves the forward passes when the same
    completions are tested more than once. Returns ``name -> (residuals, variances)``, the
    variance of each term under the policy. The terms are martingale differences along a
    completion, so :func:`z_score` (sum over the root of the summed variances) is about
    N(0, 1) whatever the sequence lengths.
    """
    eos = torch.tensor(sorted(eos_ids))
    res: dict[str, list[float]] = {"surprise": [], "top": [], "stop": [], "pair": []}
    var: dict[str, list[float]] = {k: [] for k in res}
    square: list[torch.Tensor] = []
    if logits is None:
        logits = completion_logits(model, prompts, completions, group)
    for comp, row_logits in zip(completions, logits):
        if not comp:
            square.append(torch.zeros(0))
            continue
        logp = torch.log_softmax(row_logits.double() / temperature, -1)
        p = logp.exp()
        x = torch.tensor(list(comp))
        entropy = -(p * logp).sum(-1)
        res["surprise"] += (-logp.gather(1, x[:, None])[:, 0] - entropy).tolist()
        var["surprise"] += ((p * logp * logp).sum(-1) - entropy**2).tolist()
        top = p.max(-1).values
        res["top"] += ((x == p.argmax(-1)).double() - top).tolist()
        var["top"] += (top * (1 - top)).tolist()
        stop = p[:, eos].sum(-1)
        res["stop"] += (torch.isin(x, eos).double() - stop).tolist()
        var["stop"] += (stop * (1 - stop)).tolist()
        square.append((p * p).sum(-1))
    for a in range(0, len(completions) - 1, 2):
        b = a + 1
        if a // group != b // group:
            continue
        x, y = completions[a], completions[b]
        for t in range(min(len(x), len(y))):
            s2 = float(square[a][t])
            res["pair"].append(float(x[t] == y[t]) - s2)
            var["pair"].append(s2 * (1 - s2))
            if x[t] != y[t]:
                break
    return {k: (torch.tensor(res[k], dtype=torch.float64), torch.tensor(var[k], dtype=torch.float64)) for k in res}


def z_score(residuals: torch.Tensor, variances: torch.Tensor) -> float:
    """Sum of the residuals over the root of their summed variances: about N(0, 1) under the policy."""
    total = float(variances.sum())
    return float(residuals.sum()) / math.sqrt(total) if total > 0 else 0.0


def assert_samples_follow_policy(model, prompts, completions, temperature: float, eos_ids, group: int,
                                 limit: float = 4.5) -> None:
    """Every statistic of :func:`policy_residuals` within ``limit`` of 0, and each one able to fail.

    The controls: the same samples against a temperature 25% off (surprise, mode), each
    pair made of one sample twice (pair), and every 4th completion cut to 3 tokens plus EOS
    (stop). Needs enough EOS draws for the stop statistic to mean something.
    """
    eos = list(eos_ids)
    logits = completion_logits(model, prompts, completions, group)
    stats = policy_residuals(model, prompts, completions, temperature, eos, group, logits=logits)
    assert float(stats["stop"][1].sum()) > 10, "too few likely stops to test stopping"
    zs = {k: z_score(*v) for k, v in stats.items()}
    assert all(abs(z) < limit for z in zs.values()), zs
    wrong = policy_residuals(model, prompts, completions, temperature * 1.25, eos, group, logits=logits)
    assert abs(z_score(*wrong["surprise"])) > limit and abs(z_score(*wrong["top"])) > limit
    copies = [c for c in completions[::2] for _ in range(2)]
    assert z_score(*policy_residuals(model, prompts, copies, temperature, eos, group)["pair"]) > limit
    early = [list(c[:3]) + eos[:1] if i % 4 == 0 and len(c) > 4 else c for i, c in enumerate(completions)]
    assert z_score(*policy_residuals(model, prompts, early, temperature, eos, group)["stop"]) > limit
