"""Real-data benchmark: does DeltaZ improve a real stereo depth map? Middlebury 2014 *Motorcycle* (and 2006 *Aloe*).

    .venv/bin/python benchmarks/real_middlebury.py                      # demo checkpoint, CPU
    .venv/bin/python benchmarks/real_middlebury.py --checkpoint runs/demo/checkpoints/best.pt --json out.json
    make aloe-data && .venv/bin/python benchmarks/real_middlebury.py --scene aloe    # the held-out second pair

``--scene aloe`` runs every part below on :func:`deltaz.io.aloe.load_aloe` instead (OpenCV's copy of Middlebury
2006 Aloe at half size, 160×139, SGBM's search widened to 112 px; no design choice looked at it, either half).

The scene (:func:`deltaz.io.middlebury.load_motorcycle`, 185×125, scaled to a 680 mm median depth; ``--scale``
multiplies depths and baseline) gets two real initial depths of its left view: OpenCV's SGBM on the full-size
grey pair, and the package's plane sweep (:func:`deltaz.ops.mvs.plane_sweep`, left view against the right one,
48 planes uniform in inverse depth over SGBM's disparity search range 0…numDisparities px: 64, Aloe's 112). For each
input the rows are:

* ``identity`` — the input itself;
* the classical filters of :mod:`deltaz.ops.baselines` (median, bilateral, joint_bilateral, guided), each with
  parameters chosen from :data:`deltaz.ops.baselines.PARAM_GRIDS` on the **left half only**, twice: by covered MAE
  (the plain name) and by MAE with holes counted (``median (holes)``, …); the targets take the best of both;
* ``wls`` — OpenCV's WLS disparity post-filter (SGBM input only; :func:`deltaz.io.middlebury.wls_depth`);
* ``side`` — the edge side choice on SGBM's full-size disparity (:func:`deltaz.ops.mvs.side.side_depth`): a pixel
  beside a disparity edge takes the side whose colours match its own (the left image only);
* ``search`` — the two-view candidate search (SGBM and plane-sweep input; :func:`deltaz.ops.mvs.search.search_depth`):
  each pixel keeps a neighbour's disparity where the right image matches it better; for SGBM it starts from
  ``side``'s disparity;
* ``planes`` — segment planes (:func:`deltaz.ops.mvs.planes.planes_depth`): a stretch nearer than the plane of its
  colour segment takes the plane, unless the right image sees it there and matches worse; for SGBM on ``side``'s
  full-size disparity (not ``search``'s: the search takes the half-occluded pixels back), for the plane sweep on
  ``search``'s, at the grid;
* ``subpixel`` — the sub-pixel refinement (:func:`deltaz.ops.mvs.subpixel.subpixel_refine`) of ``planes``' full-size
  disparity (for the plane sweep: ``planes``' grid disparity nearest-upsampled to full size), at the grid's pixels;
* ``deltaz`` — the refiner (:func:`deltaz.model.refine`, holes kept or filled as ``deltaz evaluate`` does:
  filled when the checkpoint was trained with ``fill_holes``), and the other hole setting as
  ``deltaz_fill_holes`` / ``deltaz_keep_holes``. Its ``depth_range`` is the input's own 1st–99th percentile
  of valid depth (nothing from the ground truth); its corrections pass the dead zone of
  :mod:`deltaz.ops.dead_zone` (``--dead-zone``, as in ``deltaz evaluate``), in every refiner row, and (unless
  ``--no-mirror-agreement``) only the corrections its left-right mirror agrees on (:mod:`deltaz.ops.agreement`);
  ``--weighted-median``: a selection refiner copies the weighted median of its candidates instead of their mean
  (:func:`deltaz.model.median_selection`);
* ``deltaz+gate`` — ``deltaz`` behind the photometric gate (:func:`deltaz.ops.gate.gate_correction`): its
  correction kept where the right view confirms it (the pair's own images and cameras, no ground truth);
* ``search+deltaz``, ``planes+deltaz``, ``subpixel+deltaz`` — the refiner run on that step's output; its harm and
  good-pixel columns compare with the input's depth, like every row.

A second part (``--sim``, default ``mvs noise``) keeps the real images and replaces the real matcher by the
simulated error models of :mod:`deltaz.ops.corrupt` applied to the ground truth (``--sim-seeds`` draws each,
rows averaged): real images with simulated errors, as refiners are judged on real captures that have ground
truth but no initial depth of their own. ``mvs`` is the MVS simulation; ``noise`` (2 mm Gaussian) is depth that is already
nearly right, where a refiner should do no harm. Its extra row ``deltaz (grey image)`` is the refiner with a
uniform grey image: how much the image guides it.

Columns, per region (whole image, LEFT half — design choices may look at it —, RIGHT half — held out, the
number that counts): ``mae_mm`` (every ground-truth pixel, a hole counts as an error of the full depth, as in
:mod:`deltaz.ops.metrics`), ``mae_valid_mm`` (covered pixels: ground truth and an input depth), ``mae_good_mm``
and ``harm_pct`` (:func:`deltaz.ops.metrics.harm_metrics`), ``hole_pct``. Then the targets on the right half.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from deltaz.core.options import parse_dead_zone
from deltaz.ops.baselines import BASELINES, NEEDS_IMAGE, PARAM_GRIDS, tune_baseline
from deltaz.ops.agreement import MIRROR_AGREEMENT, add_mirror_flags
from deltaz.model.selection import add_median_flag
from deltaz.ops.dead_zone import DEAD_ZONE, DEAD_ZONE_HELP
from deltaz.core.errors import DeltaZError
from deltaz.ops.metrics import depth_metrics, harm_metrics
from deltaz.ops.smooth import SURFACE_SMOOTHING, add_smooth_flags

#: The classical single-view filters compared (deltaz.ops.baselines), each twice: tuned by covered MAE (the plain
#: name) and by MAE with holes counted (the name + HOLES_TUNED), so that each target meets a filter at its best.
FILTERS = ("median", "bilateral", "joint_bilateral", "guided")
HOLES_TUNED = " (holes)"
#: The classical methods the refiner is held against: the filters, OpenCV's WLS post-filter, the edge side choice
#: (SGBM input; :mod:`deltaz.ops.mvs.side`), the two-view candidate search (SGBM and plane-sweep input;
#: :mod:`deltaz.ops.mvs.search`), segment planes and the sub-pixel refinement.
CLASSICAL = (*FILTERS, *(f + HOLES_TUNED for f in FILTERS), "wls", "side", "search", "planes", "subpixel")
#: Table columns (mm, %).
COLUMNS = ("mae_mm", "mae_valid_mm", "mae_good_mm", "harm_pct", "hole_pct")
REGIONS = ("whole", "left", "right")
#: Plane-sweep settings on the stereo pair.
SWEEP_PLANES = 48
#: The real pairs: Middlebury 2014 Motorcycle (scikit-image) and Middlebury 2006 Aloe (OpenCV's sample, held out).
SCENES = {"motorcycle": "Middlebury 2014 Motorcycle", "aloe": "Middlebury 2006 Aloe (OpenCV's sample)"}
#: Median ground-truth depth (mm) of the scene at ``--scale 1`` (DTU's depth range).
MEDIAN_DEPTH_MM = 680.0
#: Simulated error models (deltaz.ops.corrupt presets) of the "real image, simulated error" part, and seeds.
SIM_PRESETS = ("mvs", "noise")
SIM_SEEDS = 3
#: Target of that part: the refiner's covered MAE at least this far below the median filter's (the issue's
#: bar for real captures with simulated input).
SIM_MARGIN = 0.10


# =========================================================================== inputs
def load_scene(scale: float = 1.0, crop: tuple[int, int, int, int] = (0, 0, 0, 0),
               scene_scale: float | None = None, scene: str = "motorcycle", folder: str | None = None
               ) -> dict[str, Any]:
    """The scene (:data:`SCENES`) with its depths and baseline multiplied by ``scale`` (median 680 mm × scale);
    ``crop`` and ``scene_scale`` (its factor ``s`` itself): :func:`deltaz.io.middlebury.load_motorcycle`'s (or
    :func:`deltaz.io.aloe.load_aloe`'s) ``crop`` and ``scale``; ``folder``: Aloe's files (default
    :func:`deltaz.io.aloe.aloe_dir`)."""
    if scene == "aloe":
        from deltaz.io.aloe import load_aloe

        return load_aloe(folder, median_depth_mm=MEDIAN_DEPTH_MM * scale, scale=scene_scale, crop=crop)
    from deltaz.io.middlebury import load_motorcycle

    return load_motorcycle(median_depth_mm=MEDIAN_DEPTH_MM * scale, crop=crop, scale=scene_scale)


def default_checkpoint() -> Path | None:
    """The demo's checkpoint: ``<runs>/demo/train_summary.json``'s ``checkpoint``, else ``<runs>/demo/checkpoints``."""
    from deltaz.core.paths import runs_dir

    demo = runs_dir() / "demo"
    summary = demo / "train_summary.json"
    if summary.is_file():
        path = json.loads(summary.read_text()).get("checkpoint")
        if path and Path(path).is_file():
            return Path(path)
    folder = demo / "checkpoints"
    if any((folder / name).is_file() for name in ("best.pt", "last.pt")):
        return folder
    return None


def sweep_range_mm(data: dict[str, Any]) -> tuple[float, float]:
    """Depths (mm) of SGBM's disparity search range 0…numDisparities px: ``f·B·s / (d + doffs)``."""
    from deltaz.io.middlebury import sgbm_params

    cal, sgbm = data["calibration"], sgbm_params(data)
    fb = cal["f_px"] * cal["baseline_mm"]
    d_lo = sgbm["minDisparity"]
    d_hi = d_lo + sgbm["numDisparities"]
    return fb / (d_hi + cal["doffs_px"]), fb / (d_lo + cal["doffs_px"])


def plane_sweep_depth(data: dict[str, Any]) -> tuple[torch.Tensor | None, str]:
    """The package's plane sweep of the left view against the right one, or ``(None, why it was skipped)``."""
    try:
        from deltaz.ops.mvs import plane_sweep
    except ImportError as error:
        return None, f"deltaz.ops.mvs is not importable yet ({error})"
    lo, hi = sweep_range_mm(data)
    try:
        result = plane_sweep(
            data["image_left"], data["K_left"], data["E_left"], data["image_right"][None], data["K_right"][None],
            data["E_right"][None], lo, hi, num_planes=SWEEP_PLANES, spacing="inverse",
        )
    except (DeltaZError, TypeError) as error:  # the module is still being built: say why and go on
        return None, f"deltaz.ops.mvs.plane_sweep failed: {type(error).__name__}: {error}"
    note = f"{SWEEP_PLANES} planes, inverse-depth spacing, {lo:.0f}-{hi:.0f} mm"
    return result.depth.float().cpu(), note


def input_depths(data: dict[str, Any]) -> dict[str, tuple[torch.Tensor | None, str]]:
    """``{"sgbm": (depth, note), "planesweep": (depth or None, note)}``, depths ``(H, W)`` mm."""
    from deltaz.io.middlebury import sgbm_depth, sgbm_params

    sgbm_note = ", ".join(f"{k} {v}" for k, v in sgbm_params(data).items()) + "; full size, then nearest-resized"
    return {"sgbm": (sgbm_depth(data), sgbm_note), "planesweep": plane_sweep_depth(data)}


# =========================================================================== methods
def left_mask(shape: tuple[int, int]) -> torch.Tensor:
    """``(H, W)`` bool: the left half of the columns (``u < W // 2``); the rest is the right half."""
    H, W = shape
    return (torch.arange(W) < W // 2).expand(H, W)


def tuned_filters(depth_init: torch.Tensor, data: dict[str, Any]) -> dict[str, tuple[torch.Tensor, dict]]:
    """Each classical filter tuned on the LEFT half only: by covered MAE (``name``) and by MAE with holes counted
    (``name`` + :data:`HOLES_TUNED`)."""
    sample = {
        "depth_init": depth_init[None], "depth": data["depth_gt"][None],
        "mask": left_mask(depth_init.shape)[None], "image": data["image_left"][None],
    }
    out = {}
    for name in FILTERS:
        image = sample["image"] if name in NEEDS_IMAGE else None
        for row, covered in ((name, True), (name + HOLES_TUNED, False)):
            params, _ = tune_baseline(name, [sample], PARAM_GRIDS[name], covered=covered)
            out[row] = (BASELINES[name](sample["depth_init"], image, params)[0], params)
    return out


def input_depth_range(depth_init: torch.Tensor) -> torch.Tensor:
    """``(1, 2)`` mm: the 1st and 99th percentile of the input's valid depth (the refiner's ``depth_range``)."""
    valid = depth_init[depth_init > 0].double()
    lo, hi = torch.quantile(valid, torch.tensor([0.01, 0.99], dtype=torch.float64)).tolist()
    return torch.tensor([[lo, max(hi, lo + 1.0)]], dtype=torch.float32)


@torch.no_grad()
def refined_depth(refiner: dict[str, Any], depth_init: torch.Tensor, image: torch.Tensor, keep_holes: bool
                  ) -> torch.Tensor:
    """The refiner on one map: ``image (3, H, W)`` (unused by a depth-only model) → ``(H, W)`` mm, 0 = hole."""
    from deltaz.engine.refine import colour_scaled_parts
    from deltaz.model import refine

    model, device = refiner["model"], refiner["device"]
    image = image[None].to(device) if getattr(model, "in_channels", 1) == 4 else None
    with colour_scaled_parts(model, refiner.get("colour_scale", 1.0)):
        depth_range = input_depth_range(depth_init).to(device)
        depth = refine(model, depth_init[None].to(device), image=image, depth_range=depth_range, keep_holes=keep_holes,
                       dead_zone=refiner.get("dead_zone", DEAD_ZONE),
                       mirror_agreement=refiner.get("mirror_agreement", MIRROR_AGREEMENT),
                       weighted_median=refiner.get("weighted_median", False),
                       smooth=refiner.get("smooth", SURFACE_SMOOTHING))["depth_refined"]
    depth = depth[0].float().cpu()
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.zeros_like(depth))


def fills_holes(refiner: dict[str, Any]) -> bool:
    """Whether the checkpoint was trained to fill holes (``deltaz evaluate`` then fills them too)."""
    return bool(refiner["config"].get("fill_holes", False))


def refiner_outputs(refiner: dict[str, Any], depth_init: torch.Tensor, data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``deltaz`` (holes as ``deltaz evaluate`` treats them) and the other hole setting, ``(H, W)`` mm."""
    fills = fills_holes(refiner)
    variants = {"deltaz": not fills, "deltaz_keep_holes" if fills else "deltaz_fill_holes": fills}
    out = {name: refined_depth(refiner, depth_init, data["image_left"], keep) for name, keep in variants.items()}
    out["deltaz+gate"] = gated(out["deltaz"], depth_init, data)
    return out


def gated(refined: torch.Tensor, depth_init: torch.Tensor, data: dict[str, Any]) -> torch.Tensor:
    """``refined`` behind the photometric gate with the right view as the one source: ``(H, W)`` mm."""
    from deltaz.core.batch import MultiView
    from deltaz.ops.gate import gate_correction

    multiview = MultiView(data["K_left"][None], data["E_left"][None], None, data["K_right"][None, None],
                          data["E_right"][None, None])
    return gate_correction(depth_init[None], refined[None], data["image_left"][None], data["image_right"][None, None],
                           multiview)[0]


def method_outputs(input_name: str, depth_init: torch.Tensor, data: dict[str, Any],
                   refiner: dict[str, Any] | None) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """Every row's depth ``(H, W)`` mm for one input, and the filters' chosen parameters."""
    from deltaz.io.middlebury import grid_depth, wls_depth
    from deltaz.ops.mvs.planes import planes_disparity
    from deltaz.ops.mvs.search import search_depth
    from deltaz.ops.mvs.side import side_depth
    from deltaz.ops.mvs.subpixel import subpixel_depth

    outputs = {"identity": depth_init.clone()}
    filters = tuned_filters(depth_init, data)
    outputs.update({name: depth for name, (depth, _) in filters.items()})
    if input_name == "sgbm":
        outputs["wls"] = wls_depth(data)
        outputs["side"] = side_depth(data)
    if input_name in ("sgbm", "planesweep"):  # the real matchers' inputs; the simulated ones have no pair search
        outputs["search"] = search_depth(data, None if input_name == "sgbm" else depth_init)  # SGBM: its own px
        planes = planes_disparity(data, None if input_name == "sgbm" else outputs["search"], full=True)
        outputs["planes"] = grid_depth(planes, data)
        outputs["subpixel"] = subpixel_depth(data, planes)
    if refiner is not None:
        outputs.update(refiner_outputs(refiner, depth_init, data))
        for step in ("search", "planes", "subpixel"):  # the refiner after a classical two-view step: a pipeline
            if step in outputs:
                outputs[f"{step}+deltaz"] = refined_depth(refiner, outputs[step], data["image_left"],
                                                          keep_holes=not fills_holes(refiner))
    return outputs, {name: params for name, (_, params) in filters.items()}


# =========================================================================== scores
def score(outputs: dict[str, torch.Tensor], depth_init: torch.Tensor, gt: torch.Tensor) -> dict[str, list[dict]]:
    """``{region: [row per method]}``; each row holds :data:`COLUMNS`."""
    left = left_mask(gt.shape)
    regions = {"whole": torch.ones_like(left), "left": left, "right": ~left}
    table: dict[str, list[dict]] = {}
    for region, mask in regions.items():
        covered = mask & (depth_init > 0)
        rows = []
        for method, depth in outputs.items():
            full = depth_metrics(depth, gt, mask)
            harm = harm_metrics(depth, depth_init, gt, mask)
            rows.append({"method": method, "mae_mm": full["mae_mm"],
                         "mae_valid_mm": depth_metrics(depth, gt, covered)["mae_mm"],
                         "mae_good_mm": harm["mae_good_mm"], "harm_pct": harm["harm_pct"],
                         "hole_pct": full["hole_pct"]})
        table[region] = rows
    return table


def targets(rows: list[dict], method: str = "deltaz") -> list[dict[str, Any]]:
    """The targets of ``method`` on one region's rows (the right half): ``{target, value, met}``."""
    by = {r["method"]: r for r in rows}
    if method not in by:
        return []
    dz, init = by[method], by["identity"]
    filters = [r for r in rows if r["method"] in CLASSICAL]
    best_cov = min(filters, key=lambda r: r["mae_valid_mm"])
    best_all = min(filters, key=lambda r: r["mae_mm"])
    return [
        {"target": "covered MAE <= 0.85 x the input's",
         "value": f"{dz['mae_valid_mm']:.2f} vs 0.85 x {init['mae_valid_mm']:.2f} "
                  f"= {0.85 * init['mae_valid_mm']:.2f} mm",
         "met": dz["mae_valid_mm"] <= 0.85 * init["mae_valid_mm"]},
        {"target": "covered MAE below every classical filter",
         "value": f"{dz['mae_valid_mm']:.2f} vs {best_cov['mae_valid_mm']:.2f} mm ({best_cov['method']})",
         "met": dz["mae_valid_mm"] < best_cov["mae_valid_mm"]},
        {"target": "mae_good_mm <= the input's + 0.3 mm",
         "value": f"{dz['mae_good_mm']:.2f} vs {init['mae_good_mm']:.2f} + 0.3 mm",
         "met": dz["mae_good_mm"] <= init["mae_good_mm"] + 0.3},
        {"target": "MAE with holes counted below the input and every filter",
         "value": f"{dz['mae_mm']:.2f} vs input {init['mae_mm']:.2f}, best filter {best_all['mae_mm']:.2f} mm "
                  f"({best_all['method']})",
         "met": dz["mae_mm"] < min(init["mae_mm"], best_all["mae_mm"])},
        {"target": "harm_pct <= 10 %", "value": f"{dz['harm_pct']:.1f} %", "met": dz["harm_pct"] <= 10.0},
    ]


# =========================================================================== output
def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of one region's rows."""
    def cell(value: Any) -> str:
        return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.2f}"

    width = max(len("method"), *(len(r["method"]) for r in rows))
    lines = ["  ".join(["method".ljust(width), *(c.rjust(12) for c in COLUMNS)])]
    lines += ["  ".join([r["method"].ljust(width), *(cell(r[c]).rjust(12) for c in COLUMNS)]) for r in rows]
    return "\n".join(lines)


def set_dials(refiner: dict[str, Any], args: argparse.Namespace, dead_zone: tuple[float, float] | None = DEAD_ZONE
              ) -> str:
    """Set ``refiner``'s inference dials from the flags (``args.mirror_agreement``, ``args.weighted_median``,
    ``args.smooth``) and ``dead_zone``; return them as the note's tail, e.g. ``", dead zone 0.002,0.01, mirror
    agreement, surface smoothing"``."""
    refiner.update(dead_zone=dead_zone, mirror_agreement=args.mirror_agreement,
                   weighted_median=args.weighted_median, smooth=args.smooth)
    zone = f", dead zone {dead_zone[0]:g},{dead_zone[1]:g}" if dead_zone else ", no dead zone"
    return (zone + (", mirror agreement" if args.mirror_agreement else ", no mirror agreement")
            + (", weighted median" if args.weighted_median else "")
            + (", surface smoothing" if args.smooth else ", no surface smoothing"))


def load_refiner_or_none(checkpoint: str | None, device: str) -> tuple[dict[str, Any] | None, str]:
    """The refiner dict (``model``, ``config``, ``device``, ``path``), or None and why."""
    from deltaz.engine.evaluate import load_refiner

    path = Path(checkpoint) if checkpoint else default_checkpoint()
    if path is None:
        return None, ("no checkpoint found (runs/demo has none): make one with `.venv/bin/deltaz demo` "
                      "(or `--minutes 1 --compare-minutes 0` for a quick one) or pass --checkpoint")
    model, config, file = load_refiner(path, device)
    return {"model": model, "config": config, "device": device, "path": str(file)}, f"checkpoint {file}"


def run_input(name: str, depth_init: torch.Tensor, data: dict[str, Any], refiner: dict | None) -> dict[str, Any]:
    """Rows per region, the targets of the refiner rows on the right half, and the filters' parameters."""
    outputs, params = method_outputs(name, depth_init, data, refiner)
    table = score(outputs, depth_init, data["depth_gt"])
    goals = {m: targets(table["right"], m) for m in outputs if "deltaz" in m}
    return {"rows": table, "targets": goals, "filter_params": params}


def print_input(name: str, note: str, result: dict[str, Any]) -> None:
    print(f"\n=== input: {name} ({note})")
    print("filter parameters (tuned on the left half): "
          + "; ".join(f"{k} {v}" for k, v in result["filter_params"].items()))
    for region in REGIONS:
        label = {"whole": "whole image", "left": "LEFT half (may be looked at)",
                 "right": "RIGHT half (held out: this counts)"}[region]
        print(f"\n{name} - {label}\n{format_table(result['rows'][region])}")
    for method, goals in result["targets"].items():
        print(f"\ntargets of {method} on the RIGHT half ({name} input):")
        for goal in goals:
            print(f"  {'✓' if goal['met'] else '✗'} {goal['target']}: {goal['value']}")


def scale_check(refiner: dict[str, Any], scales: list[float], scene: str = "motorcycle", folder: str | None = None
                ) -> dict[str, Any]:
    """Any scale: the scene, its baseline and so the SGBM input's errors ×s (images unchanged). Per ``s``, the
    refiner's (and the gated refiner's) covered MAE over the input's on the whole image; targets on the refiner:
    each ratio < 1, max/min ≤ 1.10."""
    from deltaz.io.middlebury import sgbm_depth

    ratios: dict[str, dict[float, float]] = {"deltaz": {}, "deltaz+gate": {}}
    for s in scales:
        data = load_scene(s, scene=scene, folder=folder)
        depth_init = sgbm_depth(data)
        outputs = refiner_outputs(refiner, depth_init, data)
        covered = (depth_init > 0) & (data["depth_gt"] > 0)
        err = lambda depth: float((depth - data["depth_gt"]).abs()[covered].mean())  # noqa: E731
        for name in ratios:
            ratios[name][s] = err(outputs[name]) / err(depth_init)
        print(f"  s = {s:g}: median depth {MEDIAN_DEPTH_MM * s:.0f} mm, covered MAE input {err(depth_init):.2f} -> "
              f"deltaz {err(outputs['deltaz']):.2f} mm (ratio {ratios['deltaz'][s]:.4f}), deltaz+gate "
              f"{err(outputs['deltaz+gate']):.2f} mm (ratio {ratios['deltaz+gate'][s]:.4f})")
    goals = []
    for name, by_scale in ratios.items():
        spread = max(by_scale.values()) / min(by_scale.values())
        goals += [{"target": f"{name}: refined/input covered MAE < 1 at every scale",
                   "value": f"max {max(by_scale.values()):.4f}", "met": max(by_scale.values()) < 1},
                  {"target": f"{name}: max/min of that ratio over the scales <= 1.10", "value": f"{spread:.4f}",
                   "met": spread <= 1.10}]
    for goal in goals:
        print(f"  {'✓' if goal['met'] else '✗'} {goal['target']}: {goal['value']}")
    return {"ratios": ratios["deltaz"], "ratios_gated": ratios["deltaz+gate"],
            "spread": max(ratios["deltaz"].values()) / min(ratios["deltaz"].values()), "targets": goals}


# =========================================================================== real images, simulated errors
def simulated_input(data: dict[str, Any], preset: str, seed: int) -> torch.Tensor:
    """The ground truth with ``preset``'s simulated errors (:func:`deltaz.ops.corrupt.simulate_initial_depth`,
    seeded; its depth range, for quantisation and outliers, is SGBM's search range): ``(H, W)`` mm, 0 = hole."""
    from deltaz.ops.corrupt import simulate_initial_depth

    generator = torch.Generator().manual_seed(int(seed))
    return simulate_initial_depth(data["depth_gt"], preset, generator=generator, depth_range_mm=sweep_range_mm(data))


def grey_image_depth(refiner: dict[str, Any], depth_init: torch.Tensor, data: dict[str, Any]) -> torch.Tensor:
    """``deltaz`` with a uniform mid-grey left image, ``(H, W)`` mm: what the refiner does from depth alone."""
    keep_holes = not refiner["config"].get("fill_holes", False)
    return refined_depth(refiner, depth_init, torch.full_like(data["image_left"], 0.5), keep_holes)


def sim_targets(rows: list[dict], method: str) -> list[dict[str, Any]]:
    """Targets of ``method`` on one region's rows with a simulated input: ``{target, value, met}``."""
    by = {r["method"]: r for r in rows}
    dz, init = by[method], by["identity"]
    med = min((by[m] for m in ("median", "median" + HOLES_TUNED) if m in by), key=lambda r: r["mae_valid_mm"])
    return [
        {"target": f"covered MAE >= {SIM_MARGIN:.0%} below the median filter's",
         "value": f"{dz['mae_valid_mm']:.2f} vs {1 - SIM_MARGIN:.2f} x {med['mae_valid_mm']:.2f} "
                  f"= {(1 - SIM_MARGIN) * med['mae_valid_mm']:.2f} mm",
         "met": dz["mae_valid_mm"] <= (1 - SIM_MARGIN) * med["mae_valid_mm"]},
        {"target": "covered MAE below the input's",
         "value": f"{dz['mae_valid_mm']:.2f} vs {init['mae_valid_mm']:.2f} mm",
         "met": dz["mae_valid_mm"] < init["mae_valid_mm"]},
        {"target": "harm_pct <= 10 %", "value": f"{dz['harm_pct']:.1f} %", "met": dz["harm_pct"] <= 10.0},
    ]


def _mean_tables(tables: list[dict[str, list[dict]]]) -> dict[str, list[dict]]:
    """Row-by-row mean of :func:`score` tables with the same methods in the same order."""
    return {region: [{"method": row["method"], **{c: sum(t[region][i][c] for t in tables) / len(tables)
                                                   for c in COLUMNS}}
                     for i, row in enumerate(rows)]
            for region, rows in tables[0].items()}


def run_simulated(preset: str, data: dict[str, Any], refiner: dict | None, seeds: int) -> dict[str, Any]:
    """:func:`run_input`'s result for ``preset``'s simulated errors, the rows averaged over ``seeds`` draws."""
    tables, params = [], []
    for seed in range(seeds):
        depth_init = simulated_input(data, preset, seed)
        outputs, chosen = method_outputs(preset, depth_init, data, refiner)
        if refiner is not None and getattr(refiner["model"], "in_channels", 1) == 4:
            outputs["deltaz (grey image)"] = grey_image_depth(refiner, depth_init, data)
        tables.append(score(outputs, depth_init, data["depth_gt"]))
        params.append(chosen)
    table = _mean_tables(tables)
    goals = {m["method"]: sim_targets(table["right"], m["method"]) for m in table["right"]
             if m["method"] in ("deltaz", "deltaz+gate")}
    return {"rows": table, "targets": goals, "filter_params": {k: [p[k] for p in params] for k in params[0]}}


def write_report(path: str | None, report: dict[str, Any]) -> None:
    """``--json PATH``: every number of ``report`` written there (atomically), and said; nothing without a path.
    Shared by the Middlebury scripts."""
    if path:
        from deltaz.engine.report import write_json

        write_json(path, report)
        print(f"wrote {path}")


def add_scene_args(parser: argparse.ArgumentParser) -> None:
    """``--scene`` and ``--aloe-dir``, shared with ``middlebury_phases.py``."""
    parser.add_argument("--scene", choices=list(SCENES), default="motorcycle",
                        help="the real pair: motorcycle (default; design choices look at its left half) or aloe "
                        "(OpenCV's sample, never looked at for a choice; make aloe-data fetches it)")
    parser.add_argument("--aloe-dir", default=None, metavar="DIR",
                        help="with --scene aloe: the folder with aloeL.jpg, aloeR.jpg, aloeGT.png (default "
                        "$DELTAZ_ALOE, else $DELTAZ_DATA/aloe, else data/aloe)")


def check_scene_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--aloe-dir`` only with ``--scene aloe`` (a parser error, one line, otherwise)."""
    if args.aloe_dir is not None and args.scene != "aloe":
        parser.error(f"--aloe-dir is for --scene aloe, not --scene {args.scene}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None,
                        help="refiner checkpoint (.pt or a folder with best.pt/last.pt); default: the demo's")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    add_scene_args(parser)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the scene (depths and baseline) by this; 1 = 680 mm median depth")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    parser.add_argument("--dead-zone", type=parse_dead_zone, default=DEAD_ZONE, metavar="F,N", help=DEAD_ZONE_HELP)
    add_mirror_flags(parser)
    add_smooth_flags(parser)
    parser.add_argument("--colour-scale", type=float, default=1.0, metavar="K",
                        help="a selection refiner's colour weight times K (deltaz refine --colour-scale; default 1)")
    parser.add_argument("--scales", type=float, nargs="*", default=[0.5, 1.0, 3.0], metavar="S",
                        help="scale check: the refiner's covered-MAE ratio on the SGBM input at each scene scale "
                        "(default 0.5 1 3; the flag with no value skips it)")
    parser.add_argument("--sim", nargs="*", default=list(SIM_PRESETS), metavar="PRESET",
                        help="real images with simulated errors: deltaz.ops.corrupt presets applied to the ground "
                        f"truth (default {' '.join(SIM_PRESETS)}; the flag with no value skips them)")
    add_median_flag(parser)
    parser.add_argument("--sim-seeds", type=int, default=SIM_SEEDS, metavar="N",
                        help=f"draws of each simulated error model, rows averaged (default {SIM_SEEDS})")
    args = parser.parse_args(argv)
    check_scene_args(parser, args)
    from deltaz.ops.corrupt import PRESETS

    unknown = [p for p in args.sim if p not in PRESETS]
    if unknown:
        parser.error(f"--sim: expected presets among {', '.join(PRESETS)}, got {', '.join(unknown)}")
    if args.sim_seeds < 1:
        parser.error(f"--sim-seeds must be >= 1, got {args.sim_seeds}")
    if not all(math.isfinite(s) and s > 0 for s in args.scales):
        parser.error(f"--scales must be positive numbers, got {args.scales}")
    if not (math.isfinite(args.scale) and args.scale > 0):
        parser.error(f"--scale must be a positive number, got {args.scale}")
    if not (math.isfinite(args.colour_scale) and args.colour_scale > 0):
        parser.error(f"--colour-scale must be a positive number, got {args.colour_scale}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        data = load_scene(args.scale, scene=args.scene, folder=args.aloe_dir)
        refiner, refiner_note = load_refiner_or_none(args.checkpoint, args.device)
        if refiner is not None:
            refiner_note += set_dials(refiner, args, args.dead_zone)
        if refiner is not None and args.colour_scale != 1.0:
            from deltaz.engine.refine import colour_scaled_parts

            with colour_scaled_parts(refiner["model"], args.colour_scale):  # refused here, in one line, if it has none
                refiner["colour_scale"] = args.colour_scale
            refiner_note += f", colour weight x {args.colour_scale:g}"
        inputs = input_depths(data)
    except DeltaZError as error:
        print(f"real_middlebury: error: {error}", file=sys.stderr)
        return 1
    H, W = data["size"]
    print(f"{SCENES[args.scene]} at {W}x{H}, median depth {MEDIAN_DEPTH_MM * args.scale:.0f} mm (scale s = "
          f"{data['scale']:.4f}, baseline {data['baseline_mm']:.2f} mm); refiner: {refiner_note}")
    report: dict[str, Any] = {"scene": args.scene, "size": [H, W], "scale_arg": args.scale,
                              "scene_scale": data["scale"], "baseline_mm": data["baseline_mm"],
                              "refiner": refiner and refiner["path"], "refiner_note": refiner_note, "inputs": {}}
    for name, (depth_init, note) in inputs.items():
        if depth_init is None:
            print(f"\n=== input: {name}: skipped: {note}")
            report["inputs"][name] = {"skipped": note}
            continue
        result = run_input(name, depth_init, data, refiner)
        print_input(name, note, result)
        report["inputs"][name] = {"note": note, **result}
    for preset in args.sim:
        result = run_simulated(preset, data, refiner, args.sim_seeds)
        name = f"sim_{preset}"
        print_input(name, f"real images, the ground truth with deltaz.ops.corrupt's {preset!r} errors; mean of "
                    f"{args.sim_seeds} seeds", result)
        report["inputs"][name] = result
    if refiner is not None and args.scales:
        print("\n=== any scale (SGBM input, whole image): scene, baseline and input errors x s")
        report["scale_check"] = scale_check(refiner, args.scales, args.scene, args.aloe_dir)
    report["elapsed_s"] = time.perf_counter() - start
    print(f"\n({report['elapsed_s']:.1f} s)")
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
