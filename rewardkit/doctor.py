"""``rewardkit doctor``: find a rubric's blind spots on sample completions before a run.

``diagnose(rubric, rows, completions)`` scores the sample completions (each tied to a
dataset row; completions of one row form a GRPO group) and probes the rubric with edits
of completions built from each row's gold answer. It reports:

- per part: weight, mean, variance, share of None;
- the share of groups whose totals have zero variance (no learning signal);
- parts that dominate the total (a weighted part carrying >= 80% of the total's variance);
- correlation between parts (|r| >= 0.95: two parts measure one thing);
- cliffs: the reward moving on a one-token edit of a well-formed completion that a model
  makes all the time: ending with or without a newline at EOS, one more line break in
  the reasoning, and swapping the reasoning and answer blocks (tag order);
- known hacks, the testing kit's adversarial shapes: an empty or placeholder answer
  (the template echoed), the correct completion repeated, the answer only in the
  reasoning (no answer block), and several answer blocks (a wrong one, then the gold).

Cliffs are probed from two starts, the honest completion ending right at the closing tag
(EOS) and with one trailing newline. Severity: ``severe`` findings make ``rewardkit
doctor`` exit with status 3. Severe are an EOS or line-break cliff on a weighted part (it
moves by >= 25% of that part's largest value), an empty or placeholder answer with a
positive total, and a repeated, reasoning-only or several-answer completion scoring as
much as the honest one (>= half of it: warn; a hedge that still earns the correctness
part but loses the format reward is visible, not severe). Tag order,
dominance, correlation and zero-variance groups are ``warn``.
Limits: the honest completion uses the ``<reasoning>``/``<answer>`` layout (``--reasoning-tag``,
``--answer-tag``); a rubric built for another layout sees every probe as wrong, and the
hack checks then say nothing. Scores are deterministic; nothing here samples a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ._component import completion_text

__all__ = ["Finding", "Report", "diagnose", "CLIFF_SHARE", "PLACEHOLDER"]

CLIFF_SHARE = 0.25  # a part moving by this share of its scale on a harmless edit is a cliff
DOMINANT_SHARE = 0.8
CORRELATED = 0.95
ZERO_VARIANCE_WARN = 0.5
PLACEHOLDER = "..."  # what the usual system prompt shows inside the answer tags
# one line of realistic length: a multi-line reasoning would hide a regex without DOTALL
# (the line-break probe adds the second line), and a short one would hide a penalty that
# grows with length (the classic xmlcount at EOS)
_HONEST_REASONING = ("First I read the question carefully, then I set up the arithmetic, carry out each "
                     "operation in order, and check the result against the question once more before "
                     "writing the final answer below.")


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # "severe" | "warn" | "info"
    message: str
    part: str | None = None


@dataclass
class Report:
    rubric: str
    parts: dict[str, dict[str, float | None]]
    zero_variance_share: float | None
    correlations: dict[tuple[str, str], float]
    findings: list[Finding] = field(default_factory=list)

    @property
    def severe(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "severe"]

    def table(self) -> str:
        rows = [["part", "weight", "mean", "variance", "none"]]
        for name, s in self.parts.items():
            rows.append([name, _fmt(s["weight"]), _fmt(s["mean"]), _fmt(s["variance"]), _fmt(s["none_share"], pct=True)])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"rubric {self.rubric!r}"]
        lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        lines.append(f"zero-variance groups: {_fmt(self.zero_variance_share, pct=True)}")
        if self.correlations:
            lines.append("correlation: " + ", ".join(f"{a}~{b} {_fmt(r)}" for (a, b), r in self.correlations.items()))
        lines.append("")
        if not self.findings:
            lines.append("no findings")
        for f in sorted(self.findings, key=lambda f: ("severe", "warn", "info").index(f.severity)):
            lines.append(f"{f.severity.upper():6}  {f.check:14}  {f.message}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"rubric": self.rubric, "parts": self.parts, "zero_variance_share": self.zero_variance_share,
                "correlations": {f"{a}~{b}": r for (a, b), r in self.correlations.items()},
                "findings": [vars(f) for f in self.findings]}


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.0f}%" if pct else f"{x:.3f}"


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _var(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs) / len(xs)


def _corr(a: Sequence[float], b: Sequence[float]) -> float | None:
    va, vb = _var(a), _var(b)
    if va <= 1e-12 or vb <= 1e-12:
        return None
    ma, mb = _mean(a), _mean(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / len(a) / math.sqrt(va * vb)


def honest(answer: str, reasoning_tag: str = "reasoning", answer_tag: str = "answer") -> str:
    """A well-formed completion with ``answer``, ending right at the closing tag (as at EOS)."""
    return (f"<{reasoning_tag}>\n{_HONEST_REASONING}\n</{reasoning_tag}>\n"
            f"<{answer_tag}>\n{answer}\n</{answer_tag}>")


def _cliffs(text: str, reasoning_tag: str, answer_tag: str) -> dict[str, str]:
    """One-token edits a model makes all the time; each should leave the reward alone
    (tag order is reported, not judged severe: a format rule may want the order)."""
    eos = text[:-1] if text.endswith("\n") else text + "\n"
    close = f"\n</{reasoning_tag}>"
    linebreak = text.replace(close, "\n" + close, 1) if close in text else text
    r_block = text[text.find(f"<{reasoning_tag}>"): text.find(f"</{reasoning_tag}>") + len(f"</{reasoning_tag}>")]
    a_block = text[text.find(f"<{answer_tag}>"): text.find(f"</{answer_tag}>") + len(f"</{answer_tag}>")]
    swapped = f"{a_block}\n{r_block}" if r_block and a_block else text
    return {"eos": eos, "line break": linebreak, "tag order": swapped}


def _hacks(answer: str, reasoning_tag: str, answer_tag: str) -> dict[str, str]:
    good = honest(answer, reasoning_tag, answer_tag)
    wrong = _wrong(answer)
    return {
        "empty answer": honest("", reasoning_tag, answer_tag),
        "placeholder": f"<{reasoning_tag}>\n{PLACEHOLDER}\n</{reasoning_tag}>\n<{answer_tag}>\n{PLACEHOLDER}\n</{answer_tag}>",
        "repeated": good + "\n" + good,
        "reasoning only": f"<{reasoning_tag}>\nThe answer is {answer}.\n</{reasoning_tag}>",
        "several answers": (f"<{reasoning_tag}>\n{_HONEST_REASONING}\n</{reasoning_tag}>\n"
                            f"<{answer_tag}>\n{wrong}\n</{answer_tag}>\n<{answer_tag}>\n{answer}\n</{answer_tag}>"),
    }


def _wrong(answer: str) -> str:
    try:
        return str(int(answer.strip()) + 1)
    except ValueError:
        return "0" if answer.strip() != "0" else "1"


def diagnose(rubric: Any, rows: Sequence[dict[str, Any]], completions: Sequence[tuple[int, Any]], *,
             answer_column: str = "answer", reasoning_tag: str = "reasoning", answer_tag: str = "answer",
             max_probe_rows: int = 16) -> Report:
    """The doctor's report. ``completions`` are ``(row index, completion)`` pairs."""
    names = [p.name for p in rubric.parts]
    weights = {p.name: float(p.weight) for p in rubric.parts}
    columns = {k: [rows[i].get(k) for i, _ in completions] for k in {k for r in rows for k in r if k != "prompt"}}
    results = rubric.score_batch([c for _, c in completions],
                                 prompts=[rows[i].get("prompt") for i, _ in completions], **columns) if completions else []
    report = Report(getattr(rubric, "name", "rubric"), {}, None, {})
    values = {n: [r.parts[n].value for r in results] for n in names}
    for n in names:
        got = [float(v) for v in values[n] if v is not None]
        report.parts[n] = {"weight": weights[n], "mean": _mean(got) if got else None,
                           "variance": _var(got) if got else None,
                           "none_share": 1 - len(got) / len(results) if results else None}
    _signal(report, rubric, results, completions, names, weights, values)
    _probe(report, rubric, rows[:max_probe_rows], names, weights, answer_column, reasoning_tag, answer_tag)
    return report


def _signal(report: Report, rubric: Any, results: Sequence[Any], completions: Sequence[tuple[int, Any]],
            names: list[str], weights: dict[str, float], values: dict[str, list[Any]]) -> None:
    groups: dict[int, list[float]] = {}
    for (i, _), r in zip(completions, results):
        groups.setdefault(i, []).append(float(r.total or 0.0))
    sized = [g for g in groups.values() if len(g) >= 2]
    if sized:
        report.zero_variance_share = sum(_var(g) <= 1e-12 for g in sized) / len(sized)
        if report.zero_variance_share >= ZERO_VARIANCE_WARN:
            report.findings.append(Finding("zero variance", "warn", f"{report.zero_variance_share:.0%} of "
                                           f"{len(sized)} groups have one reward for every completion: no learning signal"))
    filled = {n: [float(v) if v is not None else 0.0 for v in values[n]] for n in names}
    spread = {n: weights[n] ** 2 * _var(filled[n]) for n in names if filled[n]}
    total = sum(spread.values())
    if len([n for n in spread if weights[n]]) >= 2 and total > 1e-12:
        for n, s in spread.items():
            if s / total >= DOMINANT_SHARE:
                report.findings.append(Finding("dominant part", "warn", f"part {n!r} carries {s / total:.0%} of the "
                                               "total's variance: the other parts barely move the advantage", n))
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            r = _corr(filled[a], filled[b]) if len(filled[a]) >= 3 else None
            if r is None:
                continue
            report.correlations[(a, b)] = r
            if abs(r) >= CORRELATED:
                report.findings.append(Finding("correlation", "warn", f"parts {a!r} and {b!r} correlate at {r:.2f}: "
                                               "they measure one thing, and its weight counts twice"))


def _probe(report: Report, rubric: Any, rows: Sequence[dict[str, Any]], names: list[str], weights: dict[str, float],
           answer_column: str, reasoning_tag: str, answer_tag: str) -> None:
    cliff_hits: dict[tuple[str, str], list[float]] = {}
    hack_hits: dict[str, list[tuple[float, float]]] = {}
    scale = {n: 0.0 for n in names}
    probes: list[tuple[str, str, Any, dict[str, Any], float | None, dict[str, float]]] = []
    for row in rows:
        answer = completion_text(row.get(answer_column))
        if not answer:
            continue
        cols = {k: v for k, v in row.items() if k != "prompt"}
        good = honest(answer, reasoning_tag, answer_tag)
        best = None
        for start in (good, good + "\n"):  # at EOS, and with the newline a model may add
            base = rubric.score(start, row.get("prompt"), **cols)
            base_vals = {n: float(base.parts[n].value or 0.0) for n in names}
            for edit, text in _cliffs(start, reasoning_tag, answer_tag).items():
                probes.append(("cliff", edit, text, row.get("prompt"), cols, base.total, base_vals))
            for n in names:
                scale[n] = max(scale[n], abs(base_vals[n]))
            best = base.total if best is None or (base.total or 0) > (best or 0) else best
        for hack, text in _hacks(answer, reasoning_tag, answer_tag).items():
            probes.append(("hack", hack, text, row.get("prompt"), cols, best, {}))
    for kind, label, text, prompt, cols, base_total, base_vals in probes:
        got = rubric.score(text, prompt, **cols)  # with the prompt, as the baseline was scored
        vals = {n: float(got.parts[n].value or 0.0) for n in names}
        for n in names:
            scale[n] = max(scale[n], abs(vals[n]))
        if kind == "cliff":
            for n in names:
                cliff_hits.setdefault((label, n), []).append(abs(vals[n] - base_vals[n]))
        else:
            hack_hits.setdefault(label, []).append((float(got.total or 0.0), float(base_total or 0.0)))
    for (edit, n), deltas in cliff_hits.items():
        worst = max(deltas)
        if worst < CLIFF_SHARE * (scale[n] or 1.0) or worst < 1e-9:
            continue
        share = sum(d >= CLIFF_SHARE * (scale[n] or 1.0) for d in deltas) / len(deltas)
        severity = "warn" if edit == "tag order" or not weights[n] else "severe"
        why = {"eos": "ending with or without a newline at EOS", "line break": "one more line break in the reasoning",
               "tag order": "answer block before the reasoning block"}[edit]
        report.findings.append(Finding(f"cliff: {edit}", severity, f"part {n!r} moves by up to {worst:.3f} "
                                       f"(scale {scale[n]:.3f}) on {why}, in {share:.0%} of probes", n))
    for hack, pairs in hack_hits.items():
        worst_total, honest_total = max(pairs)
        if hack in ("empty answer", "placeholder"):  # nothing in them deserves any reward
            severity = "severe" if worst_total > 1e-9 else None
        else:  # repeated / reasoning only / several answers: a hack when it loses nothing against the honest form
            severity = ("severe" if honest_total > 0 and worst_total >= honest_total - 1e-9 else
                        "warn" if honest_total > 0 and worst_total >= 0.5 * honest_total else None)
        if severity:
            report.findings.append(Finding(f"hack: {hack}", severity, f"scores {worst_total:.3f} (an honest "
                                           f"correct completion scores {honest_total:.3f})"))
