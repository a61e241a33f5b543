"""The first-party rewardkit-email plugin: its rubric, scorers and hostile inputs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    import rewardkit_email
except ImportError:  # not pip-installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "rewardkit-email"))
    import rewardkit_email

from rewardkit import InvalidArgument, Status
from rewardkit_email import Signature, email_rubric, recipient

SIGNATURE = "Best,\nSam Lee\nPhone: +1 (415) 555-0132\nsam.lee@example.com\n742 Evergreen Terrace, Springfield"
REPLY = f"Hi Dana,\n\nThe invoice is paid.\n\n{SIGNATURE}"
ROW = {"keyword": "invoice", "ideal_reply": REPLY, "recipient": "Dana"}


def test_perfect_reply_scores_four():
    res = email_rubric().score(REPLY, **ROW)
    assert {k: v.value for k, v in res.parts.items()} == {
        "keyword": 1.0, "exact": 1.0, "too_long": 0.0, "recipient": 1.0, "signature": 1.0,
    }
    assert res.total == 4.0


def test_each_part_can_fail_on_its_own():
    long_reply = "Hi Dana, invoice " + "word " * 200 + SIGNATURE
    res = email_rubric().score(long_reply, **ROW)
    assert res.parts["too_long"].value == -1.0 and res.parts["exact"].value == 0.0
    res = email_rubric().score("Hello there, invoice attached.\n" + SIGNATURE, **ROW)
    assert res.parts["recipient"].value == 0.0 and res.parts["keyword"].value == 1.0
    res = email_rubric().score("Hi Dana,\nsee you.\nSam", **ROW)
    assert res.parts["signature"].value == 0.0 and res.parts["keyword"].value == 0.0
    assert "phone" in res.parts["signature"].reason


def test_exact_folds_whitespace_and_case():
    res = email_rubric().score("  " + REPLY.upper().replace("\n", "  \n "), **ROW)
    assert res.parts["exact"].value == 1.0


def test_missing_columns_abstain_and_leave_the_total():
    res = email_rubric().score(REPLY)
    for part in ("keyword", "exact", "recipient"):
        assert res.parts[part].status is Status.ABSTAIN
    assert res.total == 1.0  # signature 1 + too_long 0


def test_keyword_list_needs_every_term_and_whole_words_option():
    rubric = email_rubric(whole_words=True)
    assert rubric.score("Hi Dana, invoice and refund", keyword=["invoice", "refund"]).parts["keyword"].value == 1.0
    assert rubric.score("Hi Dana, invoice", keyword=["invoice", "refund"]).parts["keyword"].value == 0.0
    assert rubric.score("Annual report", recipient="Ann").parts["recipient"].value == 0.0
    assert email_rubric().score("Annual report", recipient="Ann").parts["recipient"].value == 1.0


@pytest.mark.parametrize(
    "block, found",
    [
        ("call 020 7946 0958, jo@firm.co.uk, 10 Downing Street", {"phone", "email", "address"}),
        ("tel 555-123-4567 | a.b@c.io | San Francisco, CA 94107", {"phone", "email", "address"}),
        ("+44 20 7946 0958 / x@y.org / London NW1 6XE", {"phone", "email", "address"}),
        ("P.O. Box 12, x@y.org, 555 123 4567", {"phone", "email", "address"}),
        ("since 2024, costs $1500, room 12", set()),
        ("mail me at someone@ or at @host.com", set()),
    ],
)
def test_signature_fields(block, found):
    score = Signature(partial=True).score("Thanks!\n" + block)
    assert set(score.details) == found
    assert score.value == pytest.approx(len(found) / 3)


def test_signature_reads_only_the_tail():
    assert Signature().score(SIGNATURE + "\n" + "x" * 600).value == 0.0
    assert Signature(tail_chars=2000).score(SIGNATURE + "\n" + "x" * 600).value == 1.0
    assert Signature(require=["email"]).score("a@b.co").value == 1.0


@pytest.mark.parametrize(
    "factory, kwargs, field",
    [
        (Signature, {"require": ["fax"]}, "require="),
        (Signature, {"require": "phone"}, "require="),
        (Signature, {"require": []}, "require="),
        (Signature, {"tail_chars": 5}, "tail_chars="),
        (Signature, {"tail_chars": True}, "tail_chars="),
        (recipient, {"column": ""}, "column="),
        (email_rubric, {"max_words": 0}, "max_words="),
        (email_rubric, {"max_words": 2.5}, "max_words="),
        (email_rubric, {"keyword_column": ""}, "keyword_column="),
    ],
)
def test_invalid_configuration_names_the_field(factory, kwargs, field):
    with pytest.raises(InvalidArgument, match=field):
        factory(**kwargs)


@pytest.mark.parametrize(
    "text",
    ["1" * 1_000_000, "12 " * 300_000, "a@" * 500_000, "\u202e\U0001f600\x00" * 100_000, "Street " * 150_000],
)
def test_hostile_inputs_are_bounded_and_never_raise(text):
    rubric = email_rubric()
    start = time.perf_counter()
    res = rubric.score(text, keyword="\x00", ideal_reply=text[:10], recipient=["\u202e"])
    assert time.perf_counter() - start < 5.0  # generous: a shared 2-core machine
    assert all(s.status is not Status.ERROR for s in res.parts.values())


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400), st.one_of(st.none(), st.text(max_size=20), st.lists(st.text(max_size=10), max_size=3)))
def test_any_text_and_column_gives_a_bounded_total(text, column):
    res = email_rubric().score(text, keyword=column, recipient=column, ideal_reply=column)
    assert all(s.status is not Status.ERROR for s in res.parts.values())
    assert res.total is None or -1.0 <= res.total <= 4.0


def test_plugin_module_declares_its_version():
    assert rewardkit_email.__version__ == "0.1.0"
