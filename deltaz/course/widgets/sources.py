"""Where the viewers get their views: a list of view dicts, a loader function, or a multi-view batch."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence, Union

from deltaz.core.batch import MultiViewBatch
from deltaz.core.errors import ConfigError, DataError
from deltaz.viz import views_from_sample

__all__ = ["Views", "ViewSource"]

#: What a viewer's ``views`` argument may be: a view dict, a list of them, a loader ``(scan, view_id) ->
#: dict`` (with ``scans`` and ``view_ids``), or a :class:`~deltaz.core.batch.MultiViewBatch` (its first
#: sample's views, via :func:`deltaz.viz.views_from_sample`).
Views = Union[Sequence[Mapping[str, Any]], Mapping[str, Any], Callable[[str, int], Mapping[str, Any]], MultiViewBatch]


class ViewSource:
    """Views by ``(scan, view_id)`` from :data:`Views`; loaded views are cached (``cache_size``)."""

    def __init__(self, views: Views, scans=None, view_ids=None, cache_size: int = 16):
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        if isinstance(views, MultiViewBatch):
            views = views_from_sample(views)
        if callable(views):
            self._from_loader(views, scans, view_ids)
        else:
            self._from_views(views, scans)
        for scan, ids in self._ids.items():
            if not ids:
                raise ConfigError(f"view_ids: scan {scan!r} has no views")

    def _from_loader(self, load: Callable[[str, int], Mapping[str, Any]], scans, view_ids) -> None:
        if not scans:
            raise ConfigError("scans: required (a non-empty list) when views is a loader (scan, view_id) -> dict")
        if view_ids is None:
            raise ConfigError("view_ids: required when views is a loader: a list, or a dict scan -> list")
        self._load = load
        self.scans = list(scans)
        self._ids = {s: list(view_ids[s] if isinstance(view_ids, Mapping) else view_ids) for s in self.scans}

    def _from_views(self, views: Sequence[Mapping[str, Any]] | Mapping[str, Any], scans) -> None:
        if isinstance(views, Mapping):
            views = [views]
        views = list(views)
        if not views:
            raise ConfigError("views: expected at least one view dict")
        table: dict[tuple[str, int], Mapping] = {}
        for i, view in enumerate(views):
            if not isinstance(view, Mapping):
                raise ConfigError(f"views[{i}]: expected a dict of arrays, got {type(view).__name__}")
            key = (str(view.get("scan", "scan")), int(view.get("view_id", i)))
            if key in table:
                raise DataError(f"views[{i}]: duplicate (scan, view_id) = {key}")
            table[key] = view
        self._load = lambda scan, vid: table[(scan, vid)]
        self.scans = list(dict.fromkeys(k[0] for k in table))
        if scans is not None:
            unknown = [s for s in scans if s not in self.scans]
            if unknown:
                raise ConfigError(f"scans: {unknown} not among the views' scans {self.scans}")
            self.scans = list(scans)
        self._ids = {s: [k[1] for k in table if k[0] == s] for s in self.scans}

    def view_ids(self, scan: str) -> list[int]:
        """The view ids of ``scan``, in order."""
        return self._ids[scan]

    def get(self, scan: str, view_id: int) -> Mapping[str, Any]:
        """The view dict of ``(scan, view_id)`` (cached)."""
        key = (scan, view_id)
        if key not in self._cache:
            self._cache[key] = self._load(scan, view_id)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return self._cache[key]
