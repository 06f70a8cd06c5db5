"""Fit a copy of a trained refiner to one scan without ground truth (:func:`adapt_scan`), and refine its views.

Units: mm, z-depth, 0 = hole; world-to-camera ``E``. The run over many scans and what it writes: :mod:`deltaz.engine.adapt.outputs`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from deltaz.core.errors import ConfigError, DataError
from deltaz.engine import checkpoint as ckpt
from deltaz.engine.adapt.recipe import resolve_recipe, view_agreement
from deltaz.engine.scans import gate_views
from deltaz.model import refine
from deltaz.model.blend import BlendedRefiner
from deltaz.ops.mvs import load_sweep
from deltaz.ops.selfsup import SelfSupInputs, SelfSupWeights, selfsup_losses

__all__ = ["SOURCE_MODES", "CONFIDENCE_MODES", "ANCHOR_TARGETS", "LR_SCHEDULES", "MAX_PASSES", "GATE_TRUST_REL",
           "GATE_TARGETS", "AdaptConfig", "scan_confidence", "scan_inputs", "refine_views", "refine_all", "gate_adapted",
           "hand_out", "step_limit", "adapt_scan", "adapt_and_refine", "state_path"]

SOURCE_MODES = ("cached", "nograd", "grad")
#: Adaptation's gate: a correction larger than this fraction of the input depth stands unconfirmed
#: (:func:`gate_adapted`). Chosen on the benchmark's design scans (``deltaz synth --seed 5``; plane-sweep and
#: ``mvs`` input, 3 minutes per scan): with 0.04 the covered MAE was 12.6 and 8.5 % below the unadapted
#: refiner's and harm_pct 1.45 points below and 0.17 above it; with no threshold (photometric confirmation
#: only) 7.2 and 3.1 % below; with 0.02 more gain, but harm 0.53 points above on the ``mvs`` input.
GATE_TRUST_REL = 0.04
#: What the gate checks the adapted depths against, and hands back where the sources refute them: the input
#: (the default) or the unadapted refiner's depths (``anchor_to="auto"``'s trust-the-refiner recipe).
GATE_TARGETS = ("input", "unadapted")
CONFIDENCE_MODES = ("auto", "sweep", "agreement", "none")
#: What the anchor term pulls towards: the input depth (weighted by ``confidence``; the default) or the unadapted
#: refiner's output (weight 1 everywhere); see :func:`adapt_scan`. Measured with the selection refiner of
#: docs/EXPERIMENTS.md's adapt table (held-out seed-23 scans, 3 minutes per scan; covered MAE against the unadapted
#: refiner's, gated): "unadapted" (with ``gate_trust_rel`` 0.01) keeps the gain across the gap (−15.0 %, "input":
#: −14.9 %) and cuts the damage without a gap (+6.9 % against +26.7 %), but on Middlebury, where the refiner starts
#: worse than SGBM's input, it stays near that refiner (right half 18.21 mm against 16.85; input 15.75). "auto" (the
#: default) picks per scan between the input and the unadapted output, with the gate and blend that suit each
#: (:func:`deltaz.engine.adapt.recipe.resolve_recipe`); held out it met the gap, no-gap and Middlebury targets.
ANCHOR_TARGETS = ("input", "unadapted", "auto")
#: "cosine": the rate decays from ``lr`` to 0 over the budget (minutes, steps or passes, whichever is used up
#: furthest). Not the default: on the design scans (seed 5, plane-sweep input, 800 steps ≈ 3 minutes on 2 threads)
#: the gated gain on the unadapted refiner was 11.5 % at a constant 1e-4, 6.1 % cosine from 1e-4 and 12.2 % cosine
#: from 3e-4, but cosine from 3e-4 drifted on a held-out seed-23 scan (MAE 17.0 -> 19.7 mm; its whole-scan
#: objective rose from 0.082 to 0.109 as the geometric and smoothness terms grew), as a constant 2e-4 and
#: cosine from 5e-4 did on a design scan.
LR_SCHEDULES = ("constant", "cosine")
#: Default pass cap: a scan of few views gets many passes in its minutes and drifts. Middlebury's 2-view pair
#: (left half, the design half; gated): 12.87 / 12.80 / 12.78 mm and harm_pct 3.4 / 2.0 / 3.1 % after 20 / 40 / 70
#: passes, but 13.51 mm and 18.4 % after 3 minutes (about 700 passes). A 49-view scan gets 32–38 passes in 3
#: minutes on a 2-core CPU, so the cap leaves it alone there.
MAX_PASSES = 40.0
#: The adapted network's share of the correction handed out (:class:`deltaz.model.blend.BlendedRefiner`):
#: ``Δz = (1 − BLEND)·Δz_unadapted + BLEND·Δz_adapted``; 1 = the adapted network alone. Not below 1 by default:
#: with ``anchor_to="unadapted"`` (weight 0.3, no gate) 0.75 was chosen on the design scans (seed 5: gap −10.3 %,
#: no gap −4.9 %, harm +0.54 points) and held out (seed 23) still lost 3.0 % without a gap (adapted alone: 8.1 %);
#: a second round (design seeds 5 + 31) chose 0.8, which met every synthetic target on held-out seed 41 but lost
#: 3.8 % on seed 23. With the input as the anchor's target the no-gap loss stays (design: +6.2 % at 0.5).
#: docs/EXPERIMENTS.md, "Adaptation".
BLEND = 1.0


@dataclass
class AdaptConfig:
    """Settings of an adaptation run (minutes per scan, learning rate per step, dimensionless loss weights)."""

    minutes: float = 3.0
    max_steps: int | None = None  # also stop after this many steps per scan (tests, benchmarks)
    lr: float = 1e-4  # Adam's rate (the peak of a schedule)
    lr_schedule: str = "constant"  # or "cosine" (see LR_SCHEDULES)
    max_passes: float | None = MAX_PASSES  # also stop after this many passes over the views (see MAX_PASSES)
    batch_size: int = 2  # reference views per step
    num_src_views: int = 2  # pair.txt sources per reference
    source_mode: str = "cached"
    weights: SelfSupWeights = field(default_factory=SelfSupWeights)
    confidence: str = "auto"  # anchor weight: auto = agreement (the inputs' multi-view agreement), sweep, none
    anchor_to: str = "auto"  # the anchor's target: "auto" (per scan), the input or "unadapted" (ANCHOR_TARGETS)
    normalise_exposure: bool = True
    blend: float = BLEND  # the adapted network's share of the correction handed out (BLEND)
    gate: bool = True  # the refined depths handed out pass the photometric gate (gate_adapted)
    gate_trust_rel: float | None = GATE_TRUST_REL  # ... where moves larger than this fraction of the depth stand
    gate_against: str = "input"  # ... checked against the input or the unadapted refiner's depths (GATE_TARGETS)
    grad_clip: float = 1.0
    preset: str = "mvs"  # initial depth of scans without initial/ (as in deltaz evaluate)
    seed: int = 0
    device: str | None = None
    save_every_s: float = 30.0
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.weights, dict):
            self.weights = SelfSupWeights(**self.weights)
        checks = [
            (self.minutes >= 0, "minutes", "must be >= 0 (minutes of adaptation per scan)"),
            (self.max_steps is None or self.max_steps >= 0, "max_steps", "must be >= 0 or None"),
            (self.lr > 0, "lr", "must be > 0"),
            (self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"must be one of {LR_SCHEDULES}"),
            (self.max_passes is None or self.max_passes > 0, "max_passes", "must be > 0 or None"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.num_src_views >= 1, "num_src_views", "must be >= 1 (the losses compare views)"),
            (self.source_mode in SOURCE_MODES, "source_mode", f"must be one of {SOURCE_MODES}"),
            (self.confidence in CONFIDENCE_MODES, "confidence", f"must be one of {CONFIDENCE_MODES}"),
            (self.anchor_to in ANCHOR_TARGETS, "anchor_to", f"must be one of {ANCHOR_TARGETS}"),
            (all(v >= 0 for v in self.weights.as_dict().values()), "weights", "must all be >= 0"),
            (0 <= self.blend <= 1, "blend", "must be in [0, 1] (the adapted network's share of the correction)"),
            (self.gate_trust_rel is None or self.gate_trust_rel >= 0, "gate_trust_rel", "must be >= 0 or None"),
            (self.gate_against in GATE_TARGETS, "gate_against", f"must be one of {GATE_TARGETS}"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name)!r}: {message}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["weights"] = self.weights.as_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdaptConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown AdaptConfig field(s) {unknown}; known: {sorted(names)}")
        return cls(**data)


# =========================================================================== data
def scan_confidence(data_root: str | Path, scan: str, views, preset: str, mode: str = "auto") -> torch.Tensor | None:
    """The anchor's confidence of every view's input, ``(N, H, W)`` in [0, 1], or None (``mode="none"``).

    ``"sweep"``: the plane sweep's own (:func:`deltaz.ops.mvs.load_sweep`; inputs from ``--preset planesweep``);
    ``"agreement"`` (and ``"auto"``): the inputs' multi-view agreement (:func:`deltaz.ops.selfsup.input_agreement`),
    which works for any input; on the benchmark's tuning scan (plane-sweep input) it kept harm_pct below the
    unadapted refiner's (6.3 vs 6.7 %), the sweep's own confidence did not (7.4–8.3 %: it is high on many
    wrong pixels).
    """
    scan_dir = Path(data_root) / scan
    if mode == "none":
        return None
    if mode == "sweep":
        if preset != "planesweep" or (scan_dir / "initial").is_dir():
            raise ConfigError(f"confidence='sweep' needs the plane sweep's input (--preset planesweep, no initial/ in "
                              f"{scan_dir}); use --confidence agreement")
        return torch.stack([torch.from_numpy(load_sweep(scan_dir, vid)[1]) for vid in views.view_ids]).clamp(0, 1)
    return view_agreement(views, views.depth_init)


def scan_inputs(views, idx: list[int], confidence: torch.Tensor | None, anchor: torch.Tensor | None = None
                ) -> SelfSupInputs:
    """:class:`deltaz.ops.selfsup.SelfSupInputs` of the references ``idx`` of a :class:`deltaz.engine.evaluate.ScanViews`.

    ``anchor``: ``(N, H, W)`` mm depths of every view for the anchor term to pull towards instead of the inputs
    (its ``depth_init`` field; the only term that reads it)."""
    batch = views.batch(idx, images=True)
    if batch.image is None:
        raise DataError(f"{views.scan}: adaptation needs the scan's images (load_scan_views(..., use_images=True))")
    ref = batch.ref
    return SelfSupInputs(
        depth_init=ref.depth_init if anchor is None else anchor[idx].to(ref.depth_init),
        image=ref.image, K=ref.intrinsics, E=ref.extrinsics,
        image_src=batch.image[:, 1:], K_src=batch.intrinsics[:, 1:], E_src=batch.extrinsics[:, 1:],
        confidence=None if confidence is None else confidence[idx],
    )


def refine_views(model: torch.nn.Module, views, idx: list[int], keep_holes: bool, device) -> torch.Tensor:
    """:func:`deltaz.model.refine` of the views ``idx`` (with graph unless under ``no_grad``) → ``(B, H, W)`` mm."""
    image = views.image[idx].to(device) if getattr(model, "in_channels", 1) == 4 else None
    depth_range = views.depth_range.reshape(1, 2).expand(len(idx), 2).to(device)
    out = refine(model, views.depth_init[idx].to(device), image=image, depth_range=depth_range, keep_holes=keep_holes)
    return out["depth_refined"].float()


@torch.no_grad()
def refine_all(model: torch.nn.Module, views, keep_holes: bool, device, batch_size: int = 8) -> torch.Tensor:
    """Every view of the scan refined, ``(N, H, W)`` mm on ``device`` (holes 0, never negative)."""
    out = [refine_views(model, views, list(range(i, min(i + batch_size, len(views)))), keep_holes, device)
           for i in range(0, len(views), batch_size)]
    depth = torch.cat(out)
    return torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.zeros_like(depth))


def gate_adapted(views, refined: torch.Tensor, gate: bool = True, trust_rel: float | None = GATE_TRUST_REL,
                 against: torch.Tensor | None = None) -> torch.Tensor:
    """The adapted network's depths of every view, ``refined (N, H, W)`` mm, as adaptation hands them out: behind
    the photometric gate (``gate``; :func:`deltaz.engine.scans.gate_views`, :mod:`deltaz.ops.gate`) — a pixel keeps
    the adapted depth where the scan's source views confirm it or where it moved more than ``trust_rel`` of the
    input depth, the input elsewhere — or as they are (``gate=False``). ``against (N, H, W)`` mm: check against
    these depths (the unadapted refiner's) instead of the input, and hand them back where the sources refute.

    Why: adaptation's gain comes with harm (pixels the input had right moved by more than 1 mm), and the gate
    removes most of it; large moves stand because they are where the gain is (the input's outliers, often on
    surfaces too plain for the photometric check). Chosen on the design scans of ``benchmarks/bench_adapt.py``.
    """
    if not gate:
        return refined
    return gate_views(views, range(len(views)), refined, trust_rel=trust_rel, against=against).to(refined.device)


def hand_out(views, refined: torch.Tensor, cfg: AdaptConfig, unadapted: torch.Tensor) -> torch.Tensor:
    """:func:`gate_adapted` with the gate of ``cfg`` as run on the scan (``info["config"]`` of :func:`adapt_scan`);
    ``unadapted (N, H, W)`` mm: the unadapted refiner's depths, the gate's target with ``gate_against="unadapted"``."""
    against = unadapted if cfg.gate_against == "unadapted" else None
    return gate_adapted(views, refined, cfg.gate, cfg.gate_trust_rel, against)


def state_path(out: str | Path, scan: str) -> Path:
    """Where the resumable state of ``scan``'s adaptation lives while it runs."""
    return Path(out) / "state" / f"{scan}.pt"


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _source_depths(model, views, idx, cache, cfg: AdaptConfig, keep_holes: bool, device) -> torch.Tensor:
    """The sources' refined depths ``(B, S, H, W)`` as ``cfg.source_mode`` says."""
    src = torch.tensor([views.src_index[i] for i in idx], dtype=torch.long)
    if cfg.source_mode == "cached":
        return cache[src]
    flat = src.reshape(-1).tolist()
    if cfg.source_mode == "nograd":
        with torch.no_grad():
            depth = refine_views(model, views, flat, keep_holes, device)
    else:
        depth = refine_views(model, views, flat, keep_holes, device)
    return depth.reshape(*src.shape, *depth.shape[-2:])


def step_limit(cfg: AdaptConfig, num_views: int) -> int | None:
    """The most steps adaptation takes on a scan of ``num_views`` views: ``cfg.max_steps`` and ``cfg.max_passes``
    passes over the views (a pass: every view a reference once, ``ceil(num_views / batch_size)`` steps), whichever
    is fewer; None = no limit."""
    limits = [cfg.max_steps] if cfg.max_steps is not None else []
    if cfg.max_passes is not None:
        limits.append(max(1, math.ceil(cfg.max_passes * math.ceil(num_views / cfg.batch_size))))
    return min(limits) if limits else None


def _lr(cfg: AdaptConfig, elapsed_s: float, step: int, limit: int | None) -> float:
    """The learning rate of the next step: constant, or cosine-decayed over the budget's larger used fraction."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    used = elapsed_s / (cfg.minutes * 60.0) if cfg.minutes > 0 else 1.0
    if limit:
        used = max(used, step / limit)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(used, 1.0)))


def _step(model, optimizer, views, idx, confidence, anchor, cache, cfg, keep_holes, device) -> dict[str, float]:
    """One optimizer step on the references ``idx``; returns the terms (floats)."""
    depth_ref = refine_views(model, views, idx, keep_holes, device)
    depth_src = _source_depths(model, views, idx, cache, cfg, keep_holes, device)
    inputs = scan_inputs(views, idx, confidence, anchor).to(device)
    loss, terms = selfsup_losses(depth_ref, inputs, depth_src, cfg.weights, cfg.normalise_exposure)
    if not torch.isfinite(loss):
        return {"nonfinite": 1.0}
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    if cache is not None:
        cache[idx] = torch.where(depth_ref > 0, depth_ref, torch.zeros_like(depth_ref)).detach()
    return {k: float(v) for k, v in terms.items()}


def _load_state(path: Path, model, optimizer) -> dict[str, Any]:
    """Resume: restore the model, optimizer and RNG from ``path``; returns the counters and history."""
    state = ckpt.load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as error:
        detail = " ".join(str(error).split())[:160]
        raise DataError(f"{path}: a half-finished adaptation of another model ({detail}); remove it to start "
                        "over") from None
    ckpt.restore_rng_state(state["rng"])
    return {"step": int(state["step"]), "elapsed_s": float(state["elapsed_s"]), "epoch": int(state["epoch"]),
            "pos": int(state["pos"]), "history": list(state.get("history") or [])}


def _save_state(path: Path, model, optimizer, counters: dict[str, Any], cfg: AdaptConfig) -> None:
    ckpt.save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "rng": ckpt.capture_rng_state(), "adapt_config": cfg.to_dict(), **counters})


def _start_depths(base_model, model, views, cfg: AdaptConfig, keep_holes: bool, device, fresh: bool,
                  unadapted: torch.Tensor | None = None):
    """``(anchor, cache)``, each ``(N, H, W)`` mm or None: the unadapted refiner's depths when the anchor pulls
    towards them (also on resume), and the sources' cached refined depths (``source_mode="cached"``) — the
    unadapted ones for a fresh copy. ``unadapted``: those depths when already computed, so every view is refined
    once."""
    if unadapted is None and (cfg.anchor_to == "unadapted" or (fresh and cfg.source_mode == "cached")):
        unadapted = refine_all(base_model, views, keep_holes, device)
    anchor = unadapted.to(device) if cfg.anchor_to == "unadapted" else None
    if cfg.source_mode != "cached":
        return anchor, None
    return anchor, unadapted.to(device).clone() if fresh else refine_all(model, views, keep_holes, device)


def _recipe(base_model, views, cfg: AdaptConfig, keep_holes: bool, device, unadapted: torch.Tensor | None):
    """``(cfg, gain, unadapted)``: :func:`deltaz.engine.adapt.recipe.resolve_recipe`, the unadapted depths
    computed first when "auto" needs them and the caller gave none."""
    if unadapted is None and cfg.anchor_to == "auto":
        unadapted = refine_all(base_model, views, keep_holes, device)
    cfg, gain = resolve_recipe(cfg, views, unadapted)
    return cfg, gain, unadapted


def _check_adaptable(base_model: torch.nn.Module, views) -> None:
    """One clear error when ``base_model`` or ``views`` cannot be adapted (a blend, no images, no sources)."""
    if isinstance(base_model, BlendedRefiner):
        raise ConfigError("this checkpoint is already adapted with a blend (two networks); adapt the checkpoint it "
                          "was adapted from instead, or adapt with blend 1 to get a checkpoint of one network")
    if views.image is None:
        raise DataError(f"{views.scan}: adaptation needs the scan's images/ (the photometric term compares views)")
    if views.num_src == 0:
        raise DataError(f"{views.scan}: adaptation needs at least 2 views with pair.txt sources; the scan has "
                        f"{len(views)} view(s) and no source views")


def adapt_scan(base_model: torch.nn.Module, views, confidence: torch.Tensor | None, cfg: AdaptConfig,
               keep_holes: bool = True, state_file: str | Path | None = None, writer=None,
               on_step: Callable[[int, dict], None] | None = None, unadapted: torch.Tensor | None = None
               ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fine-tune a copy of ``base_model`` on one scan (:class:`deltaz.engine.evaluate.ScanViews` with images).
    ``unadapted``: ``base_model``'s depths of every view ``(N, H, W)`` mm when the caller has them (else computed).

    Stops after ``cfg.minutes`` of adaptation (checked every step; a resumed run counts the time already
    spent) or ``cfg.max_steps`` steps. ``state_file``: resumable state, saved every ``cfg.save_every_s`` s and
    at the end (atomic). ``writer``: a TensorBoard ``SummaryWriter`` (``loss/adapt/<term>``). ``confidence``:
    the anchor's weight of each view's input, ``(N, H, W)`` or None; unused with ``cfg.anchor_to="unadapted"``
    (then the anchor pulls towards ``base_model``'s own depths with weight 1).
    ``anchor_to="auto"`` first picks the scan's recipe (:func:`deltaz.engine.adapt.recipe.resolve_recipe`).
    Returns the adapted model (eval mode; a :class:`deltaz.model.blend.BlendedRefiner` with a blend below 1) and
    ``{"steps", "elapsed_s", "history", "stopped_by", "source_mode", "config", "agreement_gain"}``: ``config``
    as run (its gate for :func:`hand_out`), ``agreement_gain`` what "auto" decided on (else None).
    """
    from tqdm.auto import tqdm

    _check_adaptable(base_model, views)
    device = next(base_model.parameters()).device
    cfg, gain, unadapted = _recipe(base_model, views, cfg, keep_holes, device, unadapted)
    model = copy.deepcopy(base_model).eval()  # eval: BatchNorm (mvsnet_refine) keeps its statistics
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    counters = {"step": 0, "elapsed_s": 0.0, "epoch": 0, "pos": 0, "history": []}
    state_file = Path(state_file) if state_file is not None else None
    if state_file is not None and state_file.is_file():
        counters = _load_state(state_file, model, optimizer)
    confidence = None if confidence is None else confidence.to(device)
    anchor, cache = _start_depths(base_model, model, views, cfg, keep_holes, device, counters["step"] == 0, unadapted)
    if anchor is not None:  # the inputs' confidence is not the unadapted depths'
        confidence = None
    t0 = time.perf_counter() - counters["elapsed_s"]
    budget_s = cfg.minutes * 60.0
    limit = step_limit(cfg, len(views))
    bar = tqdm(total=limit, initial=counters["step"],
               desc=f"adapt {views.scan}", unit="step", disable=not cfg.progress, leave=False)
    last_save, stopped_by = time.perf_counter(), "minutes"
    while True:
        if limit is not None and counters["step"] >= limit:
            stopped_by = "max_steps" if limit == cfg.max_steps else "max_passes"
            break
        if time.perf_counter() - t0 >= budget_s:
            break
        batches = _batches(len(views), cfg.batch_size, cfg.seed, counters["epoch"])
        if counters["pos"] >= len(batches):
            counters["epoch"], counters["pos"] = counters["epoch"] + 1, 0
            continue  # the cache needs no refresh: each view was a reference in this pass
        for group in optimizer.param_groups:
            group["lr"] = _lr(cfg, time.perf_counter() - t0, counters["step"], limit)
        terms = _step(model, optimizer, views, batches[counters["pos"]], confidence, anchor, cache, cfg, keep_holes,
                      device)
        counters["pos"] += 1
        counters["step"] += 1
        counters["elapsed_s"] = time.perf_counter() - t0
        record = {"step": counters["step"], "t_s": round(counters["elapsed_s"], 2), **terms}
        counters["history"].append(record)
        if writer is not None:
            for name, value in terms.items():
                writer.add_scalar(f"loss/adapt/{name}", value, counters["step"])
        if on_step is not None:
            on_step(counters["step"], record)
        bar.update(1)
        if "total" in terms:
            bar.set_postfix(loss=f"{terms['total']:.4f}")
        if state_file is not None and time.perf_counter() - last_save >= cfg.save_every_s:
            _save_state(state_file, model, optimizer, counters, cfg)
            last_save = time.perf_counter()
    bar.close()
    counters["elapsed_s"] = time.perf_counter() - t0
    if state_file is not None:
        _save_state(state_file, model, optimizer, counters, cfg)
    model = model.eval() if cfg.blend == 1 else BlendedRefiner(base_model, model, cfg.blend).eval()
    return model, {"steps": counters["step"], "elapsed_s": counters["elapsed_s"], "history": counters["history"],
                   "stopped_by": stopped_by, "source_mode": cfg.source_mode, "config": cfg, "agreement_gain": gain}


def adapt_and_refine(base_model: torch.nn.Module, views, confidence: torch.Tensor | None, cfg: AdaptConfig,
                     keep_holes: bool = True, **adapt_kwargs) -> dict[str, Any]:
    """:func:`adapt_scan` (``adapt_kwargs``: its ``state_file``, ``writer``, ``on_step``) with the unadapted pass
    shared, then every view refined and handed out as the run's recipe says (:func:`hand_out`). Returns
    ``{"adapted", "info", "unadapted", "ungated", "refined"}``, the depths ``(N, H, W)`` mm on the CPU."""
    device = next(base_model.parameters()).device
    unadapted = refine_all(base_model, views, keep_holes, device).cpu()
    adapted, info = adapt_scan(base_model, views, confidence, cfg, keep_holes, unadapted=unadapted, **adapt_kwargs)
    ungated = refine_all(adapted, views, keep_holes, device).cpu()
    return {"adapted": adapted, "info": info, "unadapted": unadapted, "ungated": ungated,
            "refined": hand_out(views, ungated, info["config"], unadapted)}
