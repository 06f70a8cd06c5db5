"""Stage caches: reuse a folder when the settings that made it match, else rebuild it.

A stage (rendering, parsing, a plane sweep, a course dataset) writes its result, then a JSON *marker*
holding the settings that made it, **last**: a run killed midway leaves no marker, so the next run
starts again. :func:`marker_matches` is the one reuse test; :func:`write_marker` the one writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deltaz.core.atomic import atomic_write_text

__all__ = ["jsonable", "marker_matches", "read_marker", "write_marker"]


def jsonable(settings: Any) -> Any:
    """``settings`` as JSON would give it back (tuples → lists, keys → str), for comparing with a marker."""
    return json.loads(json.dumps(settings, sort_keys=True))


def read_marker(path: str | Path) -> Any | None:
    """The JSON in ``path``; ``None`` when it is missing or unreadable (an unfinished stage)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def marker_matches(path: str | Path, settings: Any) -> bool:
    """True when the marker at ``path`` exists and records exactly ``settings``."""
    stored = read_marker(path)
    return stored is not None and stored == jsonable(settings)


def write_marker(path: str | Path, settings: Any) -> Path:
    """Write ``settings`` as the marker at ``path`` (atomically; call it after the stage's files)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(jsonable(settings), indent=2, sort_keys=True) + "\n")
    return path
