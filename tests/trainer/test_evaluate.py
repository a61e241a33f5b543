"""evaluate.py: held-out metrics from any engine, rubric and prompt encoder."""

from __future__ import annotations

from rewardkit import Rubric
from rewardkit_trainer.config import GRPOConfig
from rewardkit_trainer.evaluate import eval_options, evaluate, print_eval
from rewardkit_trainer.rollout.base import Rollout, RolloutEngine


class Scripted(RolloutEngine):
    """Returns fixed texts, and records the sampling settings it was given."""

    def __init__(self, texts):
        self.texts, self.params = texts, []

    def generate(self, prompt_ids, params):
        self.params.append(params)
        n = len(prompt_ids) * params.num_generations
        texts = [self.texts[i % len(self.texts)] for i in range(n)]
        return Rollout([list(p) for p in prompt_ids], [[1]] * n, texts, [False] * n)

    def update_weights(self, model):
        pass


RUBRIC = Rubric({"correct": (lambda text, answer: text == answer, 1.0), "format": (lambda text: text.isdigit(), 0.0)})
ROWS = [{"prompt": "p1", "answer": "4"}, {"prompt": "p2", "answer": "5"}]


def test_greedy_accuracy_and_format():
    engine = Scripted(["4", "x"])
    out = evaluate(engine, RUBRIC, lambda p: [len(p)], ROWS, max_completion_length=8)
    assert out == {"reward": 0.5, "accuracy": 0.5, "format": 0.5}
    assert engine.params[0].top_k == 1 and engine.params[0].num_generations == 1


def test_pass_at_k_samples_k_per_prompt():
    out = evaluate(Scripted(["4", "5"]), RUBRIC, lambda p: [1], ROWS, k=2, max_completion_length=8, temperature=0.7)
    assert out["pass@2"] == 1.0 and out["accuracy"] == 0.5


def test_options_come_from_the_config_sections(capsys):
    opts = eval_options(GRPOConfig(eval_k=3, max_completion_length=9, seed=4))
    assert opts["k"] == 3 and opts["max_completion_length"] == 9 and opts["seed"] == 4
    assert evaluate(Scripted(["4"]), RUBRIC, lambda p: [1], [], **opts) == {}
    print_eval("after", {"accuracy": 0.5})
    assert capsys.readouterr().out == "held-out (after): accuracy 0.500\n"
