"""The project's set-up files agree with each other (pyproject.toml is the one list of dependencies)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_runtime_dependencies_cover_the_core_packages():
    names = {re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0].lower() for dep in _pyproject()["project"]["dependencies"]}
    for core in ["torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab", "imageio", "tensorboard", "tqdm"]:
        assert core in names, f"{core} missing from pyproject.toml dependencies"
    assert "torchvision" not in names, "DeltaZ must not depend on torchvision"


def test_torch_is_not_pinned_for_users():
    deps = _pyproject()["project"]["dependencies"]
    torch_spec = next(dep for dep in deps if dep.split()[0].startswith("torch"))
    assert "==" not in torch_spec, f"torch must not be pinned to one version: {torch_spec!r}"


def test_environment_yml_delegates_to_pyproject():
    text = (ROOT / "environment.yml").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    # Every line is commented, as handson-ml3 does.
    uncommented = [line for line in lines if "#" not in line]
    assert not uncommented, f"environment.yml lines without a comment: {uncommented}"
    body = [line.split("#", 1)[0].rstrip() for line in lines]
    assert any(line.strip() == "- conda-forge" for line in body), "environment.yml must use conda-forge"
    assert any(re.fullmatch(r"\s*- python(=.*)?", line) for line in body)
    assert any(line.strip() == "- pip" for line in body)
    pip_items = [line.strip() for line in body if line.strip().startswith('- -e')]
    assert pip_items == ['- -e ".[dev]"'], f"environment.yml must install -e \".[dev]\" through pip: {pip_items}"
    # The extras named there exist in pyproject.toml.
    assert "dev" in _pyproject()["project"]["optional-dependencies"]
    # No package is listed in both places with a different meaning: conda lists only python, pip, pytorch.
    conda_pkgs = {
        line.strip()[2:].split("=")[0]
        for line in body
        if re.fullmatch(r"  - [A-Za-z][\w.-]*(=[\w.*]+)?", line)
    } - {"conda-forge"}
    runtime = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in _pyproject()["project"]["dependencies"]}
    conda_to_pip = {"pytorch": "torch"}
    for pkg in conda_pkgs - {"python", "pip"}:
        assert conda_to_pip.get(pkg, pkg) in runtime, f"environment.yml installs {pkg}, which pyproject.toml does not list"


def test_makefile_has_the_readme_commands():
    makefile = (ROOT / "Makefile").read_text()
    for target in ["demo:", "test:", "lab:"]:
        assert re.search(rf"^{target}", makefile, re.M), f"Makefile lacks {target}"
    assert 'pip install -e ".[dev]"' in makefile
