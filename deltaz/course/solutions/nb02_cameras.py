"""Exercises of ``02_cameras_and_reprojection``: from the camera to the world."""

from __future__ import annotations

import torch

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "camera_to_world"]


def camera_to_world(points_cam: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(N, 3)`` mm → world, for world-to-camera ``E = [R | t]`` ``(3, 4)``: ``Rᵀ(X − t)``."""
    R, t = E[:, :3], E[:, 3]
    return (points_cam - t) @ R  # row vectors: (X - t) R = (Rᵀ (X - t))ᵀ


def _wrong_camera_to_world(points_cam: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """The classic bug (fix B): applying ``E`` itself, ``R·X + t``, instead of its inverse."""
    return points_cam @ E[:, :3].T + E[:, 3]


def _camera_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    cases = []
    for _ in range(3):
        axis = torch.randn(3, generator=g, dtype=torch.float64)
        R = torch.linalg.matrix_exp(torch.cross(torch.eye(3, dtype=torch.float64), axis.expand(3, 3), dim=-1))
        E = torch.cat([R, 300 * torch.randn(3, 1, generator=g, dtype=torch.float64)], dim=1)
        points = 500 * torch.randn(5, 3, generator=g, dtype=torch.float64)
        cases.append(((points, E), {}))
    return cases


EXERCISES = (
    Exercise(
        name="camera_to_world",
        notebook="02_cameras_and_reprojection",
        reference=camera_to_world,
        cases=_camera_cases,
        mistake=_wrong_camera_to_world,
        hint="E maps world to camera (X_cam = R·X_world + t); invert it: X_world = Rᵀ·(X_cam − t).",
    ),
)
