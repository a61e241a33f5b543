"""The worker process: ``python -m rewardkit._math.worker``.

Protocol: one JSON object a line on stdin (``{"g": gold, "p": prediction, "o": options}``),
one JSON object a line on stdout (``{"s": status, "r": reason}``). The first line out is
``{"ready": true}`` once sympy and the LaTeX parser are loaded. Anything the libraries
print goes to stderr, so stdout stays the protocol.

The address space is capped (``RLIMIT_AS``, ``REWARDKIT_MATH_MEMORY_MB``, default 1024) so
a runaway evaluation fails with MemoryError instead of taking the machine; the parent
enforces the time limit by killing the process.
"""

from __future__ import annotations

import json
import os
import sys


def _limit_memory() -> None:
    try:
        import resource

        mb = int(os.environ.get("REWARDKIT_MATH_MEMORY_MB", "1024"))
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or a lower hard limit already: the deadline still applies


def _answer(line: bytes) -> dict[str, str]:
    from .compare import Options
    from .engine import full_verdict

    try:
        job = json.loads(line)
        status, reason = full_verdict(str(job["g"]), str(job["p"]), Options(**job["o"]))
    except MemoryError:
        status, reason = "error", "memory limit reached"
    except RecursionError:
        status, reason = "unparseable", "expression nested too deeply"
    except Exception as exc:  # a sympy bug on odd input must not end the worker
        status, reason = "error", f"{type(exc).__name__}: {exc}"[:200]
    return {"s": status, "r": reason}


def main() -> None:
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints from libraries go to stderr
    _limit_memory()
    sys.setrecursionlimit(4000)
    from sympy.parsing.latex import parse_latex

    from .engine import full_verdict
    from .compare import Options

    try:  # load the generated parser now; without a matching antlr runtime, only
        parse_latex("\\frac{1}{2}", backend="antlr")  # simple LaTeX is read (texplain)
    except Exception:
        pass
    full_verdict("\\sqrt{8}", "2\\sqrt{2}", Options())
    out.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        out.write(json.dumps(_answer(line)).encode() + b"\n")


if __name__ == "__main__":
    main()
