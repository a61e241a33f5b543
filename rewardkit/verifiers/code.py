"""CodeTests: run the code in a completion against tests, inside the sandbox.

Two kinds of tests, read from the row's columns:

- stdin/stdout cases (competitive programming): ``inputs`` + ``outputs`` (parallel
  lists), ``tests`` / ``test_cases`` as a list of ``{"input": ..., "output": ...}``, or
  ``input_output`` (APPS: a JSON string with "inputs" and "outputs"). Each case is one
  sandboxed run; its stdout is compared with the expected output (``compare``).
- assert-style tests: ``test`` (HumanEval: code defining ``check(candidate)``) with
  ``entry_point`` (helpers the tests call come from the row's ``prompt``), or
  ``test_list`` (MBPP: assert statements, one test each, after ``test_setup_code``). The
  tests run in a judge process and the code in a separate candidate process that answers
  calls as data (``_harness.py``); a test counts only when the judge writes its random
  per-run token to the result channel, which the candidate cannot reach.

Limits: Python only; the completion's code is taken from fenced blocks (the last one by
default); each run has a wall-clock ``timeout`` (assert-style tests share one run, so a
timeout fails the tests not yet reported). The sandbox's module docstring says what
isolation covers; the harness's says what crosses between the two processes.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from .._component import Verifier, completion_text
from .._score import Score, Status
from ..errors import invalid
from .. import sandbox as _sandbox
from ._harness import CANDIDATE, build_driver, prompt_helpers, read_verdicts

__all__ = ["CodeTests", "extract_code"]

_ALIASES = {"python": {"python", "py", "python3", "py3"}}
_MAX_TESTS = 1000


def extract_code(text: str, *, language: str | None = "python", which: str = "last", fenced_only: bool = True) -> str | None:
    """The code in ``text``: the first or last fenced block tagged ``language``.

    Falls back to untagged blocks, then (``fenced_only=False``) to the whole text. An
    unclosed final fence (a truncated completion) runs to the end. Linear time.
    """
    if not isinstance(text, str):
        return None
    blocks: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = text.find("```", pos)
        if start < 0:
            break
        line_end = text.find("\n", start)
        if line_end < 0:
            break
        tag = text[start + 3 : line_end].strip().lower()
        end = text.find("```", line_end + 1)
        body = text[line_end + 1 : end if end >= 0 else len(text)]
        blocks.append((tag.split()[0] if tag else "", body))
        if end < 0:
            break
        pos = end + 3
    wanted = _ALIASES.get(language or "", {language or ""})
    chosen = [b for t, b in blocks if t in wanted] or [b for t, b in blocks if t == ""]
    if not chosen:
        return None if fenced_only or not text.strip() else text
    code = chosen[-1] if which == "last" else chosen[0]
    return code if code.strip() else None


def _normalize(text: str, compare: str) -> Any:
    if compare == "exact":
        return text
    if compare == "tokens":
        return text.split()
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "\n".join(_as_text(v) for v in value)
    return "" if value is None else str(value)


class CodeTests(Verifier):
    """Run the completion's code against the row's tests in the sandbox.

    ``partial_credit``: score the fraction of tests passed (else 1.0 only if all pass).
    ``language``/``which``/``fenced_only``: see :func:`extract_code`. ``compare``:
    "lines" (trailing whitespace and blank lines ignored), "tokens" or "exact".
    ``timeout``/``memory_mb``: per sandboxed run. ``isolation``: "pool" or "per_run".
    ``plain_results``: in assert-style tests a function must return plain data (instances
    of the candidate's classes cross as handles only from calling the class).
    Construction checks that a sandbox backend works and raises
    :class:`~rewardkit.sandbox.SandboxUnavailable` if not (unless ``allow_unsafe``).
    """

    default_name = "code_tests"
    process_pool = False  # a batch's runs go to the sandbox pool at once (see _score_rows)

    def __init__(
        self,
        *,
        partial_credit: bool = False,
        language: str = "python",
        which: str = "last",
        fenced_only: bool = True,
        compare: str = "lines",
        timeout: float = 10.0,
        memory_mb: int = 1024,
        isolation: str = "pool",
        backend: str = "auto",
        allow_unsafe: bool = False,
        plain_results: bool = True,
        max_tests: int = 100,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if language not in _ALIASES:
            raise invalid("language", language, f"must be one of {sorted(_ALIASES)}")
        if which not in ("first", "last"):
            raise invalid("which", which, 'must be "first" or "last"')
        if compare not in ("lines", "tokens", "exact"):
            raise invalid("compare", compare, 'must be "lines", "tokens" or "exact"')
        if not isinstance(max_tests, int) or not 1 <= max_tests <= _MAX_TESTS:
            raise invalid("max_tests", max_tests, f"must be an int in [1, {_MAX_TESTS}]")
        _sandbox.make_task("", timeout=timeout, memory_mb=memory_mb)  # validates both
        if isolation not in ("pool", "per_run"):
            raise invalid("isolation", isolation, 'must be "pool" or "per_run"')
        self.partial_credit = bool(partial_credit)
        self.language, self.which, self.fenced_only, self.compare = language, which, fenced_only, compare
        self.timeout, self.memory_mb = float(timeout), memory_mb
        self.isolation, self.backend, self.allow_unsafe = isolation, backend, allow_unsafe
        self.plain_results, self.max_tests = plain_results, max_tests
        _sandbox.detect(backend, allow_unsafe=allow_unsafe)  # refuse early, with the reason

    # ------------------------------------------------------------------ planning
    def _plan(self, text: str, columns: Mapping[str, Any]) -> tuple[Score | None, dict]:
        """(early Score, or None and a plan with the tasks to run)."""
        code = extract_code(text, language=self.language, which=self.which, fenced_only=self.fenced_only)
        if code is None:
            return Score.unparseable(reason="no code block found"), {}
        try:
            kind, tests = _read_tests(columns)
        except (ValueError, TypeError, KeyError) as exc:
            return Score.error(reason=f"bad test columns: {exc}"), {}
        if not tests:
            return Score.abstain("no tests given"), {}
        tests = tests[: self.max_tests]
        limits = {"timeout": self.timeout, "memory_mb": self.memory_mb}
        if kind == "stdio":
            tasks = [_sandbox.make_task(code, stdin=_as_text(i), **limits) for i, _ in tests]
            return None, {"kind": kind, "tasks": tasks, "expected": [_as_text(o) for _, o in tests]}
        entry = str(columns.get("entry_point")) if kind == "check" else None
        helpers = [str(columns.get("test_setup_code") or "")] if kind == "asserts" else []
        if kind == "check":
            helpers.append(prompt_helpers(columns.get("prompt"), entry) or "")
        program, stdin, tokens = build_driver(code, tests, entry, self.plain_results, [h for h in helpers if h.strip()])
        task = _sandbox.make_task(
            program, stdin=stdin, channel=True, secret="\n".join(tokens), candidate=CANDIDATE, cache_code=True,
            max_output=1 << 16, **limits,
        )  # fmt: skip
        return None, {"kind": kind, "tasks": [task], "tokens": tokens}

    def _verdict(self, plan: dict, results: list[_sandbox.ExecutionResult]) -> Score:
        if all(r.status == "error" and not r.exit_code and r.reason.startswith(("could not", "no sandbox")) for r in results):
            return Score.error(reason=f"sandbox failure: {results[0].reason}")
        if plan["kind"] == "stdio":
            passed = [
                r.ok and _normalize(r.stdout, self.compare) == _normalize(exp, self.compare)
                for r, exp in zip(results, plan["expected"])
            ]
            statuses = [str(r.status) for r in results]
        else:
            verdicts = read_verdicts(results[0].channel, plan["tokens"])
            passed = [v == "pass" for v, _ in verdicts]
            statuses = [str(results[0].status)] * len(passed)
            crossed = next((i for i, (v, _) in enumerate(verdicts) if v == "cross"), None)
            if crossed is not None:  # the dataset's test needs a value our boundary cannot carry
                why = f"test {crossed}: {verdicts[crossed][1]}"
                return Score.error(reason=why[:300])
            failed = next((f"test {i}: {w}" for i, (v, w) in enumerate(verdicts) if v == "fail"), None)
            plan = {**plan, "why": failed}
        n, k = len(passed), sum(passed)
        value = k / n if self.partial_credit else float(k == n)
        details = {"passed": k, "total": n, "tests": [{"passed": p, "status": s} for p, s in zip(passed, statuses)]}
        answer = f"{k}/{n} tests passed"
        if k == n:
            return Score.ok(value, reason=answer, answer=answer, **details)
        bad = next((r for r in results if not r.ok), None)
        if bad is not None and bad.status == "timeout":
            return Score(value, Status.TIMEOUT, answer, f"{answer}; {bad.reason}", details=details)
        if plan.get("why"):  # the judge's own report, not the candidate's stderr
            why = plan["why"][:200]
        elif bad is not None and plan["kind"] == "stdio" and bad.stderr.strip():
            why = bad.reason + ": " + bad.stderr.strip().splitlines()[-1][:150]
        else:
            why = answer
        return Score.wrong(value, reason=f"{answer}; {why}" if why != answer else answer, answer=answer, **details)

    # ------------------------------------------------------------------ scoring
    def _score(self, text: str, **columns: Any) -> Score:
        return self._score_texts([text], [columns])[0]

    def _pool(self) -> _sandbox.Pool:
        return _sandbox.default_pool(isolation=self.isolation, backend=self.backend, allow_unsafe=self.allow_unsafe)

    def _score_texts(self, texts: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[Score]:
        scores: list[Score | None] = [None] * len(texts)
        plans: list[tuple[int, dict]] = []
        for i, (text, row) in enumerate(zip(texts, rows)):
            early, plan = self._plan(text, row)
            if early is not None:
                scores[i] = early
            else:
                plans.append((i, plan))
        tasks = [t for _, plan in plans for t in plan["tasks"]]
        results = self._pool().run_many(tasks) if tasks else []
        pos = 0
        for i, plan in plans:
            n = len(plan["tasks"])
            scores[i] = self._verdict(plan, results[pos : pos + n])
            pos += n
        return [s if s is not None else Score.error() for s in scores]

    def _score_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        """Every run of the batch goes through the sandbox pool at once (``score_batch``'s
        ``workers`` and ``timeout`` do not apply: each run has this verifier's ``timeout``)."""
        import time

        start = time.perf_counter()
        texts = [completion_text(c) for c in completions]
        try:
            scores = self._score_texts(texts, rows)
        except Exception as exc:  # infrastructure trouble must not crash a training run
            scores = [Score.error(reason=f"{type(exc).__name__}: {exc}"[:200]) for _ in texts]
        per_item = (time.perf_counter() - start) / max(1, len(texts))
        return [s.with_elapsed(per_item) for s in scores]


def _read_tests(columns: Mapping[str, Any]) -> tuple[str, list]:
    """("stdio", [(input, output), ...]) or ("check"|"asserts", [test code, ...])."""
    if columns.get("test") and columns.get("entry_point"):
        return "check", [str(columns["test"])]
    if columns.get("test_list"):
        return "asserts", [str(t) for t in columns["test_list"]]
    if columns.get("inputs") is not None and columns.get("outputs") is not None:
        ins, outs = list(columns["inputs"]), list(columns["outputs"])
        if len(ins) != len(outs):
            raise ValueError(f"{len(ins)} inputs but {len(outs)} outputs")
        return "stdio", list(zip(ins, outs))
    cases = columns.get("tests", columns.get("test_cases"))
    if isinstance(cases, str):
        cases = json.loads(cases)
    if isinstance(cases, Sequence) and not isinstance(cases, str):
        return "stdio", [(c["input"], c["output"]) for c in cases]
    raw = columns.get("input_output")
    if raw:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return "stdio", list(zip(data["inputs"], data["outputs"]))
    return "stdio", []
