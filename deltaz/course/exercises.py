"""The course's exercises: the learner writes a function, a check compares it with the package's reference.

Each exercise is defined in a module of :mod:`deltaz.course.solutions` with its reference solution, the
argument sets it is tried on, a hint, and a typical wrong answer (the tests prove that the check rejects it).
In a notebook, a cell tagged ``exercise`` holds the learner's stub, and the next cell runs::

    camera_to_world = exercises.check("camera_to_world", camera_to_world)

:func:`check` calls the learner's function on every argument set, compares with the reference
(tensors, arrays and numbers to a tolerance; tuples, lists and dicts element by element), prints one line
when all agree and raises :class:`ExerciseFailed` naming the first case that does not. With the
environment variable ``DELTAZ_SOLUTIONS=1`` (CI, and a learner who wants to skip ahead) the reference
solution takes the stub's place: the check runs on it and returns it, so later cells work.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Callable

import numpy as np
import torch

from deltaz.course.solutions import Exercise, all_exercises

__all__ = ["SOLUTIONS_ENV", "Exercise", "ExerciseFailed", "check", "exercise", "names", "solutions_mode"]

#: Set to 1 to check (and use) the reference solutions instead of the learner's functions.
SOLUTIONS_ENV = "DELTAZ_SOLUTIONS"


class ExerciseFailed(AssertionError):
    """The learner's function disagrees with the reference (or is not written yet)."""


def exercise(name: str) -> Exercise:
    """The exercise ``name`` (from :mod:`deltaz.course.solutions`)."""
    found = all_exercises()
    if name not in found:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(found))}")
    return found[name]


def names(notebook: str | None = None) -> list[str]:
    """Exercise names (of one notebook, e.g. ``"02_cameras_and_reprojection"``), sorted."""
    return sorted(n for n, e in all_exercises().items() if notebook is None or e.notebook == notebook)


def solutions_mode() -> bool:
    """True when ``DELTAZ_SOLUTIONS=1``: checks run on (and return) the reference solutions."""
    return os.environ.get(SOLUTIONS_ENV, "").strip() == "1"


def _as_array(x: Any) -> np.ndarray | None:
    if torch.is_tensor(x):
        return x.detach().cpu().double().numpy()
    if isinstance(x, (np.ndarray, float, int, np.floating, np.integer)) and not isinstance(x, bool):
        return np.asarray(x, dtype=np.float64)
    return None


def _difference(got: Any, want: Any, ex: Exercise, where: str = "result") -> str | None:
    """``None`` when ``got`` matches ``want``; else one line saying where and how they differ."""
    want_arr = _as_array(want)
    if want_arr is not None:
        got_arr = _as_array(got)
        if got_arr is None:
            return f"{where}: expected a number or array, got {type(got).__name__}"
        if got_arr.shape != want_arr.shape:
            return f"{where}: expected shape {want_arr.shape}, got {got_arr.shape}"
        close = np.isclose(got_arr, want_arr, rtol=ex.rtol, atol=ex.atol, equal_nan=True)
        if not close.all():
            i = tuple(int(j) for j in np.unravel_index(int(np.argmin(close)), close.shape)) if close.ndim else ()
            return f"{where}{list(i) if i else ''}: expected {want_arr[i]:.6g}, got {got_arr[i]:.6g}"
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"{where}: expected a dict with keys {sorted(want)}, got {type(got).__name__}"
        return next((d for k in want if (d := _difference(got[k], want[k], ex, f"{where}[{k!r}]"))), None)
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{where}: expected {len(want)} values, got {got!r:.60}"
        return next((d for i, (g, w) in enumerate(zip(got, want)) if (d := _difference(g, w, ex, f"{where}[{i}]"))),
                    None)
    return None if got == want else f"{where}: expected {want!r}, got {got!r}"


def check(name: str, fn: Callable[..., Any], quiet: bool = False) -> Callable[..., Any]:
    """Check ``fn`` against exercise ``name``'s reference on every case; return the function that passed.

    Raises :class:`ExerciseFailed` with the first disagreement and the hint. Under ``DELTAZ_SOLUTIONS=1``
    the reference is checked and returned instead of ``fn``.
    """
    ex = exercise(name)
    if solutions_mode():
        fn = ex.reference
    cases = list(ex.cases())
    for i, (args, kwargs) in enumerate(cases):
        want = ex.reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        try:
            got = fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except NotImplementedError:
            raise ExerciseFailed(f"{name}: not written yet (replace `raise NotImplementedError`). Hint: {ex.hint}") from None
        except Exception as error:  # the learner's code failed: say where, keep the traceback as the cause
            raise ExerciseFailed(f"{name}, case {i + 1} of {len(cases)}: your function raised "
                                 f"{type(error).__name__}: {error}. Hint: {ex.hint}") from error
        problem = _difference(got, want, ex)
        if problem:
            raise ExerciseFailed(f"{name}, case {i + 1} of {len(cases)}: {problem}. Hint: {ex.hint}")
    if not quiet:
        who = "the reference solution (DELTAZ_SOLUTIONS=1)" if solutions_mode() else "your function"
        print(f"✓ {name}: {who} agrees with the reference on {len(cases)} cases")
    return fn
