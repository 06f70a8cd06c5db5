"""Test-time self-supervised adaptation: fit a trained refiner to a new scene with no ground truth.

:func:`adapt_scan` fine-tunes a **copy** of the refiner on one scan's images and initial depths for a time
budget, with the losses of :mod:`deltaz.ops.selfsup` (photometric reprojection, geometric consistency between
refined depths, edge-aware smoothness, an anchor to the trustworthy input); :func:`adapt` runs it on every
requested scan and writes, under ``out``::

    <out>/checkpoints/<scan>.pt     the adapted refiner: an ordinary DeltaZ checkpoint (deltaz.engine.checkpoint format,
                                    the run's TrainConfig and model_config inside) for `deltaz evaluate`/`refine`
    <out>/<scan>/                   a train-ready copy of the scan (layout of deltaz.io.dtu.layout: depths/ = its ground
                                    truth or 0, images/, initial/ = the input used), plus refined/{vid:03d}.npy
                                    (the adapted depths behind the photometric gate, hand_out)
    <out>/logs/<scan>/              TensorBoard (loss/adapt/<term>)
    <out>/state/<scan>.pt           resumable state while a scan adapts (removed when it is done)
    <out>/report.md, report.json    loss curves and, where ground truth exists, before/after scores

Every reference view takes its turn (shuffled passes), with its ``pair.txt`` source views; the sources' refined
depths for the geometric term come from the same network: ``source_mode="cached"`` (default: the last refined
depth of each view, updated whenever the view is a reference, so at most one pass old — one forward per step),
``"nograd"`` (recomputed each step without gradient) or ``"grad"`` (recomputed with gradient). Ground truth is
read only to score. Killable: state and outputs are written atomically, a rerun with the same ``out`` skips
finished scans and resumes the unfinished one. ``AdaptConfig(anchor_to="auto")`` picks each scan's recipe (anchor
to the input, or trust the refiner) without ground truth: :mod:`deltaz.engine.adapt.recipe`. Units: mm, z-depth,
0 = hole; world-to-camera ``E``.
"""

from deltaz.engine.adapt.fit import (
    ANCHOR_TARGETS,
    CONFIDENCE_MODES,
    GATE_TARGETS,
    GATE_TRUST_REL,
    LR_SCHEDULES,
    MAX_PASSES,
    SOURCE_MODES,
    AdaptConfig,
    adapt_and_refine,
    adapt_scan,
    gate_adapted,
    hand_out,
    refine_all,
    refine_views,
    scan_confidence,
    scan_inputs,
    state_path,
    step_limit,
)
from deltaz.engine.adapt.outputs import adapt, adapt_method, demo_adapt_stage, load_adapted_view, run_scans, score_depths

__all__ = ["SOURCE_MODES", "CONFIDENCE_MODES", "ANCHOR_TARGETS", "LR_SCHEDULES", "MAX_PASSES", "GATE_TRUST_REL",
           "GATE_TARGETS", "AdaptConfig", "scan_confidence", "scan_inputs", "refine_views", "refine_all", "gate_adapted",
           "hand_out", "step_limit", "adapt_and_refine",
           "adapt_scan", "adapt", "state_path", "adapt_method", "demo_adapt_stage", "load_adapted_view", "run_scans", "score_depths"]
