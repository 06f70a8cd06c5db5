"""What ``deltaz adapt`` writes: the adapted checkpoint, the refined scan, the scores and the report.

Layout under ``out`` (see :mod:`deltaz.engine.adapt`): ``checkpoints/<scan>.pt``, ``<scan>/`` (train-ready copy with
``refined/{vid:03d}.npy``), ``logs/<scan>/``, ``state/<scan>.pt`` while running, ``report.md``/``report.json``.
Every file is written atomically; a scan counts as done when its checkpoint and its scan folder (published
last, by :class:`deltaz.io.dtu.layout.ScanWriter`) both exist. Scores use the ground truth (``depths/``) only
when the scan has one: covered pixels = ground truth and an input depth; ``mae_covered_mm``, and
:func:`deltaz.ops.metrics.harm_metrics`' ``mae_good_mm`` / ``harm_pct`` of input, unadapted and adapted refiner.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deltaz.core.cache import jsonable, read_marker, write_marker
from deltaz.core.errors import ConfigError, DataError
from deltaz.engine import checkpoint as ckpt
from deltaz.engine.adapt.fit import AdaptConfig, adapt_and_refine, scan_confidence, state_path
from deltaz.engine.device import resolve_device
from deltaz.engine.refine import load_refiner
from deltaz.engine.scans import load_scan_views
from deltaz.engine.report import machine_info, write_json
from deltaz.core.atomic import atomic_write_text
from deltaz.io.dtu.layout import ScanWriter, is_complete_scan, list_scans, load_view, read_meta, read_scan_pairs
from deltaz.model import model_config
from deltaz.model.blend import BlendedRefiner
from deltaz.ops.metrics import harm_metrics
from deltaz.ops.selfsup import SELFSUP_TERMS

__all__ = ["REFINED_DIR", "score_depths", "write_adapted_checkpoint", "write_refined_scan", "load_adapted_view",
           "run_scans", "report_markdown"]

#: Folder of the adapted refiner's depths inside ``<out>/<scan>/``.
REFINED_DIR = "refined"


# =========================================================================== scores
def score_depths(pred: torch.Tensor, init: torch.Tensor, gt: torch.Tensor,
                 mask: torch.Tensor | None = None) -> dict[str, float]:
    """``mae_covered_mm`` (MAE over ground truth ∧ input), ``mae_good_mm``, ``harm_pct``, ``help_pct``,
    ``n_covered`` of ``pred (N, H, W)`` mm against ``gt`` with input ``init``; ``mask`` restricts the pixels."""
    covered = (gt > 0) & (init > 0)
    if mask is not None:
        covered = covered & mask
    harm = harm_metrics(pred, init, gt, mask)
    mae = float((pred - gt).abs()[covered].double().mean()) if covered.any() else float("nan")
    return {"mae_covered_mm": mae, "mae_good_mm": harm["mae_good_mm"], "harm_pct": harm["harm_pct"],
            "help_pct": harm["help_pct"], "n_covered": int(covered.sum())}


def score_scan(views, before: torch.Tensor, after: torch.Tensor,
               ungated: torch.Tensor | None = None) -> dict[str, dict[str, float]] | None:
    """Rows ``input``, ``deltaz`` (unadapted), ``deltaz+adapt`` (what adaptation hands out) and, when given,
    ``deltaz+adapt ungated`` (the adapted network's own depths) for a scan with ground truth, else None."""
    gt = views.depth
    if not (gt > 0).any():
        return None
    init = views.depth_init
    rows = {"input": score_depths(init, init, gt), "deltaz": score_depths(before, init, gt),
            "deltaz+adapt": score_depths(after, init, gt)}
    if ungated is not None:
        rows["deltaz+adapt ungated"] = score_depths(ungated, init, gt)
    return rows


# =========================================================================== files
def write_adapted_checkpoint(path: Path, model: torch.nn.Module, source_state: dict[str, Any],
                             adapt_info: dict[str, Any]) -> Path:
    """An ordinary DeltaZ checkpoint (:mod:`deltaz.engine.checkpoint` keys; the source run's ``config`` with
    ``extra["adapt"]``, this model's ``model_config``) that :func:`deltaz.engine.evaluate.load_refiner` reads.
    A :class:`~deltaz.model.blend.BlendedRefiner` is written as its adapted network plus
    ``"blend": {"alpha", "base": the original's weights}``."""
    config = dict(source_state.get("config") or {})
    config["extra"] = {**dict(config.get("extra") or {}), "adapt": adapt_info}
    blend = None
    if isinstance(model, BlendedRefiner):  # the adapted weights as "model", the original's beside them
        blend = {"alpha": model.alpha, "base": model.base.state_dict()}
        model = model.adapted
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config.get("lr", 1e-4)))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=int(config.get("scheduler_t0", 10)))
    return ckpt.save_checkpoint(path, {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(),
        "epoch": int(source_state.get("epoch", 0)), "batch_in_epoch": 0,
        "step": int(source_state.get("step", 0)) + int(adapt_info.get("steps", 0)), "best_val_mae": None,
        "config": config, "model_config": model_config(model), "rng": ckpt.capture_rng_state(),
        **({"blend": blend} if blend else {}),
    })


def write_refined_scan(out: Path, data_root: Path, views, refined: torch.Tensor) -> Path:
    """``<out>/<scan>``: a train-ready copy of the scan (ground truth or 0 in ``depths/``, ``images/``,
    ``initial/`` = the input adapted on) with ``refined/{vid:03d}.npy`` (float32 mm, 0 = hole), published
    atomically by :class:`deltaz.io.dtu.layout.ScanWriter`."""
    source_dir = Path(data_root) / views.scan
    meta = read_meta(source_dir)
    with ScanWriter(out, views.scan) as writer:
        for i, vid in enumerate(views.view_ids):
            writer.add_view(vid, depth=views.depth[i].numpy(), intrinsics=views.intrinsics[i].numpy(),
                            extrinsics=views.extrinsics[i].numpy(), image=views.image[i].numpy().clip(0, 1),
                            initial=views.depth_init[i].numpy())
        folder = writer.tmp_dir / REFINED_DIR
        folder.mkdir()
        for i, vid in enumerate(views.view_ids):
            np.save(folder / f"{vid:03d}.npy", refined[i].cpu().numpy().astype(np.float32))
        keep = {k: meta[k] for k in ("depth_range_mm", "light") if k in meta}
        return writer.finish(read_scan_pairs(source_dir), {**keep, "source": f"adapt:{meta.get('source', '')}"})


def load_adapted_view(scan_dir: str | Path, view_id: int) -> dict[str, Any]:
    """One view of an adapted scan as the viewers (:func:`deltaz.course.widgets.depth_viewer`) take it:
    ``depth_init``, ``depth_refined``, ``depth`` (ground truth, or None without), ``image (3, H, W)``,
    ``intrinsics``, ``extrinsics``, ``scan``, ``view_id``."""
    scan_dir = Path(scan_dir)
    path = scan_dir / REFINED_DIR / f"{int(view_id):03d}.npy"
    if not path.is_file():
        raise DataError(f"{path}: no refined depth; run `deltaz adapt` for this scan first")
    view = load_view(scan_dir, view_id)
    gt = view["depth"]
    return {"depth_init": view.get("initial"), "depth_refined": np.load(path), "depth": gt if (gt > 0).any() else None,
            "image": view.get("image"), "intrinsics": view["intrinsics"], "extrinsics": view["extrinsics"],
            "scan": scan_dir.name, "view_id": int(view_id)}


# =========================================================================== the run
def _scan_done(out: Path, scan: str) -> bool:
    return (out / "checkpoints" / f"{scan}.pt").is_file() and is_complete_scan(out / scan) and \
        (out / scan / REFINED_DIR).is_dir()


def _clean_stale(out: Path) -> None:
    """Remove temporary files a killed run left behind (``atomic_path`` leftovers ``.<name>.*.tmp``)."""
    for folder in (out, out / "state", out / "checkpoints"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _adapt_one(model, source_state, keep_holes, data_root, out, scan, cfg) -> dict[str, Any]:
    """Load, adapt, refine, write and score one scan; returns its report entry."""
    from torch.utils.tensorboard import SummaryWriter

    t0 = time.perf_counter()
    views = load_scan_views(data_root, scan, cfg.num_src_views, cfg.preset, use_images=True)
    confidence = scan_confidence(data_root, scan, views, cfg.preset, cfg.confidence)
    writer = SummaryWriter(log_dir=str(out / "logs" / scan))
    try:
        done = adapt_and_refine(model, views, confidence, cfg, keep_holes, state_file=state_path(out, scan),
                                writer=writer)
    finally:
        writer.close()
    adapted, info, before, ungated, after = (done[k] for k in ("adapted", "info", "unadapted", "ungated", "refined"))
    run = info["config"]  # as run on this scan ("auto" resolved)
    adapt_info = {"scan": scan, "data_root": str(data_root), "steps": info["steps"],
                  "elapsed_s": round(info["elapsed_s"], 2), "config": run.to_dict(),
                  "requested_anchor_to": cfg.anchor_to, "agreement_gain": info["agreement_gain"]}
    write_adapted_checkpoint(out / "checkpoints" / f"{scan}.pt", adapted, source_state, adapt_info)
    write_refined_scan(out, data_root, views, after)
    entry = {"scan": scan, "n_views": len(views), "steps": info["steps"], "adapt_s": round(info["elapsed_s"], 2),
             "total_s": round(time.perf_counter() - t0, 2), "stopped_by": info["stopped_by"],
             "anchor_to": run.anchor_to, "gate": run.gate, "gate_against": run.gate_against, "blend": run.blend,
             "agreement_gain": info["agreement_gain"],
             "history": info["history"],
             "scores": score_scan(views, before, after, ungated if run.gate else None),
             "checkpoint": str(out / "checkpoints" / f"{scan}.pt"), "refined": str(out / scan / "refined")}
    (out / "state" / f"{scan}.pt").unlink(missing_ok=True)
    ckpt_entry = out / "scans" / f"{scan}.json"

    write_json(ckpt_entry, entry)
    return entry


#: AdaptConfig fields that may differ when a run goes on in the same ``--out``: its budget (a resumed scan runs on
#: to the new one) and how it reports and saves; every other field changes what a scan's adaptation gives.
_RUN_FREE = ("minutes", "max_steps", "max_passes", "progress", "device", "save_every_s")


def _claim_out(out: Path, checkpoint: Path, data_root: Path, cfg: AdaptConfig) -> None:
    """``<out>/run.json``: the checkpoint (path, size, mtime), the data root and the settings that own ``out`` (written
    by its first run). Another run's half-adapted state or finished scans must not be resumed or reported as this
    one's: refuse, naming ``--out``."""
    stat = Path(checkpoint).stat()
    record = jsonable({"checkpoint": [str(Path(checkpoint).resolve()), stat.st_size, stat.st_mtime_ns],
                       "data_root": str(Path(data_root).resolve()),
                       "config": {k: v for k, v in cfg.to_dict().items() if k not in _RUN_FREE}})
    marker = out / "run.json"
    saved = read_marker(marker)
    if saved is None:
        write_marker(marker, record)
    elif saved != record:
        changed = sorted(k for k in set(saved.get("config", {})) | set(record["config"])
                         if saved.get("config", {}).get(k) != record["config"].get(k))
        what = ("another checkpoint" if saved.get("checkpoint") != record["checkpoint"]
                else "another --data-root" if saved.get("data_root") != record["data_root"]
                else f"other settings ({', '.join(changed)})")
        raise ConfigError(f"--out {out}: holds an adaptation of {what} ({marker}); pass another --out or remove it")


def run_scans(checkpoint, data_root, out, scans, cfg) -> dict[str, Any]:
    """:func:`deltaz.engine.adapt.adapt`: every scan in turn (finished ones are read back, not redone)."""
    data_root, out = Path(data_root), Path(out)
    available = list_scans(data_root)
    if not available:
        raise DataError(f"--data-root {data_root}: no train-ready scans there (scan folders with meta.json); pass the "
                        "folder that holds them")
    if out.resolve() == data_root.resolve():
        raise ConfigError(f"--out {out}: is --data-root; adaptation writes scan copies there, so pass another folder")
    scans = list(scans or available)
    missing = [s for s in scans if s not in available]
    if missing:
        raise DataError(f"--scans: {missing} not found under --data-root {data_root} (it holds {available[:6]})")
    device = resolve_device(cfg.device)
    model, _, path = load_refiner(checkpoint, device)
    source_state = ckpt.load_checkpoint(path)
    keep_holes = not bool((source_state.get("config") or {}).get("fill_holes", False))
    out.mkdir(parents=True, exist_ok=True)
    _claim_out(out, path, data_root, cfg)
    _clean_stale(out)
    entries = []
    for scan in scans:
        done_file = out / "scans" / f"{scan}.json"
        if _scan_done(out, scan) and done_file.is_file():
            entries.append(json.loads(done_file.read_text()))
            print(f"deltaz adapt: {scan} already adapted in {out}; skipped", file=sys.stderr)
            continue
        entries.append(_adapt_one(model, source_state, keep_holes, data_root, out, scan, cfg))
    report = {"checkpoint": str(path), "data_root": str(data_root), "out": str(out), "config": cfg.to_dict(),
              "device": str(device), "machine": machine_info(), "torch_threads": torch.get_num_threads(),
              "scans": entries}
    write_json(out / "report.json", report)

    atomic_write_text(out / "report.md", report_markdown(report))
    return report


# =========================================================================== report
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.3f}"
    return str(value)


def _curve(history: list[dict[str, Any]], points: int = 8) -> list[dict[str, Any]]:
    """A loss history as at most ``points`` consecutive windows: each row is a window's last ``step`` and ``t_s``
    with the mean of each term over the window. Each step sees other reference views, so single steps jump
    with the views; window means show the trend."""
    rows: list[dict[str, Any]] = []
    for window in np.array_split(np.arange(len(history)), max(1, min(points, len(history)))):
        if len(window) == 0:
            continue
        records = [history[i] for i in window]
        terms = {k for r in records for k in r} - {"step", "t_s"}
        rows.append({"step": records[-1]["step"], "t_s": records[-1]["t_s"],
                     **{k: float(np.mean([r.get(k, np.nan) for r in records])) for k in terms}})
    return rows


def _recipe_line(entry: dict[str, Any]) -> str:
    """How the scan was adapted: the anchor's target, gate and blend (and what ``anchor_to="auto"`` decided on)."""
    against = entry.get("gate_against", "input")
    line = (f"Anchor to `{entry.get('anchor_to')}`, gate {entry.get('gate')} (against the {against}), "
            f"blend {entry.get('blend')}")
    gain = entry.get("agreement_gain")
    return line + (f" (auto: agreement gain {gain:.3f}).\n" if gain is not None else ".\n")


def report_markdown(report: dict[str, Any]) -> str:
    """``report.md``: settings, per-scan time, before/after scores, and each scan's loss curve."""
    cfg = report["config"]
    lines = ["# DeltaZ test-time adaptation\n",
             f"- checkpoint: `{report['checkpoint']}`; data: `{report['data_root']}`; device {report['device']}, "
             f"{report['torch_threads']} torch thread(s)",
             f"- {cfg['minutes']} min per scan (at most {cfg.get('max_passes')} passes over its views), lr {cfg['lr']} "
             f"({cfg.get('lr_schedule', 'constant')}), {cfg['batch_size']} reference(s) per step, "
             f"{cfg['num_src_views']} source(s), sources `{cfg['source_mode']}`, weights {cfg['weights']}, "
             f"anchor confidence `{cfg['confidence']}`, input preset `{cfg['preset']}`",
             "- scores (ground truth used only here): covered pixels = ground truth and an input depth; mm, %\n",
             "| scan | views | steps | adapt s | total s | method | mae_covered_mm | mae_good_mm | harm_pct |",
             "|---|---|---|---|---|---|---|---|---|"]
    for entry in report["scans"]:
        head = f"| {entry['scan']} | {entry['n_views']} | {entry['steps']} | {entry['adapt_s']} | {entry['total_s']} |"
        if not entry.get("scores"):
            lines.append(head + " (no ground truth) | | | |")
            continue
        for i, (method, row) in enumerate(entry["scores"].items()):
            prefix = head if i == 0 else "| | | | | |"
            lines.append(f"{prefix} {method} | {_fmt(row['mae_covered_mm'])} | {_fmt(row['mae_good_mm'])} | "
                         f"{_fmt(row['harm_pct'])} |")
    for entry in report["scans"]:
        lines += [f"\n## Loss curve: {entry['scan']}\n", _recipe_line(entry),
                  "Each row: the mean of each term over a window of consecutive steps (steps see different views).\n",
                  "| to step | t (s) | " + " | ".join(SELFSUP_TERMS) + " | total |",
                  "|---" * (len(SELFSUP_TERMS) + 3) + "|"]
        for rec in _curve(entry["history"]):
            lines.append(f"| {rec['step']} | {rec['t_s']} | " +
                         " | ".join(f"{rec.get(t, float('nan')):.5f}" for t in (*SELFSUP_TERMS, "total")) + " |")
    return "\n".join(lines) + "\n"


def adapt(checkpoint: str | Path, data_root: str | Path, out: str | Path, scans: list[str] | None = None,
          config: AdaptConfig | None = None) -> dict[str, Any]:
    """Adapt ``checkpoint`` to each scan of ``data_root`` (default: all) and write everything under ``out``
    (see the module docstring). Returns the report dict (also ``<out>/report.json``)."""
    return run_scans(checkpoint, data_root, out, scans, config or AdaptConfig())



def adapt_method(model: torch.nn.Module, keep_holes: bool, data_root: str | Path, preset: str,
                 minutes: float, progress: bool = False, config: AdaptConfig | None = None):
    """An evaluation method (:mod:`deltaz.engine.evaluate`'s ``(views, idx) -> (B, H, W)``) for the row ``deltaz+adapt``:
    on the first call for a scan it adapts a copy of ``model`` (on its device) to that scan (``minutes``, no ground
    truth, its images reloaded from ``data_root``), refines every view, and serves the views asked for."""
    cfg = replace(config or AdaptConfig(), minutes=float(minutes), preset=preset, progress=progress)
    done: dict[str, torch.Tensor] = {}

    def apply(views, idx) -> torch.Tensor:
        if views.scan not in done:
            done.clear()  # one scan at a time
            full = load_scan_views(data_root, views.scan, cfg.num_src_views, preset, use_images=True)
            if full.view_ids != views.view_ids:
                raise DataError(f"{views.scan}: the adapted views {full.view_ids[:4]}... differ from the evaluated ones")
            confidence = scan_confidence(data_root, views.scan, full, preset, cfg.confidence)
            done[views.scan] = adapt_and_refine(model, full, confidence, cfg, keep_holes)["refined"]
        return done[views.scan][list(idx)]

    return apply


def demo_adapt_stage(checkpoint: str | Path, test_root: str | Path, out_dir: str | Path, adapt_minutes: float,
                     preset: str = "mvs", progress: bool = True) -> dict[str, Any] | None:
    """The demo's optional adaptation stage (``DemoSettings.adapt_minutes``, default 0 = skipped): adapt the
    trained checkpoint to every held-out scan of ``test_root`` (no ground truth used), writing
    ``<out_dir>/report.md`` etc. Returns :func:`adapt`'s report, or None when ``adapt_minutes <= 0``."""
    if adapt_minutes <= 0:
        return None
    return adapt(checkpoint, test_root, out_dir, None, AdaptConfig(minutes=adapt_minutes, preset=preset,
                                                                 progress=progress))
