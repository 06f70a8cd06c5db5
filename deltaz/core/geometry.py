"""Camera geometry: rays, backprojection, rigid transforms, projection, reprojection and warping.

The one geometry module of DeltaZ; every other module calls these helpers. Conventions (DESIGN.md §1):

* lengths in millimetres, depth is **z-depth** along the optical axis, ``0`` = no value;
* pixel ``(u, v)`` = (column, row), ``(0, 0)`` is the centre of the top-left pixel;
* ``K`` is 3×3 ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``;
* ``E`` is **world-to-camera**, ``X_cam = R·X_world + t``, given as ``(…, 3, 4)`` or ``(…, 4, 4)``;
* rays are ``K⁻¹·[u, v, 1]ᵀ`` with z exactly 1, so ``X_cam = depth · ray`` (prototype fix A);
* camera-to-world is ``X_world = Rᵀ·(X_cam − t)`` (fix B);
* sampling goes through :func:`sample_pixels` only (``align_corners=True``, fix C).

All functions take torch tensors with an optional leading batch shape, are differentiable, work in
float32 and float64 on any device, and never produce NaN (points with ``z <= eps`` are masked, never
divided by). Explained in notebooks/02_cameras_and_reprojection.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deltaz.core.errors import DataError

#: Smallest z (mm) in front of a camera that still counts as a valid projection.
Z_EPS = 1e-6

__all__ = [
    "Z_EPS",
    "pixel_grid",
    "get_ray_dirs_mask",
    "backproject_depth",
    "transform_points",
    "world_to_camera",
    "camera_to_world",
    "invert_extrinsics",
    "to_4x4",
    "camera_center",
    "project_points",
    "pixel_to_grid",
    "sample_pixels",
    "reproject",
    "reproject_points",
    "warp",
]


def _apply(M: torch.Tensor, points: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """``M @ p (+ offset)`` for ``M (*B, 3, 3)`` and ``points (*B, *S, 3)``; ``offset (*B, 3)``.

    The batch shape of ``M`` is matched to the *leading* dimensions of ``points`` and broadcast;
    any number of spatial dimensions ``*S`` may follow (e.g. ``(B, H, W, 3)`` with ``(B, 3, 3)``).
    """
    if points.shape[-1] != 3:
        raise DataError(f"points must have a last dimension of 3, got shape {tuple(points.shape)}")
    n_batch = M.dim() - 2
    if points.dim() - 1 < n_batch:
        raise DataError(
            f"points of shape {tuple(points.shape)} have fewer leading dimensions than the "
            f"matrix batch shape {tuple(M.shape[:-2])}"
        )
    lead = points.shape[:n_batch]
    spatial = points.shape[n_batch:-1]
    flat = points.reshape(*lead, -1, 3)  # (*B, N, 3)
    out = (M @ flat.transpose(-1, -2)).transpose(-1, -2)  # (*B', N, 3); (3×3)·(3×N) is ~3× faster on a CPU
    if offset is not None:
        out = out + offset.unsqueeze(-2)
    return out.reshape(*out.shape[:-2], *spatial, 3)


def _split_rt(E: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``R (…, 3, 3)`` and ``t (…, 3)`` from a ``(…, 3, 4)`` or ``(…, 4, 4)`` transform."""
    if E.shape[-2:] not in ((3, 4), (4, 4)):
        raise DataError(f"expected a (..., 3, 4) or (..., 4, 4) transform, got shape {tuple(E.shape)}")
    return E[..., :3, :3], E[..., :3, 3]


def to_4x4(E: torch.Tensor) -> torch.Tensor:
    """Pad a ``(…, 3, 4)`` transform to ``(…, 4, 4)`` with the row ``[0, 0, 0, 1]``; 4×4 passes through."""
    if E.shape[-2:] == (4, 4):
        return E
    R, t = _split_rt(E)
    bottom = torch.zeros(*E.shape[:-2], 1, 4, dtype=E.dtype, device=E.device)
    bottom[..., 0, 3] = 1
    return torch.cat([E[..., :3, :4], bottom], dim=-2)


def invert_extrinsics(E: torch.Tensor) -> torch.Tensor:
    """Invert a rigid world-to-camera transform: returns camera-to-world ``[Rᵀ | −Rᵀt]`` as ``(…, 3, 4)``."""
    R, t = _split_rt(E)
    Rt = R.transpose(-1, -2)
    return torch.cat([Rt, -(Rt @ t.unsqueeze(-1))], dim=-1)


def camera_center(E: torch.Tensor) -> torch.Tensor:
    """Camera centre in world coordinates, ``C = −Rᵀt`` (mm), shape ``(…, 3)``."""
    R, t = _split_rt(E)
    return -(R.transpose(-1, -2) @ t.unsqueeze(-1)).squeeze(-1)


def transform_points(points: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Apply a rigid/affine transform ``T (…, 3, 4)`` or ``(…, 4, 4)``: ``X' = R·X + t``.

    ``points`` is ``(…, *S, 3)`` where the leading dimensions match ``T``'s batch shape.
    """
    R, t = _split_rt(T)
    return _apply(R, points, t)


def world_to_camera(points_world: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """World points → camera frame with world-to-camera ``E``: ``X_cam = R·X_world + t``."""
    return transform_points(points_world, E)


def camera_to_world(points_cam: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Camera-frame points → world with world-to-camera ``E``: ``X_world = Rᵀ·X_cam − Rᵀ·t`` (fix B)."""
    R, t = _split_rt(E)
    Rt = R.transpose(-1, -2)
    return _apply(Rt, points_cam, -(Rt @ t.unsqueeze(-1)).squeeze(-1))


def pixel_grid(H: int, W: int, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(u, v)``, each ``(H, W)``: ``u`` = column index, ``v`` = row index."""
    v, u = torch.meshgrid(
        torch.arange(H, dtype=dtype, device=device),
        torch.arange(W, dtype=dtype, device=device),
        indexing="ij",
    )
    return u, v


def get_ray_dirs_mask(K: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays ``K⁻¹·[u, v, 1]ᵀ`` through every pixel centre, z-component exactly 1 (fix A).

    Args:
        K: intrinsics ``(…, 3, 3)`` valid for an ``H×W`` array.
    Returns:
        ``rays (…, H, W, 3)`` with ``rays[..., 2] == 1``, so that ``X_cam = depth · ray`` for z-depth;
        ``mask (…, H, W)`` bool, True where the ray is finite (False only for a degenerate ``K``).
    """
    if K.shape[-2:] != (3, 3):
        raise DataError(f"K must be (..., 3, 3), got shape {tuple(K.shape)}")
    u, v = pixel_grid(H, W, dtype=K.dtype, device=K.device)
    fx = K[..., 0, 0, None, None]
    s = K[..., 0, 1, None, None]
    cx = K[..., 0, 2, None, None]
    fy = K[..., 1, 1, None, None]
    cy = K[..., 1, 2, None, None]
    ok = (fx.abs() > 0) & (fy.abs() > 0)
    fx_safe = torch.where(ok, fx, torch.ones_like(fx))
    fy_safe = torch.where(ok, fy, torch.ones_like(fy))
    y = (v - cy) / fy_safe
    x = (u - cx - s * y) / fx_safe
    rays = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    mask = ok.expand(*x.shape) & torch.isfinite(rays).all(dim=-1)
    rays = torch.where(mask.unsqueeze(-1), rays, torch.zeros_like(rays))
    return rays, mask


def backproject_depth(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Lift a z-depth map to camera-frame points.

    Args:
        depth: ``(…, H, W)`` z-depth in mm (0 = no value; it maps to the origin, never NaN).
        K: ``(…, 3, 3)`` intrinsics for that resolution, batch shape broadcastable to ``depth``'s.
    Returns:
        ``(…, H, W, 3)`` points ``X_cam = depth · K⁻¹[u, v, 1]ᵀ`` in mm, with ``X_cam.z == depth``.
    """
    H, W = depth.shape[-2:]
    rays, _ = get_ray_dirs_mask(K, H, W)
    return depth.unsqueeze(-1) * rays


def project_points(points_cam: torch.Tensor, K: torch.Tensor, eps: float = Z_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Project camera-frame points to pixels: ``[x, y, z] = K·X``, ``u = x/z``, ``v = y/z``.

    Args:
        points_cam: ``(…, *S, 3)`` in mm; the leading dims match ``K``'s batch shape.
        K: ``(…, 3, 3)``.
    Returns:
        ``uv (…, *S, 2)`` in pixels and ``z (…, *S)`` in mm. Where ``z <= eps`` the point is behind or
        on the camera: it is not divided by (``uv`` there is finite but meaningless); test ``z > eps``.
    """
    xyz = _apply(K, points_cam)
    z = xyz[..., 2]
    valid = z > eps
    z_safe = torch.where(valid, z, torch.ones_like(z))
    uv = xyz[..., :2] / z_safe.unsqueeze(-1)
    uv = torch.where(valid.unsqueeze(-1), uv, torch.full_like(uv, -1e6))
    return uv, z


def pixel_to_grid(uv: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Pixel coordinates → ``grid_sample``'s normalised coordinates for ``align_corners=True``.

    ``x_n = 2u/(W−1) − 1`` and ``y_n = 2v/(H−1) − 1``: pixel centre 0 ↦ −1, centre W−1 ↦ +1 (fix C).
    """
    scale = uv.new_tensor([2.0 / max(W - 1, 1), 2.0 / max(H - 1, 1)])
    return uv * scale - 1.0


def sample_pixels(
    values: torch.Tensor,
    uv: torch.Tensor,
    mode: str = "bilinear",
    padding_mode: str = "border",
) -> torch.Tensor:
    """Sample ``values (B, C, H', W')`` at pixel coordinates ``uv (B, H, W, 2)`` → ``(B, C, H, W)``.

    The one place DeltaZ calls ``grid_sample``; ``uv`` follows the pixel-centre convention, so
    sampling at integer ``(u, v)`` returns the stored pixel exactly.
    """
    if values.dim() != 4 or uv.dim() != 4 or uv.shape[-1] != 2:
        raise DataError(
            f"sample_pixels expects values (B, C, H, W) and uv (B, H, W, 2), got "
            f"{tuple(values.shape)} and {tuple(uv.shape)}"
        )
    H_src, W_src = values.shape[-2:]
    grid = pixel_to_grid(uv, H_src, W_src).to(values.dtype)
    return F.grid_sample(values, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def reproject(
    depth_ref: torch.Tensor,
    K_ref: torch.Tensor,
    E_ref: torch.Tensor,
    K_src: torch.Tensor,
    E_src: torch.Tensor,
    src_hw: tuple[int, int] | None = None,
    eps: float = Z_EPS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each reference pixel lands in the source view.

    Args:
        depth_ref: ``(B, H, W)`` (or ``(H, W)``) reference z-depth, mm, 0 = no value.
        K_ref, E_ref: reference intrinsics ``(B, 3, 3)`` and world-to-camera ``(B, 3|4, 4)``.
        K_src, E_src: the same for the source view.
        src_hw: the source image size ``(H', W')`` for the in-frame test; defaults to ``(H, W)``.
    Returns:
        ``uv_src (B, H, W, 2)`` pixels in the source view, ``z_src (B, H, W)`` the point's z-depth in
        the source camera (mm), and ``valid (B, H, W)``: reference depth > 0, ``z_src > eps``, and
        ``uv_src`` inside the source image span ``[−0.5, W'−0.5] × [−0.5, H'−0.5]``.
    """
    points_world = camera_to_world(backproject_depth(depth_ref, K_ref), E_ref)
    return reproject_points(points_world, depth_ref, K_src, E_src, src_hw, eps)


def reproject_points(
    points_world: torch.Tensor,
    depth_ref: torch.Tensor,
    K_src: torch.Tensor,
    E_src: torch.Tensor,
    src_hw: tuple[int, int] | None = None,
    eps: float = Z_EPS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`reproject` from the reference's points already in the world, ``(B, H, W, 3)`` mm (backprojected once
    for several sources); ``depth_ref (B, H, W)`` says which pixels have a depth. Same returns."""
    H, W = depth_ref.shape[-2:]
    Hs, Ws = src_hw if src_hw is not None else (H, W)
    uv_src, z_src = project_points(world_to_camera(points_world, E_src), K_src, eps=eps)
    u, v = uv_src[..., 0], uv_src[..., 1]
    inside = (u >= -0.5) & (u <= Ws - 0.5) & (v >= -0.5) & (v <= Hs - 0.5)
    valid = (depth_ref > 0) & (z_src > eps) & inside
    return uv_src, z_src, valid


def warp(
    values_src: torch.Tensor,
    depth_ref: torch.Tensor,
    K_ref: torch.Tensor,
    E_ref: torch.Tensor,
    K_src: torch.Tensor,
    E_src: torch.Tensor,
    mode: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The source view's values seen from the reference view through ``depth_ref``.

    Args:
        values_src: ``(B, C, H', W')`` (image, depth, …) in the source view; ``K_src`` is for ``H'×W'``.
        depth_ref: ``(B, H, W)`` reference z-depth in mm.
    Returns:
        ``warped (B, C, H, W)`` and ``valid (B, H, W)`` (see :func:`reproject`). Invalid pixels hold 0.
    """
    uv_src, _, valid = reproject(depth_ref, K_ref, E_ref, K_src, E_src, src_hw=values_src.shape[-2:])
    warped = sample_pixels(values_src, uv_src, mode=mode, padding_mode="border")
    warped = warped * valid.unsqueeze(1).to(warped.dtype)
    return warped, valid
