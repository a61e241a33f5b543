"""A third-party verifier for rewardkit-train's tests."""

from rewardkit import Score, Status, Verifier
from rewardkit.plugins import hookimpl


class EndsWithAnswer(Verifier):
    name = "ends_with_answer"

    def _score(self, text, *, answer=None, **columns):
        if answer is None:
            return Score(None, Status.ABSTAIN, reason="no answer column")
        ok = text.rstrip().endswith(str(answer))
        return Score(1.0 if ok else 0.0, Status.OK if ok else Status.WRONG, answer=str(answer))


@hookimpl
def register_verifiers(register):
    register("ends_with_answer", EndsWithAnswer, description="the completion ends with the gold answer")
