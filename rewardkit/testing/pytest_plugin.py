"""The testing kit as a pytest plugin (entry point ``pytest11``: ``rewardkit``).

Run the contract checks (never raises, returns a Score in range, deterministic, bounded
time, same verdict under harmless reformatting; see :mod:`rewardkit.testing.contracts`)
on any verifier or scorer you name, two ways::

    @pytest.mark.rewardkit_contract("math_equivalence", columns={"answer": "42"})
    def test_math_contract():
        pass  # the plugin runs the checks before the body

    def test_mine(rewardkit_contract):
        rewardkit_contract(MyVerifier(), columns={"answer": "7"}, max_seconds=5)

A target is a component object, a registered name (``rewardkit.get``) or ``module:attr``
(a class or factory is called with no arguments). Each run scores the hostile corpus,
then completions drawn by Hypothesis under a profile: ``rewardkit-ci`` (25 examples, the
default) or ``rewardkit-thorough`` (500), chosen with ``--rewardkit-profile`` or the
``REWARDKIT_HYPOTHESIS_PROFILE`` environment variable.

Hypothesis stays optional: this module imports it only when a check runs, so the
auto-loaded plugin costs nothing in a suite that never asks for a contract.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Mapping

import pytest

__all__ = ["PROFILES", "run_contract", "resolve_target"]

PROFILES = {"rewardkit-ci": 25, "rewardkit-thorough": 500}
ENV_VAR = "REWARDKIT_HYPOTHESIS_PROFILE"
MARKER = "rewardkit_contract"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("rewardkit")
    group.addoption("--rewardkit-profile", choices=sorted(PROFILES), default=None,
                    help=f"Hypothesis profile for rewardkit contract checks (default: ${ENV_VAR} or rewardkit-ci)")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", f"{MARKER}(target, columns=None, max_seconds=2.0, "
                                       "invariant_under_formatting=None): run rewardkit's contract checks on a "
                                       "verifier or scorer before the test body")


def _profile(config: Any) -> str:
    chosen = config.getoption("--rewardkit-profile", default=None) or os.environ.get(ENV_VAR) or "rewardkit-ci"
    if chosen not in PROFILES:
        from ..errors import invalid_argument

        raise invalid_argument(ENV_VAR, chosen, f"must be one of {', '.join(sorted(PROFILES))}")
    return chosen


def resolve_target(target: Any) -> Any:
    """A component from an object, a registered name, or ``module:attr``."""
    if not isinstance(target, str):
        return target
    if ":" in target:
        module, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj() if isinstance(obj, type) else obj
    from ..plugins import get

    return get(target)


def run_contract(target: Any, *, profile: str = "rewardkit-ci", columns: Mapping[str, Any] | None = None,
                 max_seconds: float = 2.0, invariant_under_formatting: bool | None = None,
                 texts: Any = None) -> None:
    """The hostile corpus, then Hypothesis completions under ``profile``; raises
    :class:`~rewardkit.testing.ContractViolation` on the first broken contract."""
    from .contracts import check_component, check_text

    component = resolve_target(target)
    check_component(component, texts, columns=columns, max_seconds=max_seconds,
                    invariant_under_formatting=invariant_under_formatting)
    from hypothesis import HealthCheck, given, settings  # only now: hypothesis is an optional extra

    from .strategies import completions

    for name, examples in PROFILES.items():
        settings.register_profile(name, max_examples=examples, deadline=None, derandomize=name == "rewardkit-ci",
                                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

    @settings(settings.get_profile(profile))
    @given(completions())
    def drawn(text: str) -> None:
        check_text(component, text, columns=columns, max_seconds=max_seconds,
                   invariant_under_formatting=invariant_under_formatting)

    drawn()


@pytest.fixture
def rewardkit_contract(request: Any) -> Callable[..., None]:
    """``rewardkit_contract(target, columns=..., max_seconds=..., invariant_under_formatting=...)``."""
    profile = _profile(request.config)

    def check(target: Any, **kwargs: Any) -> None:
        run_contract(target, profile=profile, **kwargs)

    return check


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: Any) -> None:
    for mark in item.iter_markers(name=MARKER):
        if len(mark.args) != 1:
            raise pytest.UsageError(f"{item.nodeid}: @{MARKER} takes one target, got {mark.args!r}")
        run_contract(mark.args[0], profile=_profile(item.config), **mark.kwargs)
