"""Multi-view geometric consistency filter (MVSNet-style) for the depth maps of one scan.

A reference pixel with depth ``d`` is *consistent* with a source view when the round trip
reference → source → reference lands back near where it started: the pixel is projected into the
source with ``d``, the source's own depth is read there (bilinearly; all four neighbours must hold a
depth), lifted to 3-D and projected back into the reference. It must come back within ``pixel_tol``
pixels and with a z-depth within ``rel_depth_tol · d``. A pixel is kept when it is consistent with at
least ``min_consistent`` of its sources. All geometry goes through :mod:`deltaz.core.geometry`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import (
    camera_to_world,
    get_ray_dirs_mask,
    pixel_grid,
    project_points,
    reproject,
    sample_pixels,
    world_to_camera,
)

__all__ = ["FILTER_DEFAULTS", "geometric_filter", "consistent_sources"]

#: The defaults of :func:`geometric_filter` (what :func:`deltaz.ops.mvs.sweep_scan` records).
FILTER_DEFAULTS = {"min_consistent": 2, "pixel_tol": 1.0, "rel_depth_tol": 0.01}


@torch.no_grad()
def consistent_sources(depth_ref, K_ref, E_ref, depth_src, K_src, E_src, pixel_tol=1.0, rel_depth_tol=0.01):
    """Per source, which reference pixels pass the round-trip check.

    Args:
        depth_ref: ``(H, W)`` z-depth of the reference view, mm, 0 = no value; ``K_ref (3, 3)``,
            ``E_ref (3, 4)`` world-to-camera.
        depth_src: ``(N, H', W')`` depths of ``N`` source views with ``K_src (N, 3, 3)``, ``E_src (N, 3, 4)``.
    Returns:
        ``(N, H, W)`` bool: consistent with that source (always False where ``depth_ref`` is 0).
    """
    N, (H, W) = depth_src.shape[0], depth_ref.shape
    Hs, Ws = depth_src.shape[-2:]
    ref = depth_ref.expand(N, H, W)
    K_r, E_r = K_ref.expand(N, 3, 3), E_ref[:3].expand(N, 3, 4)
    uv_src, _, seen = reproject(ref, K_r, E_r, K_src, E_src, src_hw=(Hs, Ws))
    rays, _ = get_ray_dirs_mask(K_src, Hs, Ws)  # (N, H', W', 3); affine in (u, v): bilinear is exact
    stack = torch.cat([depth_src.unsqueeze(1), (depth_src > 0).to(depth_src.dtype).unsqueeze(1),
                       rays.permute(0, 3, 1, 2)], dim=1)
    sampled = sample_pixels(stack, uv_src)  # (N, 5, H, W)
    depth_back = sampled[:, 0]
    complete = sampled[:, 1] > 0.999
    points_src = depth_back.unsqueeze(-1) * sampled[:, 2:].permute(0, 2, 3, 1)
    points_ref = world_to_camera(camera_to_world(points_src, E_src), E_r)
    uv_back, z_back = project_points(points_ref, K_r)
    u, v = pixel_grid(H, W, dtype=uv_back.dtype, device=uv_back.device)
    pixel_error = torch.hypot(uv_back[..., 0] - u, uv_back[..., 1] - v)
    depth_error = (z_back - ref).abs()
    return (seen & complete & (z_back > 0) & (pixel_error < pixel_tol)
            & (depth_error < rel_depth_tol * ref))


def _check(depths, intrinsics, extrinsics, src_lists, min_consistent, pixel_tol, rel_depth_tol):
    for name, value, shape in (("depths", depths, "(V, H, W)"), ("intrinsics", intrinsics, "(V, 3, 3)"),
                               ("extrinsics", extrinsics, "(V, 3, 4)")):
        if not torch.is_tensor(value) or value.dim() != 3:
            raise DataError(f"{name}: expected a tensor {shape}, got {getattr(value, 'shape', type(value))}")
        if not torch.isfinite(value).all():
            raise DataError(f"{name}: expected finite values, got NaN/inf")
    V = depths.shape[0]
    if intrinsics.shape != (V, 3, 3) or extrinsics.shape[0] != V or extrinsics.shape[-2:] not in ((3, 4), (4, 4)):
        raise DataError(f"intrinsics, extrinsics: expected ({V}, 3, 3) and ({V}, 3, 4) for {V} depth maps, got "
                        f"{tuple(intrinsics.shape)} and {tuple(extrinsics.shape)}")
    if len(src_lists) != V:
        raise DataError(f"src_lists: expected one list of source indices per view ({V}), got {len(src_lists)}")
    for r, srcs in enumerate(src_lists):
        bad = [s for s in srcs if not (isinstance(s, int) and 0 <= s < V and s != r)]
        if bad:
            raise DataError(f"src_lists[{r}]: expected indices into depths (0..{V - 1}, not {r}), got {bad}")
    if not (isinstance(min_consistent, int) and min_consistent >= 1):
        raise ConfigError(f"min_consistent: expected an integer >= 1 (source views), got {min_consistent!r}")
    if not (pixel_tol > 0 and rel_depth_tol > 0):
        raise ConfigError(f"pixel_tol, rel_depth_tol: expected positive tolerances, got {pixel_tol}, {rel_depth_tol}")


@torch.no_grad()
def geometric_filter(
    depths: torch.Tensor,
    intrinsics: torch.Tensor,
    extrinsics: torch.Tensor,
    src_lists: Sequence[Sequence[int]],
    min_consistent: int = FILTER_DEFAULTS["min_consistent"],
    pixel_tol: float = FILTER_DEFAULTS["pixel_tol"],
    rel_depth_tol: float = FILTER_DEFAULTS["rel_depth_tol"],
) -> torch.Tensor:
    """Which pixels of each view agree with at least ``min_consistent`` of their source views.

    Args:
        depths: ``(V, H, W)`` z-depths in mm of ``V`` views of one scene, 0 = hole.
        intrinsics: ``(V, 3, 3)``; extrinsics: ``(V, 3, 4)`` world-to-camera.
        src_lists: for each view, the **indices into** ``depths`` (not view ids) of its source views.
        min_consistent: sources a pixel must agree with (a view with fewer sources keeps nothing).
        pixel_tol: round-trip reprojection error allowed, pixels.
        rel_depth_tol: round-trip depth error allowed, as a fraction of the depth.
    Returns:
        ``masks (V, H, W)`` bool, False at holes; apply with ``torch.where(masks, depths, 0)``.
    """
    _check(depths, intrinsics, extrinsics, src_lists, min_consistent, pixel_tol, rel_depth_tol)
    depths = depths.float()
    intrinsics, extrinsics = intrinsics.float(), extrinsics[:, :3].float()
    masks = torch.zeros(depths.shape, dtype=torch.bool, device=depths.device)
    for r, srcs in enumerate(src_lists):
        if len(srcs) < min_consistent:
            continue
        idx = torch.as_tensor(list(srcs), dtype=torch.long, device=depths.device)
        ok = consistent_sources(depths[r], intrinsics[r], extrinsics[r], depths[idx], intrinsics[idx],
                                extrinsics[idx], pixel_tol, rel_depth_tol)
        masks[r] = (depths[r] > 0) & (ok.sum(0) >= min_consistent)
    return masks
