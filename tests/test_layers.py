"""The package's layers: every import points down, no cycles, imports at the top, short modules and functions.

Layers, lowest first (README, "Layout"): ``core`` < ``io`` (and ``weights``) < ``ops`` < ``model``,
``data`` < ``viz`` < ``engine`` < ``course`` < ``apps``. A module may import its own package and any lower
layer; never a higher one, and never a different package of its own rank (``model`` and ``data`` are
peers). The four stable top-level paths (``deltaz.baselines``, ``deltaz.corrupt``, ``deltaz.config``,
``deltaz.evaluate``) exist for other programs: nothing inside the package imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deltaz"
RANK = {"core": 0, "io": 1, "weights": 1, "ops": 2, "model": 3, "data": 3, "viz": 4,
        "engine": 5, "course": 6, "apps": 7}
COMPAT = {"deltaz.baselines", "deltaz.corrupt", "deltaz.config", "deltaz.evaluate"}
TOP_LEVEL = {"deltaz", "deltaz.__main__"} | COMPAT  # may import anything


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.AST, module: str, is_package: bool):
    """Yield (imported deltaz module or symbol path, line, inside_function) for every deltaz import."""
    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            nested = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "deltaz":
                        yield alias.name, child.lineno, in_func
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] == "deltaz":
                    for alias in child.names:
                        yield f"{base}.{alias.name}", child.lineno, in_func
            elif _is_type_checking_block(child):
                continue  # ``if TYPE_CHECKING:`` imports never run
            else:
                yield from visit(child, nested)
    yield from visit(tree, False)


def _all_imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for target, line, in_func in _imports(tree, module, path.name == "__init__.py"):
            yield module, path, target, line, in_func


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_every_module_belongs_to_a_layer():
    stray = [m for m in map(_module_name, PACKAGE.rglob("*.py")) if m not in TOP_LEVEL and _layer(m) is None]
    assert not stray, f"modules outside the layers (add them to a layer folder): {stray}"


def test_imports_point_down():
    wrong = []
    for module, path, target, line, _ in _all_imports():
        if module in TOP_LEVEL:
            continue
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        if any(target == c or target.startswith(c + ".") for c in COMPAT):
            wrong.append(f"{where} imports the compatibility path {target}")
            continue
        src, dst = _layer(module), _layer(target)
        if dst is None or src == dst:
            continue
        if RANK[dst] > RANK[src] or (RANK[dst] == RANK[src]):
            wrong.append(f"{where}: {module} ({src}) imports {target} ({dst})")
    assert not wrong, "imports that do not point down:\n" + "\n".join(wrong)


def test_imports_sit_at_the_top_unless_marked_lazy():
    """An import inside a function needs ``# lazy: <why>`` on its line (e.g. start-up time)."""
    lines_of: dict[Path, list[str]] = {}
    hidden = []
    for module, path, target, line, in_func in _all_imports():
        if not in_func:
            continue
        text = lines_of.setdefault(path, path.read_text().splitlines())
        if "# lazy:" not in text[line - 1]:
            hidden.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} inside a function")
    assert not hidden, "\n".join(hidden)


def _module_graph() -> dict[str, set[str]]:
    """Module -> the deltaz modules it imports, lazy imports included (``from pkg import sub`` -> ``pkg.sub``)."""
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, _, target, _, _ in _all_imports():
        while target not in modules and "." in target:
            target = target.rpartition(".")[0]  # a name inside a module -> that module
        if target != module:
            graph[module].add(target)
    return graph


def test_no_import_cycles():
    """No module reaches itself through imports, lazy ones included (a lazy import must not hide a cycle)."""
    graph = _module_graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("old, new", [("deltaz.baselines", "deltaz.ops.baselines"),
                                      ("deltaz.corrupt", "deltaz.ops.corrupt"),
                                      ("deltaz.config", "deltaz.engine.config"),
                                      ("deltaz.evaluate", "deltaz.engine.evaluate")])
def test_stable_paths_are_the_moved_modules(old, new):
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)


def test_public_functions_keep_their_paths():
    from deltaz.baselines import BASELINES, fill_holes, median, tune_baseline  # noqa: F401
    from deltaz.config import TrainConfig
    from deltaz.corrupt import simulate_initial_depth
    from deltaz.evaluate import load_refiner
    from deltaz.model import build_model, refine

    assert callable(refine) and callable(build_model) and callable(load_refiner)
    assert callable(simulate_initial_depth) and TrainConfig().base_channel > 0


def test_modules_and_functions_stay_short():
    """One job per module and per function: no module over 500 lines, no function over 80."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(PACKAGE.parent)
        if len(text.splitlines()) > 500:
            long.append(f"{where}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{where}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, "\n".join(long)
