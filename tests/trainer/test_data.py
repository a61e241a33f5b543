"""data.py: prompt encoding, held-out split and the resumable sampler."""

from __future__ import annotations

import pytest

from rewardkit import InvalidArgument
from rewardkit_trainer.data import PromptSampler, build_prompt, encode_prompt, split

from .tiny import tiny_tokenizer


def test_encode_prompt_keeps_the_end_of_chat_and_text_prompts():
    tok = tiny_tokenizer()
    chat = build_prompt("what is 2+2", None)
    full = encode_prompt(tok, chat, 10_000)
    assert encode_prompt(tok, chat, 5) == full[-5:]
    assert tok.decode(full).endswith("a:")  # the generation prompt
    assert encode_prompt(tok, "abc", 2) == tok("abc")["input_ids"][-2:]


def test_split_holds_out_the_last_rows():
    rows = [{"i": i} for i in range(5)]
    assert split(rows, 2) == (rows[:3], rows[3:]) and split(rows, 0) == (rows, [])
    with pytest.raises(InvalidArgument, match="eval_size=5"):
        split(rows, 5)


def test_sampler_resumes_where_it_stopped():
    a = PromptSampler(7, seed=1)
    first = a.take(5)
    b = PromptSampler(7, seed=1)
    b.load_state_dict(a.state_dict())
    assert sorted(first + a.take(2)) == list(range(7)) and a.take(4) == b.take(6)[2:]
