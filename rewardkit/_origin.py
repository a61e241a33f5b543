"""Is the installed ``rewardkit`` ours? ``harbor-rewardkit`` on PyPI also installs an
import package named ``rewardkit`` and a ``rewardkit`` command; with both installed, the
one installed last overwrites the other's files and one of them silently breaks.

:func:`problem` reads installed metadata only (nothing is imported): another distribution
that ships top-level ``rewardkit`` (``packages_distributions``) or a ``rewardkit`` console
script is named, with the fix. Both CLIs print it on stderr.
Limits: a copy of the package dropped on ``sys.path`` without metadata is not seen.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re

__all__ = ["DISTRIBUTION", "problem", "foreign_distributions"]

DISTRIBUTION = "rewardkit"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def foreign_distributions() -> list[str]:
    """Other distributions that install the ``rewardkit`` package or command."""
    found: set[str] = set()
    try:
        for dist in metadata.packages_distributions().get("rewardkit", []):
            if _normal(dist) != DISTRIBUTION:
                found.add(dist)
        for ep in metadata.entry_points(group="console_scripts", name="rewardkit"):
            owner = ep.dist.name if ep.dist is not None else None
            if owner and _normal(owner) != DISTRIBUTION:
                found.add(owner)
    except Exception:  # broken metadata of some other package must not stop our CLI
        return []
    return sorted(found)


def problem() -> str | None:
    """One line naming the clash and the fix, or None."""
    others = foreign_distributions()
    if not others:
        return None
    names = ", ".join(repr(o) for o in others)
    return (f"another distribution ({names}) also installs the 'rewardkit' package or command; the two overwrite "
            f"each other's files. Fix: pip uninstall {' '.join(others)} rewardkit && pip install rewardkit "
            f"(or keep them in separate virtual environments)")
