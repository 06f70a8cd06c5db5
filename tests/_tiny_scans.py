"""Tiny, geometrically consistent train-ready scans for the data/training tests (no synthetic renderer).

Each scan is a tilted plane with a sphere on it, seen by ``n_views`` pinhole cameras ~600 mm away on
an arc; depth is the exact ray intersection (z-depth, mm), so multi-view consistency holds. Written with
:func:`deltaz.io.dtu.layout.write_scan`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deltaz.io.dtu.layout import write_scan


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera (3, 4) for a camera at ``centre`` looking at ``target`` (+y of the image down)."""
    z = target - centre
    z = z / np.linalg.norm(z)
    up = np.array([0.0, -1.0, 0.0])
    x = np.cross(up, z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return np.concatenate([R, (-R @ centre)[:, None]], axis=1)


def _render_depth(K: np.ndarray, E: np.ndarray, H: int, W: int, sphere: np.ndarray, radius: float,
                  plane_n: np.ndarray, plane_c: float) -> np.ndarray:
    R, t = E[:, :3], E[:, 3]
    C = -R.T @ t
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    pix = np.stack([u, v, np.ones_like(u)], -1)
    rays = pix @ np.linalg.inv(K).T  # camera rays, z = 1
    d = rays @ R  # world directions (R^T r), not unit
    # plane n.X = c
    denom = d @ plane_n
    t_plane = (plane_c - C @ plane_n) / np.where(np.abs(denom) < 1e-9, 1e-9, denom)
    t_plane = np.where(t_plane > 0, t_plane, np.inf)
    # sphere |C + t d - S|^2 = r^2
    oc = C - sphere
    a = (d * d).sum(-1)
    b = 2 * (d @ oc)
    c = oc @ oc - radius**2
    disc = b * b - 4 * a * c
    t_sph = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
    t_sph = np.where(t_sph > 0, t_sph, np.inf)
    depth = np.minimum(t_plane, t_sph)  # rays have z = 1 in the camera, so t is the z-depth
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)


def make_scan(root: Path, name: str, n_views: int = 4, H: int = 32, W: int = 40, seed: int = 0,
              images: bool = False, initial: bool = False, hole_fraction: float = 0.05) -> Path:
    rng = np.random.default_rng(seed)
    K = np.array([[90.4 * W / 40, 0, 20.7 * W / 40], [0, 90.1 * H / 32, 16.6 * H / 32], [0, 0, 1]])
    target = np.array([0.0, 0.0, 0.0])
    sphere = np.array([rng.uniform(-20, 20), rng.uniform(-20, 20), -10.0])
    radius = float(rng.uniform(25, 40))
    plane_n = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), 1.0])
    plane_n /= np.linalg.norm(plane_n)
    plane_c = 20.0
    views, centres = {}, []
    for i in range(n_views):
        angle = np.deg2rad(-15 + 30 * i / max(n_views - 1, 1))
        centre = np.array([600 * np.sin(angle), 40 * np.cos(3 * angle), -600 * np.cos(angle)])
        E = _look_at(centre, target)
        depth = _render_depth(K, E, H, W, sphere, radius, -plane_n, -plane_c)
        holes = rng.random((H, W)) < hole_fraction
        depth[holes] = 0
        view = {"depth": depth, "intrinsics": K.astype(np.float32), "extrinsics": E.astype(np.float32)}
        if images:
            shade = np.clip((depth - 540) / 120, 0, 1)
            view["image"] = np.stack([shade, 1 - shade, 0.5 * np.ones_like(shade)]).astype(np.float32)
        if initial:
            view["initial"] = np.where(depth > 0, depth + rng.normal(0, 2, depth.shape), 0).astype(np.float32)
        views[i] = view
        centres.append(centre)
    centres = np.array(centres)
    pairs = {}
    for i in range(n_views):
        dist = np.linalg.norm(centres - centres[i], axis=1)
        order = [j for j in np.argsort(dist) if j != i]
        pairs[i] = [(int(j), float(100.0 / (1 + dist[j]))) for j in order]
    meta = {"source": "tiny-test", "depth_range_mm": [425.0, 935.0]}
    return write_scan(root, name, views, pairs, meta)


def make_dataset(root: Path, n_scans: int = 3, n_views: int = 4, H: int = 32, W: int = 40, **kw) -> Path:
    """``n_scans`` tiny scans ``scan1 … scanN`` under ``root``; returns ``root``."""
    root = Path(root)
    for i in range(n_scans):
        make_scan(root, f"scan{i + 1}", n_views=n_views, H=H, W=W, seed=i, **kw)
    return root
