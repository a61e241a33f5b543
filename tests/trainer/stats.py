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
