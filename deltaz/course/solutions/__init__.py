"""Reference solutions of the course's exercises, one module per notebook (``nb02_cameras``, …).

Each module defines ``EXERCISES``: a tuple of :class:`~deltaz.course.solutions.base.Exercise`. They are
found by name (every module of this package except ``base``), so a new notebook's exercises need only a
new module. :mod:`deltaz.course.exercises` checks a learner's function against them.
"""

from __future__ import annotations

import importlib
import pkgutil

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["Case", "Exercise", "all_exercises"]


def all_exercises() -> dict[str, Exercise]:
    """Every registered exercise by name. Raises ``KeyError`` when two modules use one name."""
    found: dict[str, Exercise] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for ex in getattr(module, "EXERCISES", ()):
            if ex.name in found:
                raise KeyError(f"exercise {ex.name!r} is defined twice ({info.name})")
            found[ex.name] = ex
    return found
