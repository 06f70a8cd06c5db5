"""What an exercise is: a reference solution, the cases it is checked on, a hint and a typical mistake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Case", "Exercise"]

#: One call: ``(args, kwargs)``.
Case = tuple[tuple, dict]


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``reference(*args, **kwargs)`` is the answer for every ``(args, kwargs)`` of ``cases()``.

    ``notebook``: the notebook's file stem (``"02_cameras_and_reprojection"``). ``mistake``: a typical wrong
    answer with the same signature (the tests check that it is rejected). ``rtol``/``atol``: tolerances of
    the comparison, in the reference's units.
    """

    name: str
    notebook: str
    reference: Callable[..., Any]
    cases: Callable[[], Sequence[Case]]
    mistake: Callable[..., Any]
    hint: str
    rtol: float = 1e-4
    atol: float = 1e-4
