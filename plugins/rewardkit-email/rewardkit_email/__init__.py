"""rewardkit-email: a rubric for drafted email replies, registered as ``email``.

Parts (each weight 1, so the total is the seed's plain sum): ``keyword`` +1 when the
required keyword(s) appear; ``exact`` +1 when the reply equals the ideal reply; ``too_long``
-1 when the reply runs over ``max_words``; ``recipient`` +1 when the recipient's name
appears; ``signature`` +1 when the closing block holds a phone number, an email address and
a postal address.

Limits: the signature check reads only the last ``tail_chars`` characters (a signature
closes an email, and this bounds the work on huge inputs) and knows English-style postal
addresses: a numbered street ("221B Baker Street"), a US state and ZIP ("CA 94107"), a UK
postcode ("NW1 6XE") or a PO box. Keyword and recipient matching is case-insensitive and
plain substring, so "Ann" is found in "Annual"; ``whole_words=True`` asks for word
boundaries. The exact match compares the whole reply (whitespace collapsed, case folded).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rewardkit import Score, Scorer
from rewardkit.errors import invalid_argument
from rewardkit.plugins import hookimpl

__all__ = ["Signature", "recipient", "email_rubric", "PARTS"]
__version__ = "0.1.0"

PARTS = ("keyword", "exact", "too_long", "recipient", "signature")
_FIELDS = ("phone", "email", "address")

_PHONE = re.compile(r"(?<![\w@])\+?\(?\d{1,4}\)?(?:[ .\-]?\(?\d{2,5}\)?){1,5}(?![\w@])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,4}\.[A-Za-z]{2,24}\b")
_STREET = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|way|court|ct|place|pl|"
    r"square|sq|terrace|parkway|pkwy|highway|hwy|close|crescent"
)
_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Za-z]?(?:[ \t]+[A-Za-z0-9.'\-]{1,30}){0,5}?[ \t]+(?:" + _STREET + r")\b"
    r"|\b[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?\b"  # US state + ZIP
    r"|\b[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}\b"  # UK postcode
    r"|\bP\.?[ \t]?O\.?[ \t]+Box[ \t]+\d+",
    re.IGNORECASE,
)


def _phone(text: str) -> str | None:
    for match in _PHONE.finditer(text):
        if sum(c.isdigit() for c in match.group()) >= 7:  # not a year, a price or a house number
            return match.group().strip()
    return None


def _address(text: str) -> str | None:
    # the US/UK postcode alternatives must be upper case; IGNORECASE is for street words
    for match in _ADDRESS.finditer(text):
        found = match.group()
        if found[0].isdigit() or found.upper().startswith("P") or found.isupper() or found[:2].isupper():
            return found
    return None


def _finders() -> dict[str, Any]:
    return {
        "phone": _phone,
        "email": lambda t: (m.group() if (m := _EMAIL.search(t)) else None),
        "address": _address,
    }


class Signature(Scorer):
    """1.0 when the closing block holds every field in ``require`` (phone, email, address).

    ``partial=True`` gives the share of required fields found instead of all-or-nothing.
    ``details`` lists what was found.
    """

    default_name = "signature"

    def __init__(self, *, require: Sequence[str] = _FIELDS, tail_chars: int = 500, partial: bool = False,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(require, str) or not require or any(f not in _FIELDS for f in require):
            raise invalid_argument("require", require, f"must be a non-empty list drawn from {_FIELDS}")
        if isinstance(tail_chars, bool) or not isinstance(tail_chars, int) or tail_chars < 20:
            raise invalid_argument("tail_chars", tail_chars, "must be an int >= 20")
        self.require = tuple(dict.fromkeys(require))
        self.tail_chars = tail_chars
        self.partial = bool(partial)

    def _score(self, text: str, **columns: Any) -> Score:
        tail = text[-self.tail_chars :]
        finders = _finders()
        found = {f: finders[f](tail) for f in self.require}
        missing = [f for f, v in found.items() if v is None]
        share = 1 - len(missing) / len(found)
        value = share if self.partial else float(not missing)
        details = {f: v for f, v in found.items() if v is not None}
        if not missing:
            return Score.ok(value, reason="signature complete", **details)
        return Score.wrong(value, reason="signature lacks " + ", ".join(missing), **details)


def recipient(*, column: str = "recipient", whole_word: bool = False, name: str = "recipient") -> Any:
    """A ``Contains``: 1.0 when every name in the row's ``column`` (a string or a list)
    appears; abstains without the column."""
    from rewardkit.scorers import Contains  # here, not at import: registering stays cheap

    return Contains(column=column, mode="all", whole_word=whole_word, name=name)


def email_rubric(*, keyword_column: str = "keyword", ideal_column: str = "ideal_reply",
                 recipient_column: str = "recipient", max_words: int = 150, whole_words: bool = False,
                 name: str = "email", **signature_options: Any):
    """The email rubric: parts ``keyword``, ``exact``, ``too_long``, ``recipient``, ``signature``.

    Built from rewardkit's public scorers (``Contains``, ``ExactMatch``, ``Length``) plus
    this plugin's :class:`Signature`; ``signature_options`` go to ``Signature``.
    """
    from rewardkit import Rubric
    from rewardkit.scorers import Contains, ExactMatch, Length

    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise invalid_argument("max_words", max_words, "must be an int >= 1")
    for field, value in (("keyword_column", keyword_column), ("ideal_column", ideal_column),
                         ("recipient_column", recipient_column)):
        if not isinstance(value, str) or not value.isidentifier():
            raise invalid_argument(field, value, "must be a column name (an identifier)")
    parts = {
        "keyword": Contains(column=keyword_column, mode="all", whole_word=whole_words, name="keyword"),
        # the whole reply against the ideal one, whitespace collapsed and case folded
        "exact": ExactMatch(column=ideal_column, name="exact"),
        # 0 up to max_words, -1 beyond: the seed's "-1 if too long"
        "too_long": Length(max_completion_len=max_words, unit="words", name="too_long"),
        "recipient": recipient(column=recipient_column, whole_word=whole_words),
        "signature": Signature(**signature_options),
    }
    return Rubric({k: (v, 1.0) for k, v in parts.items()}, name=name)


@hookimpl
def register_scorers(register):
    register("email.signature", Signature,
             description="closing block holds a phone number, an email address and a postal address")
    register("email.recipient", recipient,
             description="the recipient's name (column 'recipient') appears in the reply")


@hookimpl
def register_rubrics(register):
    register("email", email_rubric,
             description="email reply: keyword, exact ideal reply, length, recipient, signature (seed rubric)")
