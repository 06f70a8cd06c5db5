"""Writing evaluation results: the metrics table (Markdown and JSON), figures, and the machine they ran on.

Used by :mod:`deltaz.engine.evaluate` (``metrics.md``, ``metrics.json``, ``figures/*.png``) and :mod:`deltaz.apps.demo`
(``report.md``). Every file is written atomically (temporary file, then ``os.replace``), so an
interrupted run never leaves a half-written table or PNG behind.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from deltaz.io.dtu.formats import atomic_write_bytes, atomic_write_text

__all__ = [
    "METRIC_COLUMNS",
    "HARM_COLUMNS",
    "TABLE_COLUMNS",
    "TABLE_BOLD",
    "POINTCLOUD_COLUMNS",
    "format_value",
    "markdown_table",
    "write_json",
    "save_figure",
    "machine_info",
    "format_seconds",
]

#: The metric keys of every row of ``metrics.json`` (after ``method`` and ``scan``), in table order.
#: mm for ``*_mm``, a fraction for ``abs_rel``, percent (0–100) for the rest.
METRIC_COLUMNS = (
    "mae_mm",
    "rmse_mm",
    "abs_rel",
    "acc_1mm",
    "acc_2mm",
    "acc_4mm",
    "err_2mm",
    "err_4mm",
    "err_8mm",
    "delta_1_25",
    "consistency",
)

#: The do-no-harm figures of every row (:func:`deltaz.ops.metrics.harm_metrics`, over the pixels with ground truth
#: and an input depth): the MAE (mm) over the pixels the input already had within 2 mm, and the % of pixels
#: made more than 1 mm worse than the input. The one list: rows, tables and the printed summary use it.
HARM_COLUMNS = ("mae_good_mm", "harm_pct")

#: Columns of the printed / Markdown table (the metrics plus diagnostics and the do-no-harm figures).
TABLE_COLUMNS = ("method", "scan", *METRIC_COLUMNS, "mae_valid_mm", "hole_pct", *HARM_COLUMNS)

#: Which columns of the table are printed in bold at their best value (``markdown_table``'s ``bold_best``).
TABLE_BOLD = {"mae_mm": "min", "rmse_mm": "min", "acc_1mm": "max", "consistency": "max", "mae_valid_mm": "min",
              "mae_good_mm": "min"}

#: Columns of the point-cloud table.
POINTCLOUD_COLUMNS = ("method", "scan", "accuracy_mm", "completeness_mm", "overall_mm", "n_pred", "n_gt")

_DIGITS = {"abs_rel": 4}


def format_value(key: str, value: Any) -> str:
    """A table cell: floats with 2 decimals (``abs_rel`` 4), NaN as ``–``, everything else as ``str``."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{_DIGITS.get(key, 2)}f}"
    return str(value)


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], bold_best: Mapping[str, str] | None = None
) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns`` (missing keys are blank).

    ``bold_best`` maps a column to ``"min"`` or ``"max"``: within each ``scan`` group, the best value of
    that column is printed in bold.
    """
    best: dict[tuple[str, str], float] = {}
    for column, sense in (bold_best or {}).items():
        for row in rows:
            value = row.get(column)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            key = (str(row.get("scan")), column)
            if key not in best or (value < best[key] if sense == "min" else value > best[key]):
                best[key] = float(value)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for column in columns:
            text = format_value(column, row.get(column))
            value = row.get(column)
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and best.get((str(row.get("scan")), column)) == value
            ):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    """NaN/inf become None (strict JSON); tuples become lists; Paths become strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented, strict JSON (NaN → null) atomically. Returns the path."""
    path = Path(path)
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")
    return path


def save_figure(fig, path: str | os.PathLike, dpi: float = 100) -> Path:
    """Save a matplotlib figure as PNG atomically. Returns the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU model and core count, GPU name, torch and Python versions."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def format_seconds(seconds: float | None) -> str:
    """``75.3`` → ``"1 min 15 s"``; ``None`` → ``"cached"``."""
    if seconds is None:
        return "cached"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def bullet_list(items: Iterable[tuple[str, Any]]) -> str:
    """``- key: value`` lines."""
    return "".join(f"- {key}: {value}\n" for key, value in items)
