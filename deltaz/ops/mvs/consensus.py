"""Multi-view consensus: a pixel that no source view agrees with takes the depth the sources see there.

The sources' depth maps are projected into the reference view (:func:`splat_sources`: every source pixel's 3-D
point lands on its nearest reference pixel, the nearest point kept — a z-buffer). A reference pixel whose own
depth passes MVSNet's geometric check with none of its sources (:func:`deltaz.ops.metrics.multiview_consistency`:
1 px round trip, 1 % depth) is an outlier of its own; :func:`consensus_depth` gives it the splatted depth that
the most sources agree on (within ``rel`` of each other; ties: the first source in ``pair.txt`` order), where
that depth's photometric error against the sources is lower than its own depth's
(:func:`deltaz.ops.selfsup.photometric_loss_map`, the photometric gate's SSIM + L1) or no source sees its own.

What it fixes: a plane sweep's wrong winners that the other views got right. What it cannot: a pixel that no
source's depth reaches keeps its own; holes stay holes (``fill_holes=True`` fills those the sources reach, where
at least two of them agree). Convention: z-depth in mm, 0 = hole.
"""

from __future__ import annotations

import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.core.geometry import reproject
from deltaz.ops.metrics import multiview_consistency
from deltaz.ops.selfsup import photometric_loss_map

__all__ = ["CONSENSUS_REL", "consensus_depth", "splat_sources"]

#: Two splatted depths agree when they differ by less than this fraction of the depth (MVSNet's 1 %).
CONSENSUS_REL = 0.01


@torch.no_grad()
def splat_sources(multiview: MultiView, height: int, width: int) -> torch.Tensor:
    """The sources' depths seen from the reference camera: ``(B, S, height, width)`` z-depth in mm, 0 = none.

    Each source pixel with a depth (``multiview.depth_src (B, S, H', W')``) is lifted to 3-D, projected into the
    reference camera and rounded to the nearest pixel; where several land on one pixel the nearest is kept.
    """
    depth_src = multiview.require_depths("splat_sources")
    B, S = depth_src.shape[:2]
    # each source pixel's point seen from the reference camera: the reference plays reproject's "source"
    uv, z, ok = reproject(depth_src.flatten(0, 1).float(), multiview.K_src.flatten(0, 1),
                          multiview.E_src.flatten(0, 1), multiview.K_ref.repeat_interleave(S, dim=0),
                          multiview.E_ref.repeat_interleave(S, dim=0), src_hw=(height, width))
    u, v = uv[..., 0].round().long(), uv[..., 1].round().long()
    ok = ok & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    image = torch.arange(B * S, device=z.device).view(-1, 1, 1).expand_as(u)
    index = ((image * height + v) * width + u)[ok]
    buffer = torch.full((B * S * height * width,), float("inf"), device=z.device)
    buffer.scatter_reduce_(0, index, z[ok].float(), reduce="amin")
    return torch.where(torch.isinf(buffer), 0.0, buffer).view(B, S, height, width)


def _most_agreed(splatted: torch.Tensor, rel: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, S, H, W)`` splatted depths → the one most of them agree with ``(B, H, W)`` and how many do (≥ 1
    where any exists, itself included; 0 where none). One source at a time: memory ``O(B·S·H·W)``."""
    present = splatted > 0  # an absent source s agrees with none: |d - 0| < rel · 0 never holds
    support = torch.stack([(present & ((splatted - splatted[:, s:s + 1]).abs() < rel * splatted[:, s:s + 1])).sum(1)
                           for s in range(splatted.shape[1])], dim=1)  # (B, S, H, W): who agrees with source s
    pick = support.argmax(dim=1, keepdim=True)
    return splatted.gather(1, pick)[:, 0], support.gather(1, pick)[:, 0]


@torch.no_grad()
def consensus_depth(depth: torch.Tensor, image_ref: torch.Tensor | None, image_src: torch.Tensor | None,
                    multiview: MultiView, rel: float = CONSENSUS_REL, fill_holes: bool = False) -> torch.Tensor:
    """Outliers of their own take the sources' depth (module docstring): ``(B, H, W)`` mm → ``(B, H, W)`` float32 mm.

    Args:
        depth: ``(B, H, W)`` reference z-depth, mm, 0 = hole.
        image_ref: ``(B, 3, H, W)`` in [0, 1]; image_src: ``(B, S, 3, H', W')`` in [0, 1]. Both None: no
            photometric check (the geometry alone decides).
        multiview: the reference's and sources' cameras with the sources' depths (``depth_src (B, S, H', W')``,
            each at its image's size: one ``K_src`` serves both).
        rel: the agreement of two splatted depths, a fraction of the depth (> 0).
        fill_holes: also give a hole the splatted depth two or more sources agree on.
    """
    if depth.dim() != 3:
        raise DataError(f"consensus_depth: depth (B, H, W) expected, got {tuple(depth.shape)}")
    if not rel > 0:
        raise DataError(f"consensus_depth: rel > 0 (a fraction of the depth) expected, got {rel}")
    if (image_ref is None) != (image_src is None):
        raise DataError("consensus_depth: give both image_ref and image_src, or neither")
    depth_src = multiview.require_depths("consensus_depth")
    if depth.shape[0] == 0 or depth_src.dim() != 4 or depth_src.shape[1] == 0:
        raise DataError(f"consensus_depth: at least one view and one source expected, got depth "
                        f"{tuple(depth.shape)} and source depths {tuple(depth_src.shape)}")
    if image_ref is not None and (image_ref.shape[-2:] != depth.shape[-2:]
                                  or image_src.shape[-2:] != depth_src.shape[-2:]):
        raise DataError(f"consensus_depth: each image must have its depth map's size (one K per view), got "
                        f"image_ref {tuple(image_ref.shape)} for depth {tuple(depth.shape)} and image_src "
                        f"{tuple(image_src.shape)} for source depths {tuple(depth_src.shape)}")
    depth = depth.float()
    candidate, support = _most_agreed(splat_sources(multiview, *depth.shape[-2:]), rel)
    adopt = (depth > 0) & (support >= 1) & (multiview_consistency(depth, multiview).n_consistent == 0)
    if image_ref is not None:
        own, own_seen = photometric_loss_map(depth, image_ref, image_src, multiview, mask_ssim=True)
        new, new_seen = photometric_loss_map(candidate, image_ref, image_src, multiview, mask_ssim=True)
        adopt = adopt & (~own_seen | (new_seen & (new < own)))
    if fill_holes:
        adopt = adopt | ((depth == 0) & (support >= 2))
    return torch.where(adopt, candidate, depth)
