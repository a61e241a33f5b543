"""The ``rewardkit`` command, in-process through ``main([...])`` and as a subprocess."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit import plugins
from rewardkit.cli import Progress, main, read_rows, split_rows

ROOT = Path(__file__).resolve().parents[1]

RUBRIC_MODULE = '''
from rewardkit import Rubric, Scorer, Score


class HasAnswer(Scorer):
    def _score(self, text, answer=None, **columns):
        if answer is None:
            return None
        return Score.ok(1.0) if str(answer) in text else Score.wrong(0.0, reason="no answer")


def short(text):
    return len(text) < 20


rubric = Rubric({"has_answer": (HasAnswer(), 1.0), "short": (short, 0.5)}, name="toy")


def make(weight=1.0):
    return Rubric({"has_answer": (HasAnswer(), weight)}, name="made")


def build(*, weight=1.0, **more):
    return Rubric({"has_answer": (HasAnswer(**more), weight)}, name="built")


def reward(prompts=None, completions=None, **kwargs):
    return [float("!" in c) for c in completions]


not_callable = 42
'''


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardkit.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    plugins.reload()
    saved_path = list(sys.path)  # main() puts the current directory on sys.path, like `python -m`
    yield
    sys.path[:] = saved_path
    sys.modules.pop("rk_cli_rubrics", None)
    plugins.reload()


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder with a rubric module and an input file; the current directory."""
    (tmp_path / "rk_cli_rubrics.py").write_text(RUBRIC_MODULE)
    rows = [
        {"prompt": "2+2?", "completion": "it is 4", "answer": "4"},
        {"completion": [{"role": "assistant", "content": "I think 5, which is a long sentence"}], "answer": "4"},
        {"completion": "no idea!", "answer": "7", "extra": {"nested": True}},
        {"completion": "", "note": "no answer column"},
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("rewardkit: error: ")
    assert "Traceback" not in err
    return lines[0]


# listing ------------------------------------------------------------------------------


def test_list_prints_a_table_of_builtins(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["name", "kind", "distribution"]
    assert "math_equivalence  verifier  rewardkit" in out


def test_list_kind_json(capsys):
    assert main(["list", "--kind", "rubric", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {"math", "gsm8k_classic"} <= set(found)
    assert all(info["kind"] == "rubric" for info in found.values())


def test_list_rejects_unknown_kind(capsys):
    with pytest.raises(SystemExit) as info:
        main(["list", "--kind", "scorers"])
    assert info.value.code == 2


def test_plugins_prints_json():
    out = run_cli("plugins")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    ours = next(p for p in listed if p["distribution"] == "rewardkit")
    assert ours["version"] and "math" in ours["registers"]["rubric"] and ours["error"] is None


# scoring ------------------------------------------------------------------------------


def test_score_module_attr_writes_results_and_a_summary(work, capsys):
    assert main(["score", "--rubric", "rk_cli_rubrics:rubric", "--input", "in.jsonl", "--output", "out.jsonl"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    assert records[0]["parts"]["has_answer"]["status"] == "ok" and records[0]["total"] == 1.5
    assert records[1]["parts"]["has_answer"]["status"] == "wrong" and records[1]["total"] == 0.0
    assert records[3]["parts"]["has_answer"]["status"] == "abstain"
    table = captured.out.splitlines()
    assert table[0].split() == ["part", "weight", "mean", "std", "zeros", "ok", "wrong", "unparseable",
                                "timeout", "error", "abstain"]
    has_answer = next(line.split() for line in table if line.startswith("has_answer"))
    # 1 right, 2 wrong, 1 abstained: mean and zeros over the 3 values, statuses over all 4
    assert has_answer[1:] == ["1.000", "0.333", "0.471", "67%", "25%", "50%", "0%", "0%", "0%", "25%"]
    assert any(line.startswith("total") for line in table)
    assert "scored 4 completion(s)" in captured.err


def test_score_to_stdout_prints_only_json_lines(work, capsys):
    assert main(["score", "--rubric", "rk_cli_rubrics:rubric", "--input", "in.jsonl", "--output", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(json.loads(line)["parts"] for line in lines)


@pytest.mark.parametrize(
    "spec, extra, expected_parts",
    [
        ("rk_cli_rubrics:make", [], {"has_answer"}),  # zero-argument factory
        ("rk_cli_rubrics:make", ["--set", "weight=2"], {"has_answer"}),
        ("rk_cli_rubrics:build", [], {"has_answer"}),  # keyword-only factory with **options
        ("rk_cli_rubrics:build", ["--set", "weight=2", "--set", "name=renamed"], {"has_answer"}),
        ("rk_cli_rubrics:reward", [], {"reward"}),  # a TRL reward function, wrapped
        ("rk_cli_rubrics:HasAnswer", [], {"has_answer"}),  # a component class
    ],
)
def test_score_accepts_rubrics_factories_and_reward_functions(work, capsys, spec, extra, expected_parts):
    assert main(["score", "--rubric", spec, "--input", "in.jsonl", "--output", "-", *extra]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(records[0]["parts"]) == expected_parts
    if extra:
        assert records[0]["total"] == 2.0


def test_score_registered_scorer_from_a_plugin(work, capsys):
    plugins.add_plugin(_ShoutPlugin(), name="shout-plugin")
    assert main(["score", "--rubric", "shout", "--input", "in.jsonl", "--output", "-"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["total"] for r in records] == [0.0, 0.0, 0.0, 0.0]
    assert list(records[0]["parts"]) == ["shout"]


class _ShoutPlugin:
    from rewardkit.plugins import hookimpl

    @hookimpl
    def register_scorers(self, register):
        from rewardkit import Scorer

        class Shout(Scorer):
            def _score(self, text, **columns):
                return text.isupper()

        register("shout", Shout)


def test_score_with_workers_matches_in_process(work):
    base = run_cli("score", "--rubric", "rk_cli_rubrics:rubric", "--input", "in.jsonl", "--output", "-", cwd=work)
    pooled = run_cli("score", "--rubric", "rk_cli_rubrics:rubric", "--input", "in.jsonl", "--output", "-",
                     "--workers", "2", "--timeout", "30", cwd=work)
    assert base.returncode == 0 and pooled.returncode == 0, pooled.stderr
    totals = lambda out: [json.loads(line)["total"] for line in out.stdout.splitlines()]  # noqa: E731
    assert totals(base) == totals(pooled) == [1.5, 0.0, 0.5, 0.5]  # the last: has_answer abstains, short counts


def test_progress_bar_draws_and_tallies():
    stream = io.StringIO()
    bar = Progress(4, stream, enabled=True, width=8)
    bar.update(2)
    bar.update(2)
    bar.close()
    text = stream.getvalue()
    assert "\rscoring [####----] 2/4" in text and "[########] 4/4" in text
    assert text.endswith("scored 4 completion(s) in " + text.rsplit(" in ", 1)[1])


def test_read_rows_and_split_rows(work):
    rows = read_rows("in.jsonl")
    completions, prompts, columns = split_rows(rows)
    assert len(completions) == 4 and prompts == ["2+2?", None, None, None]
    assert columns["answer"] == ["4", "4", "7", None] and columns["note"][3] == "no answer column"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({"completion": st.text(max_size=50)},
                                      optional={"prompt": st.text(max_size=10), "answer": st.integers()}),
                max_size=5))
def test_read_rows_round_trips_any_rows(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_rows(str(path)) == rows
    completions, prompts, columns = split_rows(rows)
    assert completions == [r["completion"] for r in rows]
    assert all(len(v) == len(rows) for v in columns.values())


def test_huge_completion_line_is_scored(work, capsys):
    (work / "big.jsonl").write_text(json.dumps({"completion": "4 " * 500_000, "answer": "4"}) + "\n")
    assert main(["score", "--rubric", "rk_cli_rubrics:rubric", "--input", "big.jsonl", "--output", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1.0


def test_empty_input_scores_nothing(work, capsys):
    (work / "empty.jsonl").write_text("\n")
    assert main(["score", "--rubric", "rk_cli_rubrics:rubric", "--input", "empty.jsonl"]) == 0
    assert "scored 0 completion(s)" in capsys.readouterr().err


# errors: one line, non-zero, no traceback ---------------------------------------------


@pytest.mark.parametrize(
    "args, content, pattern",
    [
        (["--rubric", "rk_cli_rubrics:rubric", "--input", "missing.jsonl"], None, "cannot read 'missing.jsonl'"),
        (["--rubric", "rk_cli_rubrics:rubric"], '{"completion": "a"}\n{"completion": \n', r"bad.jsonl:2: not valid JSON"),
        (["--rubric", "rk_cli_rubrics:rubric"], '{"completion": "a"}\n[1, 2]\n', r"bad.jsonl:2: each line must be a JSON object"),
        (["--rubric", "rk_cli_rubrics:rubric"], '{"prompt": "a"}\n', r"bad.jsonl:1: .*'completion' key"),
        (["--rubric", "rk_cli_rubrics:rubric"], "\n\n" + "[" * 100_000 + "\n", r"bad.jsonl:3: JSON nested too deeply"),
        (["--rubric", "rk_cli_rubrics:rubric"], b"\xff\xfe{}\n", r"not UTF-8"),
        (["--rubric", "mth"], '{"completion": "a"}\n', r"'mth'; did you mean 'math'"),
        (["--rubric", "no_such_module_xyz:r"], '{"completion": "a"}\n', r"cannot import module 'no_such_module_xyz'"),
        (["--rubric", "rk_cli_rubrics:nope"], '{"completion": "a"}\n', r"has no attribute 'nope'"),
        (["--rubric", "rk_cli_rubrics:not_callable"], '{"completion": "a"}\n', r"is a int, not a rubric"),
        (["--rubric", ":x"], '{"completion": "a"}\n', r"expected NAME or module:attribute"),
        (["--rubric", "rk_cli_rubrics:rubric", "--workers", "-1"], '{"completion": "a"}\n', r"--workers=-1"),
        (["--rubric", "rk_cli_rubrics:rubric", "--timeout", "0"], '{"completion": "a"}\n', r"--timeout=0.0"),
        (["--rubric", "rk_cli_rubrics:make", "--set", "weight"], '{"completion": "a"}\n', r"--set 'weight'"),
        (["--rubric", "rk_cli_rubrics:make", "--set", "weight=-1"], '{"completion": "a"}\n', r"weight"),
        (["--rubric", "rk_cli_rubrics:rubric", "--output", "no/such/dir/out.jsonl"], '{"completion": "a"}\n',
         r"cannot write"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(work, capsys, args, content, pattern):
    if content is not None:
        path = work / "bad.jsonl"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        args = [*args, "--input", "bad.jsonl"]
    assert main(["score", *args]) == 1
    assert re.search(pattern, one_error_line(capsys.readouterr().err))


def test_broken_plugin_is_one_line_in_a_subprocess(tmp_path):
    info = tmp_path / "rk_cli_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rk-cli-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rewardkit]\nbroken = rk_cli_broken_module\n")
    (tmp_path / "rk_cli_broken_module.py").write_text("raise ImportError('needs libfoo')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop(plugins.ENV_VAR, None)
    out = run_cli("list", cwd=tmp_path, env=env)
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert "'rk-cli-broken'" in line and "needs libfoo" in line and "REWARDKIT_PLUGINS" in line
    out = run_cli("list", cwd=tmp_path, env={**env, plugins.ENV_VAR: ""})  # the escape hatch
    assert out.returncode == 0 and "math" in out.stdout


def _exiting_plugin_env(tmp_path: Path) -> dict:
    """A site with a plugin that calls sys.exit(3) at import, beside a good one."""
    for dist, module, source in [
        ("rk-cli-exits", "rk_cli_exits_module", "import sys\nsys.exit(3)\n"),
        ("rk-cli-fine", "rk_cli_fine_module",
         "from rewardkit.plugins import hookimpl\n@hookimpl\ndef register_scorers(register):\n"
         "    register('fine', lambda **o: (lambda text, **c: 1.0))\n"),
    ]:
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[rewardkit]\nep = {module}\n")
        (tmp_path / f"{module}.py").write_text(source)
    (tmp_path / "in.jsonl").write_text('{"completion": "x", "answer": "1"}\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop(plugins.ENV_VAR, None)
    return env


@pytest.mark.parametrize("args", [["list"], ["score", "--rubric", "math", "--input", "in.jsonl"], ["demo"]])
def test_plugin_calling_sys_exit_is_one_error_line_not_a_silent_exit(tmp_path, args):
    env = _exiting_plugin_env(tmp_path)
    out = run_cli(*args, cwd=tmp_path, env=env)
    assert out.returncode == 1, (out.returncode, out.stderr)
    line = one_error_line(out.stderr)
    assert "'rk-cli-exits' (entry point ep = rk_cli_exits_module) failed to import" in line
    assert "SystemExit: the plugin called sys.exit(3)" in line


def test_plugins_lists_what_loads_and_what_failed_then_exits_1(tmp_path):
    env = _exiting_plugin_env(tmp_path)
    out = run_cli("plugins", cwd=tmp_path, env=env)
    assert out.returncode == 1
    listed = {p["distribution"]: p for p in json.loads(out.stdout)}
    assert listed["rewardkit"]["error"] is None and "math" in listed["rewardkit"]["registers"]["rubric"]
    assert listed["rk-cli-fine"]["error"] is None and listed["rk-cli-fine"]["registers"] == {"scorer": ["fine"]}
    assert "sys.exit(3)" in listed["rk-cli-exits"]["error"] and listed["rk-cli-exits"]["registers"] == {}
    line = one_error_line(out.stderr)
    assert "1 plugin(s) failed to load" in line and "'rk-cli-exits'" in line
    out = run_cli("plugins", cwd=tmp_path, env={**env, plugins.ENV_VAR: "rk-cli-fine"})  # left out: all good
    assert out.returncode == 0, out.stderr
    assert [p["error"] for p in json.loads(out.stdout)] == [None, None]


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


# demo ---------------------------------------------------------------------------------


def test_demo_scores_the_bundled_samples():
    out = run_cli("demo")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line[:2].strip().isdigit()]
    assert len(rows) == 20
    assert "correct" in out.stdout and "total" in out.stdout
    right = [r for r in rows if "# right" in r]
    wrong = [r for r in rows if "# wrong" in r]
    assert all("correct=1.000:ok" in r for r in right), right
    assert not any("correct=1.000" in r for r in wrong), wrong
