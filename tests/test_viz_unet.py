"""deltaz.viz.unet: the U-Net drawing reads its channel counts from the built model."""

from __future__ import annotations

import pytest
import torch

from deltaz import viz
from deltaz.model import DeltaZUnet, MVSNetRefine


def test_unet_blocks_follow_the_model():
    model = DeltaZUnet(in_channels=4, base_channel=6, depth=3, out_confidence=True)
    blocks = viz.unet_blocks(model)
    assert [b["name"] for b in blocks] == ["stem", "down1", "down2", "down3", "up2", "up1", "up0", "head"]
    assert [(b["c_in"], b["c_out"]) for b in blocks[:4]] == [(5, 6), (6, 12), (12, 24), (24, 48)]
    assert [(b["c_in"], b["c_skip"], b["c_out"]) for b in blocks[4:7]] == [(48, 24, 24), (24, 12, 12), (12, 6, 6)]
    assert (blocks[-1]["c_in"], blocks[-1]["c_out"]) == (6, 2)  # Δz and log b
    # the counts are the weights' shapes
    assert model.stem[0].weight.shape[1] == blocks[0]["c_in"] and model.down[2][-3].weight.shape[0] == 48


def test_render_unet_draws_every_block_and_rejects_other_models():
    model = DeltaZUnet(in_channels=1, base_channel=4, depth=2)
    fig = viz.render_unet(model, input_hw=(32, 40))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("stem: 2 → 4") and "32×40" in t for t in texts)
    assert any(t.startswith("down2: 8 → 16") and "8×10" in t for t in texts)
    with pytest.raises(TypeError, match="DeltaZUnet"):
        viz.unet_blocks(MVSNetRefine(in_channels=1, base_channel=4))
    assert torch.is_tensor(next(model.parameters()))
