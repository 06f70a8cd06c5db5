"""Random DTU-like scenes: a group of textured solids on a round table.

A :class:`Scene` lives in its own *scene frame* (mm): the table top is the plane ``z = 0``, ``+z`` is up
and the cameras of :func:`deltaz.io.synthetic.rig.make_rig` look at ``(0, 0, TARGET_HEIGHT_MM)``.
``scene_to_world`` places that frame in the world the cameras live in (identity for the synthetic
rig; the cameras' convergence point for real DTU calibration).

Every solid is a unit shape seen through an affine map: a point ``x`` of the scene frame has unit
coordinates ``A·(x − center)`` with ``A = S⁻¹·Rᵀ`` (``R`` the solid's rotation, ``S`` its half-sizes).
Shapes: ``ellipsoid`` (unit sphere), ``box`` (``[-1, 1]³``), ``cylinder`` (radius 1, ``|z| ≤ 1``) and
``capsule`` (radius 1 around the segment ``|z| ≤ half_length / radius``). All are closed, may
intersect each other and the table, and the whole scene fits inside the ball of radius
:data:`SCENE_RADIUS_MM` around the target, so every depth seen by the rig is inside DTU's 425–935 mm.

Textures are *solid* textures, functions of the point in the solid's own (rotated, unscaled) frame, so
every camera sees the same colour at the same surface point: checkers, stripes, smooth noise and
spots, each with fine multiplicative grain — edges in the image that are not depth edges.
Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from deltaz.io.synthetic.rig import TARGET_HEIGHT_MM

__all__ = [
    "SCENE_RADIUS_MM",
    "TABLE_RADIUS_MM",
    "SHAPES",
    "TEXTURES",
    "Texture",
    "Solid",
    "Scene",
    "random_scene",
    "scene_rng",
]

#: Every solid lies inside this ball around the target ``(0, 0, TARGET_HEIGHT_MM)``, which keeps the
#: rig's depths within ``608 ± 178`` mm, i.e. inside DTU's 425–935 mm.
SCENE_RADIUS_MM = 178.0
#: The table: a disc of this radius, 10 mm thick, top face at ``z = 0``.
TABLE_RADIUS_MM = 165.0
TABLE_THICKNESS_MM = 10.0
#: Period (in lattice cells) of the scene's noise lattice.
NOISE_PERIOD = 64

SHAPES = ("ellipsoid", "box", "cylinder", "capsule")
#: Procedural kinds of the classic scenes; the realistic scenes add ``"photo"`` (a CC0 photo, see
#: :mod:`deltaz.io.synthetic.photo`) and ``"plain"`` (one colour: texture-less).
TEXTURES = ("checker", "stripes", "noise", "spots")


@dataclass
class Texture:
    """A solid texture: a pattern in ``[0, 1]`` mixing two RGB colours, times a fine grain.

    Attributes:
        kind: one of :data:`TEXTURES`, or ``"photo"`` / ``"plain"``.
        color_a, color_b: ``(3,)`` linear RGB albedo in ``[0, 1]`` for pattern value 0 and 1
            (``photo``: ``color_a`` is a tint multiplying the photo; ``plain``: ``color_a`` only).
        scale_mm: checker cell / stripe period / noise cell size in mm (``photo``: one texel in mm).
        direction: ``(3,)`` unit vector across the stripes (``stripes`` only).
        grain: strength of the fine multiplicative grain (0 = none).
        grain_scale_mm: cell size of the grain.
        offset: ``(3,)`` shift into the scene's noise lattice (decorrelates the solids' noise);
            ``photo``: its first two values shift the photo (texels).
        photo: ``photo`` only: a name from :data:`deltaz.io.synthetic.photo.PHOTOS`.
        angle: ``photo`` only: rotation of the photo in its plane (radians).
    """

    kind: str
    color_a: np.ndarray
    color_b: np.ndarray
    scale_mm: float
    direction: np.ndarray
    grain: float
    grain_scale_mm: float
    offset: np.ndarray
    photo: str | None = None
    angle: float = 0.0


@dataclass
class Solid:
    """One closed shape of a scene.

    Attributes:
        shape: one of :data:`SHAPES`.
        center: ``(3,)`` mm, scene frame.
        rotation: ``(3, 3)``; columns are the solid's axes in the scene frame.
        half_size: ``(3,)`` mm: semi-axes (ellipsoid), half-extents (box), ``(radius, radius,
            half_height)`` (cylinder) or ``(radius, radius, half_length)`` (capsule: the segment's half
            length, so the capsule reaches ``half_length + radius`` along its axis).
        texture: its :class:`Texture`.
        specular: Blinn-Phong specular strength (0 = matte; realistic scenes only).
        shininess: Blinn-Phong exponent (larger = smaller, sharper highlights).
    """

    shape: str
    center: np.ndarray
    rotation: np.ndarray
    half_size: np.ndarray
    texture: Texture
    specular: float = 0.0
    shininess: float = 20.0

    @property
    def bounding_radius(self) -> float:
        """Radius (mm) of a ball around ``center`` that contains the whole solid."""
        a, b, c = self.half_size
        if self.shape == "ellipsoid":
            return float(max(a, b, c))
        if self.shape == "capsule":
            return float(a + c)
        if self.shape == "cylinder":
            return float(np.hypot(a, c))
        return float(np.linalg.norm(self.half_size))


@dataclass
class Scene:
    """Solids (the table first) plus the transform that places the scene frame in the world.

    Attributes:
        solids: the table and the objects on it.
        scene_to_world: ``(3, 4)`` rigid ``[R | t]``: ``X_world = R·X_scene + t``.
        noise: ``(P, P, P)`` float32 lattice values in ``[0, 1]`` (``P = NOISE_PERIOD``) behind the
            smooth textures; the noise repeats every ``P`` cells.
        background: ``(3,)`` linear RGB of pixels that hit nothing.
        style: ``"classic"`` (Lambertian, no shadows) or ``"real"`` (:mod:`deltaz.io.synthetic.lighting`).
        lamps: ``(6, 3)`` unit directions towards the six lamps (scene frame), or None for the classic
            ring (:func:`deltaz.io.synthetic.render.light_rig`).
        ambient: the ambient irradiance added to every lit surface.
    """

    solids: list[Solid]
    noise: np.ndarray
    scene_to_world: np.ndarray = field(default_factory=lambda: np.eye(3, 4))
    background: np.ndarray = field(default_factory=lambda: np.array([0.02, 0.02, 0.025]))
    style: str = "classic"
    lamps: np.ndarray | None = None
    ambient: float = 0.15

    def placed(self, scene_to_world: np.ndarray) -> "Scene":
        """The same scene placed in the world by ``scene_to_world`` (3, 4)."""
        return replace(self, scene_to_world=np.asarray(scene_to_world, dtype=np.float64)[:3, :4])


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _random_color(rng: np.random.Generator, low: float = 0.1, high: float = 0.9) -> np.ndarray:
    return rng.uniform(low, high, size=3)


def _random_texture(rng: np.random.Generator, table: bool = False) -> Texture:
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    if table:
        gray = rng.uniform(0.25, 0.55)
        color_a = np.clip(gray + rng.uniform(-0.05, 0.05, 3), 0, 1)
        color_b = color_a * rng.uniform(0.4, 0.7)
    else:
        color_a = _random_color(rng)
        color_b = _random_color(rng)
        if np.abs(color_a - color_b).sum() < 0.4:  # keep the pattern visible
            color_b = 1.0 - color_a
    direction = rng.normal(size=3)
    scale = {"checker": (8.0, 25.0), "stripes": (5.0, 18.0), "noise": (6.0, 20.0), "spots": (5.0, 15.0)}[kind]
    return Texture(
        kind=kind,
        color_a=color_a,
        color_b=color_b,
        scale_mm=float(rng.uniform(*scale)),
        direction=direction / np.linalg.norm(direction),
        grain=float(rng.uniform(0.15, 0.35)),
        grain_scale_mm=float(rng.uniform(1.2, 3.0)),
        offset=rng.uniform(0, NOISE_PERIOD, size=3),
    )


def _random_half_size(rng: np.random.Generator, shape: str, radius: float) -> np.ndarray:
    """Half-sizes of ``shape`` whose bounding ball has radius ``radius``."""
    if shape == "ellipsoid":
        axes = rng.uniform(0.45, 1.0, 3)
        return radius * axes / axes.max()
    if shape == "box":
        v = rng.uniform(0.3, 1.0, 3)
        return radius * v / np.linalg.norm(v)
    if shape == "cylinder":
        angle = rng.uniform(0.35, 1.2)  # radius = R cos, half height = R sin
        return np.array([radius * np.cos(angle)] * 2 + [radius * np.sin(angle)])
    share = rng.uniform(0.3, 0.6)  # capsule: radius + half_length = R
    return np.array([radius * share] * 2 + [radius * (1 - share)])


def _table(rng: np.random.Generator) -> Solid:
    half = TABLE_THICKNESS_MM / 2
    return Solid(
        shape="cylinder",
        center=np.array([0.0, 0.0, -half]),
        rotation=np.eye(3),
        half_size=np.array([TABLE_RADIUS_MM, TABLE_RADIUS_MM, half]),
        texture=_random_texture(rng, table=True),
    )


def random_scene(
    rng: np.random.Generator,
    n_objects: int | None = None,
    radius_range_mm: tuple[float, float] = (18.0, 70.0),
) -> Scene:
    """A random table-top scene drawn from ``rng`` (same generator state → same scene).

    Args:
        rng: a ``numpy.random.Generator``; :func:`scene_rng` gives the one for a (seed, scan).
        n_objects: solids on the table (default: 4 to 8).
        radius_range_mm: range of the objects' bounding-ball radii.
    Returns:
        A :class:`Scene` in its own frame: the table, then objects resting on it (partly sunk into it,
        so they touch it), some lifted or stacked, in random poses, possibly intersecting each other.
    """
    if n_objects is None:
        n_objects = int(rng.integers(4, 9))
    target = np.array([0.0, 0.0, TARGET_HEIGHT_MM])
    solids = [_table(rng)]
    for _ in range(n_objects):
        shape = SHAPES[rng.integers(len(SHAPES))]
        for _attempt in range(100):
            radius = float(rng.uniform(*radius_range_mm))
            r_xy = 105.0 * np.sqrt(rng.uniform())
            phi = rng.uniform(0, 2 * np.pi)
            if rng.uniform() < 0.25:  # lifted: on top of others or floating
                z = rng.uniform(radius, radius + 90.0)
            else:  # resting on the table, partly sunk into it
                z = radius * rng.uniform(0.25, 0.9)
            center = np.array([r_xy * np.cos(phi), r_xy * np.sin(phi), z])
            if np.linalg.norm(center - target) + radius <= SCENE_RADIUS_MM:
                break
        else:  # pragma: no cover - practically unreachable; shrink to fit
            radius = max(5.0, SCENE_RADIUS_MM - float(np.linalg.norm(center - target)))
        solids.append(
            Solid(
                shape=shape,
                center=center,
                rotation=_random_rotation(rng),
                half_size=_random_half_size(rng, shape, radius),
                texture=_random_texture(rng),
            )
        )
    noise = rng.random((NOISE_PERIOD,) * 3, dtype=np.float32)
    return Scene(solids, noise)


def scene_rng(seed: int, scan: int) -> np.random.Generator:
    """The generator for scan ``scan`` of a dataset with seed ``seed`` (independent of the scan count)."""
    return np.random.default_rng([int(seed), int(scan)])
