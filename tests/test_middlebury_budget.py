"""benchmarks/middlebury_budget.py: the kinds of covered pixel and the split of the covered MAE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("skimage", reason="scikit-image is not installed (the Motorcycle pair comes from skimage.data)")
pytest.importorskip("cv2", reason="OpenCV is not installed (opencv-contrib-python-headless)")

from _benchmarks import load_benchmark  # noqa: E402
from deltaz.core.errors import DataError  # noqa: E402
from deltaz.io.middlebury import depth_to_disparity, disparity_to_depth, load_motorcycle, sgbm_depth  # noqa: E402
from deltaz.ops.metrics import depth_metrics  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def budget_module():
    return load_benchmark("middlebury_budget")


@pytest.fixture(scope="module")
def scene():
    try:
        data = load_motorcycle()
    except DataError as error:  # e.g. the pair is not in skimage's cache and there is no network
        pytest.skip(f"Motorcycle pair unavailable: {error}")
    return data, sgbm_depth(data)


def test_kinds_partition_the_covered_pixels(budget_module, scene):
    data, depth_init = scene
    kinds = budget_module.pixel_kinds(data, depth_init)
    assert list(kinds) == list(budget_module.KINDS)
    count = sum(mask.int() for mask in kinds.values())
    covered = (depth_init > 0) & (data["depth_gt"] > 0)
    assert torch.equal(count, covered.int())  # each covered pixel in exactly one kind, nothing else
    assert all(mask.any() for mask in kinds.values())


def test_kinds_sit_where_their_definitions_say(budget_module, scene):
    data, depth_init = scene
    kinds = budget_module.pixel_kinds(data, depth_init)
    span = budget_module.block_span(data)
    assert (span[kinds["edge"]] > budget_module.EDGE_SPAN_MM).all()
    assert (span[kinds["rest"]] <= budget_module.EDGE_SPAN_MM).all()
    error = (depth_init - data["depth_gt"]).abs()
    assert (error[kinds["wrong"]] > budget_module.WRONG_MM).all()
    assert (error[kinds["rest"]] <= budget_module.WRONG_MM).all()
    # SGBM fills what the right camera cannot see with the foreground: its error there is far above the rest's
    assert error[kinds["occluded"]].mean() > 5 * error[kinds["rest"]].mean()


def test_a_rows_cells_add_up_to_its_covered_mae(budget_module, scene):
    data, depth_init = scene
    gt = data["depth_gt"]
    left = torch.zeros_like(gt, dtype=torch.bool)
    left[:, : gt.shape[1] // 2] = True
    outputs = {"identity": depth_init, "deltaz": torch.where(depth_init > 0, depth_init + 3.0, depth_init)}
    result = budget_module.budget(outputs, budget_module.pixel_kinds(data, depth_init), gt, left)
    covered = left & (depth_init > 0)
    assert abs(sum(result["share_pct"].values()) - 100.0) < 1e-6
    for row in result["rows"]:
        expected = depth_metrics(outputs[row["method"]], gt, covered)["mae_mm"]
        assert row["mae_valid_mm"] == pytest.approx(expected, rel=1e-4)
        assert sum(row[k] for k in budget_module.KINDS) == pytest.approx(row["mae_valid_mm"], rel=1e-9)
    table = budget_module.format_budget(result).splitlines()
    assert len(table) == 1 + len(outputs) and all(f"{k} (" in table[0] for k in budget_module.KINDS)


def test_cli_writes_both_halves(budget_module, scene, tmp_path, capsys):
    out = tmp_path / "budget.json"
    assert budget_module.main(["--input", "planesweep", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["input"] == "planesweep"
    for region in ("left", "right"):
        methods = [row["method"] for row in report[region]["rows"]]
        assert methods[:2] == ["identity", "search"]
    printed = capsys.readouterr().out
    assert "LEFT half (design)" in printed and "RIGHT half (held out)" in printed


def test_cli_refuses_a_missing_checkpoint_in_one_line(budget_module, scene, tmp_path, capsys):
    assert budget_module.main(["--checkpoint", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("middlebury_budget: error:") and "none.pt" in err[0]


def test_error_bins_partition_each_rows_covered_mae(budget_module, scene):
    data, depth_init = scene
    gt = data["depth_gt"]
    left = torch.zeros_like(gt, dtype=torch.bool)
    left[:, : gt.shape[1] // 2] = True
    outputs = {"identity": depth_init, "deltaz": gt.clone(), "search": torch.zeros_like(gt)}  # exact; all holes
    rows = {row["method"]: row for row in budget_module.error_bins(outputs, data, depth_init, left)}
    labels = budget_module.bin_labels()
    assert len(labels) == len(budget_module.ERROR_BINS_PX) + 1
    covered = left & (depth_init > 0) & (gt > 0)
    expected = depth_metrics(depth_init, gt, covered)["mae_mm"]
    assert rows["identity"]["mae_valid_mm"] == pytest.approx(expected, rel=1e-4)
    for row in rows.values():
        assert sum(row[k][0] for k in labels) == pytest.approx(100.0)
        assert sum(row[k][1] for k in labels) == pytest.approx(row["mae_valid_mm"], rel=1e-6)
    assert rows["deltaz"][labels[0]] == [pytest.approx(100.0), pytest.approx(0.0, abs=1e-3)]
    assert rows["search"][labels[-1]][0] == pytest.approx(100.0)  # a hole is an infinite disparity error
    # SGBM's gross errors (>= 5 px) are a few % of its pixels but most of its covered MAE
    share, mm = rows["identity"][labels[-1]]
    assert share < 10.0 and mm > 0.5 * rows["identity"]["mae_valid_mm"]
    table = budget_module.format_bins(list(rows.values())).splitlines()
    assert len(table) == 1 + len(rows) and all(label in table[0] for label in labels)
    kinds = budget_module.budget(outputs, budget_module.pixel_kinds(data, depth_init), gt, left)["rows"]
    for row in kinds:  # the two tables agree on each row's covered MAE
        assert rows[row["method"]]["mae_valid_mm"] == pytest.approx(row["mae_valid_mm"], rel=1e-5)


def test_each_disparity_offset_lands_in_its_bin(budget_module, scene):
    data, depth_init = scene
    cal, gt = data["calibration"], data["depth_gt"]
    truth = depth_to_disparity(gt.numpy(), cal["f_px"], cal["baseline_mm"], cal["doffs_px"])
    stripes = torch.arange(gt.shape[1]) * 4 // gt.shape[1]  # four column stripes, one per bin
    offsets = torch.tensor([0.1, 0.5, 2.0, 10.0])[stripes].expand_as(gt).numpy()  # px, inside each bin
    shifted = disparity_to_depth(truth + offsets, cal["f_px"], cal["baseline_mm"], cal["doffs_px"])
    outputs = {"deltaz": torch.from_numpy(np.nan_to_num(shifted, nan=0.0)).float()}
    labels = budget_module.bin_labels()
    everywhere = torch.ones_like(gt, dtype=torch.bool)
    row = budget_module.error_bins(outputs, data, depth_init, everywhere)[0]
    covered = (depth_init > 0) & (gt > 0)
    for i, label in enumerate(labels):
        expected = 100.0 * int((covered & (stripes == i).expand_as(gt)).sum()) / int(covered.sum())
        assert row[label][0] == pytest.approx(expected, abs=0.2)  # float32 depth round trips stay in their bin
