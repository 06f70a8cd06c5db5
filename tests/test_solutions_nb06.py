"""The references of 06_training's exercises are what the package runs: torch's gradient clipping and
CosineAnnealingWarmRestarts, as built by deltaz.engine.train."""

from __future__ import annotations

import torch

from deltaz.course import exercises
from deltaz.course.solutions import nb06_training


def test_clip_gradients_is_torchs_clip_grad_norm():
    for (grads, max_norm), _ in exercises.exercise("clip_gradients").cases():
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        for p, ours in zip(params, nb06_training.clip_gradients(grads, max_norm)):
            torch.testing.assert_close(p.grad, ours, rtol=1e-12, atol=1e-15)


def test_cosine_lr_is_the_training_schedule():
    for (lr0, epoch, t0), _ in exercises.exercise("cosine_lr").cases():
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=t0)
        for _ in range(epoch):
            optimizer.step()
            scheduler.step()
        assert abs(optimizer.param_groups[0]["lr"] - nb06_training.cosine_lr(lr0, epoch, t0)) < 1e-12
