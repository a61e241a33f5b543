"""Hypothesis strategies that write one math value in many ways.

- :func:`rationals`: exact ``Fraction`` values (small numerators and denominators).
- :func:`renderings`: for one ``Fraction``, a strategy of strings denoting it: integer,
  terminating decimal, ``a/b``, ``\\frac``/``\\dfrac``/``\\tfrac``, a mixed number,
  a percent, scientific notation, thousands separators; optionally wrapped in
  ``\\boxed{}``, ``$...$``, ``\\(...\\)``, ``x = ...``, ``\\left(...\\right)``, extra spaces.
- :func:`rendered`: ``(value, text)`` pairs; :func:`surd_renderings`: ``k\\sqrt{m}`` written
  as ``\\sqrt{k^2 m}`` and friends (these go through sympy).

Limits: percent renderings mean ``100 * value`` written with ``%``; a verifier that accepts
both ``x%`` and ``x/100`` (rewardkit does) equals them to ``value`` but also to
``100 * value``, so a "distinct values" test must skip pairs that differ by a factor 100.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

__all__ = ["rationals", "renderings", "rendered", "surd_renderings", "canonical"]


def rationals(*, max_numerator: int = 10**6, max_denominator: int = 64) -> st.SearchStrategy[Fraction]:
    """Fractions with bounded numerator and denominator (integers often)."""
    nums = st.integers(-max_numerator, max_numerator)
    dens = st.one_of(st.just(1), st.sampled_from([2, 4, 5, 8, 10, 20, 25, 100]), st.integers(1, max_denominator))
    return st.builds(Fraction, nums, dens)


def canonical(value: Fraction) -> str:
    """The plainest writing: ``7``, ``-3/4``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _terminating(value: Fraction) -> str | None:
    d = value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return None
    places = max(twos, fives)
    scaled = abs(value.numerator) * (10**places // value.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    body = digits if places == 0 else digits[:-places] + "." + digits[-places:]
    return ("-" if value < 0 else "") + body


def _thousands(n: int) -> str:
    return f"{n:,}"


def _forms(value: Fraction) -> list[str]:
    sign = "-" if value < 0 else ""
    a = abs(value)
    num, den = a.numerator, a.denominator
    forms = [canonical(value), f"{sign}\\frac{{{num}}}{{{den}}}", f"{sign}\\dfrac{{{num}}}{{{den}}}",
             f"{sign}\\tfrac{{{num}}}{{{den}}}", f"{sign}{num}/{den}"]
    dec = _terminating(value)
    if dec is not None:
        forms.append(dec)
        if "." not in dec:
            forms.append(dec + ".0")
        pct = _terminating(value * 100)
        if pct is not None:
            forms += [pct + "%", pct + "\\%"]
    if den == 1:
        if num >= 1000:
            forms.append(sign + _thousands(num))
        if num and num % 1000 == 0:
            mant = Fraction(num, 1000)
            forms.append(f"{sign}{canonical(mant)}e3")
            forms.append(f"{sign}{canonical(mant)}\\times 10^{{3}}")
    elif num > den:
        whole, rest = divmod(num, den)
        forms.append(f"{sign}{whole}\\frac{{{rest}}}{{{den}}}")
        forms.append(f"{sign}{whole} {rest}/{den}")
    return forms


_WRAPS = [
    "{}", "\\boxed{{{}}}", "${}$", "$\\boxed{{{}}}$", "\\({}\\)", "x = {}", " {} ", "\\left({}\\right)",
    "{{{}}}", "\\text{{{}}}", "\\[ {} \\]",
]


# "(1,000)" is an ordered pair as much as a thousand: comma forms get no bracket wraps
_COMMA_WRAPS = [w for w in _WRAPS if "(" not in w and not w.startswith("{{")]


def renderings(value: Fraction) -> st.SearchStrategy[str]:
    """Strings that all denote ``value`` (see the module docstring)."""

    def pick(form: str) -> st.SearchStrategy[str]:
        wraps = _COMMA_WRAPS if "," in form else _WRAPS
        return st.sampled_from(wraps).map(lambda wrap: wrap.format(form))

    return st.sampled_from(_forms(value)).flatmap(pick)


@st.composite
def rendered(draw: st.DrawFn, values: st.SearchStrategy[Fraction] | None = None) -> tuple[Fraction, str]:
    """A value and one rendering of it."""
    value = draw(values if values is not None else rationals())
    return value, draw(renderings(value))


@st.composite
def surd_renderings(draw: st.DrawFn) -> tuple[str, str, bool]:
    """``(a, b, equal)``: two LaTeX surds ``k\\sqrt{m}`` that are equal or not (sympy path)."""
    k = draw(st.integers(1, 12))
    m = draw(st.sampled_from([2, 3, 5, 6, 7, 10, 11]))
    a = draw(st.sampled_from([f"{k}\\sqrt{{{m}}}", f"{k} \\sqrt {{{m}}}", f"\\sqrt{{{m}}} \\cdot {k}"]))
    if draw(st.booleans()):
        return a, draw(st.sampled_from([f"\\sqrt{{{k * k * m}}}", f"\\sqrt{{{k * k}}}\\sqrt{{{m}}}"])), True
    k2 = draw(st.integers(1, 12).filter(lambda j: j != k))
    return a, f"\\sqrt{{{k2 * k2 * m}}}", False
