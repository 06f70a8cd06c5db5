"""``deltaz.engine.report``: the printed summary and ``metrics.md`` are rendered from the column lists."""

from __future__ import annotations

import math

from deltaz.engine.report import (
    SUMMARY_COLUMNS, TABLE_COLUMNS, markdown_table, metrics_markdown, summary_table, text_table,
)


def _row(method: str, scan: str, mae: float) -> dict:
    return {"method": method, "scan": scan, **{c: 1.0 for c in TABLE_COLUMNS[2:]}, "mae_mm": mae}


def test_summary_table_shows_the_overall_rows_in_the_summary_columns():
    rows = [_row("identity", "all", 3.0), _row("deltaz", "all", 1.5), _row("deltaz", "scan1", 9.0)]
    lines = summary_table(rows).splitlines()
    assert lines[0].split() == list(SUMMARY_COLUMNS)
    assert [line.split()[0] for line in lines[1:]] == ["identity", "deltaz"]  # per-scan rows left out
    assert lines[2].split()[1] == "1.50" and len({len(line) for line in lines}) == 1  # fixed width
    assert text_table([{"method": "x", "mae_mm": math.nan}], ("method", "mae_mm")).splitlines()[1].split() == ["x", "–"]


def test_metrics_markdown_sections():
    result = {
        "rows": [_row("identity", "all", 3.0), _row("deltaz", "all", 1.5), _row("deltaz", "scan1", 1.5)],
        "checkpoint": "c.pt", "data_root": "d", "split": "val", "scans": ["scan1"], "tune_root": "d",
        "val_scans": ["scan1"], "notes": ["a note"],
        "settings": {"preset": "mvs", "n_views_evaluated": 4, "num_src_views": 2},
        "baseline_params": {"median": {"params": {"kernel_size": 5}, "val_mae_mm": 2.0}},
        "pointclouds": [], "figures": ["figures/a.png"], "ply": [],
    }
    md = metrics_markdown(result)
    assert md.startswith("# DeltaZ evaluation\n") and "- note: a note" in md
    assert "| median | kernel_size=5 | 2.00 |" in md and "![a](figures/a.png)" in md
    assert "**1.50**" in md  # the best MAE of the overall table is bold
    assert "## All scans" not in metrics_markdown(result, overall_table=False)
    assert markdown_table(result["rows"][:1], ("method", "mae_mm")) == "| method | mae_mm |\n|---|---|\n| identity | 3.00 |\n"
