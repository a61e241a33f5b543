"""A well-formed plugin: one scorer and one rubric."""

from rewardkit import Scorer
from rewardkit.plugins import hookimpl


class Shout(Scorer):
    """1.0 when the completion is all upper case."""

    def __init__(self, *, min_length: int = 1, name: str | None = None) -> None:
        super().__init__(name=name)
        self.min_length = min_length

    def _score(self, text, **columns):
        return len(text) >= self.min_length and text.isupper()


@hookimpl
def register_scorers(register):
    register("shout", Shout, description="completion is in capitals")


@hookimpl
def register_rubrics(register):
    def shout_rubric(**options):
        from rewardkit import Rubric

        return Rubric({"shout": (Shout(**options), 1.0)}, name="shout_rubric")

    register("shout_rubric", shout_rubric, description="a one-part rubric")
