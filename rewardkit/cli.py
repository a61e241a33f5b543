"""The ``rewardkit`` command: list components and plugins, score a JSONL file, run a demo,
check a rubric (``doctor``, see :mod:`rewardkit.doctor`; exit 3 on severe findings).

``rewardkit score --rubric NAME|module:attr --input completions.jsonl`` reads one JSON
object a line: ``completion`` (a string or chat messages), an optional ``prompt``, and any
other keys as dataset columns (``answer``, ...). It writes one JSON object a line to
``--output`` (``-`` for stdout) and prints a per-part summary table.

Errors (a missing file, a bad JSON line, an unknown rubric, a broken plugin) print one line
on stderr and exit with status 1; usage errors exit with 2 (argparse). ``plugins`` still
lists every plugin when one is broken, with its ``error``, and then exits with 1. Set
``REWARDKIT_DEBUG=1`` to get the traceback instead. Limits: the input is read into memory
whole; the progress bar is drawn only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from importlib import resources
from typing import Any, Iterable, Sequence, TextIO

from . import __version__
from .errors import RewardkitError

__all__ = ["main"]

_STATUSES = ("ok", "wrong", "unparseable", "timeout", "error", "abstain")


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


# --------------------------------------------------------------------------------------
# input


def read_rows(path: str, *, key: str | None = "completion") -> list[dict[str, Any]]:
    """Rows of a JSONL file; blank lines are skipped. Raises CLIError naming the line.
    Each row must be an object (holding ``key`` when one is given)."""
    try:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    rows = []
    with handle:
        try:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CLIError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
                except RecursionError as exc:
                    raise CLIError(f"{path}:{lineno}: JSON nested too deeply") from exc
                if not isinstance(row, dict) or (key is not None and key not in row):
                    need = f" with a {key!r} key" if key else ""
                    raise CLIError(f"{path}:{lineno}: each line must be a JSON object{need}")
                rows.append(row)
        except UnicodeDecodeError as exc:
            raise CLIError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return rows


def split_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[Any], list[Any] | None, dict[str, list[Any]]]:
    """``(completions, prompts or None, columns)``; a column missing from a row is None."""
    completions = [r["completion"] for r in rows]
    prompts = [r.get("prompt") for r in rows] if any("prompt" in r for r in rows) else None
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(k for k in r if k not in ("completion", "prompt")))
    columns = {k: [r.get(k) for r in rows] for k in names}
    return completions, prompts, columns


# --------------------------------------------------------------------------------------
# rubric resolution


def resolve_rubric(spec: str, options: dict[str, Any] | None = None) -> Any:
    """``rewardkit.resolve_rubric`` with the current directory importable (like
    ``python -m``), so ``--rubric mymodule:rubric`` finds the user's own modules."""
    if ":" in spec and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    from .specs import resolve_rubric as resolve

    return resolve(spec, options)


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is parsed as JSON when it is JSON, else kept as a string."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise CLIError(f"--set {pair!r}: expected KEY=VALUE with KEY a Python identifier")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


# --------------------------------------------------------------------------------------
# scoring and reporting


class Progress:
    """A dependency-free progress bar drawn on a terminal, with a final one-line tally."""

    def __init__(self, total: int, stream: TextIO, *, enabled: bool, width: int = 30) -> None:
        self.total, self.stream, self.enabled, self.width = total, stream, enabled, width
        self.done = 0
        self.start = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\rscoring [{bar}] {self.done}/{self.total} {rate:.1f}/s")
        self.stream.flush()

    def close(self) -> None:
        elapsed = time.perf_counter() - self.start
        end = "\n" if self.enabled else ""
        self.stream.write(f"{end}scored {self.done} completion(s) in {elapsed:.2f} s\n")
        self.stream.flush()


def score_rows(rubric: Any, rows: Sequence[dict[str, Any]], *, workers: int | None, timeout: float | None,
               progress: Progress) -> list[Any]:
    """Score in chunks so the bar moves; results in input order."""
    completions, prompts, columns = split_rows(rows)
    n = len(rows)
    chunk = max(8 * (workers or 1), math.ceil(n / 50), 1)
    results: list[Any] = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        part_cols = {k: v[start:stop] for k, v in columns.items()}
        results.extend(
            rubric.score_batch(
                completions[start:stop],
                prompts=prompts[start:stop] if prompts is not None else None,
                workers=workers,
                timeout=timeout,
                **part_cols,
            )
        )
        progress.update(stop - start)
    return results


def result_record(index: int, result: Any) -> dict[str, Any]:
    return {
        "index": index,
        "total": result.total,
        "parts": {name: score.as_dict() for name, score in result.parts.items()},
    }


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.0f}%" if pct else f"{x:.3f}"


def summary_table(rubric: Any, results: Sequence[Any]) -> str:
    """Per part and the total: weight, mean, std, share of zeros, share of each status."""
    summary = rubric.summarize(results)
    header = ["part", "weight", "mean", "std", "zeros", *_STATUSES]
    lines = [header]
    weights = dict(getattr(rubric, "weights", {}) or {})
    for name, stats in _summary_items(summary):
        statuses = stats.get("status") or stats.get("statuses") or {}
        lines.append(
            [
                name,
                _fmt(weights.get(name)) if name in weights else "",
                _fmt(stats.get("mean")),
                _fmt(stats.get("std")),
                _fmt(stats.get("zero_share", stats.get("zeros")), pct=True),
                *(_fmt(statuses.get(s, 0.0), pct=True) if statuses or name != "total" else "" for s in _STATUSES),
            ]
        )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in lines
    )


def _summary_items(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    parts = summary.get("parts")
    if isinstance(parts, dict):
        items = list(parts.items())
        if isinstance(summary.get("total"), dict):
            items.append(("total", summary["total"]))
        return items
    return [(k, v) for k, v in summary.items() if isinstance(v, dict)]


# --------------------------------------------------------------------------------------
# commands


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import list_plugins

    # every plugin, the broken ones with their error: this is the command to diagnose them
    found = list_plugins(include_broken=True)
    print(json.dumps(found, indent=2, default=str))
    broken = [p for p in found if p["error"]]
    if not broken:
        return 0
    names = ", ".join(repr(p["distribution"]) for p in broken)
    return _fail(f"{len(broken)} plugin(s) failed to load: {names}; each has its \"error\" in the listing")


def _cmd_list(args: argparse.Namespace) -> int:
    from .plugins import available

    entries = available(args.kind)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    rows = [["name", "kind", "distribution", "description"]]
    rows += [[n, e["kind"], e["distribution"], e["description"]] for n, e in entries.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        raise CLIError(f"--workers={args.workers} must be >= 0")
    if args.timeout is not None and not args.timeout > 0:
        raise CLIError(f"--timeout={args.timeout} must be > 0")
    rows = read_rows(args.input)
    rubric = resolve_rubric(args.rubric, parse_options(args.set))
    out = None
    if args.output and args.output != "-":
        try:
            out = open(args.output, "w", encoding="utf-8")
        except OSError as exc:
            raise CLIError(f"cannot write {args.output!r}: {exc.strerror or exc}") from exc
    progress = Progress(len(rows), sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    try:
        results = score_rows(rubric, rows, workers=args.workers, timeout=args.timeout, progress=progress)
        progress.close()
        if args.output:
            sink = out or sys.stdout
            for i, res in enumerate(results):
                sink.write(json.dumps(result_record(i, res), default=str) + "\n")  # details may hold any object
    finally:
        if out is not None:
            out.close()
    if args.output != "-":
        print(summary_table(rubric, results))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    data = resources.files("rewardkit") / "data" / "samples.jsonl"
    with resources.as_file(data) as path:
        rows = read_rows(str(path))
    rubric = resolve_rubric(args.rubric)
    progress = Progress(len(rows), sys.stderr, enabled=False)
    results = score_rows(rubric, rows, workers=None, timeout=None, progress=progress)
    print(f"rubric {getattr(rubric, 'name', args.rubric)!r} on {len(rows)} bundled GSM8K-style completions\n")
    for i, (row, res) in enumerate(zip(rows, results)):
        parts = "  ".join(f"{n}={_fmt(s.value)}:{s.status.value}" for n, s in res.parts.items())
        print(f"{i:>2}  total={_fmt(res.total):>6}  {parts}  # {row.get('note', '')}")
    print()
    print(summary_table(rubric, results))
    return 0


def _pairs(rows: Sequence[dict[str, Any]], completions: Sequence[dict[str, Any]], path: str) -> list[tuple[int, Any]]:
    """``(row index, completion)``: by each line's ``row`` key, else line by line."""
    if all("row" not in c for c in completions):
        if len(completions) != len(rows):
            raise CLIError(f"{path}: {len(completions)} completions for {len(rows)} rows; give each line a "
                           "'row' key (the 0-based index of its data row) to tie several completions to one row")
        return [(i, c["completion"]) for i, c in enumerate(completions)]
    out = []
    for n, c in enumerate(completions, 1):
        i = c.get("row")
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(rows):
            raise CLIError(f"{path}: completion {n} has row={i!r}; it must be an index into the {len(rows)} data rows")
        out.append((i, c["completion"]))
    return out


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import diagnose

    rows = read_rows(args.data, key=None)
    completions = read_rows(args.completions)
    rubric = resolve_rubric(args.rubric, parse_options(args.set))
    report = diagnose(rubric, rows, _pairs(rows, completions, args.completions), answer_column=args.answer_column,
                      reasoning_tag=args.reasoning_tag, answer_tag=args.answer_tag)
    print(json.dumps(report.as_dict(), indent=2, default=str) if args.json else report.table())
    return 3 if report.severe else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rewardkit", description="Reward functions and verifiers for RL.")
    parser.add_argument("--version", action="version", version=f"rewardkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plugins", help="installed plugins as JSON: distribution, version, what each registers, "
                                       "error (exit 1 if any plugin is broken)")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("list", help="registered verifiers, scorers, rubrics and trainer backends")
    p.add_argument("--kind", choices=("verifier", "scorer", "rubric", "backend"))
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("score", help="score a JSONL file of completions")
    p.add_argument("--rubric", required=True, help="a registered name, or module:attr")
    p.add_argument("--input", required=True, help="JSONL: completion, optional prompt, dataset columns ('-': stdin)")
    p.add_argument("--output", help="write one JSON result a line here ('-': stdout, no table)")
    p.add_argument("--workers", type=int, help="score in N worker processes (hard per-item timeout)")
    p.add_argument("--timeout", type=float, help="seconds per item, enforced with --workers")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="option for the rubric's factory (VALUE parsed as JSON if it is JSON); repeatable")
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("doctor", help="check a rubric for cliffs, hacks and dead signal on sample completions "
                                      "(exit 3 on severe findings)")
    p.add_argument("rubric", help="a registered name, or module:attr")
    p.add_argument("--data", required=True, help="JSONL dataset rows (the gold answer in --answer-column)")
    p.add_argument("--completions", required=True, help="JSONL: completion, and row (index into --data)")
    p.add_argument("--answer-column", default="answer")
    p.add_argument("--reasoning-tag", default="reasoning")
    p.add_argument("--answer-tag", default="answer")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="option for the rubric's factory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("demo", help="score the bundled sample completions and print the breakdown")
    p.add_argument("--rubric", default="math", help="a registered name, or module:attr (default: math)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 usage, 3 doctor's severe findings)."""
    args = build_parser().parse_args(argv)
    from ._origin import problem

    clash = problem()
    if clash:
        print(f"rewardkit: warning: {clash}", file=sys.stderr)
    try:
        return args.func(args)
    except (CLIError, RewardkitError) as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `rewardkit list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("REWARDKIT_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc} (set REWARDKIT_DEBUG=1 for the traceback)")


def _fail(message: str, status: int = 1) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"rewardkit: error: {first}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
