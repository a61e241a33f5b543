"""Rewrite *simple* LaTeX as plain sympy syntax, so the fast ``parse_expr`` reads it.

Sympy's ANTLR LaTeX parser costs ~20 ms a call; ``parse_expr`` ~1 ms. Most answers use
only a handful of macros, so those are rewritten by string substitution (a brace matcher,
not a grammar): ``\\frac{a}{b}`` -> ``((a)/(b))``, ``\\sqrt{x}`` -> ``sqrt((x))``,
``\\sqrt[n]{x}`` -> ``root((x),(n))``, ``^{e}`` -> ``**(e)``, ``\\pi``, ``\\infty``,
``\\cdot``, ``\\times``, braces -> parentheses, ``x_{1}`` -> ``x_1``, ``\\binom``, and
``\\sin``/``\\ln``/``\\exp``/... (with a bare argument only when the text has one function).

Anything else (``\\sin``, ``\\log_2``, ``\\binom``, a stray backslash ...) returns ``None``
and the caller uses the LaTeX parser. The output still passes the ``parse_expr``
allow-list like any plain text.
"""

from __future__ import annotations

import re

__all__ = ["tex_to_plain"]

_MACRO = re.compile(r"\\([A-Za-z]+|.)")
_SIMPLE = {"pi": " pi ", "infty": " oo ", "cdot": "*", "times": "*", "div": "/"}
_FUNCS = {n: n for n in "sin cos tan sec csc cot sinh cosh tanh ln exp log arcsin arccos arctan".split()}
_FUNC_RE = re.compile(r"\\(?:" + "|".join(_FUNCS) + r")(?![A-Za-z])")


class _Fail(Exception):
    pass


def _group(s: str, i: int) -> tuple[str, int]:
    """The argument at ``i``: a ``{...}`` group (content) or one character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        raise _Fail
    if s[i] != "{":
        if s[i] == "\\":
            m = _MACRO.match(s, i)
            if m and m.group(1) in _SIMPLE:
                return s[i : m.end()], m.end()
            raise _Fail
        return s[i], i + 1
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
    raise _Fail


def _convert(s: str, depth: int) -> str:
    if depth > 40:
        raise _Fail
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = _MACRO.match(s, i)
            name = m.group(1) if m else ""
            i = m.end() if m else i + 1
            if name in _SIMPLE:
                out.append(_SIMPLE[name])
            elif name in _FUNCS:
                j = i
                while j < len(s) and s[j] == " ":
                    j += 1
                if j < len(s) and s[j] in "^_":
                    raise _Fail  # \\sin^2 x, \\log_2 8: the LaTeX parser knows these
                if (j >= len(s) or s[j] not in "({") and len(_FUNC_RE.findall(s)) > 1:
                    raise _Fail  # "\\sin x \\cos x": bare arguments are ambiguous in plain syntax
                out.append(f" {_FUNCS[name]}")
                if j >= len(s) or s[j] not in "({":
                    out.append(" ")
            elif name == "binom":
                a, i = _group(s, i)
                b, i = _group(s, i)
                out.append(f" binomial(({_convert(a, depth + 1)}),({_convert(b, depth + 1)})) ")
            elif name == "frac":
                a, i = _group(s, i)
                b, i = _group(s, i)
                out.append(f"(({_convert(a, depth + 1)})/({_convert(b, depth + 1)}))")
            elif name == "sqrt":
                index = None
                if i < len(s) and s[i] == "[":
                    end = s.find("]", i)
                    if end < 0:
                        raise _Fail
                    index, i = s[i + 1 : end], end + 1
                a, i = _group(s, i)
                inner = _convert(a, depth + 1)
                out.append(f" sqrt(({inner})) " if index is None else f" root(({inner}),({_convert(index, depth + 1)})) ")
            else:
                raise _Fail
        elif c == "^":
            digits = re.match(r" ?(\d+)", s[i + 1 : i + 12])
            if digits:  # "x^10": models mean x^{10}, whatever TeX says
                out.append(f"**({digits.group(1)})")
                i += 1 + digits.end()
                continue
            a, i = _group(s, i + 1)
            out.append(f"**({_convert(a, depth + 1)})")
        elif c == "_":
            a, i = _group(s, i + 1)
            if not a.isalnum():
                raise _Fail
            out.append("_" + a)
        elif c == "{":
            a, i = _group(s, i)
            out.append(f"({_convert(a, depth + 1)})")
        elif c == "}":
            raise _Fail
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tex_to_plain(s: str) -> str | None:
    """Plain-syntax text for simple LaTeX, or None when it uses anything else."""
    try:
        return _convert(s, 0)
    except (_Fail, RecursionError):
        return None
