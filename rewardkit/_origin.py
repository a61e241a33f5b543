"""Is the installed ``rewardkit`` ours? ``harbor-rewardkit`` on PyPI also installs an
import package named ``rewardkit`` and a ``rewardkit`` command; with both installed, the
one installed last overwrites the other's files and one of them silently breaks.

:func:`problem` reads installed metadata only (nothing is imported): another distribution
whose name mentions rewardkit and that ships top-level ``rewardkit``, or any distribution
with a ``rewardkit`` console script, is named, with the fix. Both CLIs print it on stderr.
Limits: a copy of the package dropped on ``sys.path`` without metadata is not seen, nor a
distribution with an unrelated name that ships a ``rewardkit`` package but no command.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
from pathlib import Path

__all__ = ["DISTRIBUTION", "problem", "foreign_distributions"]

DISTRIBUTION = "rewardkit"
OURS = {"rewardkit", "rewardkit-trainer", "rewardkit-email"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installs_package(dist: metadata.Distribution) -> bool:
    top = dist.read_text("top_level.txt")
    if top is not None and "rewardkit" in top.split():
        return True
    return any(f.parts and f.parts[0] == "rewardkit" for f in (dist.files or ()))


def _named_like_us() -> list[metadata.Distribution]:
    """Installed distributions whose metadata folder name mentions rewardkit (a glob per
    sys.path entry: no metadata file is read for the others)."""
    out = []
    for entry in sys.path:
        folder = Path(entry or ".")
        if folder.is_dir():
            for info in folder.glob("*[Rr]ewardkit*"):
                if info.suffix in (".dist-info", ".egg-info"):
                    out.append(metadata.PathDistribution(info))
    return out


def foreign_distributions() -> list[str]:
    """Other distributions that install the ``rewardkit`` package or command.

    Reading every distribution's file list (``packages_distributions``) cost ~0.4 s per
    command here, so only distributions whose name mentions rewardkit are read; the
    ``rewardkit`` command is checked for every distribution (entry points are cheap)."""
    found: set[str] = set()
    try:
        for dist in _named_like_us():
            name = _normal(dist.metadata["Name"] or "")
            if name not in OURS and _installs_package(dist):
                found.add(dist.metadata["Name"])
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
