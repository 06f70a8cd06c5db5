"""The training losses of DeltaZ, each a function returning a scalar tensor.

Depths, Δz and residuals are in mm; the masked means divide by the number of valid pixels, so a loss does
not depend on the image size (any resolution works: a multi-scale pyramid calls the same functions with
the matching ``K``). With an all-invalid mask every loss returns a graph-connected 0, never NaN.

==================  ===============================================  ======================
term                formula (masked mean over valid pixels)          unit
==================  ===============================================  ======================
``depth``           ``|d_ref − d_gt|``                               mm
``improvement``     ``relu(|d_ref − d_gt| − |d_init − d_gt| − m)``    mm
``magnitude``       ``sqrt(Δz² + s²) − s`` (Charbonnier)             mm
``smoothness``      edge-aware ``|∇ d̂⁻¹| · exp(−|∇ guide|)``         1 (scale-free)
``multiview``       ``|z_src − d_src(uv_src)|`` over unoccluded      mm
``confidence``      ``|d_ref − d_gt| / b + log b`` (Laplacian NLL)    nats (optional)
==================  ===============================================  ======================

Explained in notebooks/05_losses.ipynb.
"""

from __future__ import annotations

from deltaz.ops.losses.multiview import (  # noqa: F401 (_multiview_pairs: shown in notebooks/05_losses.ipynb)
    _multiview_pairs,
    multiview_consistency_loss,
    multiview_consistency_loss_map,
)
from deltaz.ops.losses.terms import (  # noqa: F401 (_smoothness_terms: shown in notebooks/05_losses.ipynb)
    _smoothness_terms,
    depth_loss,
    depth_loss_map,
    improvement_loss,
    improvement_loss_map,
    laplacian_nll_loss,
    magnitude_loss,
    magnitude_loss_map,
    smoothness_loss,
    smoothness_loss_map,
)
from deltaz.ops.losses.total import (
    TERMS,
    LossWeights,
    compute_losses,
    loss_maps,
    losses_for_batch,
    multiview_inputs,
    weighted_total,
)

__all__ = [
    "depth_loss",
    "improvement_loss",
    "magnitude_loss",
    "smoothness_loss",
    "multiview_consistency_loss",
    "laplacian_nll_loss",
    "LossWeights",
    "compute_losses",
    "losses_for_batch",
    "TERMS",
]
