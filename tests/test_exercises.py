"""The course's exercises: each check accepts the reference, rejects a typical mistake and a stub, and
every numbered notebook has two to four exercise cells, each checked against a registered reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from deltaz.core import geometry
from deltaz.course import exercises
from deltaz.course.solutions import all_exercises

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(all_exercises())


@pytest.fixture(autouse=True)
def learner_mode(monkeypatch):
    monkeypatch.delenv(exercises.SOLUTIONS_ENV, raising=False)


@pytest.mark.parametrize("name", ALL)
def test_the_reference_passes(name, capsys):
    ex = exercises.exercise(name)
    assert exercises.check(name, ex.reference) is ex.reference
    assert f"✓ {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ALL)
def test_the_typical_mistake_fails(name):
    with pytest.raises(exercises.ExerciseFailed, match=re.escape(name)):
        exercises.check(name, exercises.exercise(name).mistake)


@pytest.mark.parametrize("name", ALL)
def test_a_stub_is_not_written_yet_and_solutions_mode_replaces_it(name, monkeypatch):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(exercises.ExerciseFailed, match="not written yet"):
        exercises.check(name, stub)
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "1")
    assert exercises.check(name, stub, quiet=True) is exercises.exercise(name).reference


def test_a_function_that_raises_fails_with_its_error():
    def broken(*args, **kwargs):
        raise ValueError("bad shape")

    with pytest.raises(exercises.ExerciseFailed, match="raised ValueError: bad shape"):
        exercises.check("camera_to_world", broken)


def test_the_comparison_reports_where_it_differs():
    ex = exercises.exercise("camera_to_world")
    assert exercises._difference(torch.zeros(2, 3), torch.zeros(2, 3), ex) is None
    assert "shape" in exercises._difference(torch.zeros(3, 2), torch.zeros(2, 3), ex)
    assert "[1, 2]" in exercises._difference(torch.tensor([[0.0, 0, 0], [0, 0, 1]]), torch.zeros(2, 3), ex)
    assert "2 values" in exercises._difference((1.0,), (1.0, 2.0), ex)


def test_camera_to_world_reference_is_the_package_function():
    for args, _ in exercises.exercise("camera_to_world").cases():
        torch.testing.assert_close(exercises.exercise("camera_to_world").reference(*args),
                                   geometry.camera_to_world(*args))


def _exercise_cells(path: Path) -> tuple[list[str], list[str]]:
    """(sources of cells tagged ``exercise``, names passed to ``exercises.check`` in the notebook)."""
    cells = json.loads(path.read_text())["cells"]
    tagged = ["".join(c["source"]) for c in cells if "exercise" in c.get("metadata", {}).get("tags", [])]
    checked = re.findall(r"exercises\.check\(\s*[\"']([\w.]+)[\"']", "".join("".join(c["source"]) for c in cells))
    return tagged, checked


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("0*.ipynb")), ids=lambda p: p.stem)
def test_every_numbered_notebook_has_two_to_four_checked_exercises(path):
    tagged, checked = _exercise_cells(path)
    assert 2 <= len(tagged) <= 4, f"{path.name}: {len(tagged)} cells tagged 'exercise' (want 2 to 4)"
    assert sorted(checked) == exercises.names(path.stem), f"{path.name}: checks {checked} vs registered"
    for source in tagged:
        assert "NotImplementedError" in source, f"{path.name}: an exercise cell should be a stub:\n{source[:200]}"
