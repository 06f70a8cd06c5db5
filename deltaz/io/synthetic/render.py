"""Exact, vectorised ray casting of a :class:`~deltaz.io.synthetic.scene.Scene`, and Lambertian shading.

A camera ray is ``X(t) = C + t·Rᵀ·r`` with ``r = K⁻¹·[u, v, 1]ᵀ`` from
:func:`deltaz.core.geometry.get_ray_dirs_mask` (z-component exactly 1). Its camera-frame point is ``t·r``,
whose z is ``t``: the ray parameter of the first hit **is** the z-depth. Rigid and affine maps keep the
ray parameter, so each solid is intersected in its unit frame (sphere, cube, cylinder, capsule: closed
forms) and the smallest positive parameter over all solids is the depth. Nothing is approximated:
:func:`render_depth` traces in float64, so a pixel's depth is the depth of the scene point its centre
sees, up to float32 rounding of the stored value.

Speed: vectors are kept as three contiguous tensors (x, y, z); the camera centre is one point, so its
unit-frame coordinates are plain numbers; each solid is intersected only inside the pixel box its
bounding ball projects to. Shading works on stored normals and albedo (:func:`shade_lights`), so a
view is traced once and all of its lights are cheap. Lights are fixed in the scene frame, so a surface
point has the same colour in every view (Lambertian, no shadows). Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from deltaz.core.errors import ConfigError
from deltaz.core.geometry import get_ray_dirs_mask
from deltaz.io.synthetic.photo import sample_photo
from deltaz.io.synthetic.scene import Scene, Solid, Texture

__all__ = ["BACKGROUND", "render_rays", "render_depth", "render_view", "shade", "shade_lights", "light_rig"]

Vec = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

_T_EPS = 1e-9
_INF = float("inf")


class _Prepared:
    """A solid's unit-frame map ``p = A·(x − center)`` (float64 numpy) and its bounding ball."""

    def __init__(self, solid: Solid):
        self.solid = solid
        R = np.asarray(solid.rotation, dtype=np.float64)
        half = np.asarray(solid.half_size, dtype=np.float64)
        if solid.shape == "capsule":  # unit radius around the segment |z| <= h / r
            self.scale = np.full(3, half[0])
            self.capsule_half = float(half[2] / half[0])
        else:
            self.scale = half
            self.capsule_half = 0.0
        self.A = R.T / self.scale[:, None]  # S⁻¹·Rᵀ
        self.normal_map = R / self.scale[None, :]  # Aᵀ = R·S⁻¹ takes unit-frame normals to the scene
        self.center = np.asarray(solid.center, dtype=np.float64)
        self.radius = solid.bounding_radius * (1 + 1e-6) + 1e-6


def _prepared(scene: Scene) -> list[_Prepared]:
    cache = scene.__dict__.get("_prepared")
    if cache is None or len(cache) != len(scene.solids):
        cache = [_Prepared(s) for s in scene.solids]
        scene.__dict__["_prepared"] = cache
    return cache


def _camera_in_scene(scene: Scene, E) -> tuple[np.ndarray, np.ndarray]:
    """``M (3, 3)`` taking camera-frame ray directions to the scene frame, and the centre ``(3,)`` there."""
    E = np.asarray(E, dtype=np.float64)[:3, :4]
    R, t = E[:, :3], E[:, 3]
    F = np.asarray(scene.scene_to_world, dtype=np.float64)[:3, :4]
    Rf, tf = F[:, :3], F[:, 3]
    center_world = -R.T @ t
    return Rf.T @ R.T, Rf.T @ (center_world - tf)


# --------------------------------------------------------------------------------------------------
# unit-shape intersections. o: the ray origin in the unit frame (three floats, outside the solid);
# d: directions (three tensors). Each returns the entry parameter t (inf on a miss).


def _where_hit(hit: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.where(hit, t, torch.full_like(t, _INF))


def _hit_sphere(o, d: Vec, center_z: float = 0.0) -> torch.Tensor:
    ox, oy, oz = o[0], o[1], o[2] - center_z
    dx, dy, dz = d
    a = dx * dx + dy * dy + dz * dz
    b = dx * ox + dy * oy + dz * oz
    c = ox * ox + oy * oy + oz * oz - 1.0
    disc = b * b - a * c
    sq = torch.sqrt(torch.clamp(disc, min=0))
    if c > 0:  # outside: entry = c / (sq - b), the stable form of (-b - sq) / a; only ahead when b < 0
        return _where_hit((disc >= 0) & (b < 0), c / (sq - b))
    return (sq - b) / a  # inside (never for a camera): the exit point


def _slab(o: float, d: torch.Tensor, half: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = torch.reciprocal(d)
    t1, t2 = inv * (-half - o), inv * (half - o)
    return torch.minimum(t1, t2), torch.maximum(t1, t2)


def _hit_box(o, d: Vec) -> torch.Tensor:
    near, far = _slab(o[0], d[0], 1.0)
    for k in (1, 2):
        lo, hi = _slab(o[k], d[k], 1.0)
        near, far = torch.maximum(near, lo), torch.minimum(far, hi)
    return _where_hit((near <= far) & (near > _T_EPS), near)


def _hit_cylinder(o, d: Vec, half_height: float = 1.0) -> torch.Tensor:
    ox, oy, oz = o
    dx, dy, dz = d
    a = dx * dx + dy * dy
    b = dx * ox + dy * oy
    c = ox * ox + oy * oy - 1.0
    disc = b * b - a * c
    sq = torch.sqrt(torch.clamp(disc, min=0))
    if c > 0:  # outside the infinite cylinder: it is entered at c / (sq - b) and left at (sq - b) / a
        real = (disc >= 0) & (b < 0)
        lo, hi = c / (sq - b), (sq - b) / a
    else:  # inside its infinite extent (only through the caps)
        real = torch.ones_like(a, dtype=torch.bool)
        lo = torch.full_like(a, -_INF)
        hi = torch.where(a > 0, (sq - b) / a, torch.full_like(a, _INF))
    z_lo, z_hi = _slab(oz, dz, half_height)
    near, far = torch.maximum(lo, z_lo), torch.minimum(hi, z_hi)
    return _where_hit(real & (near <= far) & (near > _T_EPS), near)


def _hit(p: _Prepared, o, d: Vec) -> torch.Tensor:
    shape = p.solid.shape
    if shape == "ellipsoid":
        return _hit_sphere(o, d)
    if shape == "box":
        return _hit_box(o, d)
    if shape == "cylinder":
        return _hit_cylinder(o, d)
    if shape == "capsule":  # convex union of a finite cylinder and two balls: the first entry wins
        h = p.capsule_half
        t = torch.minimum(_hit_cylinder(o, d, h), _hit_sphere(o, d, h))
        return torch.minimum(t, _hit_sphere(o, d, -h))
    raise ConfigError(f"unknown shape {shape!r}")


# --------------------------------------------------------------------------------------------------
# tracing


def _unit_dirs(B: np.ndarray, rx: torch.Tensor, ry: torch.Tensor, rz: torch.Tensor | None) -> Vec:
    """``B @ [rx, ry, rz]`` elementwise (``rz = 1`` when None); deterministic, no BLAS."""
    out = []
    for i in range(3):
        v = rx * float(B[i, 0]) + ry * float(B[i, 1])
        out.append(v + float(B[i, 2]) if rz is None else v + rz * float(B[i, 2]))
    return out[0], out[1], out[2]


def _pixel_box(K: np.ndarray, E: np.ndarray, center_world: np.ndarray, radius: float, H: int, W: int):
    """Half-open pixel box ``(v0, v1, u0, u1)`` whose centres can see a ball; ``None`` if none can."""
    x, y, z = E[:, :3] @ center_world + E[:, 3]
    if z <= radius * 1.001:  # the ball reaches the camera plane: no finite box, use the whole image
        return 0, H, 0, W
    if z + radius <= 0:
        return None

    def slopes(a: float) -> tuple[float, float]:  # extreme a/z over the disc of radius r around (a, z)
        root = np.sqrt(max(a * a + z * z - radius * radius, 0.0))
        den = z * z - radius * radius
        return (a * z - radius * root) / den, (a * z + radius * root) / den

    mx, my = slopes(x), slopes(y)
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    us = [fx * a + s * b + cx for a in mx for b in my]
    vs = [fy * b + cy for b in my]
    u0, u1 = max(int(np.floor(min(us))) - 1, 0), min(int(np.ceil(max(us))) + 2, W)
    v0, v1 = max(int(np.floor(min(vs))) - 1, 0), min(int(np.ceil(max(vs))) + 2, H)
    return (v0, v1, u0, u1) if u0 < u1 and v0 < v1 else None


_RAY_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
_RAY_CACHE_LOCK = threading.Lock()


def _pixel_rays(K: np.ndarray, H: int, W: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y of the rays ``K⁻¹·[u, v, 1]ᵀ`` (from :func:`get_ray_dirs_mask`) as contiguous ``(H, W)``.

    The last few are cached: every view of the synthetic rig shares one ``K``. Treat them as read-only.
    """
    key = (K.tobytes(), H, W, dtype)
    with _RAY_CACHE_LOCK:
        if key not in _RAY_CACHE:
            rays, _ = get_ray_dirs_mask(torch.as_tensor(K), H, W)
            if len(_RAY_CACHE) >= 4:
                _RAY_CACHE.pop(next(iter(_RAY_CACHE)))
            _RAY_CACHE[key] = (rays[..., 0].to(dtype).contiguous(), rays[..., 1].to(dtype).contiguous())
        return _RAY_CACHE[key]


def _trace_grid(scene: Scene, K, E, H: int, W: int, dtype: torch.dtype):
    """First hits through every pixel centre of camera ``K`` (for H×W), ``E``.

    Returns ``rx, ry (H, W)`` (the camera rays, z = 1), ``t (H, W)`` (``inf`` on a miss) and
    ``solid (H, W)`` int64 (``-1`` on a miss).
    """
    K = np.asarray(K, dtype=np.float64)
    E = np.asarray(E, dtype=np.float64)[:3, :4]
    rx, ry = _pixel_rays(K, H, W, dtype)
    M, origin = _camera_in_scene(scene, E)
    F = np.asarray(scene.scene_to_world, dtype=np.float64)[:3, :4]
    t_best = torch.full((H, W), _INF, dtype=dtype)
    solid_best = torch.full((H, W), -1, dtype=torch.int64)
    for index, p in enumerate(_prepared(scene)):
        box = _pixel_box(K, E, F[:, :3] @ p.center + F[:, 3], p.radius, H, W)
        if box is None:
            continue
        v0, v1, u0, u1 = box
        d = _unit_dirs(p.A @ M, rx[v0:v1, u0:u1], ry[v0:v1, u0:u1], None)
        t = _hit(p, p.A @ (origin - p.center), d)
        t_block, s_block = t_best[v0:v1, u0:u1], solid_best[v0:v1, u0:u1]
        better = t < t_block
        t_block[better] = t[better]
        s_block[better] = index
    return rx, ry, t_best, solid_best


def render_rays(scene: Scene, E, rays_cam: torch.Tensor) -> torch.Tensor:
    """z-depth along arbitrary camera rays: ``rays_cam (..., 3)`` with z = 1 → ``(...)`` float64, 0 = miss.

    Intersects every ray with every solid (no pixel boxes), in float64. A test can ask for the depth at
    sub-pixel positions ``K⁻¹·[u, v, 1]ᵀ`` and compare it with :func:`render_depth`.
    """
    rays = torch.as_tensor(rays_cam, dtype=torch.float64).reshape(-1, 3)
    rx, ry, rz = rays[:, 0].contiguous(), rays[:, 1].contiguous(), rays[:, 2].contiguous()
    M, origin = _camera_in_scene(scene, E)
    t_best = torch.full(rx.shape, _INF, dtype=torch.float64)
    for p in _prepared(scene):
        t_best = torch.minimum(t_best, _hit(p, p.A @ (origin - p.center), _unit_dirs(p.A @ M, rx, ry, rz)))
    depth = torch.where(torch.isfinite(t_best), t_best, torch.zeros_like(t_best))
    return depth.reshape(rays_cam.shape[:-1])


def render_depth(scene: Scene, K, E, H: int, W: int) -> np.ndarray:
    """z-depth ``(H, W)`` float32 (mm, 0 = nothing hit) seen by camera ``K`` (for H×W), ``E`` (3×4).

    Traced in float64 at the pixel centres of ``K`` itself.
    """
    _, _, t, _ = _trace_grid(scene, K, E, H, W, torch.float64)
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t)).to(torch.float32).numpy()


# --------------------------------------------------------------------------------------------------
# surfaces: normals and textures, in numpy float32 (fast gathers) on per-solid contiguous segments


def _value_noise(x: np.ndarray, y: np.ndarray, z: np.ndarray, table: np.ndarray, period: int) -> np.ndarray:
    """Smooth lattice noise in ``[0, 1]`` (lattice spacing 1, repeating every ``period`` cells).

    ``table`` holds ``period³`` lattice values (flattened); values are blended trilinearly with the
    smoothstep weights ``3f² − 2f³``.
    """
    m = period - 1
    parts = []
    for c in (x, y, z):
        cell = np.floor(c)
        f = c - cell
        i = cell.astype(np.int64)
        parts.append((f * f * (3 - 2 * f), i & m, (i + 1) & m))
    (sx, x0, x1), (sy, y0, y1), (sz, z0, z1) = parts
    x0, x1 = x0 * (period * period), x1 * (period * period)
    y0, y1 = y0 * period, y1 * period

    def along_z(base: np.ndarray) -> np.ndarray:
        a, b = table[base + z0], table[base + z1]
        return a + sz * (b - a)

    def along_y(base: np.ndarray) -> np.ndarray:
        a, b = along_z(base + y0), along_z(base + y1)
        return a + sy * (b - a)

    a, b = along_y(x0), along_y(x1)
    return a + sx * (b - a)


def _albedo(
    texture: Texture, x: np.ndarray, y: np.ndarray, z: np.ndarray, table: np.ndarray, period: int, normal=None
) -> np.ndarray:
    """Linear RGB ``(n, 3)`` float32 of ``texture`` at points ``(x, y, z)`` of the solid's own frame (mm).

    ``normal``: the unit-frame normals (three ``(n,)`` arrays), needed by ``photo`` textures only.
    """
    f32 = np.float32
    ox, oy, oz = (f32(v) for v in texture.offset)
    s = f32(1.0 / texture.scale_mm)
    u, v, w = x * s, y * s, z * s
    if texture.kind in ("photo", "plain"):
        a = np.asarray(texture.color_a, dtype=np.float32)
        if texture.kind == "photo":
            color = sample_photo(texture.photo, x, y, z, normal, texture.scale_mm, texture.angle, texture.offset)
            color *= a
        else:
            color = np.broadcast_to(a, (x.size, 3)).copy()
    elif texture.kind == "checker":
        m = np.remainder(np.floor(u) + np.floor(v) + np.floor(w), f32(2))
    elif texture.kind == "stripes":
        k = [f32(c) for c in texture.direction]
        m = (np.remainder(u * k[0] + v * k[1] + w * k[2], f32(1)) < 0.5).astype(np.float32)
    elif texture.kind == "noise":
        m = f32(0.65) * _value_noise(u + ox, v + oy, w + oz, table, period)
        s2 = f32(2.1)
        m += f32(0.35) * _value_noise(s2 * u - ox, s2 * v - oy, s2 * w - oz, table, period)
        m = np.clip((m - f32(0.5)) * f32(2.5) + f32(0.5), f32(0), f32(1))
    else:  # spots
        m = (_value_noise(u + ox, v + oy, w + oz, table, period) > 0.6).astype(np.float32)
    if texture.kind not in ("photo", "plain"):
        a = np.asarray(texture.color_a, dtype=np.float32)
        b = np.asarray(texture.color_b, dtype=np.float32)
        color = a + m[:, None] * (b - a)
    if texture.grain > 0:
        g = f32(1.0 / texture.grain_scale_mm)
        grain = _value_noise(x * g + oz, y * g + ox, z * g + oy, table, period)
        color *= (f32(1 - texture.grain) + f32(2 * texture.grain) * grain)[:, None]
    return np.clip(color, f32(0), f32(1))


def _unit_normal(p: _Prepared, x: np.ndarray, y: np.ndarray, z: np.ndarray):
    """Outward normal (not normalised) at unit-frame surface points."""
    shape = p.solid.shape
    if shape == "ellipsoid":
        return x, y, z
    zero = np.zeros_like(x)
    if shape == "box":
        ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
        on_x = (ax >= ay) & (ax >= az)
        on_y = ~on_x & (ay >= az)
        on_z = ~on_x & ~on_y
        return np.where(on_x, np.sign(x), zero), np.where(on_y, np.sign(y), zero), np.where(on_z, np.sign(z), zero)
    if shape == "cylinder":
        cap = z * z > x * x + y * y
        return np.where(cap, zero, x), np.where(cap, zero, y), np.where(cap, np.sign(z), zero)
    h = np.float32(p.capsule_half)
    return x, y, z - np.clip(z, -h, h)


def render_view(scene: Scene, K, E, H: int, W: int, dtype: torch.dtype = torch.float32) -> dict[str, np.ndarray]:
    """Trace one view and keep what shading needs.

    Args:
        K: ``(3, 3)`` intrinsics for ``H×W``; E: ``(3, 4)`` world-to-camera (mm).
        dtype: arithmetic of the trace; float32 is plenty for images (the depth maps that are written
            come from :func:`render_depth`, which always traces in float64).
    Returns:
        ``depth (H, W)`` float32 z-depth (0 = miss), ``mask (H, W)`` bool hit, ``normal (H, W, 3)``
        float32 unit normals in the scene frame, ``albedo (H, W, 3)`` float32 linear RGB,
        ``solid (H, W)`` int16 index into ``scene.solids`` (-1 = miss). Shade with :func:`shade_lights`.
    """
    rx, ry, t, solid = _trace_grid(scene, K, E, H, W, dtype)
    rx, ry = rx.reshape(-1).to(torch.float32).numpy(), ry.reshape(-1).to(torch.float32).numpy()
    t, solid = t.reshape(-1).to(torch.float32).numpy(), solid.reshape(-1).numpy()
    M, origin = _camera_in_scene(scene, E)
    # Sort the pixels by solid once: every solid then works on a contiguous segment.
    order = np.argsort(solid.astype(np.int16), kind="stable")  # radix sort for small ints
    counts = np.bincount(solid + 1, minlength=len(scene.solids) + 1)
    rx_s, ry_s, t_s = rx[order], ry[order], t[order]
    normal_s = np.zeros((order.size, 3), dtype=np.float32)
    albedo_s = np.zeros((order.size, 3), dtype=np.float32)
    table = np.asarray(scene.noise, dtype=np.float32).reshape(-1)
    period = int(scene.noise.shape[0])
    start = int(counts[0])  # misses (-1) come first
    for index, p in enumerate(_prepared(scene)):
        stop = start + int(counts[index + 1])
        if stop > start:
            seg = slice(start, stop)
            B = (p.A @ M).astype(np.float32)
            o = (p.A @ (origin - p.center)).astype(np.float32)
            ts = t_s[seg]
            x, y, z = (o[k] + ts * (rx_s[seg] * B[k, 0] + ry_s[seg] * B[k, 1] + B[k, 2]) for k in range(3))
            nu = _unit_normal(p, x, y, z)
            N = p.normal_map.astype(np.float32)
            ns = np.stack([nu[0] * N[i, 0] + nu[1] * N[i, 1] + nu[2] * N[i, 2] for i in range(3)], axis=-1)
            ns /= np.maximum(np.sqrt((ns * ns).sum(axis=-1, keepdims=True)), np.float32(1e-30))
            normal_s[seg] = ns
            sc = p.scale.astype(np.float32)
            albedo_s[seg] = _albedo(p.solid.texture, x * sc[0], y * sc[1], z * sc[2], table, period, nu)
        start = stop
    normal = np.empty_like(normal_s)
    albedo = np.empty_like(albedo_s)
    normal[order] = normal_s
    albedo[order] = albedo_s
    hit = solid >= 0
    return {
        "depth": np.where(hit, t, np.float32(0)).reshape(H, W),
        "mask": hit.reshape(H, W),
        "normal": normal.reshape(H, W, 3),
        "albedo": albedo.reshape(H, W, 3),
        "solid": solid.astype(np.int16).reshape(H, W),
    }


# --------------------------------------------------------------------------------------------------
# lighting

_LAMP_ELEVATION_DEG = 50.0
_AMBIENT = 0.15
_GAMMA = np.float32(1 / 2.2)
#: Linear RGB of pixels that hit nothing.
BACKGROUND = (0.02, 0.02, 0.025)


def _lamps() -> np.ndarray:
    el = np.radians(_LAMP_ELEVATION_DEG)
    az = np.radians(30.0 + 60.0 * np.arange(6))
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.full(6, np.sin(el))], axis=1)


def light_rig(light_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Lamp indices ``(k,)`` and intensities ``(k,)`` of light ``light_index``; lamp directions are
    ``_lamps()[i]`` (scene frame, towards the lamp).

    Six lamps circle the scene at 50° elevation, 60° apart. Like DTU's seven lighting conditions,
    index 3 switches all six on (the brightest, most even one); indices 0, 1, 2, 4, 5, 6 light one
    lamp each (lamps 0–5); higher indices cycle through the lamps again. :func:`shade_lights` adds an
    ambient term of 0.15.
    """
    if light_index < 0:
        raise ConfigError(f"light_index must be >= 0, got {light_index}")
    if light_index == 3:
        return np.arange(6), np.full(6, 0.33)
    return np.array([(light_index if light_index < 3 else light_index - 1) % 6]), np.array([1.05])


def shade_lights(view: dict[str, np.ndarray], light_indices) -> list[np.ndarray]:
    """Lambertian images ``(H, W, 3)`` uint8 of a traced view (:func:`render_view`), one per light.

    ``colour = albedo · (ambient + Σ intensity·max(0, n·l))`` where something was hit and
    :data:`BACKGROUND` elsewhere, then gamma 1/2.2. Each lamp's cosine and the albedo's gamma are
    computed once for all the lights. Deterministic (fixed float32 arithmetic).
    """
    mask, normal = view["mask"], view["normal"]
    albedo = np.where(mask[..., None], view["albedo"], np.asarray(BACKGROUND, dtype=np.float32))
    albedo_gamma = np.power(albedo, _GAMMA, dtype=np.float32) * np.float32(255)
    lamps = _lamps().astype(np.float32)
    cosines: dict[int, np.ndarray] = {}
    images = []
    for light_index in light_indices:
        lamp_ids, intensities = light_rig(light_index)
        irradiance = np.full(mask.shape, _AMBIENT, dtype=np.float32)
        for lamp, intensity in zip(lamp_ids, intensities.astype(np.float32)):
            if lamp not in cosines:
                l = lamps[lamp]
                cos = normal[..., 0] * l[0] + normal[..., 1] * l[1] + normal[..., 2] * l[2]
                cosines[lamp] = np.maximum(cos, np.float32(0))
            irradiance += intensity * cosines[lamp]
        irradiance[~mask] = 1.0  # the background is not lit
        # (albedo · irradiance)^γ = albedo^γ · irradiance^γ: one power per pixel, not per channel
        color = albedo_gamma * np.power(irradiance, _GAMMA, dtype=np.float32)[..., None]
        np.minimum(color, np.float32(255), out=color)
        color += np.float32(0.5)
        images.append(color.astype(np.uint8))
    return images


def shade(view: dict[str, np.ndarray], light_index: int) -> np.ndarray:
    """One light of :func:`shade_lights`: ``(H, W, 3)`` uint8."""
    return shade_lights(view, [light_index])[0]
