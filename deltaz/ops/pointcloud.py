"""Point clouds: fuse depth maps (MVSNet's fusion), ground-truth clouds, DTU-style scoring, PLY files.

* :func:`fuse_depths` — per view, keep pixels that pass :func:`deltaz.ops.metrics.geometric_check` against at
  least ``min_views`` of its source views, average their depth with the consistent reprojected
  source depths, and backproject them to the world (MVSNet's ``filter_depth``).
* :func:`gt_point_cloud` — every ground-truth pixel of every view, backprojected.
* :func:`score_point_cloud` — DTU's accuracy (mean distance from each predicted point to the nearest
  ground-truth point), completeness (ground truth → prediction) and overall (their mean), each over the
  distances below ``max_dist_mm`` (20 mm, DTU's outlier threshold). DTU's official evaluation also
  masks with observation masks and ground planes; here the reference cloud is the ground-truth depth
  maps themselves, so it only covers what the cameras saw.
* :func:`write_ply` / :func:`read_ply` — PLY files (:mod:`deltaz.io.ply`, re-exported here).

Point clouds are NumPy arrays: points ``(N, 3)`` float32 in world millimetres, colours ``(N, 3)`` uint8.
Depth inputs may be torch tensors or NumPy arrays (``(V, H, W)`` mm, 0 = no value).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.core.geometry import backproject_depth, camera_to_world
from deltaz.io.ply import colors_uint8, read_ply, write_ply  # noqa: F401  (re-exported: deltaz.ops.pointcloud.write_ply / read_ply)
from deltaz.ops.metrics import multiview_consistency

__all__ = [
    "EVAL_VOXEL_MM",
    "voxel_downsample",
    "fuse_depths",
    "gt_point_cloud",
    "score_point_cloud",
    "write_ply",
    "read_ply",
]

#: Default voxel size (mm) for scoring. DTU downsamples to 0.2 mm for 1600×1200 images, where a pixel
#: covers ~0.4 mm at 600 mm; DeltaZ's 160×128 depth maps cover ~1.7 mm per pixel, so 1 mm keeps every
#: view's detail while removing the many-fold overlap between views (and keeps the KD-trees small).
EVAL_VOXEL_MM = 1.0


# --------------------------------------------------------------------------- helpers


def _as_points(name: str, points) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise DataError(f"{name} must be an (N, 3) array of points in mm, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise DataError(f"{name} holds NaN or inf coordinates")
    return points


def _as_tensor(name: str, value, ndim: int, tail: tuple[int, ...] = ()) -> torch.Tensor:
    t = torch.as_tensor(value)
    if t.dim() != ndim or (tail and tuple(t.shape[-len(tail):]) != tail):
        raise DataError(f"{name} must have {ndim} dimensions ending in {tail or '(H, W)'}, got {tuple(t.shape)}")
    return t


def voxel_downsample(points, voxel_size_mm: float, colors=None):
    """One point per occupied ``voxel_size_mm`` cube: the centroid of its points (and their mean colour).

    Returns ``points (M, 3)`` float32, or ``(points, colors (M, 3) uint8)`` when ``colors`` is given.
    """
    points = _as_points("points", points)
    if voxel_size_mm <= 0:
        raise DataError(f"voxel_size_mm must be > 0, got {voxel_size_mm}")
    if len(points) == 0:
        empty = points.astype(np.float32)
        return empty if colors is None else (empty, np.zeros((0, 3), np.uint8))
    keys = np.floor(points / voxel_size_mm).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    if float(span[0]) * float(span[1]) * float(span[2]) < 2.0**62:
        flat = keys[:, 0] + span[0] * (keys[:, 1] + span[1] * keys[:, 2])
        _, inverse = np.unique(flat, return_inverse=True)
    else:
        _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse).astype(np.float64)
    centroids = np.stack([np.bincount(inverse, weights=points[:, i]) for i in range(3)], 1) / counts[:, None]
    if colors is None:
        return centroids.astype(np.float32)
    colors = np.asarray(colors)
    mean_colors = np.stack([np.bincount(inverse, weights=colors[:, i].astype(np.float64)) for i in range(3)], 1)
    return centroids.astype(np.float32), np.clip(np.round(mean_colors / counts[:, None]), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- clouds


def _source_lists(src_views, V: int) -> list[list[int]]:
    if isinstance(src_views, Mapping):
        lists = [list(src_views.get(i, [])) for i in range(V)]
    else:
        lists = [list(s) for s in src_views]
        if len(lists) != V:
            raise DataError(f"src_views must list the source views of each of the V={V} views, got {len(lists)} lists")
    for i, srcs in enumerate(lists):
        bad = [s for s in srcs if not 0 <= int(s) < V or int(s) == i]
        if bad:
            raise DataError(f"src_views[{i}] holds invalid view indices {bad} (expected 0..{V - 1}, not {i} itself)")
    return [[int(s) for s in srcs] for srcs in lists]


@torch.no_grad()
def fuse_depths(
    depths,
    intrinsics,
    extrinsics,
    src_views: Sequence[Sequence[int]] | Mapping[int, Sequence[int]],
    images=None,
    min_views: int = 2,
    confidence=None,
    conf_thresh: float | None = None,
    pix_thresh: float = 1.0,
    rel_depth_thresh: float = 0.01,
):
    """MVSNet-style fusion of ``V`` depth maps into one world point cloud.

    For each view ``i``: :func:`deltaz.ops.metrics.multiview_consistency` against the views
    ``src_views[i]``; pixels consistent with at least ``min_views`` of them get the average of their
    depth and the consistent reprojected depths, and are backprojected to the world.

    Args:
        depths: ``(V, H, W)`` z-depth, mm, 0 = no value (predictions or initial depths).
        intrinsics: ``(V, 3, 3)``; extrinsics: ``(V, 3|4, 4)`` world-to-camera.
        src_views: for each view, the *indices into these arrays* of its source views (a list of V
            lists, or a mapping ``{i: [...]}`` where a missing view has no sources and is not fused);
            e.g. ``pair.txt``'s best views mapped to array positions.
        images: optional ``(V, 3, H, W)``, float in [0, 1] or uint8; the reference pixel's colour is kept.
        min_views: consistent source views a pixel needs (MVSNet: 3 of 10 sources; default 2).
        confidence: optional ``(V, H, W)``; with ``conf_thresh``, pixels below it are dropped as
            reference pixels and ignored as source pixels.
        pix_thresh, rel_depth_thresh: the geometric check's thresholds (pixels, relative).
    Returns:
        ``points (N, 3)`` float32 world mm, and ``colors (N, 3)`` uint8 when ``images`` is given.
    """
    depths = _as_tensor("depths", depths, 3)
    V, H, W = depths.shape
    dtype = depths.dtype if depths.is_floating_point() else torch.float32
    depths = depths.to(dtype)
    K = _as_tensor("intrinsics", intrinsics, 3, (3, 3)).to(dtype)
    E = _as_tensor("extrinsics", extrinsics, 3).to(dtype)
    if K.shape[0] != V or E.shape[0] != V or tuple(E.shape[-2:]) not in ((3, 4), (4, 4)):
        raise DataError(f"intrinsics (V, 3, 3) and extrinsics (V, 3|4, 4) must match V={V} depths, "
                        f"got {tuple(K.shape)} and {tuple(E.shape)}")
    if min_views < 1:
        raise DataError(f"min_views must be >= 1, got {min_views}")
    lists = _source_lists(src_views, V)
    valid = depths > 0
    if conf_thresh is not None:
        if confidence is None:
            raise DataError("fuse_depths: conf_thresh is set but confidence is None")
        confidence = _as_tensor("confidence", confidence, 3)
        if tuple(confidence.shape) != (V, H, W):
            raise DataError(f"confidence must be (V={V}, H={H}, W={W}), got {tuple(confidence.shape)}")
        valid = valid & (confidence >= conf_thresh)
    depths = torch.where(valid, depths, torch.zeros_like(depths))
    if images is not None:
        images = _as_tensor("images", images, 4)
        if images.shape[0] != V or tuple(images.shape[-2:]) != (H, W):
            raise DataError(f"images must be (V={V}, C, H={H}, W={W}), got {tuple(images.shape)}")

    all_points, all_colors = [], []
    for i, srcs in enumerate(lists):
        if len(srcs) < min_views:
            continue
        multiview = MultiView(K[i:i + 1], E[i:i + 1], depths[srcs][None], K[srcs][None], E[srcs][None])
        result = multiview_consistency(depths[i:i + 1], multiview, pix_thresh=pix_thresh,
                                       rel_depth_thresh=rel_depth_thresh, valid_src=valid[srcs][None])
        keep = ((result.n_consistent[0] >= min_views) & valid[i]).cpu()
        points_world = camera_to_world(backproject_depth(result.depth_averaged, K[i:i + 1]), E[i:i + 1])[0]
        all_points.append(points_world.cpu()[keep].numpy().astype(np.float32))
        if images is not None:
            rgb = images[i].permute(1, 2, 0).cpu()[keep].numpy()
            all_colors.append(colors_uint8(rgb[:, :3]))
    points = np.concatenate(all_points) if all_points else np.zeros((0, 3), np.float32)
    if images is None:
        return points
    colors = np.concatenate(all_colors) if all_colors else np.zeros((0, 3), np.uint8)
    return points, colors


@torch.no_grad()
def gt_point_cloud(depths_gt, intrinsics, extrinsics, voxel_size_mm: float | None = None) -> np.ndarray:
    """Every pixel with ground truth (``> 0``) of ``depths_gt (V, H, W)`` backprojected to the world.

    ``intrinsics (V, 3, 3)``, ``extrinsics (V, 3|4, 4)`` world-to-camera. Returns ``(N, 3)`` float32 mm,
    voxel-downsampled (:func:`voxel_downsample`) when ``voxel_size_mm`` is given.
    """
    depths = _as_tensor("depths_gt", depths_gt, 3)
    dtype = depths.dtype if depths.is_floating_point() else torch.float32
    depths = depths.to(dtype)
    K = _as_tensor("intrinsics", intrinsics, 3, (3, 3)).to(dtype)
    E = _as_tensor("extrinsics", extrinsics, 3).to(dtype)
    if K.shape[0] != depths.shape[0] or E.shape[0] != depths.shape[0]:
        raise DataError(f"intrinsics {tuple(K.shape)} and extrinsics {tuple(E.shape)} must match "
                        f"V={depths.shape[0]} depths")
    points = camera_to_world(backproject_depth(depths, K), E)
    points = points[depths > 0].cpu().numpy().astype(np.float32)
    return voxel_downsample(points, voxel_size_mm) if voxel_size_mm else points


def score_point_cloud(pred, gt, max_dist_mm: float = 20.0, voxel_size_mm: float | None = EVAL_VOXEL_MM) -> dict:
    """DTU-style accuracy, completeness and overall (mm) of ``pred (N, 3)`` against ``gt (M, 3)``.

    ``accuracy_mm`` = mean over predicted points of the distance to the nearest ground-truth point,
    ``completeness_mm`` = mean over ground-truth points of the distance to the nearest predicted point,
    each over the distances ``< max_dist_mm`` only (the rest are outliers, DTU: 20 mm);
    ``overall_mm`` = their mean. Also ``accuracy_inlier_pct`` / ``completeness_inlier_pct`` (% of points
    within ``max_dist_mm``, i.e. precision and recall at that distance) and the point counts
    ``n_pred`` / ``n_gt`` after downsampling. Both clouds are voxel-downsampled first when
    ``voxel_size_mm`` is set (default :data:`EVAL_VOXEL_MM`; ``None`` = exact). When one side has no
    point within ``max_dist_mm`` (e.g. an empty cloud) its distance is reported as ``max_dist_mm``,
    the worst value the definition allows, so that averages over scans stay finite.
    """
    pred = _as_points("pred", pred)
    gt = _as_points("gt", gt)
    if voxel_size_mm:
        pred = voxel_downsample(pred, voxel_size_mm)
        gt = voxel_downsample(gt, voxel_size_mm)

    def one_way(src: np.ndarray, dst: np.ndarray) -> tuple[float, float]:
        if len(src) == 0 or len(dst) == 0:
            return float(max_dist_mm), 0.0
        dist, _ = cKDTree(dst).query(src, k=1, distance_upper_bound=max_dist_mm)
        inlier = dist < max_dist_mm
        if not inlier.any():
            return float(max_dist_mm), 0.0
        return float(dist[inlier].mean()), 100.0 * float(inlier.mean())

    accuracy, acc_in = one_way(pred, gt)
    completeness, comp_in = one_way(gt, pred)
    return {
        "accuracy_mm": accuracy,
        "completeness_mm": completeness,
        "overall_mm": 0.5 * (accuracy + completeness),
        "accuracy_inlier_pct": acc_in,
        "completeness_inlier_pct": comp_in,
        "n_pred": int(len(pred)),
        "n_gt": int(len(gt)),
    }
