"""Point clouds: per scan, fuse a method's depth maps and score them against the ground-truth cloud.

Fusion is :func:`deltaz.ops.pointcloud.fuse_depths` (geometric-consistency filter with ``min(2, S)``
source views); scores are DTU's accuracy / completeness / overall in mm with a 20 mm outlier cut.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from deltaz.engine.scans import ScanViews
from deltaz.ops.pointcloud import fuse_depths, gt_point_cloud, score_point_cloud, write_ply

__all__ = ["POINTCLOUD_METHODS", "PLY_METHODS", "score_pointclouds", "pointcloud_summary"]

#: Methods whose depth maps are fused into point clouds (when present).
POINTCLOUD_METHODS = ("identity", "mvsnet_refine", "deltaz")
#: Methods whose fused cloud is also written as PLY (with the ground truth's), for one scan.
PLY_METHODS = ("identity", "deltaz")
_MEAN_KEYS = ("accuracy_mm", "completeness_mm", "overall_mm", "accuracy_inlier_pct", "completeness_inlier_pct")


def score_pointclouds(
    views: ScanViews,
    outputs: Mapping[str, torch.Tensor],
    ply_dir: Path | None = None,
    confidence: torch.Tensor | None = None,
    conf_thresh: float | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows ``{"method", "scan", accuracy_mm, ...}`` for the :data:`POINTCLOUD_METHODS` in ``outputs``
    (``(N, H, W)`` mm each) and the PLY paths written under ``ply_dir`` (relative to it; None = none).
    ``confidence (N, H, W)`` with ``conf_thresh`` drops ``deltaz``'s less confident pixels before fusing."""
    if views.num_src == 0:
        return [], []
    gt_points = gt_point_cloud(views.depth, views.intrinsics, views.extrinsics)
    rows: list[dict[str, Any]] = []
    ply: list[str] = []
    for method in (m for m in POINTCLOUD_METHODS if m in outputs):
        conf_kw = {}
        if method == "deltaz" and conf_thresh is not None:
            conf_kw = {"confidence": confidence, "conf_thresh": conf_thresh}
        fused = fuse_depths(outputs[method], views.intrinsics, views.extrinsics, views.src_index, images=views.image,
                            min_views=min(2, views.num_src), **conf_kw)
        points, colors = fused if views.image is not None else (fused, None)
        rows.append({"method": method, "scan": views.scan, **score_point_cloud(points, gt_points)})
        if ply_dir is not None and method in PLY_METHODS:
            ply.append(_write(ply_dir, f"{views.scan}_{method}.ply", points, colors))
    if ply_dir is not None:
        ply.append(_write(ply_dir, f"{views.scan}_gt.ply", gt_points, None))
    return rows, ply


def _write(out_dir: Path, name: str, points: np.ndarray, colors: np.ndarray | None) -> str:
    return str(write_ply(out_dir / "pointclouds" / name, points, colors).relative_to(out_dir))


def pointcloud_summary(pc_rows: Sequence[Mapping[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """Mean over scans per method (``scan = "all"``), methods in ``order``; point counts are summed."""
    summary = []
    for method in order:
        rows = [r for r in pc_rows if r["method"] == method]
        if not rows:
            continue
        row: dict[str, Any] = {"method": method, "scan": "all"}
        row.update({key: float(np.mean([r[key] for r in rows])) for key in _MEAN_KEYS})
        row.update({key: int(sum(r[key] for r in rows)) for key in ("n_pred", "n_gt")})
        summary.append(row)
    return summary
