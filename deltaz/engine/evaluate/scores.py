"""The numbers of every row: depth metrics, do-no-harm, consistency; error and confidence samples.

One :class:`MethodScores` per (method, scan) and per method over all scans; :meth:`MethodScores.row`
is the one place a table row is built: its metric keys are :data:`deltaz.engine.report.METRIC_COLUMNS`
(read from :class:`deltaz.ops.metrics.MetricAccumulator`), then ``consistency_valid``, ``mae_valid_mm``, ``hole_pct``,
``n_pixels`` and :data:`deltaz.engine.report.HARM_COLUMNS`. A new column goes there and in the report's lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from deltaz.engine.scans import ScanViews, chunks
from deltaz.engine.report import HARM_COLUMNS, METRIC_COLUMNS
from deltaz.ops.confidence import Sparsification, sparsification
from deltaz.ops.metrics import HarmAccumulator, MetricAccumulator, consistency_rate

__all__ = [
    "CONSISTENCY_SETTINGS",
    "HISTOGRAM_MAX_PIXELS",
    "SPARSIFICATION_MAX_PIXELS",
    "consistency_counts",
    "MethodScores",
    "EvaluationScores",
    "confidence_summary",
]

#: Thresholds of the ``consistency`` column (MVSNet's geometric check).
CONSISTENCY_SETTINGS = {"pix_thresh": 1.0, "rel_depth_thresh": 0.01, "min_views": 1}
#: Cap on the pixels per method kept for the error histogram.
HISTOGRAM_MAX_PIXELS = 200_000
#: Cap on the pixels (a regular subsample) used for the sparsification curve.
SPARSIFICATION_MAX_PIXELS = 2_000_000


def consistency_counts(depth_all: torch.Tensor, views: ScanViews, batch_size: int = 8,
                       covered: torch.Tensor | None = None) -> tuple[int, int]:
    """(consistent pixels, pixels with a depth) of ``depth_all (N, H, W)`` mm against the same maps of the
    source views (:func:`deltaz.ops.metrics.consistency_rate` with :data:`CONSISTENCY_SETTINGS`); with
    ``covered (N, H, W)`` bool, both counted over those pixels only (one the map leaves without a depth counts as
    not consistent, so that every map is scored on the same pixels)."""
    counts = _consistency_tally(depth_all, views, batch_size, covered)
    return (counts[2], counts[3]) if covered is not None else (counts[0], counts[1])


def _consistency_tally(depth_all: torch.Tensor, views: ScanViews, batch_size: int,
                       covered: torch.Tensor | None) -> list[int]:
    """``[consistent, with a depth, consistent and covered, covered]`` in one pass."""
    counts = [0, 0, 0, 0]
    if views.num_src == 0:
        return counts
    for idx in chunks(range(len(views)), batch_size):
        mask, _ = consistency_rate(depth_all[idx], views.multiview(idx, depth_all), **CONSISTENCY_SETTINGS)
        has_depth = depth_all[idx] > 0
        inside = covered[idx] if covered is not None else torch.ones_like(has_depth)
        for k, m in enumerate((mask, has_depth, mask & inside, inside)):
            counts[k] += int(m.sum())
    return counts


@dataclass
class MethodScores:
    """Running sums of one row: metrics over every ground-truth pixel, over the pixels with an initial
    depth (``valid``), do-no-harm, and the consistency counts ``[consistent, with a depth]`` over all of the
    method's pixels (``consistency``) and over those the initial depth also has (``consistency_valid``)."""

    all: MetricAccumulator = field(default_factory=MetricAccumulator)
    valid: MetricAccumulator = field(default_factory=MetricAccumulator)
    harm: HarmAccumulator = field(default_factory=HarmAccumulator)
    consistency: list[int] = field(default_factory=lambda: [0, 0])
    consistency_valid: list[int] = field(default_factory=lambda: [0, 0])

    @classmethod
    def of(cls, output: torch.Tensor, views: ScanViews, batch_size: int = 8) -> "MethodScores":
        """The scores of one method's ``output (N, H, W)`` mm on one scan."""
        covered = views.depth_init > 0
        counts = _consistency_tally(output, views, batch_size, covered)
        return cls(
            MetricAccumulator().update(output, views.depth),
            MetricAccumulator().update(output, views.depth, covered),
            HarmAccumulator().update(output, views.depth_init, views.depth),
            counts[:2],
            counts[2:],
        )

    def merge(self, other: "MethodScores") -> "MethodScores":
        self.all.merge(other.all)
        self.valid.merge(other.valid)
        self.harm.merge(other.harm)
        self.consistency = [a + b for a, b in zip(self.consistency, other.consistency)]
        self.consistency_valid = [a + b for a, b in zip(self.consistency_valid, other.consistency_valid)]
        return self

    def row(self, method: str, scan: str) -> dict[str, Any]:
        """The table row (``metrics.json``'s keys): see the module docstring."""
        values = self.all.result()
        row: dict[str, Any] = {"method": method, "scan": scan}
        row.update({key: values[key] for key in METRIC_COLUMNS if key != "consistency"})
        for key in ("consistency", "consistency_valid"):
            consistent, with_depth = getattr(self, key)
            row[key] = 100.0 * consistent / with_depth if with_depth else float("nan")
        row["mae_valid_mm"] = self.valid.result()["mae_mm"]
        row["hole_pct"] = values["hole_pct"]
        row["n_pixels"] = values["n_pixels"]
        harm = self.harm.result()
        row.update({key: harm.get(key, float("nan")) for key in HARM_COLUMNS})
        return row


class EvaluationScores:
    """Everything measured over the scans: per-scan and overall rows, histogram and confidence samples.

    ``order``: the methods in table order; ``n_scans``: how many scans will be added (to size the
    subsamples of the histogram, :data:`HISTOGRAM_MAX_PIXELS`, and the sparsification curve).
    """

    def __init__(self, order: Sequence[str], n_scans: int):
        self.order = list(order)
        self.n_scans = int(n_scans)
        self.total = {m: MethodScores() for m in self.order}
        self.per_scan: list[dict[str, Any]] = []
        self.errors: dict[str, list[np.ndarray]] = {m: [] for m in self.order}
        self.conf_errors: list[torch.Tensor] = []
        self.conf_values: list[torch.Tensor] = []
        self.n_views = 0
        self.hist_stride: int | None = None

    def _stride(self, views: ScanViews, max_pixels: int) -> int:
        return max(1, math.ceil(int((views.depth > 0).sum()) * self.n_scans / max_pixels))

    def add_scan(self, views: ScanViews, outputs: Mapping[str, torch.Tensor], batch_size: int = 8,
                 confidence: torch.Tensor | None = None) -> None:
        """Score each method's ``outputs[m] (N, H, W)`` mm on ``views``; ``confidence (N, H, W)`` of ``deltaz``."""
        self.n_views += len(views)
        if self.hist_stride is None:  # from the first scan's size
            self.hist_stride = self._stride(views, HISTOGRAM_MAX_PIXELS)
        for m in self.order:
            scores = MethodScores.of(outputs[m], views, batch_size)
            self.per_scan.append(scores.row(m, views.scan))
            self.total[m].merge(scores)
            both = (views.depth > 0) & (outputs[m] > 0)
            self.errors[m].append((outputs[m] - views.depth)[both][:: self.hist_stride].numpy())
        if confidence is not None:
            both = (views.depth > 0) & (outputs["deltaz"] > 0)
            stride = self._stride(views, SPARSIFICATION_MAX_PIXELS)
            self.conf_errors.append((outputs["deltaz"] - views.depth)[both][::stride].abs())
            self.conf_values.append(confidence[both][::stride])

    def rows(self, scans: Sequence[str]) -> list[dict[str, Any]]:
        """``scan = "all"`` rows first, then the per-scan rows in ``scans`` order, methods in table order."""
        rows = [self.total[m].row(m, "all") for m in self.order]
        return rows + sorted(self.per_scan, key=lambda r: (list(scans).index(r["scan"]), self.order.index(r["method"])))

    def sparsification(self) -> Sparsification | None:
        """:class:`deltaz.ops.confidence.Sparsification` of ``deltaz``'s |error| by its confidence, or None."""
        if not self.conf_errors or sum(e.numel() for e in self.conf_errors) == 0:
            return None
        return sparsification(torch.cat(self.conf_errors), torch.cat(self.conf_values))


def confidence_summary(spars: Sparsification | None) -> dict[str, Any] | None:
    """``metrics.json``'s ``confidence`` entry: the curves with ``ause_mm`` / ``ause_random_mm``."""
    if spars is None:
        return None
    result = spars.as_dict()
    result["ause_mm"] = result.pop("ause")
    result["ause_random_mm"] = result.pop("ause_random")
    return result
