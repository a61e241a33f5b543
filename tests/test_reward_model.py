"""RewardModel: a real transformers classifier (tiny, random init) saved to a temp folder."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rewardkit import InvalidArgument, Rubric, Status  # noqa: E402
from rewardkit.reward_model import RewardModel  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "trainer"))
    from tiny import tiny_tokenizer

    from transformers import LlamaConfig, LlamaForSequenceClassification

    path = tmp_path_factory.mktemp("rm")
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id)
    model = LlamaForSequenceClassification(cfg).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model, tok


def _reference(model, tok, texts):
    with torch.no_grad():
        return [float(model(**tok(t, return_tensors="pt")).logits[0, 0]) for t in texts]


def test_scores_equal_the_classifiers_logits_in_batches(folder):
    path, model, tok = folder
    rm = RewardModel(str(path), batch_size=2, separator=" ")
    prompts, completions = ["a b", "c", "a", "b c a"], ["c", "a b c", "b", "a"]
    scores = rm.score_batch(completions, prompts=prompts)
    want = _reference(model, tok, [f"{p} {c}" for p, c in zip(prompts, completions)])
    assert all(s.status is Status.OK for s in scores)
    assert [s.value for s in scores] == pytest.approx(want, abs=1e-4)  # padding in a batch changes nothing


def test_trl_reward_contract(folder):
    path, model, tok = folder
    rm = RewardModel(str(path), sigmoid=True, separator=" ")
    out = rm(prompts=["a", "b"], completions=[[{"role": "assistant", "content": "c"}], "a"], answer=["x", "y"],
             trainer_state=None)
    want = [1 / (1 + __import__("math").exp(-v)) for v in _reference(model, tok, ["a c", "b a"])]
    assert out == pytest.approx(want, abs=1e-4) and rm.__name__ == "reward_model"
    rubric = Rubric({"rm": (rm, 1.0)})
    assert rubric(prompts=["a"], completions=["c"]) == pytest.approx(want[:1], abs=1e-4)


def test_works_in_the_process_pool(folder):
    path, model, tok = folder
    rubric = Rubric({"rm": RewardModel(str(path), separator=" ")}, workers=1, timeout=120)
    (r,) = rubric.score_batch(["c"], prompts=["a"])
    assert r.total == pytest.approx(_reference(model, tok, ["a c"])[0], abs=1e-4)


def test_hostile_completions_never_raise(folder):
    path, _, _ = folder
    rm = RewardModel(str(path), max_length=16)
    scores = rm.score_batch(["", "x" * 10_000, None, "\x00\ud800"], prompts=[None, [{"role": "user"}], 3, "a"])
    assert all(s.status in (Status.OK, Status.ERROR) and s.reason for s in scores)


def test_nothing_loads_until_first_use(folder):
    path, _, _ = folder
    rm = RewardModel(str(path))
    assert rm._loaded is None


@pytest.mark.parametrize("kwargs", [{"path": "/no/such/folder"}, {"batch_size": 0}, {"max_length": True},
                                    {"label_index": -1}, {"device": "tpu"}, {"dtype": "int8"}])
def test_bad_configuration_raises(folder, kwargs):
    with pytest.raises(InvalidArgument, match=next(iter(kwargs))):
        RewardModel(**{"path": str(folder[0]), **kwargs})


def test_label_index_beyond_the_head_raises_at_construction(folder):
    with pytest.raises(InvalidArgument, match="num_labels=1"):
        RewardModel(str(folder[0]), label_index=1)
