"""AdaptConfig(anchor_to="auto"): the per-scan choice between anchoring to the input and trusting the refiner,
decided by how much more the unadapted refiner's depths agree across views than the inputs."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from deltaz.engine.adapt import AdaptConfig, adapt_scan, gate_adapted, hand_out, scan_confidence
from deltaz.engine.adapt.recipe import AUTO_BLEND, AUTO_GAIN, agreement_gain, mean_agreement, resolve_recipe
from deltaz.engine.evaluate import load_refiner, load_scan_views
from deltaz.ops.gate import gate_correction
from tests._tiny_scans import make_dataset
from tests.test_adapt import tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def scan(tmp_path):
    """A tiny 4-view scan (depths 425–935 mm) whose input is its ground truth plus 15 mm of independent noise per
    view and pixel: more than MVSNet's 1 % check lets through, so the inputs agree poorly across views."""
    root = make_dataset(tmp_path / "ready", n_scans=1, n_views=4, H=32, W=40, images=True, initial=True)
    views = load_scan_views(root, "scan1", 2, use_images=True)
    noise = 15.0 * torch.randn(views.depth.shape, generator=torch.Generator().manual_seed(0))
    return root, replace(views, depth_init=torch.where(views.depth_init > 0, views.depth + noise, 0.0))


def test_agreement_gain_rises_when_the_depths_agree_better_than_the_input(scan):
    _, views = scan
    covered = views.depth_init > 0
    truth = torch.where(covered, views.depth, torch.zeros_like(views.depth))
    assert mean_agreement(views, truth, covered) > mean_agreement(views, views.depth_init, covered)
    assert agreement_gain(views, truth) > 0.05
    assert agreement_gain(views, views.depth_init.clone()) == pytest.approx(0.0, abs=1e-6)
    assert agreement_gain(views, torch.zeros_like(truth)) < 0  # holes everywhere: nothing agrees


def test_resolve_recipe_picks_per_scan_and_leaves_other_targets_alone(scan):
    _, views = scan
    covered = views.depth_init > 0
    truth = torch.where(covered, views.depth, torch.zeros_like(views.depth))
    cfg = AdaptConfig(anchor_to="auto", blend=0.9, gate=True, progress=False)
    trusted, gain = resolve_recipe(cfg, views, truth)
    assert gain > AUTO_GAIN and (trusted.anchor_to, trusted.blend) == ("unadapted", AUTO_BLEND)
    assert (trusted.gate, trusted.gate_against, trusted.gate_trust_rel) == (True, "unadapted", None)
    kept, gain = resolve_recipe(cfg, views, views.depth_init.clone())
    assert gain <= AUTO_GAIN and (kept.anchor_to, kept.gate, kept.gate_against, kept.blend) == ("input", True, "input", 0.9)
    plain = AdaptConfig(anchor_to="unadapted", progress=False)
    assert resolve_recipe(plain, views, None) == (plain, None)
    assert cfg.anchor_to == "auto"  # resolving returns a copy


def test_adapt_scan_with_auto_reports_the_recipe_it_ran(scan, tmp_path):
    root, views = scan
    model, _, _ = load_refiner(tiny_checkpoint(tmp_path / "ck.pt", root))
    conf = scan_confidence(root, "scan1", views, "mvs", "agreement")
    _, info = adapt_scan(model, views, conf, AdaptConfig(max_steps=1, progress=False))  # auto: the default
    run = info["config"]
    assert isinstance(info["agreement_gain"], float) and run.anchor_to in ("input", "unadapted")
    assert run.anchor_to == ("unadapted" if info["agreement_gain"] > AUTO_GAIN else "input")
    _, info = adapt_scan(model, views, conf, AdaptConfig(max_steps=1, anchor_to="input", progress=False))
    assert info["agreement_gain"] is None and info["config"].anchor_to == "input"
    assert AdaptConfig().anchor_to == "auto"  # the default


def test_cli_auto_writes_the_recipe_into_report_and_checkpoint(tmp_path):
    import json

    from deltaz.apps.cli import main

    root = make_dataset(tmp_path / "ready", n_scans=1, n_views=3, H=32, W=40, images=True, initial=True)
    ck, out = tiny_checkpoint(tmp_path / "ck.pt", root), tmp_path / "adapt"
    assert main(["adapt", "--checkpoint", str(ck), "--data-root", str(root), "--out", str(out), "--minutes", "1",
                 "--max-steps", "1", "--anchor-to", "auto", "--no-progress"]) == 0
    entry = json.loads((out / "report.json").read_text())["scans"][0]
    assert isinstance(entry["agreement_gain"], float) and entry["anchor_to"] in ("input", "unadapted")
    assert f"auto: agreement gain {entry['agreement_gain']:.3f}" in (out / "report.md").read_text()
    _, config, _ = load_refiner(out / "checkpoints" / "scan1.pt")
    adapt = config["extra"]["adapt"]
    assert adapt["requested_anchor_to"] == "auto" and adapt["config"]["anchor_to"] == entry["anchor_to"]


def test_the_gate_against_the_unadapted_depths_hands_them_back_where_the_sources_refute(scan):
    """gate_against="unadapted": the gate checks the adapted depths against the unadapted refiner's (the
    trust-the-refiner recipe's guard), with the sources' unadapted depths for visibility, and hands those back.
    Whether the gate prefers the right depth is tests/test_gate.py's."""
    _, views = scan
    covered = views.depth_init > 0
    unadapted = torch.where(covered, views.depth, torch.zeros_like(views.depth))
    moves = 4.0 * torch.randn(unadapted.shape, generator=torch.Generator().manual_seed(1))  # mm
    adapted = unadapted + torch.where(covered, moves, 0.0)
    cfg = AdaptConfig(gate_against="unadapted", gate_trust_rel=None, progress=False)
    out = hand_out(views, adapted, cfg, unadapted)
    assert ((out == adapted) | (out == unadapted)).all()  # never the input
    assert (out == adapted)[covered].any() and (out == unadapted)[covered & (adapted != unadapted)].any()
    for i in range(len(views)):  # the photometric gate of view i against its unadapted depth
        b = views.batch([i], images=True)
        expected = gate_correction(unadapted[[i]], adapted[[i]], b.image[:, 0], b.image[:, 1:],
                                   views.multiview([i], unadapted))
        assert torch.equal(out[[i]], expected)
    default = hand_out(views, adapted, AdaptConfig(progress=False), unadapted)  # against the input
    assert torch.equal(default, gate_adapted(views, adapted))
    assert torch.equal(gate_adapted(views, adapted, against=views.depth_init), default)
    assert torch.equal(hand_out(views, adapted, replace(cfg, gate=False), unadapted), adapted)


def test_cli_gate_against_reaches_the_report_and_a_bad_target_is_one_line(tmp_path, capsys):
    import json

    from deltaz.apps.cli import main

    root = make_dataset(tmp_path / "ready", n_scans=1, n_views=3, H=32, W=40, images=True, initial=True)
    ck, out = tiny_checkpoint(tmp_path / "ck.pt", root), tmp_path / "adapt"
    args = ["adapt", "--checkpoint", str(ck), "--data-root", str(root), "--out", str(out), "--minutes", "1",
            "--max-steps", "1", "--anchor-to", "input", "--no-progress"]
    assert main([*args, "--gate-against", "unadapted"]) == 0
    entry = json.loads((out / "report.json").read_text())["scans"][0]
    assert (entry["anchor_to"], entry["gate_against"]) == ("input", "unadapted")
    assert "gate True (against the unadapted)" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main([*args, "--gate-against", "truth"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deltaz adapt: error:") and "--gate-against" in err[0]
