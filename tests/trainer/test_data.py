"""data.py: prompt encoding, held-out split and the resumable sampler."""

from __future__ import annotations

import pytest

from rewardkit import InvalidArgument
from rewardkit_trainer.config import DataConfig
from rewardkit_trainer.data import PromptSampler, build_prompt, encode_prompt, load_rows, split

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


# datasets the way users keep them -------------------------------------------------------

ROWS = [{"question": f"{i}+1", "answer": str(i + 1), "source": "s", "difficulty": i % 3} for i in range(6)]


def _write(kind, tmp_path):
    import datasets

    data = datasets.Dataset.from_list(ROWS)
    target = tmp_path / {"folder": "saved", "parquet": "d.parquet", "csv": "d.csv", "json": "d.json"}[kind]
    {"folder": data.save_to_disk, "parquet": data.to_parquet, "csv": data.to_csv,
     "json": data.to_json}[kind](str(target))
    return str(target)


@pytest.mark.parametrize("kind", ["folder", "parquet", "csv", "json"])
def test_files_and_saved_folders_load_through_datasets_with_every_column(kind, tmp_path):
    rows = load_rows(DataConfig(dataset=_write(kind, tmp_path)))
    assert [r["answer"] for r in rows] == [str(i + 1) for i in range(6)]
    assert rows[2]["prompt"][-1] == {"role": "user", "content": "2+1"}
    assert {r["difficulty"] for r in rows} == {0, 1, 2} and rows[0]["source"] == "s"


def test_a_saved_dataset_dict_gives_its_train_split(tmp_path):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:2]),
                          "test": datasets.Dataset.from_list(ROWS[2:])}).save_to_disk(str(tmp_path / "dd"))
    assert len(load_rows(DataConfig(dataset=str(tmp_path / "dd")))) == 2


def test_a_datasets_dataset_object_is_a_dataset():
    import datasets

    rows = load_rows(DataConfig(dataset=datasets.Dataset.from_list(ROWS)))
    assert len(rows) == 6 and rows[0]["difficulty"] == 0


def test_every_column_reaches_the_rubric_parts_as_keywords(tmp_path):
    from rewardkit_trainer.rewards import score_rollout

    from rewardkit import Rubric

    seen = {}

    def spy(completions, difficulty, source, answer, **kwargs):
        seen.update(difficulty=difficulty, source=source, answer=answer)
        return [1.0] * len(completions)

    rows = load_rows(DataConfig(dataset=_write("parquet", tmp_path)))[:2]
    score_rollout(Rubric({"spy": (spy, 1.0)}), ["a", "b"], [r["prompt"] for r in rows], rows)
    assert seen == {"difficulty": [0, 1], "source": ["s", "s"], "answer": ["1", "2"]}


@pytest.mark.parametrize("spec, why", [
    ("missing.parquet", "is not an existing file"),
    ("missing_folder/", "must be 'reasoning_gym:<task>'"),
    ("data.txt", "must be 'reasoning_gym:<task>'"),
])
def test_bad_dataset_specs_name_the_field(spec, why, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgument, match=f"dataset=.*{why}"):
        load_rows(DataConfig(dataset=spec))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_a_broken_file_is_an_invalid_argument(suffix, tmp_path):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(b"\x00\xff not " + b"\x9c" * 50)
    with pytest.raises(InvalidArgument, match="dataset=.*could not be read by datasets"):
        load_rows(DataConfig(dataset=str(bad)))


def test_a_non_dataset_object_is_refused_at_construction():
    with pytest.raises(InvalidArgument, match="dataset=.*datasets.Dataset"):
        DataConfig(dataset=[{"question": "q"}])
