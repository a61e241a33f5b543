"""Contract checks for any verifier or scorer: run them in your own test suite.

``check_component(component)`` scores a built-in corpus of hostile completions (1 MB
strings, odd unicode, lone surrogates, unbalanced braces and tags, deeply nested boxes,
huge numbers) plus any ``texts`` you give, and asserts for each that the component

1. never raises, 2. returns a :class:`~rewardkit.Score`, 3. gives a value inside its
declared ``range`` or None (and None only with a non-verdict status), 4. is deterministic
(same status and value twice), 5. answers within ``max_seconds``, and 6. when
``invariant_under_formatting`` holds (default: verifiers yes, scorers no, since a format
or length scorer legitimately sees whitespace), gives the same verdict after harmless
reformatting: surrounding whitespace, a trailing newline, CRLF line ends, an extra blank
line.

The corpus also holds ``HOSTILE_VALUES``, non-strings where a completion belongs (None,
an int past ``str()``'s digit limit, nan, bytes, a list nested 5,000 deep, chat messages
with odd content, a :class:`Raising` object whose dunders raise): for those only checks
1-3 and 5 apply.

Every failure is collected and reported at once in a :class:`ContractViolation`
(an ``AssertionError``, so pytest shows it as a plain test failure). This module does
not import hypothesis; the strategies live in ``rewardkit.testing.strategies``.
Limits: time is wall-clock on the calling machine, so a loaded CI box needs a generous
``max_seconds``; a component with its own internal timeout is exempt from the
determinism check on items where it reported ``timeout``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Mapping

from .._score import Score, Status

__all__ = [
    "ContractViolation",
    "HOSTILE_SAMPLES",
    "HOSTILE_VALUES",
    "Raising",
    "deeply_nested",
    "harmless_variants",
    "check_component",
    "check_text",
    "contract_failures",
]

_MB = 1 << 20
_BIG = _MB // 8  # some samples are 1 MB, some 128 KB: enough to expose quadratic work

HOSTILE_SAMPLES: tuple[str, ...] = (
    "",
    " ",
    "\n\n\n",
    "\x00",
    "\ufeff\u200b\u200d\u2028\u2029",
    "\ud800 lone surrogate \udfff",
    "\u202eRTL override 42\u202c",
    "Ｆｕｌｌｗｉｄｔｈ　４２",
    "e\u0301" * 1000 + " combining marks",
    "🙂" * 5000,
    "a" * _MB,
    "{" * _BIG,
    "}" * _BIG,
    "\\boxed{" * 10000 + "1" + "}" * 10000,
    "\\boxed{" * 50000,
    "\\boxed{\\boxed{\\boxed{2}}}",
    "\\fbox{" + "{" * 3000 + "3",
    "<answer>" * 50000,
    "</answer>" * 50000,
    "<reasoning><answer><reasoning></answer>",
    "<answer>\n" + "9" * 100_000 + "\n</answer>",
    "<answer>1e999999</answer>",
    "<answer>" + "(" * 5000 + "1" + ")" * 5000 + "</answer>",
    "<answer>\\frac{" * 2000 + "</answer>",
    "<answer>nan</answer> <answer>inf</answer> <answer>-0</answer>",
    "<answer>1/0</answer>",
    "<answer>__import__('os').system('echo hi')</answer>",
    "#### " + "1," * 100_000,
    "The answer is " + "0." * 50_000,
    "a" * 50_000 + "!",
    "x" * (_MB - 40) + "<answer>\n42\n</answer>",
    "\\boxed{" + "x^" * 20_000 + "2}",
    "```python\nwhile True: pass\n```",
)


class Raising:
    """A hostile object: each dunder named in ``raising`` raises ``RuntimeError``."""

    DUNDERS = ("__str__", "__repr__", "__format__", "__eq__", "__hash__", "__bool__", "__len__",
               "__iter__", "__getitem__", "__reduce__")

    def __init__(self, raising: frozenset[str] | None = None) -> None:
        self.raising = frozenset(self.DUNDERS if raising is None else raising)

    def _check(self, name: str) -> None:
        if name in self.raising:
            raise RuntimeError(f"hostile {name}")

    def __str__(self) -> str:
        self._check("__str__")
        return "42"

    def __repr__(self) -> str:
        self._check("__repr__")
        return f"Raising({sorted(self.raising)!r})"

    def __format__(self, spec: str) -> str:
        self._check("__format__")
        return "42"

    def __eq__(self, other: object) -> bool:
        self._check("__eq__")
        return self is other

    def __hash__(self) -> int:
        self._check("__hash__")
        return id(self)

    def __bool__(self) -> bool:
        self._check("__bool__")
        return True

    def __len__(self) -> int:
        self._check("__len__")
        return 1

    def __iter__(self) -> Any:
        self._check("__iter__")
        return iter(["42"])

    def __getitem__(self, key: Any) -> Any:
        self._check("__getitem__")
        return "42"

    def __reduce__(self) -> Any:
        self._check("__reduce__")
        return (Raising, (self.raising,))


def deeply_nested(depth: int, kind: str = "list") -> Any:
    """``"1"`` inside ``depth`` lists, dicts (``{"content": ...}``) or chat messages."""
    value: Any = "1"
    for _ in range(depth):
        if kind == "list":
            value = [value]
        elif kind == "dict":
            value = {"content": value}
        else:
            value = [{"role": "assistant", "content": value}]
    return value


HOSTILE_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    10**5000,
    float("nan"),
    float("inf"),
    b"\xff\xfe<answer>42</answer>",
    Raising(),
    deeply_nested(5000, "list"),
    deeply_nested(5000, "dict"),
    deeply_nested(2000, "chat"),
    [{"role": "assistant", "content": Raising()}],
    [{"role": "assistant", "content": [{"type": "text", "text": 10**5000}, None, Raising()]}],
    {"role": Raising(), "content": b"42"},
)


class ContractViolation(AssertionError):
    """One or more contract checks failed; ``failures`` lists them."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = list(failures)
        head = f"{len(failures)} contract failure(s):"
        super().__init__("\n".join([head, *("- " + f for f in failures[:50])]))


def harmless_variants(text: str) -> list[str]:
    """Reformattings that must not change a verifier's verdict (the original excluded)."""
    variants = [
        f"  {text}  ",
        text + "\n",
        text.replace("\r\n", "\n").replace("\n", "\r\n"),
        text.replace("\n", "\n\n", 1) if "\n" in text else "\n" + text,
    ]
    return [v for v in dict.fromkeys(variants) if v != text]


def _short(text: Any) -> str:
    if not isinstance(text, str):
        return f"a {type(text).__name__}"
    shown = text[:60].encode("unicode_escape", "backslashreplace").decode("ascii")
    return repr(shown + ("..." if len(text) > 60 else "")) + f" ({len(text)} chars)"


def _run(component: Any, text: str, columns: Mapping[str, Any]) -> tuple[Any, float, str | None]:
    start = time.perf_counter()
    try:
        result = component.score(text, **columns)
    except BaseException as exc:  # noqa: BLE001 - the point is to catch anything
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        try:
            return None, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:200]
        except Exception:  # the exception's own __str__ raised
            return None, time.perf_counter() - start, type(exc).__name__
    return result, time.perf_counter() - start, None


def _verdict(score: Score) -> str:
    value = None if score.value is None else round(score.value, 9)
    return f"{score.status.value} {value}"


def _single(component: Any, text: str, columns: Mapping[str, Any], max_seconds: float) -> tuple[list[str], Score | None]:
    failures: list[str] = []
    where = _short(text)
    result, seconds, error = _run(component, text, columns)
    if error:
        return [f"raised {error} on {where}"], None
    if not isinstance(result, Score):
        return [f"returned {type(result).__name__}, not Score, on {where}"], None
    if seconds > max_seconds:
        failures.append(f"took {seconds:.2f} s > max_seconds={max_seconds:g} on {where}")
    lo, hi = getattr(component, "range", (-math.inf, math.inf))
    if result.value is not None and not (lo - 1e-9 <= result.value <= hi + 1e-9):
        failures.append(f"value {result.value!r} outside the declared range [{lo}, {hi}] on {where}")
    if result.value is None and result.status in (Status.OK, Status.WRONG):
        failures.append(f"value None with status {result.status.value!r} (use abstain) on {where}")
    return failures, result


def contract_failures(
    component: Any,
    texts: Iterable[str] | None = None,
    *,
    columns: Mapping[str, Any] | None = None,
    max_seconds: float = 2.0,
    invariant_under_formatting: bool | None = None,
    hostile: bool = True,
) -> list[str]:
    """The list of contract failures (empty when all hold); never raises on them."""
    columns = dict(columns or {})
    if invariant_under_formatting is None:
        invariant_under_formatting = getattr(component, "kind", "") == "verifier"
    corpus = list(HOSTILE_SAMPLES if hostile else ()) + list(texts or ())
    failures: list[str] = []
    for text in corpus:
        if not isinstance(text, str):
            failures += _single(component, text, columns, max_seconds)[0]
            continue
        failures += _text_failures(component, text, columns, max_seconds, invariant_under_formatting)
    for value in HOSTILE_VALUES if hostile else ():
        failures += _single(component, value, columns, max_seconds)[0]
    return failures


def _text_failures(
    component: Any, text: str, columns: Mapping[str, Any], max_seconds: float, formatting: bool
) -> list[str]:
    failures, first = _single(component, text, columns, max_seconds)
    if first is None:
        return failures
    again, second = _single(component, text, columns, max_seconds)
    failures += [f for f in again if f not in failures]
    if second is not None and Status.TIMEOUT not in (first.status, second.status):
        if _verdict(first) != _verdict(second):
            failures.append(
                f"not deterministic: {_verdict(first)} then {_verdict(second)} on {_short(text)}"
            )
    if formatting and first.status is not Status.TIMEOUT:
        for variant in harmless_variants(text):
            more, other = _single(component, variant, columns, max_seconds)
            failures += more
            if other is not None and other.status is not Status.TIMEOUT and _verdict(other) != _verdict(first):
                failures.append(
                    f"verdict changed under harmless reformatting: {_verdict(first)} on {_short(text)} "
                    f"but {_verdict(other)} on {_short(variant)}"
                )
    return failures


def check_component(
    component: Any,
    texts: Iterable[str] | None = None,
    *,
    columns: Mapping[str, Any] | None = None,
    max_seconds: float = 2.0,
    invariant_under_formatting: bool | None = None,
    hostile: bool = True,
) -> None:
    """Assert every contract on the hostile corpus plus ``texts``; raise
    :class:`ContractViolation` listing all failures. ``columns`` go to every call
    (say ``{"answer": "42"}``)."""
    failures = contract_failures(
        component,
        texts,
        columns=columns,
        max_seconds=max_seconds,
        invariant_under_formatting=invariant_under_formatting,
        hostile=hostile,
    )
    if failures:
        raise ContractViolation(failures)


def check_text(
    component: Any,
    text: str,
    *,
    columns: Mapping[str, Any] | None = None,
    max_seconds: float = 2.0,
    invariant_under_formatting: bool | None = None,
) -> Score:
    """Assert the contract on one text (for use under ``@given``); returns the Score."""
    check_component(
        component,
        [text],
        columns=columns,
        max_seconds=max_seconds,
        invariant_under_formatting=invariant_under_formatting,
        hostile=False,
    )
    return component.score(text, **dict(columns or {}))
