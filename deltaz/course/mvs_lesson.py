"""Course helpers of notebooks/04_multiview_stereo.ipynb: what a pixel looks like to a plane sweep.

* :func:`load_views` — a reference view and its best ``pair.txt`` sources of a train-ready scan as tensors;
* :func:`sweep_view` — :func:`deltaz.ops.mvs.plane_sweep` of one view of a scan against its best sources;
* :func:`local_contrast` — the standard deviation of the luminance in the ZNCC window (texture);
* :func:`depth_edges` / :func:`distance_to` — where the ground truth jumps, and how far each pixel is from it;
* :func:`occluded_side` — pixels on the far side of a depth jump (what a window there also sees in front);
* :func:`paint_flat` — paint a ball of the scene one flat grey in every view (a texture-less patch, consistent
  across views because it is defined in 3-D by the ground-truth depth).

The sweep, the cost and the filter themselves are package code (:mod:`deltaz.ops.mvs`); these helpers
only measure where the lesson looks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deltaz.core.geometry import backproject_depth, camera_to_world
from deltaz.io.dtu.layout import load_view, read_meta, read_scan_pairs
from deltaz.ops.mvs import SweepResult, plane_sweep

__all__ = ["load_views", "sweep_view", "luminance", "local_contrast", "depth_edges", "distance_to",
           "occluded_side", "paint_flat"]

#: Rec. 601 luma weights, those :func:`deltaz.ops.mvs.plane_sweep` matches on.
LUMA = (0.299, 0.587, 0.114)


def load_views(scan_dir: str | Path, ref_id: int, num_src: int = 4) -> dict:
    """View ``ref_id`` of a scan and its ``num_src`` best sources (``pair.txt`` order): index 0 is the reference.

    Returns ``{"view_ids": [ref, src₁, …], "image" (V, 3, H, W) in [0, 1], "depth" (V, H, W) mm (ground
    truth, 0 = none), "intrinsics" (V, 3, 3), "extrinsics" (V, 3, 4), "scores": pair.txt scores of the
    sources, "depth_range_mm": meta.json's (min, max)}``.
    """
    scan_dir = Path(scan_dir)
    pairs = read_scan_pairs(scan_dir)[int(ref_id)][:num_src]
    ids = [int(ref_id)] + [int(s) for s, _ in pairs]
    views = [load_view(scan_dir, v, with_image=True, with_initial=False) for v in ids]
    out = {k: torch.from_numpy(np.stack([v[k] for v in views])).float()
           for k in ("image", "depth", "intrinsics", "extrinsics")}
    low, high = (float(x) for x in read_meta(scan_dir)["depth_range_mm"])
    return {**out, "view_ids": ids, "scores": [float(s) for _, s in pairs], "depth_range_mm": (low, high)}


def sweep_view(scan_dir: str | Path, ref_id: int, num_src: int = 4, num_planes: int = 48, paint=None,
               **options) -> SweepResult:
    """:func:`~deltaz.ops.mvs.plane_sweep` of view ``ref_id`` against its ``num_src`` best sources over the
    scan's ``meta.json`` depth range; ``paint=(centre_world, radius_mm)`` first applies :func:`paint_flat`
    to every view (``options`` go to ``plane_sweep``)."""
    v = load_views(scan_dir, ref_id, num_src)
    if paint is not None:
        v = paint_flat(v, *paint)
    low, high = v["depth_range_mm"]
    return plane_sweep(v["image"][0], v["intrinsics"][0], v["extrinsics"][0], v["image"][1:], v["intrinsics"][1:],
                       v["extrinsics"][1:], low, high, num_planes, **options)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] → ``(H, W)`` Rec. 601 luminance (what the sweep compares)."""
    return (image * image.new_tensor(LUMA).view(3, 1, 1)).sum(0)


def local_contrast(image: torch.Tensor, window: int = 7) -> torch.Tensor:
    """``(H, W)`` standard deviation of the luminance over ``window × window`` (the ZNCC window).

    Near 0: the window is flat, every plane matches it about equally well (ZNCC is undefined there).
    At the borders only the pixels inside the image count.
    """
    gray = luminance(image)[None, None]
    pad = window // 2
    mean = F.avg_pool2d(gray, window, stride=1, padding=pad, count_include_pad=False)
    square = F.avg_pool2d(gray * gray, window, stride=1, padding=pad, count_include_pad=False)
    return (square - mean * mean).clamp_min(0).sqrt()[0, 0]


def depth_edges(depth: torch.Tensor, jump_mm: float = 10.0) -> torch.Tensor:
    """``(H, W)`` bool: a 4-neighbour with a depth differs by more than ``jump_mm`` (an occlusion edge).

    Both sides of the jump are marked; pixels without depth (0) are never edges.
    """
    valid = depth > 0
    edges = torch.zeros_like(valid)
    for dim in (0, 1):
        a, b = depth.narrow(dim, 0, depth.shape[dim] - 1), depth.narrow(dim, 1, depth.shape[dim] - 1)
        both = valid.narrow(dim, 0, depth.shape[dim] - 1) & valid.narrow(dim, 1, depth.shape[dim] - 1)
        jump = both & ((a - b).abs() > jump_mm)
        edges.narrow(dim, 0, depth.shape[dim] - 1).logical_or_(jump)
        edges.narrow(dim, 1, depth.shape[dim] - 1).logical_or_(jump)
    return edges


def distance_to(mask: torch.Tensor, max_px: int = 16) -> torch.Tensor:
    """``(H, W)`` float: chessboard distance in pixels to the nearest True pixel of ``mask``, capped at ``max_px``."""
    distance = torch.full(mask.shape, float(max_px))
    reached = mask.clone()
    distance[reached] = 0.0
    for step in range(1, max_px):
        reached = F.max_pool2d(reached[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
        distance[reached & (distance == max_px)] = float(step)
    return distance


def occluded_side(depth: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """``(H, W)`` mm: how far in front of the pixel the nearest surface within ``radius`` px lies.

    ``depth − min(depth over a (2·radius+1)² window)``, 0 where there is no depth. Large: the pixel sits
    just behind an occluding edge, so a matching window around it also covers the occluder.
    """
    far = torch.where(depth > 0, depth, torch.full_like(depth, float("inf")))
    nearest = -F.max_pool2d(-far[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0]
    return torch.where(depth > 0, depth - nearest, torch.zeros_like(depth))


def paint_flat(views: dict, centre_world: torch.Tensor, radius_mm: float, grey: float = 0.6) -> dict:
    """``views`` (from :func:`load_views`) with every surface point within ``radius_mm`` of ``centre_world``
    ``(3,)`` painted ``grey`` in every image: a texture-less patch that all views agree on.

    The points come from each view's ground-truth depth (pixels without depth are left alone). Returns a
    new dict (the images copied) with ``"painted" (V, H, W)`` bool added.
    """
    points = camera_to_world(backproject_depth(views["depth"], views["intrinsics"]), views["extrinsics"])
    painted = (views["depth"] > 0) & ((points - centre_world.to(points.dtype)).norm(dim=-1) < radius_mm)
    image = torch.where(painted[:, None], torch.full_like(views["image"], grey), views["image"])
    return {**views, "image": image, "painted": painted}
