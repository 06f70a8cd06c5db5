"""Benchmark of test-time adaptation (``deltaz adapt``): does self-supervision on the target scene help?

    .venv/bin/python benchmarks/bench_adapt.py --checkpoint CK --synth-root DIR [--minutes 3] [--threads 2]
        [--cases gap nogap middlebury] [--ablation] [--device cpu|cuda] [--json out.json]

``CK`` is a refiner trained on ``mvs``-simulated input (the recipe in docs/EXPERIMENTS.md, "Adaptation"); ``DIR``
holds held-out synthetic train-ready scans (``deltaz synth`` + ``deltaz parse``, never trained on). Cases:

* ``gap`` — across a domain gap: the scans' input is the package's plane sweep (``--preset planesweep``), which
  the refiner never saw. Targets: covered MAE ≥ 10 % lower than the unadapted refiner's, ``harm_pct`` at most
  0.5 points above the unadapted refiner's.
* ``nogap`` — the training distribution (``mvs``-simulated input on the held-out scans). Target: no worse than
  unadapted (MAE within 0.5 %, harm_pct within 0.5 points).
* ``middlebury`` — Middlebury *Motorcycle* as a 2-view scan (SGBM input, :mod:`deltaz.io.middlebury_scan`). Target:
  covered MAE ≥ 5 % lower than unadapted, on the LEFT half (design choices looked at it) and the RIGHT half
  (held out: the number that counts) of the left view, reported separately.

Each scan is adapted for ``--minutes`` (a copy of the refiner per scan, :func:`deltaz.engine.adapt.adapt_scan`) with
the default :class:`deltaz.engine.adapt.AdaptConfig` unless flags say otherwise; the ground truth is used only to
score. The targets compare ``deltaz+adapt`` — what ``deltaz adapt`` hands out: the adapted network's depths behind
the photometric gate unless ``AdaptConfig.gate`` is off — with the unadapted refiner ``deltaz``; the rows
``deltaz+gate`` (the unadapted refiner behind the gate) and ``adapt ungated`` show what each part does.
``--ablation`` re-runs the first gap scan with each self-supervised term dropped in turn. Targets are printed
with ticks, never asserted (a test runs the script on a tiny scan for one step).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from deltaz.engine.adapt import AdaptConfig, adapt_and_refine, scan_confidence
from deltaz.engine.adapt.outputs import score_depths
from deltaz.engine.device import resolve_device
from deltaz.engine.evaluate import load_refiner, load_scan_views
from deltaz.engine.scans import gate_views
from deltaz.ops.selfsup import SELFSUP_TERMS

#: Rows of every case: the input, the unadapted refiner (alone and behind the photometric gate, evaluate's
#: deltaz+gate), the adapted network's own depths, and what `deltaz adapt` hands out (behind the gate by default).
METHODS = ("input", "deltaz", "deltaz+gate", "adapt ungated", "deltaz+adapt")


def run_scan(model, keep_holes: bool, root: Path, scan: str, cfg: AdaptConfig, masks=None) -> dict:
    """Adapt to one scan; scores of :data:`METHODS` per region (``masks``: name → (N, H, W) bool)."""
    t0 = time.perf_counter()
    views = load_scan_views(root, scan, cfg.num_src_views, cfg.preset, use_images=True)
    confidence = scan_confidence(root, scan, views, cfg.preset, cfg.confidence)
    done = adapt_and_refine(model, views, confidence, cfg, keep_holes)
    info, before, run = done["info"], done["unadapted"], done["info"]["config"]  # run: "auto" resolved per scan
    depths = {"input": views.depth_init, "deltaz": before, "deltaz+gate": gate_views(views, range(len(views)), before),
              "adapt ungated": done["ungated"], "deltaz+adapt": done["refined"]}
    regions = masks(views) if masks else {"all": None}
    scores = {name: {m: score_depths(d, views.depth_init, views.depth, mask) for m, d in depths.items()}
              for name, mask in regions.items()}
    recipe = f"anchor to {run.anchor_to}, gate {run.gate} (against the {run.gate_against}), blend {run.blend}"
    if info["agreement_gain"] is not None:
        recipe += f" (auto: agreement gain {info['agreement_gain']:.3f})"
    return {"scan": scan, "steps": info["steps"], "adapt_s": info["elapsed_s"], "total_s": time.perf_counter() - t0,
            "recipe": recipe, "scores": scores, "first": info["history"][0] if info["history"] else {},
            "last": info["history"][-1] if info["history"] else {}}


def pooled(results: list[dict], region: str = "all") -> dict:
    """Pixel-weighted scores over scans (MAE and harm by covered pixels, mae_good by ~covered pixels)."""
    out = {}
    for m in METHODS:
        rows = [r["scores"][region][m] for r in results]
        n = sum(r["n_covered"] for r in rows)
        out[m] = {k: sum(r[k] * r["n_covered"] for r in rows) / max(n, 1)
                  for k in ("mae_covered_mm", "mae_good_mm", "harm_pct")}
    return out


def tick(ok: bool) -> str:
    return "✓" if ok else "✗"


def print_rows(title: str, scores: dict) -> None:
    print(f"  {title}")
    for m, s in scores.items():
        print(f"    {m:<14} MAE {s['mae_covered_mm']:7.3f} mm, good {s['mae_good_mm']:.3f} mm, harm {s['harm_pct']:5.2f} %")


def check(name: str, s: dict, mae_gain: float, harm_slack: float = 0.5) -> dict:
    """Targets: adapted MAE ≤ (1 − mae_gain) × unadapted, harm ≤ unadapted + slack."""
    before, after = s["deltaz"], s["deltaz+adapt"]
    gain = 1 - after["mae_covered_mm"] / before["mae_covered_mm"]
    ok_mae = after["mae_covered_mm"] <= (1 - mae_gain) * before["mae_covered_mm"]
    ok_harm = after["harm_pct"] <= before["harm_pct"] + harm_slack
    want = f"≥ {100 * mae_gain:.1f} % lower" if mae_gain >= 0 else f"no more than {-100 * mae_gain:.1f} % higher"
    print(f"  target {name}: MAE {want}: change {-100 * gain:+.1f} % {tick(ok_mae)};  harm_pct ≤ unadapted + {harm_slack}: "
          f"{after['harm_pct']:.2f} vs {before['harm_pct']:.2f} {tick(ok_harm)}")
    return {"case": name, "mae_gain_pct": 100 * gain, "ok_mae": ok_mae, "ok_harm": ok_harm}


def case_synthetic(model, keep, root: Path, cfg: AdaptConfig, preset: str, name: str, gain: float) -> dict:
    scans = sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file())
    print(f"\n## {name}: {len(scans)} held-out scans, input preset {preset}, {cfg.minutes} min per scan")
    results = []
    for scan in scans:
        r = run_scan(model, keep, root, scan, replace(cfg, preset=preset))
        results.append(r)
        print(f"  {scan}: {r['steps']} steps, adapt {r['adapt_s']:.0f} s, total {r['total_s']:.0f} s per scan; {r['recipe']}")
        print_rows(scan, r["scores"]["all"])
    total = pooled(results)
    print_rows("all scans", total)
    return {"results": results, "pooled": total, "target": check(name, total, gain)}


def halves(views) -> dict:
    """Left and right half of the left view (view 0); the right view has no ground truth."""
    W = views.depth.shape[-1]
    cols = torch.arange(W)
    left = torch.zeros_like(views.depth, dtype=torch.bool)
    left[0] = (cols < W // 2).expand_as(views.depth[0])
    right = torch.zeros_like(left)
    right[0] = (cols >= W // 2).expand_as(views.depth[0])
    return {"whole": None, "left": left, "right": right}


def case_middlebury(model, keep, cfg: AdaptConfig) -> dict:
    from deltaz.io.middlebury_scan import write_motorcycle_scan

    root = Path(tempfile.mkdtemp(prefix="bench_adapt_mb_"))
    write_motorcycle_scan(root)
    print(f"\n## middlebury: Motorcycle 185x125, 2 views, SGBM input, {cfg.minutes} min")
    r = run_scan(model, keep, root, "motorcycle", replace(cfg, num_src_views=1), masks=halves)
    print(f"  {r['steps']} steps, adapt {r['adapt_s']:.0f} s, total {r['total_s']:.0f} s; {r['recipe']}")
    for region in ("whole", "left", "right"):
        print_rows(region, r["scores"][region])
    targets = [check(f"middlebury {region}", r["scores"][region], 0.05) for region in ("left", "right")]
    return {"result": r, "targets": targets}


def ablation(model, keep, root: Path, cfg: AdaptConfig) -> list[dict]:
    scan = sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file())[0]
    print(f"\n## ablation on {scan} (planesweep input): each term dropped in turn")
    rows = []
    for drop in (None, *SELFSUP_TERMS):
        weights = cfg.weights if drop is None else replace(cfg.weights, **{drop: 0.0})
        r = run_scan(model, keep, root, scan, replace(cfg, preset="planesweep", weights=weights))
        s, u = r["scores"]["all"]["deltaz+adapt"], r["scores"]["all"]["adapt ungated"]
        rows.append({"dropped": drop or "none", **s, "ungated": u})
        print(f"  without {drop or '(nothing)':<12} MAE {s['mae_covered_mm']:.3f} mm, good {s['mae_good_mm']:.3f} mm, "
              f"harm {s['harm_pct']:.2f} %; ungated {u['mae_covered_mm']:.3f} mm, harm {u['harm_pct']:.2f} %  "
              f"(unadapted MAE {r['scores']['all']['deltaz']['mae_covered_mm']:.3f}, {r['steps']} steps)")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="refiner trained on mvs-simulated input")
    parser.add_argument("--synth-root", required=True, help="held-out synthetic train-ready scans")
    parser.add_argument("--minutes", type=float, default=3.0, help="adaptation minutes per scan (default 3)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (default 2, the targets' 2-core setting; 1 on a CPU shared with other work)")
    parser.add_argument("--cases", nargs="*", default=["gap", "nogap", "middlebury"],
                        choices=["gap", "nogap", "middlebury"], help="which cases to run")
    parser.add_argument("--ablation", action="store_true", help="drop each term in turn on the first gap scan")
    parser.add_argument("--ablation-minutes", type=float, default=None, help="minutes per ablation run (default --minutes)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (the targets' setting), cuda or auto: where the refiner adapts (the time per scan)")
    parser.add_argument("--json", default=None, help="write every number here")
    parser.add_argument("--config", default="{}", metavar="JSON",
                        help='AdaptConfig overrides, e.g. \'{"lr": 3e-4, "weights": {"anchor": 1.0}}\'')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, config, _ = load_refiner(args.checkpoint, resolve_device(args.device))
    keep = not config.get("fill_holes", False)
    overrides = json.loads(args.config)
    if "weights" in overrides:
        overrides["weights"] = {**AdaptConfig().weights.as_dict(), **overrides["weights"]}
    cfg = AdaptConfig.from_dict({**AdaptConfig(minutes=args.minutes, progress=False).to_dict(), **overrides})
    print(f"bench_adapt: {args.checkpoint} on {next(model.parameters()).device}, {args.minutes} min per scan, "
          f"{args.threads} torch thread(s), "
          f"weights {cfg.weights.as_dict()}, anchor to {cfg.anchor_to}, lr {cfg.lr}, sources {cfg.source_mode}, "
          f"gate {cfg.gate} (trust_rel {cfg.gate_trust_rel})")
    out: dict = {"settings": {**vars(args), "config": cfg.to_dict()}}
    root = Path(args.synth_root)
    if "gap" in args.cases:
        out["gap"] = case_synthetic(model, keep, root, cfg, "planesweep", "gap", 0.10)
    if "nogap" in args.cases:
        out["nogap"] = case_synthetic(model, keep, root, cfg, "mvs", "nogap", -0.005)
    if "middlebury" in args.cases:
        out["middlebury"] = case_middlebury(model, keep, cfg)
    if args.ablation:
        out["ablation"] = ablation(model, keep, root, replace(cfg, minutes=args.ablation_minutes or args.minutes))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
