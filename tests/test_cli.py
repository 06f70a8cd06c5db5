"""The ``deltaz`` command: subcommands with --help, and ``python -m deltaz``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deltaz.apps.cli import SUBCOMMANDS, main


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"deltaz {name}" in out and "--" in out


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "deltaz", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("deltaz ")


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{command}: error: "), lines[0]
    return lines[0]


def test_a_bad_flag_is_one_line_and_status_2(capsys):
    assert main(["train", "--batch-size", "x"]) == 2
    assert "--batch-size" in _one_error_line(capsys.readouterr().err, "deltaz train")
    assert main(["refine"]) == 2
    assert "--depth" in _one_error_line(capsys.readouterr().err, "deltaz refine")


def test_an_unknown_command_is_one_line(capsys):
    assert main(["trian"]) == 2
    assert "trian" in _one_error_line(capsys.readouterr().err, "deltaz")


def test_a_shape_error_that_escapes_a_subcommand_is_one_line(monkeypatch, capsys):
    """A geometry shape problem is a DataError (still a ValueError); main prints it as one line."""
    import torch

    import deltaz.io.dtu.parse as parse
    from deltaz.core import geometry
    from deltaz.core.errors import DataError

    with pytest.raises(DataError):
        geometry.get_ray_dirs_mask(torch.eye(2), 4, 5)
    with pytest.raises(ValueError):  # DataError subclasses ValueError: older callers keep working
        geometry.get_ray_dirs_mask(torch.eye(2), 4, 5)
    monkeypatch.setattr(parse, "run", lambda args: geometry.get_ray_dirs_mask(torch.eye(2), 4, 5))
    assert main(["parse", "--src", "a", "--dst", "b"]) == 2
    assert "K must be (..., 3, 3)" in _one_error_line(capsys.readouterr().err, "deltaz parse")


def test_a_missing_file_through_a_subcommand_is_one_line(tmp_path, capsys):
    assert main(["parse", "--src", str(tmp_path / "missing"), "--dst", str(tmp_path / "out"), "--no-progress"]) != 0
    assert "missing" in _one_error_line(capsys.readouterr().err, "deltaz parse")
