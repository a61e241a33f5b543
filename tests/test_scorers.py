"""rewardkit.scorers: values, statuses, ranges and configuration errors."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import InvalidArgument, Scorer, Status
from rewardkit.extract import Tag
from rewardkit.scorers import Contains, ExactMatch, Format, Length, Proximity, XMLCount

GOOD = "<reasoning>\nstep one\nstep two\n</reasoning>\n<answer>\n42\n</answer>"


# --- Format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, strict, lenient",
    [
        (GOOD, 1.0, 1.0),
        (GOOD + "\n", 1.0, 1.0),  # one trailing newline (or none) is fine
        (GOOD + "\n\n", 0.0, 1.0),
        (GOOD + " more", 0.0, 0.0),  # text after the answer block: a template echo's tail (#17)
        ("<reasoning>\none line\n</reasoning>\n<answer>\n7\n</answer>\n", 1.0, 1.0),
        ("<reasoning>a\nb</reasoning> <answer>5</answer>", 0.0, 1.0),  # newlines inside tags
        ("preamble <reasoning>a</reasoning>\n<answer>5</answer>", 0.0, 1.0),
        ("preamble <reasoning>a</reasoning>\n<answer>5</answer> tail", 0.0, 0.0),
        ("<reasoning>\n\n</reasoning>\n<answer>\n7\n</answer>", 0.0, 0.0),  # blank reasoning: a placeholder
        ("<reasoning>\nr\n</reasoning>\n<answer>\n \n</answer>", 0.0, 0.0),  # blank answer
        ("<reasoning>\nr\n</reasoning>\n<answer>\n7\n</answer>\n<answer>\n8\n</answer>", 0.0, 0.0),  # two answers
        ("<reasoning>r</reasoning> text <answer>5</answer>", 0.0, 0.0),  # text between blocks
        ("<reasoning>r</reasoning>", 0.0, 0.0),
        ("<reasoning>r</reasoning><answer>5", 0.0, 0.0),
        ("<answer>5</answer><reasoning>r</reasoning>", 0.0, 0.0),
        ("just text", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_format(text, strict, lenient):
    s = Format("strict").score(text)
    assert s.value == strict and s.status == (Status.OK if strict else Status.WRONG)
    assert Format("lenient").score(text).value == lenient
    if not strict:
        assert s.reason  # says what is wrong


def test_format_configurable_tags():
    text = "<think>\nhmm\nyes\n</think>\n<SOLUTION>\n3\n</SOLUTION>"
    assert Format(reasoning_tag="think", answer_tag="SOLUTION").score(text).value == 1.0
    assert Format().score(text).value == 0.0
    lenient = Format("lenient", reasoning_tag="start_working_out", answer_tag="SOLUTION")
    assert lenient.score("<start_working_out>w\nx</start_working_out><SOLUTION>3</SOLUTION>").value == 1.0


def test_tag_pairs_for_unsloth_style_layouts():
    pair = ("<start_working_out>", "<end_working_out>")
    text = "<start_working_out>\nwork\nmore\n<end_working_out>\n<SOLUTION>\n3\n</SOLUTION>"
    assert Format(reasoning_tag=pair, answer_tag="SOLUTION").score(text).value == 1.0
    assert Format("lenient", reasoning_tag=pair, answer_tag="SOLUTION").score(text).value == 1.0
    assert XMLCount(pair, "SOLUTION").score(text).value == 0.5
    assert XMLCount(pair, "SOLUTION").score(text.replace("<end_working_out>", "")).value == 0.375


def test_format_answer_only():
    strict = Format(reasoning_tag=None)
    assert strict.score("free reasoning\n<answer>\n4\n</answer>").value == 1.0
    assert strict.score("<answer>\n4\n</answer> trailing").value == 0.0
    lenient = Format("lenient", reasoning_tag=None)
    assert lenient.score("x <answer>4</answer>").value == 1.0
    assert lenient.score("x <answer>4</answer> y").value == 0.0  # text after the answer block
    assert lenient.score("x <answer> </answer> y").value == 0.0


# --- XMLCount -------------------------------------------------------------------------


def _completion(length: int) -> str:
    """A well-formed completion of exactly ``length`` characters ending at </answer>."""
    shell = "<reasoning>\n\n</reasoning>\n<answer>\n42\n</answer>"
    return shell.replace("\n\n</reasoning>", "\n" + "x" * (length - len(shell)) + "\n</reasoning>")


def test_xmlcount_full_marks_at_eos_without_newline():
    text = _completion(446)
    assert len(text) == 446 and text.endswith("</answer>")
    s = XMLCount().score(text)
    assert s.value == 0.5 and s.status is Status.OK


@pytest.mark.parametrize("trailing, expected", [("", 0.5), ("\n", 0.5), ("  \n ", 0.5), ("ab", 0.498), ("x" * 50, 0.45)])
def test_xmlcount_trailing_text_is_smooth(trailing, expected):
    assert XMLCount().score(_completion(200) + trailing).value == pytest.approx(expected)


def test_xmlcount_trailing_penalty_is_bounded_and_monotone():
    values = [XMLCount().score(_completion(200) + "y" * n).value for n in (0, 10, 100, 1000, 100_000)]
    assert values == sorted(values, reverse=True)
    assert values[-1] == pytest.approx(0.375)  # at most one tag's credit is lost


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<reasoning>r</reasoning><answer>5</answer>", 0.5),  # newlines do not matter
        ("<reasoning>r</reasoning>", 0.25),
        ("<answer>5</answer>", 0.25),
        ("<reasoning>r</reasoning><reasoning>s</reasoning><answer>5</answer>", 0.25),
        ("nothing", 0.0),
    ],
)
def test_xmlcount_counts_tags(text, expected):
    assert XMLCount().score(text).value == pytest.approx(expected)


def test_xmlcount_options():
    x = XMLCount("think", "SOLUTION", tag_reward=0.25, junk_penalty=0.01, max_junk_penalty=0.5)
    assert x.range == (0.0, 1.0)
    assert x.score("<think>t</think><SOLUTION>1</SOLUTION>").value == 1.0
    assert x.score("<think>t</think><SOLUTION>1</SOLUTION>" + "z" * 10).value == pytest.approx(0.9)
    assert x.score("<think>t</think><SOLUTION>1</SOLUTION>" + "z" * 1000).value == pytest.approx(0.5)


# --- Proximity ------------------------------------------------------------------------


def test_proximity_nine_beats_three_for_ten():
    p = Proximity()
    nine, three = p(completions=["<answer>9</answer>", "<answer>3</answer>"], answer=["10", "10"])
    assert nine > three
    assert nine == pytest.approx(0.8) and three == pytest.approx(-0.4)


@pytest.mark.parametrize("decay", ["linear", "exponential", "inverse"])
def test_proximity_shapes(decay):
    p = Proximity(decay=decay)
    values = [p.score(f"<answer>{g}</answer>", answer="10").value for g in (10, 9, 7, 3, 100, 1e9)]
    assert values[0] == 1.0
    assert values == sorted(values, reverse=True) and len(set(values)) > 3
    assert values[-1] < 0 and values[-1] >= -1.0  # far outliers are penalised
    if decay != "linear":
        assert p.score("<answer>20</answer>", answer="10").value == pytest.approx(0.0)  # half at d=1


def test_proximity_statuses_and_gold_forms():
    p = Proximity()
    assert p.score("<answer>10</answer>", answer="10").status is Status.OK
    assert p.score("<answer>11</answer>", answer="10").status is Status.WRONG
    bad = p.score("<answer>many</answer>", answer="10")
    assert bad.status is Status.UNPARSEABLE and bad.value == -1.0
    assert p.score("<answer>72 dollars</answer>", answer="72").value == 1.0
    assert p.score("<answer>1,000</answer>", answer="Steps...\n#### 1000").value == 1.0
    assert p.score("<answer>3</answer>", answer=3).value == 1.0
    assert p.score("<answer>3</answer>").status is Status.ABSTAIN
    assert p.score("<answer>3</answer>", answer="n/a").status is Status.ABSTAIN


def test_proximity_scale_and_range():
    p = Proximity(scale=5.0, range=(0.0, 2.0))
    assert p.range == (0.0, 2.0)
    assert p.score("<answer>1005</answer>", answer="1000").value == pytest.approx(0.0)  # 5 away = 1 scale
    assert p.score("<answer>0</answer>", answer="0").value == 2.0
    # gold 0: relative scale falls back to 1
    assert Proximity().score("<answer>0.5</answer>", answer="0").value == pytest.approx(0.0)


def test_proximity_huge_numbers_stay_in_range():
    p = Proximity()
    s = p.score("<answer>1e308</answer>", answer="-1e308")
    assert s.value == -1.0


# --- Length ---------------------------------------------------------------------------


@pytest.mark.parametrize("n, expected", [(0, 0.0), (50, 0.0), (80, 0.0), (90, -0.5), (99, -0.95), (100, -1.0), (101, -1.0), (10**4, -1.0)])
def test_length_soft_overlong_matches_dapo(n, expected):
    # the same numbers as TRL's get_soft_overlong_punishment(100, 20) on n tokens
    assert Length(max_completion_len=100, soft_punish_cache=20).score("a" * n).value == pytest.approx(expected)


def test_length_soft_overlong_agrees_with_trl():
    trl_rewards = pytest.importorskip("trl.rewards")
    trl_fn = trl_rewards.get_soft_overlong_punishment(max_completion_len=100, soft_punish_cache=20)
    ours = Length(max_completion_len=100, soft_punish_cache=20)
    lengths = [0, 79, 80, 81, 95, 100, 101, 150]
    assert ours(completions=["a" * n for n in lengths]) == pytest.approx(trl_fn([[1] * n for n in lengths]))


def test_length_hard_cliff_without_cache():
    hard = Length(max_completion_len=10)
    assert [hard.score("a" * n).value for n in (10, 11)] == [0.0, -1.0]


@pytest.mark.parametrize("n, expected", [(0, 0.0), (5, 0.5), (10, 1.0), (20, 1.0), (30, 0.5), (40, 0.0), (400, 0.0)])
def test_length_target_band(n, expected):
    assert Length(target=(10, 20)).score("a" * n).value == pytest.approx(expected)


def test_length_units_and_combination():
    words = Length(target=(2, 3), unit="words")
    assert words.score("one two three").value == 1.0
    assert words.score("one").value == pytest.approx(0.5)
    both = Length(target=(1, 5), max_completion_len=8, soft_punish_cache=2)
    assert both.range == (-1.0, 1.0)
    assert both.score("a" * 3).value == 1.0
    assert both.score("a" * 7).value == pytest.approx(0.6 - 0.5)
    tokens = Length(max_completion_len=3, unit="tokens", tokenizer=lambda t: t.split())
    assert tokens.score("a b c d").value == -1.0

    class Tok:
        def encode(self, text, add_special_tokens=False):
            return list(text)

    assert Length(target=(1, 2), unit="tokens", tokenizer=Tok()).score("ab").value == 1.0


# --- Contains -------------------------------------------------------------------------


def test_contains_modes():
    words = ["refund", "sorry"]
    assert Contains(words).score("We are SORRY").value == 1.0
    assert Contains(words, mode="all").score("We are sorry").value == 0.0
    assert Contains(words, mode="all").score("sorry, refund issued").value == 1.0
    assert Contains(words, mode="fraction").score("sorry").value == 0.5
    assert Contains(words, case_sensitive=True).score("SORRY").value == 0.0
    assert Contains(["cat"], whole_word=True).score("concatenate").value == 0.0
    assert Contains(["cat"], whole_word=True).score("a cat.").value == 1.0
    assert Contains("C++").score("I like c++").value == 1.0  # a plain string, escaped


def test_contains_per_row_column():
    c = Contains(column="recipient")
    assert c(completions=["Dear Ana,", "Dear Bob,"], recipient=["Ana", "Ana"]) == [1.0, 0.0]
    assert c.score("Dear Ana").status is Status.ABSTAIN  # nothing to look for
    both = Contains(["regards"], mode="all", column="names")
    s = both.score("Hi Ana and Bo, regards", names=["Ana", "Bo"])
    assert s.value == 1.0 and s.details["found"] == ["regards", "Ana", "Bo"]
    assert both.score("Hi Ana, regards", names=["Ana", "Bo"]).details["missing"] == ["Bo"]


# --- ExactMatch -----------------------------------------------------------------------


def test_exact_match_constant_and_column():
    assert ExactMatch("Hello  World").score(" hello world ").value == 1.0
    assert ExactMatch("Hello", case_sensitive=True).score("hello").value == 0.0
    em = ExactMatch(extractor=Tag("answer"))  # column "answer" by default
    assert em(completions=["<answer>Paris</answer>", "<answer>Rome</answer>"], answer=["paris", "paris"]) == [1.0, 0.0]
    assert em.score("no tag", answer="x").status is Status.UNPARSEABLE
    assert em.score("<answer>x</answer>").status is Status.ABSTAIN


def test_exact_match_normalisation_options():
    assert ExactMatch("ｆｕｌｌ").score("full").value == 1.0  # NFKC
    assert ExactMatch("ｆｕｌｌ", unicode_normalize=False).score("full").value == 0.0
    assert ExactMatch("Hello, world!", ignore_punctuation=True).score("hello world").value == 1.0
    assert ExactMatch("a  b", collapse_whitespace=False).score("a b").value == 0.0
    assert ExactMatch(" a", strip=False).score("a").value == 0.0
    num = ExactMatch(column="gold", numeric=True)
    assert num.score("1,000", gold="1000.0").value == 1.0
    assert num.score("1,001", gold="1000").value == 0.0
    assert num.score("ten", gold="ten").value == 1.0  # falls back to text


# --- shared contract ------------------------------------------------------------------

SCORERS = [
    Format(),
    Format("lenient"),
    XMLCount(),
    Proximity(),
    Proximity(decay="inverse", range=(0, 1)),
    Length(target=(10, 200)),
    Length(max_completion_len=300, soft_punish_cache=50),
    Contains(["answer"], column="name"),
    ExactMatch(extractor=Tag()),
]


@pytest.mark.parametrize(
    "scorer, name",
    [(Format(), "format"), (XMLCount(), "xmlcount"), (Proximity(), "proximity"), (Length(target=(1, 2)), "length"),
     (Contains("x"), "contains"), (ExactMatch("x"), "exact_match")],
)
def test_stable_default_names(scorer, name):
    assert isinstance(scorer, Scorer)
    assert scorer.name == name == scorer.__name__
    assert type(scorer)(**_rebuild_kwargs(scorer), name="custom").name == "custom"


def _rebuild_kwargs(scorer):
    return {Length: {"target": (1, 2)}, Contains: {"keywords": "x"}, ExactMatch: {"expected": "x"}}.get(type(scorer), {})


@pytest.mark.parametrize("scorer", SCORERS, ids=repr)
def test_scorers_pickle(scorer):
    clone = pickle.loads(pickle.dumps(scorer))
    text = GOOD + " answer 40"
    assert clone.score(text, answer="42", name="Bo").value == scorer.score(text, answer="42", name="Bo").value


_piece = st.sampled_from(
    ["<reasoning>", "</reasoning>", "<answer>", "</answer>", "\n", " ", "42", "-7", "1,000", "answer", "\x00",
     "\u202e", "\ud800", "e\u0301", "####", "\\boxed{", "}"]
)
_text = st.one_of(st.text(max_size=200), st.lists(st.one_of(_piece, st.text(max_size=4)), max_size=30).map("".join))


@settings(max_examples=60, deadline=None)
@given(_text, st.one_of(st.none(), st.text(max_size=10), st.integers(-100, 100)))
def test_values_stay_in_declared_range_and_are_deterministic(text, gold):
    columns = {} if gold is None else {"answer": gold, "name": str(gold)}
    for scorer in SCORERS:
        s = scorer.score(text, **columns)
        assert s.status is not Status.ERROR, (scorer, s.reason)
        if s.value is None:
            assert s.status is Status.ABSTAIN
        else:
            lo, hi = scorer.range
            assert lo <= s.value <= hi and math.isfinite(s.value)
        again = scorer.score(text, **columns)
        assert (again.value, again.status) == (s.value, s.status)


# --- invalid configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    "factory, kwargs, field",
    [
        (Format, {"style": "loose"}, "style"),
        (Format, {"reasoning_tag": ""}, "reasoning_tag"),
        (Format, {"answer_tag": "<a>"}, "answer_tag"),
        (Format, {"reasoning_tag": "x", "answer_tag": "x"}, "answer_tag"),
        (Format, {"name": ""}, "name"),
        (Format, {"reasoning_tag": ("<a>", "<b>"), "answer_tag": ("<b>", "<c>")}, "answer_tag"),
        (XMLCount, {"reasoning_tag": ("<a>", "<b>", "<c>")}, "reasoning_tag"),
        (XMLCount, {"reasoning_tag": "x", "answer_tag": "x"}, "answer_tag"),
        (XMLCount, {"tag_reward": 0}, "tag_reward"),
        (XMLCount, {"junk_penalty": -0.1}, "junk_penalty"),
        (XMLCount, {"max_junk_penalty": float("nan")}, "max_junk_penalty"),
        (XMLCount, {"answer_tag": "a b"}, "answer_tag"),
        (Proximity, {"answer_column": ""}, "answer_column"),
        (Proximity, {"decay": "cubic"}, "decay"),
        (Proximity, {"scale": 0}, "scale"),
        (Proximity, {"scale": -1.0}, "scale"),
        (Proximity, {"range": (1, 1)}, "range"),
        (Proximity, {"range": (1, -1)}, "range"),
        (Proximity, {"range": (0, float("inf"))}, "range"),
        (Proximity, {"range": 1.0}, "range"),
        (Proximity, {"extractor": "answer"}, "extractor"),
        (Length, {}, "target"),
        (Length, {"target": (5, 2)}, "target"),
        (Length, {"target": (0, 0)}, "target"),
        (Length, {"target": (1.5, 3)}, "target"),
        (Length, {"target": 10}, "target"),
        (Length, {"max_completion_len": 0}, "max_completion_len"),
        (Length, {"max_completion_len": 10, "soft_punish_cache": 11}, "soft_punish_cache"),
        (Length, {"max_completion_len": 10, "soft_punish_cache": -1}, "soft_punish_cache"),
        (Length, {"target": (1, 2), "unit": "lines"}, "unit"),
        (Length, {"target": (1, 2), "unit": "tokens"}, "tokenizer"),
        (Contains, {}, "keywords"),
        (Contains, {"keywords": ["ok", ""]}, "keywords"),
        (Contains, {"keywords": 5}, "keywords"),
        (Contains, {"keywords": "x", "mode": "most"}, "mode"),
        (Contains, {"keywords": "x", "column": ""}, "column"),
        (ExactMatch, {"expected": "x", "column": "answer"}, "expected"),
        (ExactMatch, {"expected": ["x"]}, "expected"),
        (ExactMatch, {"column": ""}, "column"),
        (ExactMatch, {"extractor": 3}, "extractor"),
    ],
)
def test_invalid_arguments(factory, kwargs, field):
    with pytest.raises(InvalidArgument, match=rf"^{field}="):
        factory(**kwargs)


# --- template echoes (issue #17) ------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rewardkit.scorers import placeholder, template_echo  # noqa: E402

SYSTEM = "Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
PROMPT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 4?"}]
ECHOES = [  # what the collapsed run wrote (issue #17), and its variants
    "<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n<answer>\n...\n</answer>",
    "<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>",
    "<reasoning>6</reasoning>\n<answer>6</answer>\n<system>6</system>\n<system>6</system>",
    "<reasoning>\nadd them\n</reasoning>\n<answer>\n6\n</answer>\n<answer>\n6\n</answer>",
    "<reasoning>\n…\n</reasoning>\n<answer>\n6\n</answer>",
    "<reasoning>\nadd\n</reasoning>\n<answer>\nYour answer here\n</answer>",
    "<reasoning>\nadd\n</reasoning>\n<answer>\n___\n</answer>",
]


@pytest.mark.parametrize("text", ECHOES)
def test_template_echoes_earn_no_format_credit(text):
    from rewardkit.presets import math_rubric

    assert template_echo(text, ("<answer>", "</answer>"), ("<reasoning>", "</reasoning>"), PROMPT)
    for scorer in (Format("strict"), Format("lenient"), XMLCount()):
        assert scorer.score(text, prompt=PROMPT).value == 0.0, scorer
    assert math_rubric().score(text, PROMPT, answer="6").parts["format"].value == 0.0


def test_the_prompts_own_example_is_a_placeholder():
    prompt = [{"role": "system", "content": "Format:\n<reasoning>\nthink\n</reasoning>\n<answer>\nN\n</answer>"}]
    copied = "<reasoning>\nthink\n</reasoning>\n<answer>\nN\n</answer>"
    assert Format().score(copied, prompt=prompt).value == 0.0
    assert Format().score(copied).value == 1.0  # without the prompt, "N" could be an answer
    assert Format().score("<reasoning>\nthink\n</reasoning>\n<answer>\n7\n</answer>", prompt=prompt).value == 0.0
    assert Format().score("<reasoning>\n3 + 4\n</reasoning>\n<answer>\n7\n</answer>", prompt=prompt).value == 1.0


def test_real_answers_still_earn_format():
    for text in ("<reasoning>\n2 + 4 = 6\n</reasoning>\n<answer>\n6\n</answer>",
                 "<reasoning>\nx\n</reasoning>\n<answer>\n\\frac{1}{2}\n</answer>\n",
                 "<reasoning>\nso\n</reasoning>\n<answer>\n-3.5\n</answer>"):  # fmt: skip
        assert Format().score(text, prompt=PROMPT).value == 1.0
        assert XMLCount().score(text, prompt=PROMPT).value == 0.5
    # XMLCount keeps its smooth penalty for plain trailing text; markup after is an echo
    good = "<reasoning>\nr\n</reasoning>\n<answer>\n6\n</answer>"
    assert XMLCount().score(good + "\nThanks!").value == 0.5 - 0.007
    assert XMLCount().score(good + "\n<answer>").value == 0.0


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=".…_-–—·•*?!/\\|[](){}<>'\"`~ \t\n"))
def test_content_without_letters_or_digits_is_a_placeholder(content):
    assert placeholder(content)


@settings(max_examples=200, deadline=None)
@given(st.integers() | st.fractions().map(str) | st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_never_placeholders(number):
    assert not placeholder(str(number))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=100))
def test_template_echo_never_raises(text, prompt):
    template_echo(text, ("<answer>", "</answer>"), ("<reasoning>", "</reasoning>"), prompt)
    Format("lenient").score(text, prompt=prompt)
