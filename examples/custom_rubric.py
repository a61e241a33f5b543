"""A custom rubric: a scorer, a TRL-style function and a plain callable, with weights."""

from rewardkit import Part, Rubric, Scorer


class Tidy(Scorer):  # a Component: _score returns a number, a bool, a Score or None
    def _score(self, text, **columns):
        return text.strip().endswith("</answer>")


def correct(prompts, completions, answer, **kwargs):  # TRL-style: batch in, list out
    return [2.0 if a in c else 0.0 for c, a in zip(completions, answer)]


rubric = Rubric([Part("correct", correct, weight=1.0), Part("tidy", Tidy(), weight=0.2),
                 Part("chars", len, weight=0)], name="custom")  # weight 0: a logged metric

if __name__ == "__main__":  # the guard lets workers (forkserver) import this file safely
    texts = ["<answer>42</answer>", "it is 41", "42 <answer>"]
    results = rubric.score_batch(texts, answer=["42"] * 3, workers=2, timeout=5)
    for text, r in zip(texts, results):
        print(f"{text!r:24} total={r.total:.2f} {r.values}")
    print(rubric.summarize(results)["total"])
