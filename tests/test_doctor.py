"""rewardkit doctor: the known defects of the classic rules, the math rubric's template
echoes (issue 17), statistics, and the command's exit codes."""

from __future__ import annotations

import json

import pytest

from rewardkit import Rubric, get
from rewardkit.cli import main
from rewardkit.doctor import diagnose, honest
from rewardkit.scorers import Format, XMLCount
from rewardkit.verifiers import MathEquivalence

ROWS = [{"question": f"What is {i} times 7?", "answer": str(7 * i)} for i in range(1, 7)]
SAMPLES = [(i, honest(r["answer"])) for i, r in enumerate(ROWS)] + [(i, "I am not sure.") for i in range(6)]


def _checks(report, severity="severe"):
    return {(f.check, f.part) for f in report.findings if f.severity == severity}


def test_classic_rules_show_the_eos_cliff_and_the_regex_without_dotall():
    severe = _checks(diagnose(get("gsm8k_classic"), ROWS, SAMPLES))
    assert ("cliff: eos", "xmlcount") in severe  # 0.001 x length lost when the text ends at </answer>
    assert ("cliff: eos", "strict_format") in severe  # the regex demands a trailing newline
    assert ("cliff: line break", "strict_format") in severe  # no DOTALL: one more line and it fails


def test_corrected_scorers_have_no_cliffs():
    rubric = Rubric({"correct": (MathEquivalence(), 1.0), "strict": (Format(style="strict"), 0.2),
                     "xml": (XMLCount(), 0.2)})
    report = diagnose(rubric, ROWS, SAMPLES)
    assert not [f for f in report.findings if f.check in ("cliff: eos", "cliff: line break")]


def _echo_paying_rubric():
    """What the math rubric was before issue 17: any answer block earns the format reward."""
    def tags(text):
        return 1.0 if "<answer>" in text and "</answer>" in text else 0.0

    return Rubric({"correct": (MathEquivalence(), 1.0), "format": (tags, 0.2)}, name="old_math")


def test_a_rubric_that_pays_for_template_echoes_is_severe():
    severe = {c for c, _ in _checks(diagnose(_echo_paying_rubric(), ROWS, SAMPLES))}
    # a placeholder answer keeps the format reward, several answer blocks (a hedge, or the
    # completion repeated) keep everything
    assert {"hack: placeholder", "hack: several answers", "hack: repeated"} <= severe


def test_the_default_math_rubric_has_nothing_severe_after_issue_17():
    report = diagnose(get("math"), ROWS, SAMPLES)
    assert not report.severe, [f for f in report.findings if f.severity == "severe"]
    # warnings remain by design: lenient Format wants reasoning before the answer
    assert {c for c, _ in _checks(report, "warn") if c.startswith("cliff")} <= {"cliff: tag order"}


def _strict_answer_rubric(gate_correct=True):
    """The math rubric once template echoes earn nothing (issue 17): the format part pays
    nothing for a placeholder, several answer blocks or text after the block; with
    ``gate_correct`` the correctness part is gated too."""
    verifier, fmt = MathEquivalence(), Format(style="lenient")

    def gated(completions, answer, **kw):
        out = []
        for text in completions:
            body = text.split("<answer>")[-1].split("</answer>")[0].strip() if "<answer>" in text else ""
            ok = text.count("<answer>") == 1 and body not in ("", "...") and text.rstrip().endswith("</answer>")
            out.append(1.0 if ok else 0.0)
        return out

    def correct(completions, answer, **kw):
        gates = gated(completions, answer) if gate_correct else [1.0] * len(completions)
        return [s.value * g for s, g in zip(verifier.score_batch(completions, answer=answer), gates)]

    def form(completions, answer, **kw):
        return [s.value * g for s, g in zip(fmt.score_batch(completions), gated(completions, answer))]

    return Rubric({"correct": (correct, 1.0), "format": (form, 0.2)}, name="fixed")


@pytest.mark.parametrize("gate_correct", [True, False])
def test_a_rubric_that_pays_nothing_for_echoes_has_nothing_severe(gate_correct):
    report = diagnose(_strict_answer_rubric(gate_correct), ROWS, SAMPLES)
    assert not report.severe
    if not gate_correct:  # a hedge keeps the correctness part and loses the format reward: visible
        assert ("hack: several answers", None) in _checks(report, "warn")


def test_statistics_zero_variance_dominance_and_correlation():
    rows = ROWS[:3]
    same = [(i, "no answer") for i in range(3) for _ in range(4)]
    report = diagnose(get("math"), rows, same)
    assert report.zero_variance_share == 1.0
    assert any(f.check == "zero variance" for f in report.findings)
    assert report.parts["correct"]["mean"] == 0.0 and report.parts["correct"]["variance"] == 0.0
    mixed = diagnose(get("math"), ROWS, SAMPLES)
    assert mixed.zero_variance_share == 0.0
    assert mixed.correlations[("correct", "format")] == pytest.approx(1.0)
    assert any(f.check == "dominant part" and f.part == "correct" for f in mixed.findings)


def _files(tmp_path, completions):
    data, comps = tmp_path / "rows.jsonl", tmp_path / "c.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    comps.write_text("".join(json.dumps({"row": i, "completion": c}) + "\n" for i, c in completions))
    return str(data), str(comps)


def test_the_command_prints_a_table_and_exits_3_on_severe(tmp_path, capsys):
    data, comps = _files(tmp_path, SAMPLES)
    assert main(["doctor", "gsm8k_classic", "--data", data, "--completions", comps]) == 3
    out = capsys.readouterr().out
    assert "part" in out and "variance" in out and "SEVERE  cliff: eos" in out


def test_the_command_exits_0_without_severe_findings(tmp_path, capsys, monkeypatch):
    import sys
    import types

    module = types.ModuleType("rk_doctor_fixed")
    module.rubric = _strict_answer_rubric()
    monkeypatch.setitem(sys.modules, "rk_doctor_fixed", module)
    data, comps = _files(tmp_path, SAMPLES)
    assert main(["doctor", "rk_doctor_fixed:rubric", "--data", data, "--completions", comps, "--json"]) == 0
    assert not [f for f in json.loads(capsys.readouterr().out)["findings"] if f["severity"] == "severe"]


@pytest.mark.parametrize("lines, why", [
    ([{"row": 99, "completion": "x"}], "row=99"),
    ([{"completion": "x"}], "1 completions for 6 rows"),
    ([{"row": 0}], "'completion' key"),
])
def test_bad_completion_files_are_one_line_errors(tmp_path, capsys, lines, why):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    comps = tmp_path / "c.jsonl"
    comps.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["doctor", "math", "--data", str(data), "--completions", str(comps)]) == 1
    assert why in capsys.readouterr().err


def test_hostile_completions_never_break_the_doctor():
    from rewardkit.testing import HOSTILE_SAMPLES

    samples = [(i % len(ROWS), t) for i, t in enumerate(HOSTILE_SAMPLES[:12])]
    report = diagnose(get("math"), ROWS, samples)
    assert set(report.parts) == {"correct", "format"}
