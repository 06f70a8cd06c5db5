"""The training loop: outputs, checkpoints, exact resume, budgets, non-finite losses, config, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.engine import checkpoint as ckpt
from deltaz.apps.cli import main as cli_main
from deltaz.engine.config import TrainConfig
from deltaz.data import create_dataloaders
from deltaz.core.errors import ConfigError, DataError
from deltaz.model import build_model
from deltaz.engine.train import TrainingDiverged, evaluate_loader, loss_batch, train


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    # real initial/ depths: these tests exercise the loop, not the corruption model
    return make_dataset(tmp_path_factory.mktemp("train") / "data", n_scans=3, n_views=4, initial=True)


def tiny_config(data_root: Path, run: Path, **overrides) -> TrainConfig:
    values = dict(
        data_root=str(data_root), batch_size=2, num_views=2, num_epochs=2, lr=1e-3, val_split=0.34,
        base_channel=8, unet_depth=2, device="cpu", seed=0, checkpoint_dir=str(run / "ckpt"),
        log_dir=str(run / "logs"), progress=False, image_log_every=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def _weights(state_dict) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state_dict.items()}


def test_train_writes_checkpoints_logs_and_metrics(data_root, tmp_path):
    result = train(tiny_config(data_root, tmp_path))
    assert result["stopped_by"] == "num_epochs" and result["epochs_completed"] == 2
    assert result["steps"] == 2 * 4  # 2 training scans x 4 views / batch 2, per epoch
    for key in ("last_checkpoint", "best_checkpoint"):
        assert Path(result[key]).is_file()
    saved = json.loads((tmp_path / "logs" / "config.json").read_text())
    assert saved["batch_size"] == 2 and saved["w_depth"] == 1.0 and saved["device"] == "cpu"
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    metrics = result["final_metrics"]
    for key in ("mae_mm_init", "mae_mm_refined", "acc_1mm_init", "acc_4mm_refined", "loss"):
        assert math.isfinite(metrics[key])
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    state = ckpt.load_checkpoint(result["last_checkpoint"])
    assert state["epoch"] == 2 and state["step"] == 8 and state["config"]["seed"] == 0
    assert state["best_val_mae"] == min(h["val_mae_mm_refined"] for h in result["history"])
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    # the returned model is the trained one
    model = build_model("deltaz_unet", base_channel=8, depth=2)
    model.load_state_dict(state["model"])
    for (name, a), b in zip(model.state_dict().items(), result["model"].state_dict().values()):
        assert torch.equal(a, b), name


def test_tensorboard_has_every_tag(data_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(data_root, tmp_path, num_epochs=1, log_every=1, image_log_every=1))
    events = EventAccumulator(str(tmp_path / "logs")).Reload()
    scalars = set(events.Tags()["scalars"])
    for term in ("depth", "improvement", "magnitude", "smoothness", "multiview", "total"):
        assert f"loss/train/{term}" in scalars
    for tag in ("loss/val", "lr", "metrics/val/mae_mm_init", "metrics/val/mae_mm_refined",
                "metrics/val/acc_1mm_refined", "metrics/val/acc_4mm_init"):
        assert tag in scalars
    assert "val/panels" in events.Tags()["images"]


def test_resume_continues_exactly(data_root, tmp_path):
    full = train(tiny_config(data_root, tmp_path / "full", num_epochs=3))
    part = train(tiny_config(data_root, tmp_path / "part", num_epochs=1))
    assert part["epochs_completed"] == 1
    resumed = train(tiny_config(data_root, tmp_path / "part", num_epochs=3), resume="latest")
    assert resumed["epochs_completed"] == 3 and resumed["steps"] == full["steps"]
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    lr_full = [h["lr"] for h in full["history"]]
    lr_split = [h["lr"] for h in part["history"] + resumed["history"]]
    assert lr_split == pytest.approx(lr_full) and lr_full[0] > lr_full[-1]
    assert resumed["best_val_mae"] == pytest.approx(full["best_val_mae"])


def test_resume_from_the_middle_of_an_epoch(data_root, tmp_path):
    full = train(tiny_config(data_root, tmp_path / "full", num_epochs=2))
    part = train(tiny_config(data_root, tmp_path / "part", num_epochs=2, max_steps=3))
    assert part["stopped_by"] == "max_steps" and part["steps"] == 3
    state = ckpt.load_checkpoint(part["last_checkpoint"])
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 3)
    resumed = train(tiny_config(data_root, tmp_path / "part", num_epochs=2), resume=tmp_path / "part" / "ckpt")
    assert resumed["steps"] == full["steps"]
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_whole_cycles_stops_where_the_next_learning_rate_cycle_would_not_fit():
    from types import SimpleNamespace
    from deltaz.engine.train.loop import _next_cycle_cut
    cfg = TrainConfig(whole_cycles=True, max_minutes=4.0, scheduler_t0=10)
    # 10 epochs in 225 s after 5 s of set-up: the next cycle needs ~225 s, 10 s are left
    run = SimpleNamespace(cfg=cfg, epoch=10, start_epoch=0, t_start=0.0)
    assert _next_cycle_cut(run, t_loop=5.0, now=230.0)
    assert not _next_cycle_cut(SimpleNamespace(**{**vars(run), "epoch": 9}), t_loop=5.0, now=230.0)  # mid-cycle
    assert not _next_cycle_cut(SimpleNamespace(**{**vars(run), "cfg": TrainConfig(whole_cycles=True, max_minutes=10.0)}),
                               t_loop=5.0, now=230.0)  # 370 s left: it fits
    last = TrainConfig(whole_cycles=True, max_minutes=4.0, scheduler_t0=10, num_epochs=10)  # the epochs end it anyway
    for other in (TrainConfig(whole_cycles=False, max_minutes=4.0), TrainConfig(whole_cycles=True), last):
        assert not _next_cycle_cut(SimpleNamespace(**{**vars(run), "cfg": other}), t_loop=5.0, now=230.0)
    # a resumed run measures its pace on its own epochs: 2 epochs (1-8 done before) in 40 s, so a cycle takes
    # ~200 s and 195 s are left (all 10 epochs in 40 s would have said 40 s)
    resumed = SimpleNamespace(cfg=cfg, epoch=10, start_epoch=8, t_start=0.0)
    assert _next_cycle_cut(resumed, t_loop=5.0, now=45.0)


def test_whole_cycles_keeps_training_while_the_cycles_fit_and_stops_validated(data_root, tmp_path, monkeypatch):
    result = train(tiny_config(data_root, tmp_path, num_epochs=3, scheduler_t0=1, whole_cycles=True, max_minutes=30))
    assert result["stopped_by"] == "num_epochs" and result["epochs_completed"] == 3
    import deltaz.engine.train.loop as loop
    monkeypatch.setattr(loop, "_next_cycle_cut", lambda run, t_loop: True)  # as if the next cycle would not fit
    result = train(tiny_config(data_root, tmp_path / "cut", num_epochs=3, whole_cycles=True, max_minutes=30))
    assert result["stopped_by"] == "whole_cycles" and result["epochs_completed"] == 1
    assert result["final_metrics"] and Path(result["best_checkpoint"]).is_file()  # the cycle's end still validates


def test_resume_refuses_another_model_configuration(data_root, tmp_path):
    train(tiny_config(data_root, tmp_path, num_epochs=1, max_steps=1))
    with pytest.raises(ConfigError, match="base_channel: checkpoint 8 vs requested 16"):
        train(tiny_config(data_root, tmp_path, base_channel=16), resume="latest")
    with pytest.raises(DataError, match="no checkpoint to resume from"):
        train(tiny_config(data_root, tmp_path / "elsewhere"), resume="latest")


def test_time_and_step_budgets(data_root, tmp_path):
    result = train(tiny_config(data_root, tmp_path / "time", num_epochs=50, max_minutes=1e-4))
    assert result["stopped_by"] == "max_minutes" and result["steps"] <= 1
    assert Path(result["last_checkpoint"]).is_file()
    result = train(tiny_config(data_root, tmp_path / "steps", num_epochs=50, max_steps=5))
    assert result["stopped_by"] == "max_steps" and result["steps"] == 5
    assert result["final_metrics"]  # a budget stop still validates


def test_non_finite_losses_are_skipped_then_stop_the_run(data_root, tmp_path, monkeypatch):
    import deltaz.engine.train.step as train_module  # the training step's losses

    real = train_module.losses_for_batch
    calls = {"n": 0}

    def sometimes_nan(batch, out, weights=None, **kwargs):
        total, terms = real(batch, out, weights, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # one bad step: skipped, training goes on
            return total * float("nan"), terms
        return total, terms

    monkeypatch.setattr(train_module, "losses_for_batch", sometimes_nan)
    result = train(tiny_config(data_root, tmp_path / "one", num_epochs=1, val_split=0.0))
    assert result["nonfinite_skipped"] == 1 and result["steps"] == 6 - 1
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())

    def always_nan(batch, out, weights=None, **kwargs):
        total, terms = real(batch, out, weights)
        return total * float("inf"), terms

    monkeypatch.setattr(train_module, "losses_for_batch", always_nan)
    with pytest.raises(TrainingDiverged, match="3 non-finite losses in a row.*learning rate.*AMP"):
        train(tiny_config(data_root, tmp_path / "all", num_epochs=1, max_nonfinite=3))


def test_untrained_model_leaves_metrics_unchanged(data_root):
    _, val = create_dataloaders(data_root, 2, 2, val_split=0.34)
    model = build_model("deltaz_unet", base_channel=8, depth=2)  # zero-initialised head: identity
    metrics = evaluate_loader(model, val, max_batches=1)
    assert metrics["n_batches"] == 1
    assert metrics["mae_mm_refined"] == pytest.approx(metrics["mae_mm_init"])
    assert metrics["acc_2mm_refined"] == pytest.approx(metrics["acc_2mm_init"])
    assert 0 < metrics["mae_mm_init"] < 10


def test_losses_ignore_reference_holes_they_cannot_change():
    depth = torch.full((1, 2, 4, 5), 600.0)
    depth_init = depth.clone()
    depth_init[0, 0, 1, 1] = 0  # a hole of the reference's initial depth
    depth_init[0, 1, 2, 2] = 0  # a hole of a source view: sources keep their ground-truth mask
    batch = {"depth": depth, "depth_init": depth_init, "mask": depth > 0}
    kept = loss_batch(batch, keep_holes=True)
    assert not kept["mask"][0, 0, 1, 1] and int(kept["mask"].sum()) == 2 * 20 - 1
    assert batch["mask"].all()  # the loader's batch is not modified
    assert loss_batch(batch, keep_holes=False) is batch


def test_config_roundtrip_and_errors(tmp_path):
    cfg = TrainConfig(data_root="x", batch_size=3, w_smoothness=2.0, max_minutes=1.5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    path = cfg.save_json(tmp_path / "c.json")
    assert TrainConfig.load_json(path) == cfg
    resolved = cfg.resolved()
    assert resolved.device in ("cpu", "cuda") and resolved.w_depth == 1.0 and resolved.w_smoothness == 2.0
    assert resolved.loss_weights().smoothness == 2.0
    with pytest.raises(ConfigError, match="batch_size=0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="preset='foo'"):
        TrainConfig(preset="foo")
    with pytest.raises(ConfigError, match="unknown TrainConfig field.*'bogus'"):
        TrainConfig.from_dict({"bogus": 1})


def test_rng_state_roundtrip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    ckpt.save_checkpoint(tmp_path / "r.pt", {"model": {}, "rng": ckpt.capture_rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.restore_rng_state(ckpt.load_checkpoint(tmp_path / "r.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_amp_on_cpu_warns_and_trains(data_root, tmp_path):
    with pytest.warns(UserWarning, match="CUDA-only"):
        result = train(tiny_config(data_root, tmp_path, num_epochs=1, max_steps=2, amp=True))
    assert result["steps"] == 2


def test_cli_train_and_resume(data_root, tmp_path, capsys):
    args = ["train", "--data-root", str(data_root), "--batch-size", "2", "--num-epochs", "1", "--lr", "1e-3",
            "--val-split", "0.34", "--base-channel", "8", "--unet-depth", "2", "--max-steps", "2",
            "--checkpoint-dir", str(tmp_path / "ck"), "--log-dir", str(tmp_path / "logs"), "--no-progress"]
    assert cli_main(args) == 0
    captured = capsys.readouterr()
    assert "device cpu" in captured.err and "validation MAE: initial" in captured.out
    # --resume alone: the settings come from the checkpoint, --num-epochs and --max-steps from the flags
    assert cli_main(["train", "--resume", "--checkpoint-dir", str(tmp_path / "ck"), "--num-epochs", "2",
                     "--max-steps", "100", "--no-progress"]) == 0
    state = ckpt.load_checkpoint(tmp_path / "ck" / "last.pt")
    assert state["epoch"] == 2 and state["config"]["base_channel"] == 8 and state["step"] == 8


def test_cli_trains_the_demo_recipe(data_root, tmp_path, capsys):
    """The demo's input options are flags of ``deltaz train`` too, saved with the model; a pre-fill of holes
    the refiner keeps is refused."""
    args = ["train", "--data-root", str(data_root), "--batch-size", "2", "--num-epochs", "1", "--val-split", "0",
            "--base-channel", "4", "--unet-depth", "2", "--max-steps", "1", "--checkpoint-dir", str(tmp_path / "ck"),
            "--log-dir", str(tmp_path / "logs"), "--no-progress"]
    assert cli_main([*args, "--fill-holes", "--prefill-holes", "--depth-scale-mm", "20"]) == 0
    state = ckpt.load_checkpoint(tmp_path / "ck" / "last.pt")
    assert state["config"]["fill_holes"] and state["model_config"]["prefill_holes"] is True
    assert state["model_config"]["depth_scale_mm"] == 20.0
    assert cli_main([*args, "--prefill-holes"]) == 1  # one line naming the option, no traceback
    err = capsys.readouterr().err
    assert "deltaz train: error: prefill_holes=True: needs fill_holes" in err and "Traceback" not in err


def test_cli_trains_the_selection_model(data_root, tmp_path, capsys):
    """``--model deltaz_select`` trains through the same loop; its window radius and far factor are saved with
    the model and the checkpoint loads back as that model; a radius below 1 or a far factor of 1 gets one line."""
    from deltaz.engine.refine import load_refiner
    from deltaz.model import SelectUnet

    args = ["train", "--data-root", str(data_root), "--batch-size", "2", "--num-epochs", "1", "--val-split", "0",
            "--base-channel", "4", "--unet-depth", "2", "--max-steps", "2", "--checkpoint-dir", str(tmp_path / "ck"),
            "--log-dir", str(tmp_path / "logs"), "--no-progress", "--model", "deltaz_select"]
    assert cli_main([*args, "--select-radius", "2", "--select-far", "2"]) == 0
    state = ckpt.load_checkpoint(tmp_path / "ck" / "last.pt")
    assert state["model_config"]["name"] == "deltaz_select" and state["model_config"]["radius"] == 2
    assert state["model_config"]["far"] == 2
    model, _, _ = load_refiner(tmp_path / "ck" / "last.pt")
    assert isinstance(model, SelectUnet) and model.radius == 2 and model.far == 2
    assert not torch.equal(state["model"]["head.weight"], torch.zeros_like(state["model"]["head.weight"]))
    capsys.readouterr()
    assert cli_main([*args, "--select-radius", "0"]) == 1
    err = capsys.readouterr().err
    assert "select_radius" in err and "Traceback" not in err
    assert cli_main([*args, "--select-far", "1"]) == 1
    err = capsys.readouterr().err
    assert "select_far" in err and "Traceback" not in err


def test_cli_help_covers_every_flag(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--data-root", "--batch-size", "--num-views", "--num-epochs", "--lr", "--device", "--val-split",
                 "--checkpoint-dir", "--log-dir", "--resume", "--seed", "--max-steps", "--max-minutes",
                 "--w-depth", "--w-improvement", "--w-magnitude", "--w-smoothness", "--w-multiview", "--images",
                 "--model", "--base-channel", "--unet-depth", "--amp", "--preset", "--num-workers",
                 "--fill-holes", "--prefill-holes", "--depth-scale-mm"):
        assert flag in out
    assert "(default: 4)" in out and "(default: 0.0001)" in out
    # a loss weight left unset shows the weight it stands for, not "None"
    import re

    from deltaz.ops.losses import LossWeights

    flat = re.sub(r"\s+", " ", out)
    assert f"consistency loss (default: {LossWeights().multiview})" in flat
    assert f"magnitude loss (default: {LossWeights().magnitude})" in flat
