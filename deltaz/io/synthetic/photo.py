"""Photographic textures: CC0 / public-domain photos shipped with scikit-image, mapped onto surfaces.

Sources (scikit-image's own licence notes, checked in its docstrings, version 0.26):

======================  ===========================================================================
``brick``, ``grass``,   texture photos from CC0Textures, Creative Commons CC0 (512×512 grey)
``gravel``
``coffee``              CC0 by the photographer (Rachel Michetti)
``chelsea``             CC0 by the photographer (Stefan van der Walt) — ``cat()`` is the same photo
``camera``              CC0 by the photographer (Lav Varshney)
``retina``              Creative Commons CC0 1.0 Universal Public Domain Dedication
``astronaut``           public domain (NASA)
``rocket``              public domain (SpaceX)
``hubble_deep_field``   public domain (NASA)
``text``                public domain
======================  ===========================================================================

Left out on purpose: ``moon``, ``page``, ``colorwheel`` (no licence note), ``immunohistochemistry``
and ``coins`` ("no known copyright restrictions" is not a licence). All files above ship inside the
scikit-image wheel (nothing is downloaded).

A photo is a *planar* texture in a solid's own (rotated, unscaled) frame, in mm: a surface point
``(x, y, z)`` with unit-frame normal ``n`` is projected along the axis where ``|n|`` is largest (box
faces get one undistorted photo each; curved surfaces get seams where the axis switches, like real
wrapped materials), rotated by the texture's angle, divided by the texel size and sampled bilinearly,
tiling the photo. Every camera therefore sees the same colour at the same surface point.
Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

import threading

import numpy as np

from deltaz.core.errors import ConfigError

__all__ = ["PHOTOS", "photo_texels", "sample_photo"]

#: The photos this module may use (all CC0 or public domain, see the module docstring).
PHOTOS = (
    "brick", "grass", "gravel", "coffee", "chelsea", "camera", "retina",
    "astronaut", "rocket", "hubble_deep_field", "text",
)  # fmt: skip

_MAX_SIDE = 512
_CACHE: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


def photo_texels(name: str) -> np.ndarray:
    """The photo ``name`` as linear RGB ``(h, w, 3)`` float32 in ``[0, 1]`` (sRGB decoded with γ 2.2).

    Grey photos are repeated to three channels; photos larger than 512 px on a side are block-averaged
    down (``retina``, ``hubble_deep_field``). Cached per process; treat the array as read-only.
    """
    if name not in PHOTOS:
        raise ConfigError(f"unknown photo {name!r}; expected one of {PHOTOS}")
    with _LOCK:
        if name not in _CACHE:
            import skimage.data

            image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / np.float32(255)
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            image = image[:, :, :3]
            factor = int(np.ceil(max(image.shape[:2]) / _MAX_SIDE))
            if factor > 1:
                h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
                image = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
            _CACHE[name] = np.ascontiguousarray(np.power(image, np.float32(2.2)), dtype=np.float32)
        return _CACHE[name]


def sample_photo(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    normal: tuple[np.ndarray, np.ndarray, np.ndarray],
    texel_mm: float,
    angle: float,
    offset: np.ndarray,
) -> np.ndarray:
    """Linear RGB ``(n, 3)`` float32 of photo ``name`` at surface points of a solid.

    Args:
        x, y, z: ``(n,)`` float32 points in the solid's own frame (mm).
        normal: the unit-frame normals ``(n,)`` ×3 (not necessarily normalised); their largest
            component picks the projection plane.
        texel_mm: size of one photo pixel on the surface (mm).
        angle: rotation of the photo in its plane (radians).
        offset: ``(2,)`` shift in texels (where the tiling starts).
    """
    texels = photo_texels(name)
    h, w = texels.shape[:2]
    ax, ay, az = (np.abs(c) for c in normal)
    on_x = (ax >= ay) & (ax >= az)
    on_y = ~on_x & (ay >= az)
    a = np.where(on_x, y, x)  # plane coordinates: (y, z) on x faces, (x, z) on y faces, (x, y) on z faces
    b = np.where(on_x | on_y, z, y)
    f32 = np.float32
    c, s = f32(np.cos(angle) / texel_mm), f32(np.sin(angle) / texel_mm)
    u = a * c - b * s + f32(offset[0])
    v = a * s + b * c + f32(offset[1])
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    i0 = np.mod(v0.astype(np.int64), h)
    j0 = np.mod(u0.astype(np.int64), w)
    i1 = np.where(i0 + 1 == h, 0, i0 + 1)
    j1 = np.where(j0 + 1 == w, 0, j0 + 1)
    flat = texels.reshape(-1, 3)
    i0, i1 = i0 * w, i1 * w
    top = flat[i0 + j0] + fu * (flat[i0 + j1] - flat[i0 + j0])
    bottom = flat[i1 + j0] + fu * (flat[i1 + j1] - flat[i1 + j0])
    return top + fv * (bottom - top)
