"""Writing evaluation results: the metrics table (Markdown and JSON), figures, and the machine they ran on.

Used by :mod:`deltaz.engine.evaluate` (``metrics.md``, ``metrics.json``, ``figures/*.png``, the printed
summary) and :mod:`deltaz.apps.demo` (``report.md``). Every table is rendered here; its columns are the lists
below (a new column is added to them and computed in :mod:`deltaz.engine.evaluate.scores`). Every file is
written atomically (temporary file, then ``os.replace``), so an interrupted run never leaves a half-written
table or PNG behind.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from deltaz.core.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "METRIC_COLUMNS",
    "HARM_COLUMNS",
    "TABLE_COLUMNS",
    "TABLE_BOLD",
    "POINTCLOUD_COLUMNS",
    "SUMMARY_COLUMNS",
    "format_value",
    "markdown_table",
    "text_table",
    "metrics_markdown",
    "summary_table",
    "write_metrics",
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
#: ``consistency_valid``: ``consistency`` over the pixels the input has (a method that fills holes is scored on more,
#: harder pixels by ``consistency``; this compares every row on the same ones).
TABLE_COLUMNS = ("method", "scan", *METRIC_COLUMNS, "consistency_valid", "mae_valid_mm", "hole_pct", *HARM_COLUMNS)

#: Columns of the fixed-width summary ``deltaz evaluate`` prints (:func:`summary_table`).
SUMMARY_COLUMNS = ("method", "mae_mm", "rmse_mm", "acc_1mm", "acc_2mm", "err_4mm", "delta_1_25", "consistency",
                   "consistency_valid", "mae_valid_mm", "hole_pct", *HARM_COLUMNS)

#: Which columns of the table are printed in bold at their best value (``markdown_table``'s ``bold_best``).
TABLE_BOLD = {"mae_mm": "min", "rmse_mm": "min", "acc_1mm": "max", "consistency": "max", "consistency_valid": "max",
              "mae_valid_mm": "min", "mae_good_mm": "min"}

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


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table of ``rows`` (first column left-aligned, the others right-aligned)."""
    cells = [[format_value(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [columns, *cells]
    return "\n".join("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths)))
                     for line in lines)


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``scan = "all"`` rows as a fixed-width text table of :data:`SUMMARY_COLUMNS` (what
    ``deltaz evaluate`` prints)."""
    return text_table([r for r in rows if r["scan"] == "all"], SUMMARY_COLUMNS)


def _inference_line(settings: Mapping[str, Any]) -> str:
    """The refiner rows' inference dials (dead zone, mirror agreement, surface smoothing, colour scale, the selection
    head's weighted median when on) as one ``metrics.md`` bullet."""
    zone = settings.get("dead_zone") or [0.0, 0.0]
    zone_text = f"dead zone {zone[0]:g},{zone[1]:g}" if any(zone) else "no dead zone"
    mirror = "with the mirror agreement" if settings.get("mirror_agreement") else "without the mirror agreement"
    median = ", the weighted median of the selection head's candidates" if settings.get("weighted_median") else ""
    smooth = "with the surface smoothing" if settings.get("smooth") else "without the surface smoothing"
    return (f"- the checkpoint's rows: {zone_text}, {mirror}, {smooth}, colour scale "
            f"{settings.get('colour_scale', 1.0):g}{median}\n")


def _dials_named(settings: Mapping[str, Any]) -> str:
    """``"the mirror agreement and the surface smoothing"``: those of the two dials that are on (or neither)."""
    on = [name for key, name in (("mirror_agreement", "the mirror agreement"), ("smooth", "the surface smoothing"))
          if settings.get(key)]
    return " and ".join(on) or "neither the mirror agreement nor the surface smoothing"


def _metrics_header(result: Mapping[str, Any]) -> list[str]:
    """The bullet list at the top of ``metrics.md``: what was evaluated and how each column is defined."""
    settings = result["settings"]
    parts = [
        "# DeltaZ evaluation\n\n",
        f"- checkpoint: `{result['checkpoint']}`\n",
        f"- data: `{result['data_root']}`, split `{result['split']}`: {', '.join(result['scans'])}\n",
        f"- baselines tuned on the validation scans of `{result['tune_root']}`: "
        f"{', '.join(result['val_scans']) or 'none (default parameters)'}\n",
        f"- initial depth: preset `{settings['preset']}` (fixed per scan and view); "
        f"{settings['n_views_evaluated']} views, {settings['num_src_views']} source views each\n",
        _inference_line(settings),
        "- metrics over every ground-truth pixel (a hole counts as an error of the full depth); "
        "`mae_valid_mm` over the pixels where the initial depth exists; mm, `abs_rel` a fraction, rates in %\n",
        "- do-no-harm, over the pixels with ground truth and an initial depth: `mae_good_mm` = MAE over those "
        "the initial depth has within 2 mm; `harm_pct` = % made more than 1 mm worse than the initial depth\n",
        "- `consistency`: % of a method's pixels that pass MVSNet's geometric check (1 px, 1 %) against the "
        "same method's output in at least one source view; `consistency_valid` the same over the pixels the initial "
        "depth has (a method that fills holes is otherwise scored on more, harder pixels than its input)\n",
    ]
    return parts + [f"- note: {note}\n" for note in result.get("notes", [])]


def _baseline_params_table(baseline_params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    parts = ["\n## Baseline parameters (chosen by MAE on the validation scans)\n\n",
             "| baseline | parameters | val MAE (mm) |\n|---|---|---|\n"]
    for name, info in baseline_params.items():
        params = ", ".join(f"{k}={v}" for k, v in info["params"].items()) or "defaults"
        mae = info.get("val_mae_mm")
        parts.append(f"| {name} | {params} | {'–' if mae is None else f'{mae:.2f}'} |\n")
    return parts


def metrics_markdown(result: Mapping[str, Any], overall_table: bool = True) -> str:
    """``metrics.md`` of a :func:`deltaz.engine.evaluate.run_evaluation` result: overall table (unless
    ``overall_table=False``), per-scan table, point clouds, confidence, chosen baseline parameters, figures."""
    rows = result["rows"]
    parts = _metrics_header(result)
    if overall_table:
        parts += ["\n## All scans\n\n", markdown_table([r for r in rows if r["scan"] == "all"], TABLE_COLUMNS, TABLE_BOLD)]
    parts += ["\n## Per scan\n\n", markdown_table([r for r in rows if r["scan"] != "all"], TABLE_COLUMNS, TABLE_BOLD)]
    if result.get("pointclouds"):
        parts += [
            "\n## Point clouds (fused, scored against the ground-truth cloud; DTU definitions, 20 mm cut)\n\n",
            markdown_table(result["pointclouds"], POINTCLOUD_COLUMNS, {"overall_mm": "min"}),
        ]
    if result.get("confidence"):
        conf = result["confidence"]
        parts.append(
            f"\n## Confidence\n\nAUSE of deltaz's confidence: {conf['ause_mm']:.3f} mm (a random order: "
            f"{conf['ause_random_mm']:.3f} mm; 0 = perfect), over {conf['n_pixels']} pixels.\n"
        )
    if result.get("baseline_params"):
        parts += _baseline_params_table(result["baseline_params"])
    if result.get("figures"):
        parts.append("\n## Figures\n\n")
        parts += [f"![{Path(p).stem}]({p})\n\n" for p in result["figures"]]
    if result.get("ply"):
        parts.append("Point clouds (PLY): " + ", ".join(f"`{p}`" for p in result["ply"]) + "\n")
    return "".join(parts)


def write_metrics(result: Mapping[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``metrics.json`` (strict JSON, NaN → null) and ``metrics.md`` into ``out_dir`` atomically.
    Returns both paths."""
    out_dir = Path(out_dir)
    json_path = write_json(out_dir / "metrics.json", result)
    md_path = out_dir / "metrics.md"
    atomic_write_text(md_path, metrics_markdown(result))
    return json_path, md_path


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


# --------------------------------------------------------------------------- the demo's report.md (deltaz demo)
def demo_compare_line(summary: Mapping[str, Any] | None) -> str:
    """One line on the demo's MVSNet-style baseline network run (``train_summary.json`` of it), or "none"."""
    if not summary:
        return "none (--compare-minutes 0)"
    cfg, final = summary.get("config", {}), summary.get("final_metrics", {})
    text = (f"`mvsnet_refine` ({cfg.get('model')} base_channel={cfg.get('base_channel')} "
            f"use_images={cfg.get('use_images')}, same data, losses, input options and optimiser): budget "
            f"{cfg.get('max_minutes'):g} min, stopped by {summary.get('stopped_by')} "
            f"after {summary.get('steps')} steps")
    if final:
        text += (f"; validation MAE {final.get('mae_mm_init', float('nan')):.2f} -> "
                 f"{final.get('mae_mm_refined', float('nan')):.2f} mm")
    return text + f"; checkpoint `{summary.get('checkpoint')}`"


def _demo_settings_items(facts: Mapping[str, Any], evaluation: Mapping[str, Any], train_summary: Mapping[str, Any],
                         groups: Mapping[str, Sequence[str]], data: Path,
                         compare_summary: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The "Settings" bullets of the demo report (``facts``: the demo's settings as a dict)."""
    cfg, final = train_summary.get("config", {}), train_summary.get("final_metrics", {})
    height, width = facts["image_size"]
    return [
        ("data", f"`{data}`: {facts['scans']} synthetic scans x {facts['views']} views, depth "
                 f"{'x'.join(map(str, facts['resolution'] or (128, 160)))}, images rendered at "
                 f"{width}x{height}, seed {facts['seed']}"),
        ("split (seeded, by scene)", f"train {', '.join(evaluation.get('train_scans', []))}; "
                                     f"val {', '.join(evaluation['val_scans'])}; test {', '.join(groups['test'])}"),
        ("initial depth", f"training: `{facts['preset']}` (drawn per view and epoch); evaluation: "
                          f"`{facts['eval_preset']}` (fixed per scan and view)"),
        ("model", f"{cfg.get('model')} base_channel={cfg.get('base_channel')} unet_depth={cfg.get('unet_depth')} "
                  f"use_images={cfg.get('use_images')} depth_scale_mm={cfg.get('depth_scale_mm')} "
                  f"depth_scale_rel={cfg.get('depth_scale_rel')} "
                  f"fill_holes={cfg.get('fill_holes')} prefill_holes={cfg.get('prefill_holes')}"),
        ("training", f"budget {facts['minutes']:g} min or {cfg.get('num_epochs')} epochs, batch {cfg.get('batch_size')}, "
                     f"{cfg.get('num_views')} views per sample, lr {cfg.get('lr')}, image augment {cfg.get('image_augment', 0.0)}, image dropout "
                     f"{cfg.get('image_dropout', 0.0)}, amp {cfg.get('amp')}, device {train_summary.get('device')}; "
                     f"stopped by {train_summary.get('stopped_by')} after {train_summary.get('steps')} steps "
                     f"({train_summary.get('epochs_completed')} full epochs)"),
        ("loss weights", ", ".join(f"{k[2:]}={cfg.get(k)}" for k in cfg if k.startswith("w_"))),
        ("validation (last)", f"MAE {final.get('mae_mm_init', float('nan')):.2f} -> "
                              f"{final.get('mae_mm_refined', float('nan')):.2f} mm (pixels with an initial depth)"
         if final else "none"),
        ("checkpoint evaluated", f"`{evaluation['checkpoint']}`" + (
            ", its rows deltaz, deltaz+gate, search+deltaz with " + _dials_named(evaluation.get("settings", {})))),
        ("baseline network", demo_compare_line(compare_summary)),
    ]


def _demo_machine_and_files(machine: Mapping[str, Any], evaluation: Mapping[str, Any], out: Path) -> list[str]:
    return [
        "\n## Machine\n\n",
        bullet_list([
            ("CPU", f"{machine['cpu']} ({machine['cpu_cores']} cores, torch threads {machine['torch_threads']})"),
            ("GPU", machine["gpu"] or "none"),
            ("torch", machine["torch"]),
            ("python", machine["python"]),
            ("platform", machine["platform"]),
        ]),
        "\n## Files\n\n",
        bullet_list([
            ("checkpoints", f"`{out / 'checkpoints'}`"),
            ("TensorBoard", f"`tensorboard --logdir {out / 'logs'}`"),
            ("metrics", f"`{out / 'metrics.json'}`, `{out / 'metrics.md'}`"),
            ("point clouds", ", ".join(f"`{out / p}`" for p in evaluation.get("ply", [])) or "none"),
        ]),
        "\n---\n\n",
    ]


def demo_report_markdown(facts: Mapping[str, Any], evaluation: Mapping[str, Any], train_summary: Mapping[str, Any],
                         groups: Mapping[str, Sequence[str]], timings: Mapping[str, float | None],
                         machine: Mapping[str, Any], out: Path, data: Path, targets: Sequence[Mapping[str, Any]],
                         compare_summary: Mapping[str, Any] | None = None) -> str:
    """The text of the demo's ``report.md``: results table, quality ``targets`` (``{target, value, met}``),
    stage wall times, settings (``facts``: scans, views, resolution, image_size (H, W), seed, preset,
    eval_preset, minutes), machine, files, then the evaluation's own Markdown one heading level down."""
    overall = [r for r in evaluation["rows"] if r["scan"] == "all"]
    parts = [
        "# DeltaZ demo report\n\n",
        "The whole pipeline on synthetic DTU-like scenes: render, parse, train the refiner "
        f"(`{(train_summary.get('config') or {}).get('model', 'deltaz_unet')}`) on a time budget and an epoch cap "
        "(Settings), "
        "evaluate on held-out scans against the initial depth, the classical baselines and an MVSNet-style "
        "refinement network trained by the same pipeline.\n\n",
        "## Results on the held-out test scans\n\n",
        f"Test scans (never trained on, never used for tuning): {', '.join(evaluation['scans'])}. "
        "Metrics over every ground-truth pixel (holes count as errors of the full depth); mm, rates in %. "
        "Do no harm, over the pixels with ground truth and an initial depth: `mae_good_mm` = MAE over those the "
        "initial depth has within 2 mm, `harm_pct` = % made more than 1 mm worse than the initial depth.\n\n",
        markdown_table(overall, TABLE_COLUMNS, TABLE_BOLD),
        "\n### Quality targets\n\n| target | value | met |\n|---|---|---|\n",
    ]
    parts += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else 'NO'} |\n" for t in targets]
    parts += ["\n## Stages and wall times\n\n| stage | wall time |\n|---|---|\n"]
    parts += [f"| {name} | {format_seconds(seconds)} |\n" for name, seconds in timings.items()]
    parts += ["\n## Settings\n\n",
              bullet_list(_demo_settings_items(facts, evaluation, train_summary, groups, data, compare_summary))]
    parts += _demo_machine_and_files(machine, evaluation, out)
    # The evaluation's own Markdown (per-scan table, point clouds, baseline parameters, figures), one level down.
    detail = metrics_markdown(evaluation, overall_table=False).replace("# DeltaZ evaluation", "## Evaluation details", 1)
    lines = [("#" + line if line.startswith("## ") and not line.startswith("## Evaluation details") else line)
             for line in detail.split("\n")]
    parts.append("\n".join(lines))
    return "".join(parts)
