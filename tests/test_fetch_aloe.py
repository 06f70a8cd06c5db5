"""benchmarks/fetch_aloe.sh: every source fails or serves wrong bytes -> one error line, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fetch_aloe.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                                reason="needs bash and sha256sum")


def _stubs(folder: Path, curl_body: str) -> dict[str, str]:
    """A PATH whose apt-get fails and whose curl runs ``curl_body`` (``$out`` is its -o file)."""
    folder.mkdir()
    (folder / "apt-get").write_text("#!/bin/sh\nexit 100\n")
    (folder / "curl").write_text('#!/bin/sh\nwhile [ "$#" -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
                                 + curl_body + "\n")
    for stub in folder.iterdir():
        stub.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _run(dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(dest)], env=env, capture_output=True, text=True, timeout=60)


def test_no_source_is_one_line_and_writes_nothing(tmp_path):
    done = _run(tmp_path / "aloe", _stubs(tmp_path / "bin", "exit 6"))
    assert done.returncode == 1
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fetch_aloe: error:") and "nothing written" in err[0]
    assert not (tmp_path / "aloe").exists()


def test_wrong_bytes_are_refused_and_nothing_is_written(tmp_path):
    done = _run(tmp_path / "aloe", _stubs(tmp_path / "bin", 'echo not-an-image > "$out"'))
    assert done.returncode == 1 and "SHA-256" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "aloe").exists()


def test_right_bytes_from_the_second_source_land_in_dest(tmp_path):
    from deltaz.io.aloe import ALOE_FILES, aloe_dir

    real = aloe_dir()
    if not all((real / name).is_file() for name in ALOE_FILES):
        pytest.skip(f"the Aloe pair is not in {real} (make aloe-data)")
    env = _stubs(tmp_path / "bin", f'cp "{real}/$(basename "$out")" "$out"')
    done = _run(tmp_path / "aloe", env)
    assert done.returncode == 0 and "OpenCV's GitHub" in done.stdout
    assert sorted(p.name for p in (tmp_path / "aloe").iterdir()) == sorted(ALOE_FILES)  # no .part left
    assert all((tmp_path / "aloe" / n).read_bytes() == (real / n).read_bytes() for n in ALOE_FILES)
