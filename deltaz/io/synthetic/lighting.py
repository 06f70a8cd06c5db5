"""Realistic images of a traced scene: cast shadows, speculars, anti-aliasing, a camera with noise.

:func:`render_images` is what the writer calls for ``style="real"``. Per view and light:

1. **Supersampling.** The view is traced at ``s×`` the resolution (``s = options.supersample``) with
   the camera whose pixel ``(i', j')`` looks at the point ``((i' + ½)/s − ½, (j' + ½)/s − ½)`` of the
   output image, ``K_s = diag(s, s, 1)·K + (s − 1)/2`` on ``cx, cy`` — so the box average of each
   ``s×s`` block is the pixel's area (DESIGN.md §1: pixel centres at integers). Depth maps are never
   supersampled: the writer takes them from :func:`deltaz.io.synthetic.render.render_depth`, exact.
2. **Shading** in linear RGB, per lamp ``l`` (a direction, scene frame) with intensity ``I``::

       colour = albedo · (ambient + Σ I·vis·max(0, n·l)) + Σ I·vis·k_s·max(0, n·h)^shininess

   with ``h = normalise(l + v)`` (Blinn-Phong, ``v`` towards the camera, so highlights move between
   views) and ``vis`` the **cast shadow**: 0 when the ray from the point towards the lamp hits another
   solid. Every solid is convex and a visible point lies outside all other solids, so the solid a
   point lies on never shadows it (no self-shadow acne, no epsilon) and a hit anywhere ahead counts.
   Shadow rays are culled per solid by its bounding ball seen along ``l``, then intersected exactly.
3. **Camera**: box-downsample, then per (scan, view, light) exposure ``exp(N(0, 0.25))``, white balance
   ``exp(N(0, 0.05))`` per channel, vignetting ``1 − k·r²`` (``k`` up to 0.3), Poisson-Gaussian noise
   in its usual heteroscedastic normal approximation ``σ² = value/full_well + read²`` (full well
   300–3000, read noise 0.1–1 % of white), clipping, gamma 1/2.2 and 8-bit quantisation.

Deterministic: all randomness comes from ``numpy.random.default_rng([*key, light])``; the arithmetic
is fixed float32 numpy, so the bytes do not depend on threads. Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deltaz.core.errors import ConfigError
from deltaz.io.synthetic.render import _camera_in_scene, _lamps, _pixel_rays, _prepared, light_rig, render_view
from deltaz.io.synthetic.scene import Scene

__all__ = ["RenderOptions", "render_images", "supersample_intrinsics", "shadow_mask"]

_F = np.float32


@dataclass(frozen=True)
class RenderOptions:
    """Cost and realism switches of :func:`render_images`.

    Attributes:
        supersample: samples per pixel along each axis (1 = none, 2 = 2×2, …).
        shadows: cast shadows (one shadow ray per sample and lamp).
        specular: Blinn-Phong highlights.
        camera: per-view exposure, white balance, vignetting and sensor noise.
    """

    supersample: int = 2
    shadows: bool = True
    specular: bool = True
    camera: bool = True

    def __post_init__(self):
        if int(self.supersample) != self.supersample or not 1 <= self.supersample <= 8:
            raise ConfigError(f"supersample: expected an integer 1..8, got {self.supersample!r}")


def supersample_intrinsics(K: np.ndarray, factor: int) -> np.ndarray:
    """``K (3, 3)`` of the ``factor×`` finer grid whose ``factor×factor`` blocks tile the pixels of ``K``."""
    K_s = np.asarray(K, dtype=np.float64).copy()
    K_s[:2] *= factor
    K_s[:2, 2] += (factor - 1) / 2
    return K_s


# ------------------------------------------------------------------------------------------- shadows
# o: per-point ray origins in a solid's unit frame (three float32 arrays); d: the constant direction
# (three floats). Each returns True where the ray o + t·d, t > 0, meets the unit solid.


def _occ_sphere(o, d, center_z: float = 0.0) -> np.ndarray:
    ox, oy, oz = o[0], o[1], o[2] - _F(center_z)
    b = ox * _F(d[0]) + oy * _F(d[1]) + oz * _F(d[2])
    c = ox * ox + oy * oy + oz * oz - _F(1)
    a = _F(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    return ((b * b - a * c >= 0) & (b < 0)) | (c < 0)


def _slab_range(o: np.ndarray, d: float, half: float):
    if abs(d) < 1e-12:
        inside = np.abs(o) <= _F(half)
        return np.where(inside, _F(-np.inf), _F(np.inf)), np.where(inside, _F(np.inf), _F(-np.inf))
    t1, t2 = (_F(-half) - o) * _F(1 / d), (_F(half) - o) * _F(1 / d)
    return np.minimum(t1, t2), np.maximum(t1, t2)


def _occ_box(o, d) -> np.ndarray:
    near, far = _slab_range(o[0], d[0], 1.0)
    for k in (1, 2):
        lo, hi = _slab_range(o[k], d[k], 1.0)
        near, far = np.maximum(near, lo), np.minimum(far, hi)
    return (near <= far) & (far > 0)


def _occ_cylinder(o, d, half_height: float = 1.0) -> np.ndarray:
    a = float(d[0] * d[0] + d[1] * d[1])
    c = o[0] * o[0] + o[1] * o[1] - _F(1)
    if a < 1e-12:  # parallel to the axis
        lo = np.where(c <= 0, _F(-np.inf), _F(np.inf))
        hi = -lo
    else:
        b = o[0] * _F(d[0]) + o[1] * _F(d[1])
        sq = np.sqrt(np.maximum(b * b - _F(a) * c, _F(0)))
        real = b * b - _F(a) * c >= 0
        lo = np.where(real, (-b - sq) * _F(1 / a), _F(np.inf))
        hi = np.where(real, (-b + sq) * _F(1 / a), _F(-np.inf))
    z_lo, z_hi = _slab_range(o[2], d[2], half_height)
    near, far = np.maximum(lo, z_lo), np.minimum(hi, z_hi)
    return (near <= far) & (far > 0)


def _occludes(p, o, d) -> np.ndarray:
    shape = p.solid.shape
    if shape == "ellipsoid":
        return _occ_sphere(o, d)
    if shape == "box":
        return _occ_box(o, d)
    if shape == "cylinder":
        return _occ_cylinder(o, d)
    h = p.capsule_half
    return _occ_cylinder(o, d, h) | _occ_sphere(o, d, h) | _occ_sphere(o, d, -h)


def shadow_mask(scene: Scene, points: np.ndarray, solid: np.ndarray, lamp: np.ndarray) -> np.ndarray:
    """True where a point is in the cast shadow of another solid for a lamp at infinity.

    Args:
        points: ``(3, n)`` float32 surface points in the scene frame (mm).
        solid: ``(n,)`` index of the solid each point lies on (never tested against itself).
        lamp: ``(3,)`` unit direction towards the lamp (scene frame).
    Returns:
        ``(n,)`` bool.
    """
    lamp = np.asarray(lamp, dtype=np.float64)
    e1 = np.cross(lamp, [1.0, 0.0, 0.0] if abs(lamp[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(lamp, e1)
    pu, pv, ph = (points[0] * _F(e[0]) + points[1] * _F(e[1]) + points[2] * _F(e[2]) for e in (e1, e2, lamp))
    shadow = np.zeros(points.shape[1], dtype=bool)
    for index, p in enumerate(_prepared(scene)):
        cu, cv, ch = float(p.center @ e1), float(p.center @ e2), float(p.center @ lamp)
        r = _F(p.radius)
        du, dv = pu - _F(cu), pv - _F(cv)
        candidate = (du * du + dv * dv < r * r) & (ph < _F(ch) + r) & (solid != index) & ~shadow
        ids = np.flatnonzero(candidate)
        if ids.size == 0:
            continue
        A = p.A.astype(np.float32)
        rel = [points[k, ids] - _F(p.center[k]) for k in range(3)]
        o = [rel[0] * A[i, 0] + rel[1] * A[i, 1] + rel[2] * A[i, 2] for i in range(3)]
        d = p.A @ lamp
        shadow[ids] |= _occludes(p, o, d)
    return shadow


# ------------------------------------------------------------------------------------------ shading


def _surface(scene: Scene, K_s: np.ndarray, E, H_s: int, W_s: int) -> dict[str, np.ndarray]:
    """Trace the supersampled view; keep the hit samples' points, normals, view vectors and materials.

    Returns ``mask (H_s, W_s)`` and, for the ``n`` hit samples in row-major order: ``points``,
    ``normal``, ``view_dir`` ``(3, n)`` float32 (scene frame), ``albedo (n, 3)``, ``solid (n,)``,
    ``specular (n,)`` and ``shininess (n,)``; plus ``albedo_image (H_s, W_s, 3)`` for debugging.
    """
    import torch

    view = render_view(scene, K_s, E, H_s, W_s)
    mask = view["mask"]
    rx, ry = (r.to(torch.float32).numpy()[mask] for r in _pixel_rays(np.asarray(K_s, np.float64), H_s, W_s,
                                                                        torch.float64))
    M, origin = _camera_in_scene(scene, E)
    M = M.astype(np.float32)
    depth = view["depth"][mask]
    ray = np.stack([rx * M[i, 0] + ry * M[i, 1] + M[i, 2] for i in range(3)])  # (3, n), scene frame
    points = ray * depth[None] + origin.astype(np.float32)[:, None]
    view_dir = -ray / np.sqrt((ray * ray).sum(axis=0, keepdims=True))
    solid = view["solid"][mask].astype(np.int64)
    spec = np.array([s.specular for s in scene.solids], dtype=np.float32)
    shine = np.array([s.shininess for s in scene.solids], dtype=np.float32)
    return {
        "mask": mask,
        "points": points,
        "normal": np.ascontiguousarray(view["normal"][mask].T),
        "view_dir": view_dir,
        "albedo": view["albedo"][mask],
        "solid": solid,
        "specular": spec[solid],
        "shininess": shine[solid],
    }


def _lamp_terms(scene: Scene, surf: dict, lamp: np.ndarray, options: RenderOptions) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse ``vis·max(0, n·l)`` and specular ``vis·k_s·max(0, n·h)^shininess`` ``(n,)`` of one lamp."""
    n, v = surf["normal"], surf["view_dir"]
    l = lamp.astype(np.float32)
    cos = np.maximum(n[0] * l[0] + n[1] * l[1] + n[2] * l[2], _F(0))
    lit = np.flatnonzero(cos > 0)
    if options.shadows and lit.size:
        shadow = shadow_mask(scene, surf["points"][:, lit], surf["solid"][lit], lamp)
        cos[lit[shadow]] = 0
        lit = lit[~shadow]
    spec = np.zeros_like(cos)
    if options.specular and lit.size:
        h = v[:, lit] + l[:, None]
        h /= np.sqrt((h * h).sum(axis=0, keepdims=True))
        cos_h = np.maximum((n[:, lit] * h).sum(axis=0), _F(1e-6))
        spec[lit] = surf["specular"][lit] * np.exp(surf["shininess"][lit] * np.log(cos_h))
    return cos, spec


def _camera(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance, vignetting and Poisson-Gaussian noise on a linear ``(H, W, 3)`` image."""
    H, W = linear.shape[:2]
    gain = np.exp(rng.normal(0.0, 0.25)) * np.exp(rng.normal(0.0, 0.05, 3))
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = ((u - (W - 1) / 2) ** 2 + (v - (H - 1) / 2) ** 2) / _F(((W - 1) / 2) ** 2 + ((H - 1) / 2) ** 2)
    vignette = _F(1) - _F(rng.uniform(0.0, 0.3)) * r2
    out = linear * (vignette[..., None] * gain.astype(np.float32))
    full_well, read = rng.uniform(300.0, 3000.0), rng.uniform(0.001, 0.01)
    sigma = np.sqrt(np.maximum(out, _F(0)) * _F(1 / full_well) + _F(read * read))
    out += sigma * rng.standard_normal(out.shape, dtype=np.float32)
    return out


def _box_down(fine: np.ndarray, s: int) -> np.ndarray:
    """Mean of each ``s×s`` block of ``(H·s, W·s, 3)`` → ``(H, W, 3)`` (fixed summation order)."""
    if s == 1:
        return fine
    total = np.zeros((fine.shape[0] // s, fine.shape[1] // s, 3), dtype=np.float32)
    for i in range(s):
        for j in range(s):
            total += fine[i::s, j::s]
    return total * _F(1 / (s * s))


def render_images(
    scene: Scene,
    K,
    E,
    H: int,
    W: int,
    lights,
    key: tuple[int, ...] = (0,),
    options: RenderOptions = RenderOptions(),
) -> list[np.ndarray]:
    """Realistic ``(H, W, 3)`` uint8 images of one view, one per light index (see the module docstring).

    Args:
        K: ``(3, 3)`` intrinsics for ``H×W``; E: ``(3, 4)`` world-to-camera (mm).
        lights: light indices (DTU-like: 3 = all six lamps, others one lamp, :func:`light_rig`).
        key: integers that seed the camera effects together with the light, e.g. ``(seed, scan, view)``.
        options: :class:`RenderOptions`.
    """
    s = int(options.supersample)
    surf = _surface(scene, supersample_intrinsics(K, s), E, H * s, W * s)
    mask = surf["mask"]
    lamps = _lamps() if scene.lamps is None else np.asarray(scene.lamps, dtype=np.float64)
    terms: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    background = np.asarray(scene.background, dtype=np.float32)
    images = []
    for light in lights:
        lamp_ids, intensities = light_rig(int(light))
        irradiance = np.full(mask.sum(), scene.ambient, dtype=np.float32)
        highlight = np.zeros_like(irradiance)
        for lamp, intensity in zip(lamp_ids, intensities.astype(np.float32)):
            if lamp not in terms:
                terms[lamp] = _lamp_terms(scene, surf, lamps[lamp], options)
            irradiance += intensity * terms[lamp][0]
            highlight += intensity * terms[lamp][1]
        fine = np.empty((*mask.shape, 3), dtype=np.float32)
        fine[...] = background
        fine[mask] = surf["albedo"] * irradiance[:, None] + highlight[:, None]
        linear = _box_down(fine, s)
        if options.camera:
            linear = _camera(linear, np.random.default_rng([*(int(k) for k in key), int(light)]))
        color = np.power(np.clip(linear, _F(0), _F(1)), _F(1 / 2.2)) * _F(255) + _F(0.5)
        images.append(color.astype(np.uint8))
    return images
