"""deltaz.course.widgets: viewers draw once at creation and redraw when driven programmatically (headless)."""

from __future__ import annotations

import math

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from deltaz import viz
from deltaz.course import widgets
from deltaz.core.batch import MultiViewBatch
from deltaz.core.errors import ConfigError

H, W = 10, 14


def camera(C_x: float, angle: float):
    K = np.array([[20.0, 0.0, 6.5], [0.0, 20.0, 4.5], [0.0, 0.0, 1.0]])
    c, s = math.cos(angle), math.sin(angle)
    R = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    C = np.array([C_x, 0.0, 0.0])
    return K, np.hstack([R, (-R @ C)[:, None]])


def make_view(scan: str, view_id: int, offset: float, shape=(H, W), with_image=True) -> dict:
    h, w = shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    gt = 600.0 + offset + 2.0 * u + v
    gt[0, 0] = 0.0
    init = gt + 3.0 * np.sin(u + v + offset)
    K, E = camera(60.0 * view_id, -0.08 * view_id)
    view = {
        "scan": scan, "view_id": view_id, "depth": gt, "depth_init": torch.tensor(init),
        "delta_z": -0.5 * (init - gt), "intrinsics": K, "extrinsics": E,
    }
    if with_image:
        view["image"] = np.random.default_rng(view_id).random((3, h, w))
    return view


@pytest.fixture
def views():
    return [make_view("scan1", 0, 0.0), make_view("scan1", 1, 10.0), make_view("scan2", 3, 40.0, shape=(8, 9))]


@pytest.fixture(autouse=True)
def no_pyplot_leak():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def test_depth_viewer_is_driven_like_a_notebook_cell(views):
    viewer = widgets.depth_viewer(views)
    # drawn once at creation
    assert isinstance(viewer, ipywidgets.VBox)
    assert viewer.draw_count == 1 and viewer.last_png.startswith(b"\x89PNG")
    assert viewer.image.value == viewer.last_png and isinstance(viewer.image, ipywidgets.Image)
    assert list(viewer.controls) == ["scan", "view_id", "layer", "range", "u", "v"]
    assert list(viewer.children[: len(viewer.controls)]) == list(viewer.controls.values())
    state = viewer.state
    assert (state["scan"], state["view_id"], state["layer"], state["pixel"]) == ("scan1", 0, "initial", (W // 2, H // 2))
    assert state["layers"] == ["initial", "refined", "gt", "delta_z", "error"]
    assert (state["vmin"], state["vmax"]) == pytest.approx(viz.depth_range(viz.layers_from_view(views[0])))

    # the layer control, driven through children: Δz gets a symmetric range
    png = viewer.last_png
    viewer.children[2].value = "delta_z"
    assert viewer.state["layer"] == "delta_z" and viewer.draw_count == 2 and viewer.last_png != png
    assert viewer.state["vmin"] == pytest.approx(-viewer.state["vmax"]) and viewer.state["vmax"] > 0
    im = [ax for ax in viewer.last_figure.axes if ax.images][0].images[0]
    assert im.get_clim() == pytest.approx((viewer.state["vmin"], viewer.state["vmax"]))

    # the colour range slider
    png = viewer.last_png
    lo, hi = viewer.controls["range"].min, viewer.controls["range"].max
    viewer.controls["range"].value = (0.5 * lo, 0.25 * hi)
    assert (viewer.state["vmin"], viewer.state["vmax"]) == pytest.approx((0.5 * lo, 0.25 * hi), rel=1e-2)
    assert viewer.last_png != png

    # the picked pixel: two controls, one redraw
    png, count = viewer.last_png, viewer.draw_count
    with viewer.hold():
        viewer.controls["u"].value = 3
        viewer.controls["v"].value = 7
    viewer.refresh()
    assert viewer.draw_count == count + 1 and viewer.state["pixel"] == (3, 7) and viewer.last_png != png
    gt, init = views[0]["depth"], views[0]["depth_init"][7, 3].item()
    assert viewer.state["readout"]["gt"] == gt[7, 3]
    assert f"{gt[7, 3]:.2f} mm" in viewer.readout.value
    assert viewer.state["readout"]["error"] == pytest.approx(init - 0.5 * (init - gt[7, 3]) - gt[7, 3])
    with viewer.hold():
        viewer.controls["u"].value, viewer.controls["v"].value = 0, 0  # a hole in the ground truth
    viewer.refresh()
    assert viewer.state["readout"]["gt"] is None and "no value" in viewer.readout.value


def test_depth_viewer_scan_and_view_switch_with_a_loader(views):
    table = {(v["scan"], v["view_id"]): v for v in views}
    calls = []

    def load(scan, view_id):
        calls.append((scan, view_id))
        return table[(scan, view_id)]

    viewer = widgets.depth_viewer(load, scans=["scan1", "scan2"], view_ids={"scan1": [0, 1], "scan2": [3]}, layer="gt")
    viewer.controls["view_id"].value = 1
    assert viewer.state["view_id"] == 1 and viewer.state["readout"]["gt"] == views[1]["depth"][H // 2, W // 2]
    with viewer.hold():
        viewer.controls["u"].value = W - 1
    viewer.controls["scan"].value = "scan2"  # a smaller view: options, sliders and range follow
    assert list(viewer.controls["view_id"].options) == [3]
    assert viewer.state["scan"] == "scan2" and viewer.state["view_id"] == 3 and viewer.state["shape"] == (8, 9)
    assert viewer.controls["u"].max == 8 and viewer.state["pixel"][0] == 8
    assert viewer.state["vmin"] > 630  # the range follows the new view's depths (offset 40 mm)
    assert calls == [("scan1", 0), ("scan1", 1), ("scan2", 3)]  # each view loaded once
    with pytest.raises(ConfigError, match="scans"):
        widgets.depth_viewer(load)


def test_reprojection_viewer_state_matches_geometry(views):
    viewer = widgets.reprojection_viewer(views[:2], pixel=(5, 4))
    assert viewer.draw_count == 1 and viewer.last_png.startswith(b"\x89PNG")
    state = viewer.state
    assert (state["ref"], state["src"], state["pixel"], state["background"]) == (0, 1, (5, 4), "image")
    ref, src = views[0], views[1]
    d_gt = ref["depth"][4, 5]
    assert state["depths"]["gt"] == d_gt
    uv, _ = viz.reproject_pixel(ref["intrinsics"], ref["extrinsics"], src["intrinsics"], src["extrinsics"], (5, 4), d_gt)
    assert state["points"]["gt"] == pytest.approx(tuple(uv))
    segment = viz.epipolar_segment(ref["intrinsics"], ref["extrinsics"], src["intrinsics"], src["extrinsics"], (5, 4))
    assert state["segment"] == (pytest.approx(tuple(segment[0])), pytest.approx(tuple(segment[-1])))
    assert "gt →" in viewer.readout.value

    png = viewer.last_png
    with viewer.hold():
        viewer.controls["u"].value = 9
        viewer.controls["background"].value = "depth"
    viewer.refresh()
    assert viewer.state["pixel"] == (9, 4) and viewer.state["segment"] != state["segment"]
    assert viewer.state["background"] == "depth" and viewer.last_png != png
    viewer.controls["src"].value = 0  # the same camera: the point maps onto itself
    assert viewer.state["points"]["gt"] == pytest.approx((9, 4))


def test_reprojection_viewer_falls_back_to_depth_without_images():
    views = [make_view("s", 0, 0.0, with_image=False), make_view("s", 1, 0.0, with_image=False)]
    viewer = widgets.reprojection_viewer(views, depth_span=(500, 800))
    assert viewer.state["background"] == "depth" and viewer.state["depth_span"] == (500.0, 800.0)


def test_loss_explorer_reweights_and_switches_views():
    rng = np.random.default_rng(5)
    V = 2
    sample = {"a": rng.random((V, H, W)), "b": rng.random((V, H, W))}
    seen = []

    def compute_maps(weights, sample):
        seen.append(dict(weights))
        return {"depth": sample["a"], "smoothness": torch.tensor(sample["b"])}

    viewer = widgets.loss_explorer(sample, compute_maps, {"depth": 1.0, "smoothness": 0.5})
    assert viewer.draw_count == 1 and list(viewer.controls) == ["view", "weight_depth", "weight_smoothness"]
    assert viewer.state["means"]["smoothness"] == pytest.approx(0.5 * sample["b"][0].mean())
    png = viewer.last_png
    viewer.controls["weight_smoothness"].value = 2.0
    assert viewer.state["weights"] == {"depth": 1.0, "smoothness": 2.0} and seen[-1] == viewer.state["weights"]
    assert viewer.state["means"]["smoothness"] == pytest.approx(2.0 * sample["b"][0].mean())
    assert viewer.state["total_mean"] == pytest.approx(sample["a"][0].mean() + 2.0 * sample["b"][0].mean())
    assert viewer.last_png != png
    viewer.controls["view"].value = 1
    assert viewer.state["view"] == 1
    assert viewer.state["means"]["depth"] == pytest.approx(sample["a"][1].mean())


def test_viewers_take_a_multiview_batch(views):
    stack = lambda key: torch.stack([torch.as_tensor(v[key]) for v in views[:2]])[None]  # noqa: E731  (1, V, …)
    batch = MultiViewBatch(
        stack("depth_init"), stack("intrinsics"), stack("extrinsics"), depth=stack("depth"), image=stack("image"),
        scene="scan1", extra={"view_ids": torch.tensor([[0, 1]])},
    )
    viewer = widgets.depth_viewer(batch, layer="gt")
    assert viewer.draw_count == 1 and viewer.state["scan"] == "scan1"
    assert list(viewer.controls["view_id"].options) == [0, 1]
    assert viewer.state["readout"]["gt"] == views[0]["depth"][H // 2, W // 2]
    reprojection = widgets.reprojection_viewer(batch, pixel=(5, 4))
    expected = widgets.reprojection_viewer(views[:2], pixel=(5, 4)).state
    assert reprojection.state["points"]["gt"] == pytest.approx(expected["points"]["gt"])
