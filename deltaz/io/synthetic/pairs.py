"""View selection (``pair.txt``) from real overlap between ground-truth depth maps.

MVSNet scores a source view ``j`` for a reference view ``i`` by summing, over the sparse 3D points both
views see, a prior ``G(θ)`` on the triangulation angle ``θ`` at the point (a Gaussian peaked at 5°,
``σ = 1°`` below and ``10°`` above). DeltaZ does the same with dense ground truth: every (strided)
pixel of view ``i`` is backprojected, projected into view ``j``, counted when ``j`` sees it (inside the
image, not occluded: ``|z_j − depth_j(uv)|`` within 1 % of the depth), and weighted by ``G(θ)``. The
score is that sum divided by the number of valid pixels of view ``i``, so it lies in ``[0, 1]``.
Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch

from deltaz.core.geometry import (
    backproject_depth,
    camera_center,
    camera_to_world,
    project_points,
    sample_pixels,
    world_to_camera,
)

__all__ = ["angle_prior", "view_scores", "select_pairs"]


def angle_prior(
    theta_deg: torch.Tensor, peak_deg: float = 5.0, sigma_below: float = 1.0, sigma_above: float = 10.0
) -> torch.Tensor:
    """MVSNet's triangulation-angle prior ``G(θ) = exp(−(θ − θ₀)² / 2σ²)``, ``σ`` depending on the side."""
    sigma = torch.where(
        theta_deg <= peak_deg, torch.full_like(theta_deg, sigma_below), torch.full_like(theta_deg, sigma_above)
    )
    return torch.exp(-((theta_deg - peak_deg) ** 2) / (2 * sigma**2))


@torch.no_grad()
def view_scores(depths, K, E, stride: int = 4, rel_tol: float = 0.01) -> np.ndarray:
    """Pairwise view scores ``(V, V)`` float64 (row = reference, column = source, diagonal 0).

    Args:
        depths: ``(V, H, W)`` ground-truth z-depth in mm (0 = no value), numpy or torch.
        K: ``(V, 3, 3)`` intrinsics for ``H×W``; E: ``(V, 3, 4)`` world-to-camera.
        stride: use every ``stride``-th pixel of the reference view in each direction.
        rel_tol: a projected point counts as seen by the source when its depth there is within
            ``rel_tol × depth`` of the source's depth map (nearest pixel).
    """
    depths = torch.as_tensor(np.asarray(depths), dtype=torch.float32)
    K = torch.as_tensor(np.asarray(K), dtype=torch.float32)
    E = torch.as_tensor(np.asarray(E)[:, :3, :4], dtype=torch.float32)
    V, H, W = depths.shape
    centers = camera_center(E)  # (V, 3)
    scores = np.zeros((V, V), dtype=np.float64)
    for i in range(V):
        points = backproject_depth(depths[i], K[i])[::stride, ::stride]  # (h, w, 3)
        valid = depths[i, ::stride, ::stride] > 0
        n_valid = int(valid.sum())
        if n_valid == 0:
            continue
        world = camera_to_world(points[valid], E[i])  # (N, 3)
        src = world_to_camera(world.expand(V, -1, -1), E)  # (V, N, 3)
        uv, z = project_points(src, K)
        seen = sample_pixels(depths[:, None], uv[:, None], mode="nearest")[:, 0, 0]  # (V, N)
        u, v = uv[..., 0], uv[..., 1]
        inside = (u >= -0.5) & (u <= W - 0.5) & (v >= -0.5) & (v <= H - 0.5) & (z > 1e-6)
        visible = inside & (seen > 0) & ((z - seen).abs() <= rel_tol * z)
        to_ref = centers[i] - world  # (N, 3)
        to_src = centers[:, None, :] - world[None]  # (V, N, 3)
        cos = (to_ref[None] * to_src).sum(-1) / (to_ref.norm(dim=-1)[None] * to_src.norm(dim=-1)).clamp_min(1e-12)
        theta = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
        weight = angle_prior(theta) * visible
        scores[i] = (weight.sum(dim=1).double() / n_valid).numpy()
        scores[i, i] = 0.0
    return scores


def select_pairs(scores: np.ndarray, n_src: int = 10, decimals: int = 4) -> dict[int, list[tuple[int, float]]]:
    """The ``n_src`` best sources of each view, best first (ties: lower view id), as for ``write_pair_file``.

    Scores are rounded to ``decimals`` places; sources with score 0 still fill the list (like DTU,
    every view gets ``min(n_src, V − 1)`` sources).
    """
    scores = np.asarray(scores, dtype=np.float64)
    V = scores.shape[0]
    pairs: dict[int, list[tuple[int, float]]] = {}
    for ref in range(V):
        candidates = [j for j in range(V) if j != ref]
        candidates.sort(key=lambda j: (-round(scores[ref, j], decimals), j))
        pairs[ref] = [(j, round(float(scores[ref, j]), decimals) + 0.0) for j in candidates[: min(n_src, V - 1)]]
    return pairs

