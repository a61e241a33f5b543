"""The math pool's timeouts mean it: a call returns within ``timeout`` plus a small
constant, counted from the call, whatever the workers are doing (starting, being
replaced after a kill); the pool recovers afterwards."""

from __future__ import annotations

import time

import pytest

from rewardkit.verifiers import MathEquivalence
from rewardkit.verifiers.math import math_verdict

# Sympy needs minutes for this expansion (four symbols, exponent under the refusal limit
# of 200), so a comparison against it always runs into a timeout of a few seconds.
HEAVY = "(x+y+z+w)^{%d}"
MARGIN = 0.5  # loaded CI; the pool promises OVERRUN_SECONDS (50 ms) on a quiet machine


@pytest.mark.slow
@pytest.mark.parametrize("timeout", [1, 2])
def test_a_timeout_counts_from_the_call_even_right_after_another(timeout):
    # The call after a timeout used to take the killed worker's replacement and wait for
    # it to load sympy (~1 s) before starting its own clock: 2.0 s at timeout=1.
    MathEquivalence.warm()
    verifier = MathEquivalence(timeout=timeout)
    for k in range(3):  # distinct answers: timeouts are cached
        heavy = HEAVY % (100 + 10 * timeout + k)
        start = time.monotonic()
        if k == 1:
            status = verifier.score(f"<answer>{heavy}</answer>", answer="7").status.value
        else:
            status = math_verdict("7", heavy, timeout=timeout)[0]
        elapsed = time.monotonic() - start
        assert status == "timeout" and elapsed <= timeout + MARGIN, (k, status, elapsed)
    assert math_verdict(r"\sqrt{50}", r"5\sqrt{2}", timeout=60)[0] == "ok"  # the pool recovered


def test_a_cold_pool_does_not_stretch_the_timeout():
    # Starting a worker (importing sympy) used to happen before the clock started.
    from rewardkit._math.pool import Pool

    pool = Pool(1)
    try:
        start = time.monotonic()
        reply = pool.run({"g": "7", "p": HEAVY % 110, "o": {}}, timeout=0.5)
        assert reply["s"] == "timeout" and time.monotonic() - start <= 0.5 + MARGIN, reply
        assert pool.run({"g": r"\sqrt{4}", "p": "2", "o": {}}, timeout=60.0)["s"] == "ok"  # it kept loading
    finally:
        pool.close()


def test_a_timeout_about_the_pool_is_not_cached(monkeypatch):
    from rewardkit._math import pool as math_pool

    class NoWorkerInTime:
        def run(self, job, timeout):
            return {"s": "timeout", "r": f"no verdict within {timeout:g} s (every math worker was starting)",
                    "transient": True}

    pair = (r"\sqrt{13}", r"13^{1/2}")
    monkeypatch.setattr(math_pool, "default_pool", NoWorkerInTime)
    assert math_verdict(*pair)[0] == "timeout"
    monkeypatch.undo()
    assert math_verdict(*pair)[0] == "ok"  # asked again, not served from the cache
