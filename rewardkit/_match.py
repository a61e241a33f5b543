"""Old home of :class:`~rewardkit.scorers.Contains` and ``ExactMatch`` (now
:mod:`rewardkit.matching`); kept so old imports work."""

from .matching import *  # noqa: F401,F403
from .matching import __all__  # noqa: F401
