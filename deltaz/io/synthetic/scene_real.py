"""Realistic random scenes (``style="real"``): rooms, not only a table — walls, corners, thin things.

Same scene frame as :mod:`deltaz.io.synthetic.scene` (mm, ``+z`` up, the rig looks at
``(0, 0, TARGET_HEIGHT_MM)``), same four exact shapes, so depth stays exact. What changes:

* **Supports**: a round or square table standing on a floor, or objects straight on a floor; the
  support's top lies anywhere from 160 mm below to 30 mm above the classic table top, so the scene's
  distance to the cameras varies.
* **Large planes and concave corners**: usually a back wall (a thin, wide box) on the far side from the
  cameras, often a side wall meeting it — floor, back and side wall make a three-plane corner.
* **Scale**: each scene draws one size class for its objects (small 6–30 mm, medium 15–60 mm or large
  30–85 mm bounding radius), plus 0–3 **thin structures** (rods of 1.5–4 mm radius, plates 1.5–4 mm
  thick).
* **Materials**: CC0 photos (:mod:`deltaz.io.synthetic.photo`) with a random tint, scale and rotation,
  plain (texture-less) colours and the classic procedural patterns; random Blinn-Phong specular
  strength and shininess per solid (walls and floors nearly matte).
* **Lighting**: the six lamps on a ring of random rotation and elevation (30°–70°), random ambient.

Depth ranges therefore differ from scene to scene (about 350–1400 mm with the DTU rig); the writer
measures each scan's range from its ground-truth depth maps and writes it into the scan's cam files.
Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

import numpy as np

from deltaz.io.synthetic.photo import PHOTOS
from deltaz.io.synthetic.rig import TARGET_HEIGHT_MM
from deltaz.io.synthetic.scene import (
    NOISE_PERIOD,
    SHAPES,
    Scene,
    Solid,
    Texture,
    _random_half_size,
    _random_rotation,
    _random_texture,
)

__all__ = ["SIZE_CLASSES_MM", "random_real_scene"]

#: Bounding-ball radius ranges (mm) of the objects; each scene draws one class.
SIZE_CLASSES_MM = ((6.0, 30.0), (15.0, 60.0), (30.0, 85.0))
#: The objects stay inside this ball around the target (keeps them well away from the cameras).
OBJECT_REACH_MM = 230.0


def _real_texture(rng: np.random.Generator, surface: str = "object") -> Texture:
    """A photo (55 %), plain (15 %) or procedural (30 %) texture; ``surface`` "wall"/"floor" favours
    photos and plain colours."""
    r = rng.uniform()
    photo_share, plain_share = (0.55, 0.15) if surface == "object" else (0.6, 0.3)
    if r >= photo_share + plain_share:
        return _random_texture(rng, table=surface != "object")
    tint = rng.uniform(0.55, 1.0, 3) if rng.uniform() < 0.5 else np.full(3, rng.uniform(0.6, 1.0))
    if r < photo_share:
        return Texture(
            kind="photo", color_a=tint, color_b=tint, scale_mm=float(np.exp(rng.uniform(np.log(0.12), np.log(0.7)))),
            direction=np.array([1.0, 0.0, 0.0]), grain=float(rng.uniform(0.0, 0.15)),
            grain_scale_mm=float(rng.uniform(1.0, 3.0)), offset=rng.uniform(0, 512, size=3),
            photo=PHOTOS[rng.integers(len(PHOTOS))], angle=float(rng.uniform(0, 2 * np.pi)),
        )
    color = rng.uniform(0.08, 0.85) * tint
    return Texture(
        kind="plain", color_a=color, color_b=color, scale_mm=10.0, direction=np.array([1.0, 0.0, 0.0]),
        grain=float(rng.uniform(0.0, 0.04)), grain_scale_mm=float(rng.uniform(2.0, 8.0)),
        offset=rng.uniform(0, NOISE_PERIOD, size=3),
    )


def _material(rng: np.random.Generator, matte: bool = False) -> tuple[float, float]:
    """(specular strength, shininess): a third of the objects matte, walls/floors nearly matte."""
    if matte or rng.uniform() < 0.33:
        return float(rng.uniform(0.0, 0.05)), float(rng.uniform(2.0, 10.0))
    return float(rng.uniform(0.1, 0.7)), float(np.exp(rng.uniform(np.log(8.0), np.log(300.0))))


def _slab(rng, center, half_size, yaw: float, surface: str) -> Solid:
    """A box with the given centre and half-sizes, turned by ``yaw`` about ``+z``."""
    c, s = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    spec, shine = _material(rng, matte=True)
    return Solid("box", np.asarray(center, float), rotation, np.asarray(half_size, float),
                 _real_texture(rng, surface), spec, shine)


def _supports(rng: np.random.Generator, ground_z: float, away: float) -> tuple[list[Solid], float]:
    """Floor, optional table, walls. Returns the solids and the radius objects may be placed within.

    ``away``: azimuth (radians) of the side facing away from the cameras, where walls go.
    """
    solids = []
    floor_z = ground_z
    placement_radius = 200.0
    if rng.uniform() < 0.55:  # a table standing on the floor
        floor_z = ground_z - rng.uniform(120.0, 260.0)
        radius = rng.uniform(130.0, 240.0)
        spec, shine = _material(rng)
        if rng.uniform() < 0.5:
            table = Solid("cylinder", np.array([0.0, 0.0, ground_z - 8.0]), np.eye(3), np.array([radius, radius, 8.0]),
                          _real_texture(rng, "floor"), spec, shine)
        else:
            yaw = rng.uniform(0, np.pi)
            table = _slab(rng, [0.0, 0.0, ground_z - 8.0], [radius, radius * rng.uniform(0.7, 1.0), 8.0], yaw, "floor")
            table.specular, table.shininess = spec, shine
        solids.append(table)
        placement_radius = 0.75 * radius
    solids.append(_slab(rng, [0.0, 0.0, floor_z - 10.0], [460.0, 460.0, 10.0], rng.uniform(0, np.pi), "floor"))
    if rng.uniform() < 0.8:  # back wall, on the far side from the cameras
        distance = rng.uniform(150.0, 320.0)
        yaw = away + rng.uniform(-0.35, 0.35)
        top = ground_z + rng.uniform(250.0, 450.0)
        normal = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        center = (distance + 10.0) * normal + np.array([0.0, 0.0, (top + floor_z) / 2])
        solids.append(_slab(rng, center, [10.0, 460.0, (top - floor_z) / 2], yaw, "wall"))
        if rng.uniform() < 0.55:  # a side wall meeting it: a concave three-plane corner with the floor
            side = rng.choice([-1.0, 1.0])
            tangent = np.array([-np.sin(yaw), np.cos(yaw), 0.0]) * side
            offset = rng.uniform(140.0, 260.0)
            length = rng.uniform(120.0, 0.5 * (distance + 200.0))
            center = (distance + 10.0 - length / 2) * normal + (offset + 10.0) * tangent
            center[2] = (top + floor_z) / 2
            solids.append(_slab(rng, center, [length / 2 + 10.0, 10.0, (top - floor_z) / 2], yaw, "wall"))
    return solids, placement_radius


def _thin(rng: np.random.Generator, ground_z: float, reach: float) -> Solid:
    """A rod (thin cylinder) or a plate (thin box), lying, leaning or standing on the support."""
    phi, r_xy = rng.uniform(0, 2 * np.pi), reach * np.sqrt(rng.uniform())
    rotation = _random_rotation(rng)
    spec, shine = _material(rng)
    if rng.uniform() < 0.6:
        radius, half = rng.uniform(1.5, 4.0), rng.uniform(25.0, 90.0)
        half_size = np.array([radius, radius, half])
        shape = "cylinder"
    else:
        half_size = np.array([rng.uniform(15.0, 60.0), rng.uniform(10.0, 45.0), rng.uniform(0.75, 2.0)])
        shape = "box"
    extent_z = float(np.abs(rotation[2]) @ half_size)  # half height of the rotated bounding box
    z = ground_z + extent_z * rng.uniform(0.6, 1.0)
    return Solid(shape, np.array([r_xy * np.cos(phi), r_xy * np.sin(phi), z]), rotation, half_size,
                 _real_texture(rng), spec, shine)


def random_real_scene(rng: np.random.Generator, camera_azimuth: float = -np.pi / 2) -> Scene:
    """A random realistic scene drawn from ``rng`` (same generator state → same scene).

    Args:
        rng: a ``numpy.random.Generator`` (:func:`deltaz.io.synthetic.scene.scene_rng`).
        camera_azimuth: azimuth (radians, scene frame) of the side the cameras are on; walls go on the
            opposite side. :func:`deltaz.io.synthetic.rig.make_rig` puts the cameras at ``-π/2`` (``-y``).
    Returns:
        A :class:`~deltaz.io.synthetic.scene.Scene` with ``style="real"``: supports and walls first, then
        objects and thin structures; its own lamp ring, ambient light and background.
    """
    ground_z = float(rng.uniform(-160.0, 30.0))
    solids, reach = _supports(rng, ground_z, camera_azimuth + np.pi)
    low, high = SIZE_CLASSES_MM[rng.integers(len(SIZE_CLASSES_MM))]
    target = np.array([0.0, 0.0, TARGET_HEIGHT_MM])
    for _ in range(int(rng.integers(3, 10))):
        shape = SHAPES[rng.integers(len(SHAPES))]
        radius = float(rng.uniform(low, high))
        for _attempt in range(50):
            phi, r_xy = rng.uniform(0, 2 * np.pi), reach * np.sqrt(rng.uniform())
            lifted = rng.uniform() < 0.2
            z = ground_z + (rng.uniform(radius, radius + 80.0) if lifted else radius * rng.uniform(0.3, 0.9))
            center = np.array([r_xy * np.cos(phi), r_xy * np.sin(phi), z])
            if np.linalg.norm(center - target) + radius <= OBJECT_REACH_MM:
                break
        else:
            radius = max(4.0, min(radius, OBJECT_REACH_MM - float(np.linalg.norm(center - target))))
        spec, shine = _material(rng)
        solids.append(Solid(shape, center, _random_rotation(rng), _random_half_size(rng, shape, radius),
                            _real_texture(rng), spec, shine))
    for _ in range(int(rng.integers(0, 4))):
        solids.append(_thin(rng, ground_z, reach))
    elevation = np.radians(rng.uniform(30.0, 70.0))
    azimuth = rng.uniform(0, 2 * np.pi) + np.radians(60.0) * np.arange(6)
    lamps = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                      np.full(6, np.sin(elevation))], axis=1)
    noise = rng.random((NOISE_PERIOD,) * 3, dtype=np.float32)
    background = np.full(3, rng.uniform(0.0, 0.08)) * rng.uniform(0.8, 1.2, 3)
    return Scene(solids, noise, background=background, style="real", lamps=lamps, ambient=float(rng.uniform(0.05, 0.25)))
