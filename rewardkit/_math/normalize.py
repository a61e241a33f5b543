"""String normalisation of math answers, and the exact number fast path.

Everything here is pure Python on short strings: no sympy, no eval. Every scan is linear
(``str`` methods, hand-written loops, or regular expressions without nested quantifiers
applied to strings already capped in length), so hostile input costs microseconds.

An answer becomes a tree of plain tuples (JSON-friendly, so a worker can receive it):

- ``("expr", text, percent)``: one expression; ``percent`` is True when a trailing ``%``
  was removed (then both ``x`` and ``x/100`` are accepted).
- ``("seq", open, close, [items])``: a bracketed tuple or interval, ``(1, 2]``.
- ``("set", [items])``: ``\\{1, 2\\}``, ``a \\pm b`` expanded, a union of intervals.
- ``("list", [items])``: a bare list ``1, 2`` or ``2 or 3``: order-insensitive against a
  set or another list, in order against a bracketed sequence.

Limits, on purpose: units are only removed when asked and only from a fixed list; a
comma list of exactly-three-digit groups (``1,234``) is read as one number; ``\\pm`` is
expanded only once per expression; mixed numbers are ``2 1/2`` or ``2\\frac{1}{2}``.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Any

__all__ = ["prepare", "parse_fraction", "clean", "split_top", "MAX_EXPONENT"]

MAX_EXPONENT = 400  # the fast path refuses 10^k beyond this (the worker decides)
_MAX_ITEMS = 32

_UNICODE = str.maketrans(
    {
        "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "*", "\u22c5": "*",
        "\u00b7": "*", "\u00f7": "/", "\u2044": "/", "\u2215": "/", "\u03c0": "\\pi ",
        "\u221e": "\\infty ", "\u221a": "\\sqrt", "\u2264": "\\le ", "\u2265": "\\ge ",
        "\u2260": "\\ne ", "\u00b1": "\\pm ", "\u222a": "\\cup ", "\u00b0": "^\\circ ",
        "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u20ac": "", "\u00a3": "",
        "\u00a5": "", "\u2032": "'", "\u2205": "\\emptyset ",
    }
)

# macros whose braces are dropped and content kept
_UNWRAP = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|"
    r"mathsf|mathnormal|mbox|hbox|boldsymbol|bm|operatorname\*?|displaystyle|emph)\s*\{"
)
_BOX = re.compile(r"\\(?:boxed|fbox|framebox)\s*\{")
_DROP = re.compile(
    r"\\left\.|\\right\.|\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)"
    r"(?![A-Za-z])|\\[,!;: ]|\\q?quad(?![A-Za-z])|\\displaystyle|\\textstyle|\\limits|~|"
    r"\\\$|\$|\\\(|\\\)|\\\[|\\\]|\{,\}|\\(?:mathstrut|strut|nonumber)(?![A-Za-z])"
)
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])|\^\{\}")
_TRIG = re.compile(r"\\(?:sin|cos|tan|sec|csc|cot)(?![A-Za-z])")
_DEGREE_NUM = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|\\degree(?![A-Za-z]))")
_FRACS = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_BARE_SQRT = re.compile(r"\\sqrt\s*(\d|[A-Za-z](?![A-Za-z]))")
_BARE_FRAC = re.compile(r"\\frac\s*(\d)\s*(\d)")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]{0,40}\})?(.*?)\\end\{\1\}", re.S)
_BARE_SUB = re.compile(r"\\log\s*_\s*(\d)")
_EMPTY_SET = re.compile(r"\\(?:emptyset|varnothing)(?![A-Za-z])")  # both are \{\}
_LHS = re.compile(r"^\s*(?:[A-Za-z](?:_\{?[A-Za-z0-9]{1,8}\}?)?|[A-Za-z]\s*\(\s*[A-Za-z]\s*\))\s*=(?!=)")
_IN = re.compile(r"^\s*[A-Za-z]\s*\\in(?![A-Za-z])")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACED = re.compile(r"[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_WORD_SEP = re.compile(r"\s+(?:or|and)\s+|;|\\(?:text\s*)?or\b")

_UNITS = frozenset(
    """
    cm mm m km in inch inches ft foot feet yd yard yards mi mile miles meter meters metre
    metres centimeter centimeters millimeter millimeters kilometer kilometers
    g kg mg gram grams kilogram kilograms lb lbs pound pounds oz ounce ounces ton tons
    s sec secs second seconds min mins minute minutes h hr hrs hour hours day days week
    weeks month months year years l ml liter liters litre litres gallon gallons cup cups
    dollar dollars cent cents usd euro euros unit units square sq cubic per degree degrees
    deg rad radian radians mph kph km/h m/s percent people person students apples cookies
    points page pages item items times mph
    """.split()
)


def _strip_macro_braces(s: str, opener: re.Pattern[str]) -> str:
    """Drop ``\\macro{`` and its matching ``}``, keeping the content. One linear pass."""
    out: list[str] = []
    stack: list[bool] = []  # True: this brace belongs to a dropped macro
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            m = opener.match(s, i)
            if m:
                stack.append(True)
                i = m.end()
                continue
            out.append(s[i : i + 2])
            i += 2
            continue
        if c == "{":
            stack.append(False)
        elif c == "}" and stack:
            if stack.pop():
                i += 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _last_boxed(s: str) -> str:
    """The content of the last ``\\boxed{...}`` (or the string itself if there is none)."""
    last = None
    for m in _BOX.finditer(s):
        last = m
    if last is None:
        return s
    depth, start = 1, last.end()
    for j in range(start, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                sign = s[: last.start()].strip()
                # "-\\boxed{12}": a bare sign in front belongs to the answer
                return (sign if sign in ("-", "+") else "") + s[start:j]
    return s  # unclosed: leave as is


def _matrix_as_tuple(m: re.Match[str]) -> str:
    """``\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}`` -> ``(1, 2)``; a 2x2 -> ``((a, b), (c, d))``."""
    rows = [r.strip() for r in m.group(2).split("\\\\") if r.strip()]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    if all(len(r) == 1 for r in cells):
        return "(" + ", ".join(r[0] for r in cells) + ")"
    if len(cells) == 1:
        return "(" + ", ".join(cells[0]) + ")"
    return "(" + ", ".join("(" + ", ".join(r) + ")" for r in cells) + ")"


def _strip_units(s: str) -> str:
    words = s.split()
    while len(words) > 1:
        w = words[-1].strip(".").lower()
        base = re.sub(r"\^\{?\d\}?$|[23]$", "", w)
        if w in _UNITS or base in _UNITS or (base.endswith("s") and base[:-1] in _UNITS) or "/" in w and all(
            p in _UNITS for p in w.split("/")
        ):
            words.pop()
        else:
            break
    s = " ".join(words)
    # "5cm" / "5\,cm" glued units after a digit
    m = re.search(r"(?<=\d)\s*([A-Za-z]{1,12})(?:\^\{?\d\}?)?$", s)
    if m and m.group(1).lower() in _UNITS and len(m.group(1)) > 1:
        s = s[: m.start()]
    return s.strip()


def clean(s: str, *, units: bool = False) -> str:
    """Light normalisation before any parsing: delimiters, boxes, text macros, spacing."""
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s).translate(_UNICODE)
    if "####" in s:
        s = s.rsplit("####", 1)[1]
    if "\\" in s or "$" in s or "~" in s or "{" in s or "^" in s:  # plain numbers skip this
        s = _last_boxed(s)
        if "\\begin" in s:
            s = _MATRIX.sub(_matrix_as_tuple, s)
        s = _strip_macro_braces(s, _UNWRAP)
        s = _DROP.sub(" ", s)
        s = _EMPTY_SET.sub(r"\\{\\}", s)
        if _TRIG.search(s):  # sin 60° is sin(60 pi/180); a bare 60° answers 60
            s = _DEGREE_NUM.sub(r"(\\frac{\1\\pi}{180})", s)
        s = _DEGREE.sub("", s)
        s = _FRACS.sub(r"\\frac", s)
        s = _BARE_SQRT.sub(r"\\sqrt{\1}", s)
        s = _BARE_FRAC.sub(r"\\frac{\1}{\2}", s)
        s = _BARE_SUB.sub(r"\\log_{\1}", s)  # TeX: "\\log_3 81" has subscript 3 only
        s = s.replace("\\%", "%").replace("\\neq", "\\ne ").replace("\\leq", "\\le ").replace("\\geq", "\\ge ")
    s = " ".join(s.split())
    s = s.strip().rstrip(".").strip()
    if s.lower().startswith(("answer:", "answer is")):
        s = s.split(":", 1)[-1] if ":" in s else s[9:]
        s = s.strip()
    if units:
        s = _strip_units(s)
    for _ in range(3):  # "(5)", "{50\\%}": one redundant outer pair
        if len(s) > 2 and s[0] + s[-1] in ("()", "{}") and _wraps(s, 1):
            inner = split_top(s[1:-1])
            if inner is not None and len(inner) == 1:
                s = inner[0].strip()
                continue
        break
    return s


def split_top(s: str, seps: str = ",") -> list[str] | None:
    """Split at top-level separators; ``None`` if brackets are unbalanced."""
    parts, depth, start = [], 0, 0
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and c in seps:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    if depth != 0:
        return None
    parts.append(s[start:])
    return parts


def _wraps(s: str, open_len: int) -> bool:
    """True if the bracket opening at 0 closes at the very end."""
    depth = 0
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            if depth == 0 and i < n:
                return False
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and i != n - 1:
                return False
        i += 1
    return depth == 0


def _scalar(s: str, other_is_eq: bool) -> Any:
    s = s.strip()
    percent = False
    if s.endswith("%"):
        percent, s = True, s[:-1].strip()
    elif s.lower().endswith(" percent"):
        percent, s = True, s[:-8].strip()
    if not other_is_eq:
        s = _IN.sub("", _LHS.sub("", s, count=1), count=1).strip()
    s = s.strip()
    for pat in (_THOUSANDS, _SPACED):
        if pat.fullmatch(s):
            s = s.replace(",", "").replace(" ", "")
    if s.count("\\pm") + s.count("\\mp") == 1:
        # "a \\pm b" is the two answers "a + b" and "a - b"; ± binds like + and -
        plus = s.replace("\\pm", "+").replace("\\mp", "-")
        minus = s.replace("\\pm", "-").replace("\\mp", "+")
        return ("set", [("expr", plus.strip(), percent), ("expr", minus.strip(), percent)])
    return ("expr", s, percent)


def prepare(s: str, *, units: bool = False, other_is_eq: bool = False, depth: int = 0, cleaned: bool = False) -> Any:
    """Turn an answer string into the tuple tree described in the module docstring.

    ``cleaned=True`` says ``s`` already went through :func:`clean` (with the same ``units``).
    """
    if depth == 0:
        if not cleaned:
            s = clean(s, units=units)
        if not other_is_eq:
            s = _IN.sub("", _LHS.sub("", s, count=1), count=1).strip()
    if _THOUSANDS.fullmatch(s) or _SPACED.fullmatch(s):
        return _scalar(s, other_is_eq)
    if depth > 3:
        return ("expr", s, False)
    if s.startswith("\\{") and s.endswith("\\}") and _wraps(s, 2):
        inner = split_top(s[2:-2])
        if inner is not None:
            items = [prepare(t.strip(), units=units, other_is_eq=other_is_eq, depth=depth + 1) for t in inner if t.strip()]
            return ("set", items[:_MAX_ITEMS])
    if "\\cup" in s:
        parts = [p.strip() for p in s.split("\\cup")]
        if len(parts) > 1 and all(parts):
            return ("set", [prepare(p, units=units, other_is_eq=other_is_eq, depth=depth + 1) for p in parts][:_MAX_ITEMS])
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _wraps(s, 1):
        inner = split_top(s[1:-1])
        if inner is not None and len(inner) > 1:
            items = [prepare(t.strip(), units=units, other_is_eq=other_is_eq, depth=depth + 1) for t in inner]
            return ("seq", s[0], s[-1], items[:_MAX_ITEMS])
    parts = split_top(_WORD_SEP.sub(",", s)) if depth == 0 else split_top(s)
    if parts is not None and len(parts) > 1:
        items = [prepare(t.strip(), units=units, other_is_eq=other_is_eq, depth=depth + 1) for t in parts if t.strip()]
        if len(items) == 1:
            return items[0]
        return ("list", items[:_MAX_ITEMS])
    return _scalar(s, other_is_eq)


# --- the fast path: exact rationals, no sympy --------------------------------------------
_DEC = r"(?:\d+\.\d*|\.\d+|\d+)"
_NUM = re.compile(rf"([+-]?)({_DEC})(?:[eE]([+-]?\d{{1,6}}))?")
_BASE = re.compile(r"([+-]?)([0-9][0-9A-Za-z]{0,63})_\{?([2-9]|[12]\d|3[0-6])\}?")
_SLASH = re.compile(rf"([+-]?)({_DEC})\s*/\s*({_DEC})")
_FRAC = re.compile(r"([+-]?)\\frac\s*(?:\{\s*([+-]?" + _DEC + r")\s*\}|(\d))\s*(?:\{\s*([+-]?" + _DEC + r")\s*\}|(\d))")
_MIXED = re.compile(rf"([+-]?)(\d+)\s*(?:\s(\d+)\s*/\s*(\d+)|\\frac\s*\{{\s*(\d+)\s*\}}\s*\{{\s*(\d+)\s*\}})")
_SCI = re.compile(rf"([+-]?)({_DEC})\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*(?:\{{\s*([+-]?\d{{1,6}})\s*\}}|(\d))")
_POW10 = re.compile(r"([+-]?)10\s*\^\s*(?:\{\s*([+-]?\d{1,6})\s*\}|(\d))")


def _dec(text: str) -> Fraction:
    return Fraction(text if not text.endswith(".") else text[:-1])


def _pow10(e: str) -> Fraction | None:
    k = int(e)
    if abs(k) > MAX_EXPONENT:
        return None
    return Fraction(10) ** k


def parse_fraction(s: str, _depth: int = 0) -> Fraction | None:
    """An exact rational for a plain number written in one of the usual ways, else None.

    Integers, decimals, ``1e-3``, ``a/b``, ``\\frac{a}{b}``, ``\\frac12``, mixed numbers,
    ``2.5\\times 10^{3}``, ``10^{5}``, and any of those inside one pair of parentheses or
    braces with a sign in front.
    """
    s = s.strip()
    if not s or len(s) > 400:
        return None
    m = _NUM.fullmatch(s)
    if m:
        v = _dec(m.group(2))
        if m.group(3):
            p = _pow10(m.group(3))
            if p is None:
                return None
            v *= p
        return -v if m.group(1) == "-" else v
    m = _BASE.fullmatch(s)
    if m:  # 1011_2: a numeral in base 2..36
        try:
            v = Fraction(int(m.group(2), int(m.group(3))))
        except ValueError:
            return None
        return -v if m.group(1) == "-" else v
    m = _SLASH.fullmatch(s)
    if m:
        den = _dec(m.group(3))
        if den == 0:
            return None
        v = _dec(m.group(2)) / den
        return -v if m.group(1) == "-" else v
    m = _FRAC.fullmatch(s)
    if m:
        num = Fraction(m.group(2) or m.group(3))
        den = Fraction(m.group(4) or m.group(5))
        if den == 0:
            return None
        v = num / den
        return -v if m.group(1) == "-" else v
    m = _MIXED.fullmatch(s)
    if m:
        whole = Fraction(m.group(2))
        num, den = (m.group(3), m.group(4)) if m.group(3) else (m.group(5), m.group(6))
        if int(den) == 0 or int(num) >= int(den):
            return None  # "2 5/3" is not a mixed number; let sympy read it
        v = whole + Fraction(int(num), int(den))
        return -v if m.group(1) == "-" else v
    for pat, mant in ((_SCI, True), (_POW10, False)):
        m = pat.fullmatch(s)
        if m:
            exp = m.group(3) or m.group(4) if mant else m.group(2) or m.group(3)
            p = _pow10(exp)
            if p is None:
                return None
            v = (_dec(m.group(2)) if mant else Fraction(1)) * p
            return -v if m.group(1) == "-" else v
    if _depth < 3 and len(s) > 2:
        sign = ""
        if s[0] in "+-":
            sign, s = s[0], s[1:].strip()
        if (s[0], s[-1]) in (("(", ")"), ("{", "}")) and _wraps(s, 1):
            v = parse_fraction(s[1:-1], _depth + 1)
            if v is not None:
                return -v if sign == "-" else v
    return None
