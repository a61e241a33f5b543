"""The testing kit's pytest plugin, run the way a user's suite runs it: a fresh pytest
in a subprocess with ``-p rewardkit.testing.pytest_plugin`` (what the ``pytest11`` entry
point does once rewardkit is installed)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USER_TESTS = '''
import pytest
from rewardkit import Verifier


class Sound(Verifier):
    name = "sound"

    def _score(self, text, *, answer=None, **kw):
        return 1.0 if text.strip().endswith(str(answer)) else 0.0


class Crashes(Verifier):
    """Raises on some input: the base class catches it, so the contract still holds."""

    name = "crashes"

    def _score(self, text, **kw):
        raise RuntimeError("boom")


class Flaky:
    """Not a Component: a plain callable that returns a different thing each call."""

    calls = 0

    def score(self, text, **kw):
        from rewardkit import Score
        Flaky.calls += 1
        return Score.ok(float(Flaky.calls % 2))


@pytest.mark.rewardkit_contract(Sound(), columns={"answer": "4"})
def test_sound_marker():
    pass


def test_sound_fixture(rewardkit_contract):
    rewardkit_contract(Sound(), columns={"answer": "4"})


def test_crashes_fixture(rewardkit_contract):
    rewardkit_contract(Crashes())


@pytest.mark.rewardkit_contract(Flaky())
def test_flaky_marker():
    pass


def test_no_hypothesis_unless_a_check_runs():
    import sys
    assert "hypothesis" not in sys.modules or "RK_HYP_OK" in __import__("os").environ
'''


def _pytest(tmp_path, *args, env_extra=None):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "trainer")]), **(env_extra or {})}
    env.pop("REWARDKIT_HYPOTHESIS_PROFILE", None) if not env_extra else None
    # where the pytest11 entry point is installed (`rewardkit`), it is blocked so that the
    # module named here is the one copy: this test runs the same whether installed or not
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-p", "no:rewardkit", "-p", "rewardkit.testing.pytest_plugin", "-o", "addopts=", *args,
                           str(tmp_path / "test_user.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_marker_and_fixture_pass_sound_verifiers_and_fail_broken_ones(tmp_path):
    proc = _pytest(tmp_path, "-k", "not no_hypothesis", "-rA")
    assert "PASSED test_user.py::test_sound_marker" in proc.stdout
    assert "PASSED test_user.py::test_sound_fixture" in proc.stdout
    assert "PASSED test_user.py::test_crashes_fixture" in proc.stdout  # Verifier turns the raise into a status
    assert "FAILED test_user.py::test_flaky_marker" in proc.stdout and "determin" in proc.stdout
    assert proc.returncode == 1


def test_hypothesis_is_not_imported_by_the_plugin_alone(tmp_path):
    proc = _pytest(tmp_path, "-k", "no_hypothesis")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("args, env, ok", [
    (["--rewardkit-profile", "rewardkit-thorough"], None, True),
    ([], {"REWARDKIT_HYPOTHESIS_PROFILE": "rewardkit-thorough"}, True),
    ([], {"REWARDKIT_HYPOTHESIS_PROFILE": "nightly"}, False),
])
def test_profiles(tmp_path, args, env, ok):
    proc = _pytest(tmp_path, "-k", "sound_fixture", *args, env_extra=env)
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    if not ok:
        assert "REWARDKIT_HYPOTHESIS_PROFILE='nightly'" in proc.stdout


def test_the_distribution_declares_the_pytest11_entry_point():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {"rewardkit": "rewardkit.testing.pytest_plugin"}
    assert "hypothesis" not in str(meta["project"]["dependencies"])  # an optional extra only


def test_profiles_draw_their_example_counts():
    from hypothesis import settings

    from rewardkit.testing.pytest_plugin import PROFILES, run_contract

    seen = []

    class Counting:
        def score(self, text, **kw):
            from rewardkit import Score
            seen.append(text)
            return Score.ok(1.0)

    run_contract(Counting(), profile="rewardkit-ci", texts=[])
    ci = len(seen)
    assert settings.get_profile("rewardkit-thorough").max_examples == PROFILES["rewardkit-thorough"] == 500
    assert ci > 0
