"""A Rubric drops into the real ``trl.GRPOTrainer`` both ways (one callable; one per part).

Runs TRL 1.16 on CPU for one step with a tiny random-init Llama and a character-level
tokenizer built here, so nothing is downloaded. Parts are plain scorers and functions, so
this test does not depend on the math verifier.
"""

from __future__ import annotations

import math
import string

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")

from rewardkit import Part, Rubric, Scorer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


class HasDigit(Scorer):
    range = (0.0, 1.0)

    def _score(self, text, **columns):
        return any(ch.isdigit() for ch in text)


def contains_answer(prompts, completions, answer, **kwargs):
    """TRL-style: 1 if the gold answer string appears in the completion."""
    return [1.0 if a in c else 0.0 for c, a in zip(completions, answer)]


def short(text):
    """Plain text -> number: shorter is better."""
    return 1.0 / (1.0 + len(text))


def _tokenizer():
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    chars = list(string.digits + string.ascii_lowercase + " +=?")
    vocab = {"<pad>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    core = Tokenizer(BPE(vocab=vocab, merges=[], unk_token=None))  # no merges: one token a char
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")


def _model(vocab_size):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, eos_token_id=1, bos_token_id=1,
    )
    return LlamaForCausalLM(config)


def _train(tmp_path, reward_funcs, weights=None, **extra):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    tok = _tokenizer()
    data = Dataset.from_dict({"prompt": ["1+1=", "2+3=", "4+4=", "9+0="], "answer": ["2", "5", "8", "9"]})
    args = GRPOConfig(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=1, logging_steps=1,
        per_device_train_batch_size=4, num_generations=2, max_completion_length=6,
        save_strategy="no", learning_rate=1e-3, seed=0, reward_weights=weights, **extra,
    )
    trainer = GRPOTrainer(
        model=_model(len(tok)), reward_funcs=reward_funcs, args=args,
        train_dataset=data, processing_class=tok,
    )
    trainer.train()
    return {k: v for entry in trainer.state.log_history for k, v in entry.items()}


def _rubric():
    return Rubric(
        [Part("digit", HasDigit(), weight=1.0), Part("contains", contains_answer, weight=2.0),
         Part("short", short, weight=0)],
        name="arith",
    )


def test_rubric_as_one_callable_logs_total_and_parts(tmp_path):
    rubric = _rubric()
    logs = _train(tmp_path, rubric)
    assert "rewards/arith/mean" in logs  # the total, under the rubric's name
    for part in rubric.part_names:  # the breakdown arrives through TRL's log_metric
        assert f"rewards/arith/{part}/mean" in logs, sorted(logs)
    assert math.isfinite(logs["reward"])
    assert logs["reward"] == pytest.approx(logs["rewards/arith/mean"], abs=1e-5)
    weighted = logs["rewards/arith/digit/mean"] + 2 * logs["rewards/arith/contains/mean"]
    assert logs["reward"] == pytest.approx(weighted, abs=1e-5)  # the weight-0 part is not added


def test_rubric_reward_funcs_log_each_part(tmp_path):
    rubric = _rubric()
    funcs, weights = rubric.reward_funcs()
    logs = _train(tmp_path, funcs, weights)
    for part in rubric.part_names:
        assert f"rewards/{part}/mean" in logs, sorted(logs)
    assert 0.0 < logs["rewards/short/mean"] <= 1.0
    weighted = logs["rewards/digit/mean"] + 2 * logs["rewards/contains/mean"]
    assert logs["reward"] == pytest.approx(weighted, abs=1e-5)


async def async_contains(text, answer):
    """An async plain part (a judge's shape): awaited by the rubric."""
    import asyncio

    await asyncio.sleep(0.01)
    return answer in text


def test_async_part_and_normalize_then_sum_in_trl(tmp_path):
    rubric = Rubric([Part("digit", HasDigit(), 1.0), Part("contains", async_contains, 2.0)], name="arith")
    funcs, weights = rubric.reward_funcs()
    logs = _train(tmp_path, funcs, weights, multi_objective_aggregation="normalize_then_sum")
    assert 0.0 <= logs["rewards/contains/mean"] <= 1.0  # scored, not an error's 0.0 from a coroutine
    weighted = logs["rewards/digit/mean"] + 2 * logs["rewards/contains/mean"]
    assert logs["reward"] == pytest.approx(weighted, abs=1e-5)
    # and as one callable (TRL calls it from its own thread while no loop runs)
    logs = _train(tmp_path, rubric)
    assert "rewards/arith/contains/mean" in logs


def test_async_part_would_have_been_an_error_without_awaiting():
    """Guards the test above: the coroutine is not silently truthy."""
    (result,) = Rubric({"c": async_contains}).score_batch(["x 2"], answer=["2"])
    assert result.parts["c"].value == 1.0 and str(result.parts["c"].status) == "ok"
