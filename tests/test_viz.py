"""deltaz.viz: figure structure, colour ranges, hole masking, markers, epipolar maths, no pyplot leaks."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from deltaz.core import geometry
from deltaz.core.batch import MultiViewBatch
from deltaz import viz
from deltaz.core.errors import ConfigError, DataError

H, W = 12, 16


def rotation_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def camera_pair():
    """Reference camera at the world origin; source camera 80 mm to the right, turned 8° toward the scene."""
    K = np.array([[22.0, 0.0, 7.6], [0.0, 21.0, 5.4], [0.0, 0.0, 1.0]])
    E_ref = np.hstack([np.eye(3), np.zeros((3, 1))])
    R_src = rotation_y(math.radians(-8.0))
    C_src = np.array([80.0, -5.0, 10.0])
    E_src = np.hstack([R_src, (-R_src @ C_src)[:, None]])
    return K, E_ref, K.copy(), E_src


@pytest.fixture
def view():
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    gt = 600.0 + 3.0 * u - 2.0 * v
    gt[0, 0] = 0.0  # a hole in the ground truth
    rng = np.random.default_rng(0)
    init = gt + rng.normal(0.0, 4.0, gt.shape)
    init[0, 0] = 0.0
    init[2, 3] = 0.0  # a hole in the initial depth
    delta_z = rng.normal(0.0, 1.5, gt.shape)
    K, E, _, _ = camera_pair()
    return {"depth": gt, "depth_init": init, "delta_z": delta_z, "intrinsics": K, "extrinsics": E}


@pytest.fixture(autouse=True)
def no_pyplot_leak():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "a render function registered a figure with pyplot"


def images(fig: Figure):
    """The axes holding a map (not the colour bars), in order."""
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def test_to_numpy_accepts_tensors_with_grad_and_masked_arrays():
    t = torch.ones(2, 3, requires_grad=True) * 2
    assert np.array_equal(viz.to_numpy(t), np.full((2, 3), 2.0))
    m = np.ma.MaskedArray([1.0, 2.0], mask=[True, False])
    assert viz.to_numpy(m).mask.tolist() == [True, False]


def test_layers_from_view_signed_error_and_masks(view):
    layers = viz.layers_from_view(view)
    assert list(layers) == ["initial", "refined", "gt", "delta_z", "error"]
    init, gt = view["depth_init"], view["depth"]
    np.testing.assert_allclose(layers["refined"][init > 0], (init + view["delta_z"])[init > 0])
    assert layers["refined"][2, 3] == 0  # no refinement without an initial depth
    err = layers["error"]
    assert err.mask[0, 0] and err.mask[2, 3] and not err.mask[5, 5]
    assert err[5, 5] == pytest.approx(layers["refined"][5, 5] - gt[5, 5])  # signed, refined − gt
    assert layers["delta_z"].mask[2, 3] and not layers["delta_z"].mask[5, 5]
    # delta_z is recovered from refined − initial when missing
    again = viz.layers_from_view({"depth_init": init, "depth_refined": layers["refined"], "depth": gt})
    np.testing.assert_allclose(again["delta_z"][init > 0], view["delta_z"][init > 0])


def test_layers_from_view_rejects_mismatched_shapes(view):
    with pytest.raises(DataError, match="share one"):
        viz.layers_from_view({"depth": view["depth"], "depth_init": view["depth_init"][:, :-1]})


def test_depth_panel_structure_labels_and_marker(view):
    layers = viz.layers_from_view(view)
    fig = viz.render_depth_panel(layers, "gt", pixel=(5, 7), title="scan1 view 0")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the map and its colour bar
    (ax,) = images(fig)
    assert ax.get_title() == "scan1 view 0"
    assert ax.get_xlabel() == "u [px]" and ax.get_ylabel() == "v [px]"
    bar = fig.axes[1]
    assert "mm" in bar.get_ylabel()
    # pixel centres at integer coordinates: the image spans [-0.5, W-0.5] × [-0.5, H-0.5]
    assert ax.images[0].get_extent() == [-0.5, W - 0.5, H - 0.5, -0.5]
    (marker,) = [line for line in ax.lines if line.get_label() == "pixel"]
    assert list(marker.get_xdata()) == [5] and list(marker.get_ydata()) == [7]


def test_depth_layers_share_one_colour_range(view):
    layers = viz.layers_from_view(view)
    pooled = np.concatenate([layers[n][layers[n] > 0] for n in ("initial", "refined", "gt")])
    expected = tuple(np.percentile(pooled, (1, 99)))
    for name in ("initial", "refined", "gt"):
        clim = images(viz.render_depth_panel(layers, name))[0].images[0].get_clim()
        np.testing.assert_allclose(clim, expected)
    clim = images(viz.render_depth_panel(layers, "gt", vmin=590, vmax=650))[0].images[0].get_clim()
    assert clim == (590, 650)


@pytest.mark.parametrize("name", ["delta_z", "error"])
def test_diverging_layers_have_a_symmetric_range(view, name):
    layers = viz.layers_from_view(view)
    lo, hi = images(viz.render_depth_panel(layers, name))[0].images[0].get_clim()
    valid = np.abs(layers[name].compressed())
    assert hi > 0 and lo == -hi
    assert hi == pytest.approx(np.percentile(valid, 99))


def test_holes_are_masked_and_drawn_in_the_hole_colour(view):
    layers = viz.layers_from_view(view)
    for name, (v, u) in (("gt", (0, 0)), ("initial", (2, 3)), ("error", (2, 3))):
        im = images(viz.render_depth_panel(layers, name))[0].images[0]
        data = im.get_array()
        assert data.mask[v, u] and not data.mask[6, 6]
        rgba = im.to_rgba(data)
        np.testing.assert_allclose(rgba[v, u], to_rgba(viz.HOLE_COLOR))
        assert not np.allclose(rgba[6, 6], to_rgba(viz.HOLE_COLOR))


def test_unknown_layer_is_a_config_error(view):
    with pytest.raises(ConfigError, match="layer"):
        viz.render_depth_panel(viz.layers_from_view(view), "normals")


def test_depth_row_shares_ranges_across_panels(view):
    layers = viz.layers_from_view(view)
    fig = viz.render_depth_row(layers, pixel=(4, 4), title="scan1 view 0")
    maps = images(fig)
    assert len(maps) == 5 and len(fig.axes) == 10  # five maps, five colour bars
    assert [ax.get_title() for ax in maps] == [viz.LAYER_LABELS[n] for n in ("initial", "refined", "gt", "delta_z", "error")]
    assert fig.get_suptitle() == "scan1 view 0"
    clims = [ax.images[0].get_clim() for ax in maps]
    assert clims[0] == clims[1] == clims[2]
    a = max(viz.symmetric_range(layers["delta_z"])[1], viz.symmetric_range(layers["error"])[1])
    assert clims[3] == clims[4] == (-a, a)
    assert all(any(line.get_label() == "pixel" for line in ax.lines) for ax in maps)
    with pytest.raises(ConfigError, match="names"):
        viz.render_depth_row(layers, names=["initial", "normals"])


def test_error_histogram_counts_and_legend():
    rng = np.random.default_rng(1)
    errors = {"initial": rng.normal(0, 5, 500), "refined": torch.tensor(rng.normal(0, 2, 400))}
    fig = viz.render_error_histogram(errors, bins=20, max_mm=8.0)
    (ax,) = fig.axes
    assert ax.get_title() and "mm" in ax.get_xlabel() and ax.get_ylabel() == "pixels"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == f"initial (median {np.median(np.abs(errors['initial'])):.2f} mm, n=500)"
    assert texts[1].startswith("refined") and "n=400" in texts[1]
    assert ax.get_xlim() == (0.0, 8.0)
    # the step outline's heights are the bin counts, with errors ≥ max_mm in the last bin
    heights = ax.patches[0].get_xy()[1:-1:2, 1][:20]
    expected, _ = np.histogram(np.minimum(np.abs(errors["initial"]), 8.0), bins=np.linspace(0, 8, 21))
    np.testing.assert_array_equal(heights, expected)


def fundamental(K_ref, E_ref, K_src, E_src) -> np.ndarray:
    """Independent oracle: F with x_srcᵀ F x_ref = 0, from the relative pose (textbook formula)."""
    R1, t1, R2, t2 = E_ref[:, :3], E_ref[:, 3], E_src[:, :3], E_src[:, 3]
    R = R2 @ R1.T
    t = t2 - R @ t1
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return np.linalg.inv(K_src).T @ tx @ R @ np.linalg.inv(K_ref)


def test_epipolar_segment_and_reprojection_agree_with_geometry_and_the_fundamental_matrix(view):
    K_ref, E_ref, K_src, E_src = camera_pair()
    depth = view["depth"]
    u, v = 9, 4
    segment = viz.epipolar_segment(K_ref, E_ref, K_src, E_src, (u, v), depth_span=(425, 935), n=32)
    assert segment.shape == (32, 2) and np.isfinite(segment).all()
    # every segment point satisfies the epipolar constraint
    F = fundamental(K_ref, E_ref, K_src, E_src)
    x_ref = np.array([u, v, 1.0])
    line = F @ x_ref
    dist = np.abs(np.c_[segment, np.ones(32)] @ line) / np.hypot(line[0], line[1])
    assert dist.max() < 1e-9
    # the GT depth's reprojection matches geometry.reproject and lies on the segment
    uv_all, z_all, _ = geometry.reproject(*(torch.as_tensor(x)[None] for x in (depth, K_ref, E_ref, K_src, E_src)))
    uv_gt, z_gt = viz.reproject_pixel(K_ref, E_ref, K_src, E_src, (u, v), depth[v, u])
    np.testing.assert_allclose(uv_gt, uv_all[0, v, u].numpy(), atol=1e-9)
    assert z_gt == pytest.approx(float(z_all[0, v, u]))
    a, b = segment[0], segment[-1]
    along = np.dot(uv_gt - a, b - a) / np.dot(b - a, b - a)
    assert 0 < along < 1
    assert np.linalg.norm(a + along * (b - a) - uv_gt) < 1e-9
    # the ends are the near and far depths
    np.testing.assert_allclose(segment[0], viz.reproject_pixel(K_ref, E_ref, K_src, E_src, (u, v), 425)[0])
    np.testing.assert_allclose(segment[-1], viz.reproject_pixel(K_ref, E_ref, K_src, E_src, (u, v), 935)[0])


def test_epipolar_segment_is_nan_behind_the_source_camera():
    K, E_ref, _, _ = camera_pair()
    E_src = np.hstack([np.eye(3), np.array([[0.0], [0.0], [-500.0]])])  # 500 mm in front of the reference
    segment = viz.epipolar_segment(K, E_ref, K, E_src, (3, 3), depth_span=(425, 935), n=11)
    depths = np.linspace(425, 935, 11)
    assert np.isnan(segment[depths <= 500]).all() and np.isfinite(segment[depths > 500]).all()
    with pytest.raises(ConfigError, match="depth_span"):
        viz.epipolar_segment(K, E_ref, K, E_src, (3, 3), depth_span=(900, 400))


def test_render_epipolar_draws_the_segment_and_each_depth(view):
    K_ref, E_ref, K_src, E_src = camera_pair()
    image = np.random.default_rng(2).random((3, H, W))
    u, v = 9, 4
    depths = {"initial": view["depth_init"][v, u], "refined": 605.0, "gt": view["depth"][v, u], "missing": 0.0}
    fig = viz.render_epipolar(image, view["depth"], K_ref, E_ref, K_src, E_src, (u, v), depths, depth_span=(425, 935))
    ax_ref, ax_src = images(fig)
    assert len(fig.axes) == 3  # ref image, src depth, src colour bar
    assert ax_ref.get_xlabel() == "u [px]" and ax_src.get_ylabel() == "v [px]" and ax_src.get_title()
    (pixel,) = [line for line in ax_ref.lines if line.get_label() == "pixel"]
    assert list(pixel.get_xdata()) == [u]
    (seg,) = [line for line in ax_src.lines if line.get_label().startswith("epipolar line")]
    np.testing.assert_allclose(np.c_[seg.get_xdata(), seg.get_ydata()], viz.epipolar_segment(K_ref, E_ref, K_src, E_src, (u, v)))
    markers = {line.get_label().split(" ")[0]: line for line in ax_src.lines if line.get_label().split(" ")[0] in depths}
    assert set(markers) == {"initial", "refined", "gt"}  # the 0 depth is skipped
    assert len({line.get_marker() for line in markers.values()}) == 3
    uv_gt, _ = viz.reproject_pixel(K_ref, E_ref, K_src, E_src, (u, v), depths["gt"])
    np.testing.assert_allclose([markers["gt"].get_xdata()[0], markers["gt"].get_ydata()[0]], uv_gt)
    assert ax_src.get_xlim() == (-0.5, W - 0.5) and ax_src.get_ylim() == (H - 0.5, -0.5)
    assert ax_src.get_legend() is not None


def test_loss_maps_are_weighted_with_a_total_panel():
    rng = np.random.default_rng(3)
    maps = {"depth": rng.random((H, W)), "smoothness": torch.tensor(rng.random((H, W))), "magnitude": rng.random((H, W))}
    maps["depth"][1, 1] = np.nan  # excluded pixel
    weights = {"depth": 1.0, "smoothness": 10.0, "magnitude": 0.01}
    fig = viz.render_loss_maps(maps, weights)
    panels = images(fig)
    assert len(panels) == 4 and len(fig.axes) == 8
    assert panels[1].get_title().startswith("smoothness × 10")
    np.testing.assert_allclose(panels[1].images[0].get_array(), 10.0 * maps["smoothness"].numpy())
    assert panels[0].images[0].get_array().mask[1, 1]
    total = panels[3].images[0].get_array()
    np.testing.assert_allclose(total[2, 2], maps["depth"][2, 2] + 10 * float(maps["smoothness"][2, 2]) + 0.01 * maps["magnitude"][2, 2])
    assert all("weighted" in ax.get_ylabel() for ax in fig.axes if ax not in panels)
    # maps of different shapes (a gradient term): no total
    fig = viz.render_loss_maps({"a": np.ones((H, W)), "b": np.ones((H, W - 1))}, {"a": 2.0})
    assert len(images(fig)) == 2


def test_camera_rig_draws_centres_and_highlight():
    E = []
    for angle in np.linspace(-0.5, 0.5, 5):
        R = rotation_y(angle)
        C = np.array([600 * math.sin(angle), 0.0, -600 * math.cos(angle)])
        E.append(np.hstack([R, (-R @ C)[:, None]]))
    E = np.stack(E)
    points = np.random.default_rng(4).normal(0, 50, (5000, 3))
    fig = viz.render_camera_rig(torch.tensor(E), points=points, highlight=2, max_points=300)
    (ax,) = fig.axes
    assert ax.name == "3d" and ax.get_xlabel() == "x [mm]" and ax.get_zlabel() == "z [mm]" and ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["points (300)", "cameras (4)", "highlighted (1)"]
    centres = geometry.camera_center(torch.tensor(E)).numpy()
    highlighted = np.array(ax.collections[-2]._offsets3d).T  # scatter of the highlighted centre
    np.testing.assert_allclose(highlighted, centres[[2]])
    with pytest.raises(ConfigError, match="highlight"):
        viz.render_camera_rig(E, highlight=7)


def test_views_from_sample_splits_a_batch():
    B, V = 2, 3
    sample = {
        "depth": torch.rand(B, V, H, W) + 1,
        "depth_init": torch.rand(B, V, H, W) + 1,
        "intrinsics": torch.eye(3).expand(B, V, 3, 3),
        "extrinsics": torch.zeros(B, V, 3, 4),
        "view_ids": torch.tensor([[5, 1, 9], [2, 3, 4]]),
        "depth_range": torch.tensor([[425.0, 935.0], [425.0, 935.0]]),
        "scene": "scan7",
    }
    refined = torch.rand(B, V, H, W)
    views = viz.views_from_sample(sample, index=0, depth_refined=refined)
    assert [v["view_id"] for v in views] == [5, 1, 9] and views[0]["scan"] == "scan7"
    np.testing.assert_allclose(views[1]["depth_refined"], refined[0, 1].numpy())
    assert views[2]["intrinsics"].shape == (3, 3) and views[0]["depth_range"] == (425.0, 935.0)


def test_views_from_sample_takes_a_multiview_batch():
    B, V = 2, 3
    sample = {
        "depth": torch.rand(B, V, H, W) + 1,
        "depth_init": torch.rand(B, V, H, W) + 1,
        "intrinsics": torch.eye(3).expand(B, V, 3, 3),
        "extrinsics": torch.zeros(B, V, 3, 4),
        "view_ids": torch.tensor([[5, 1, 9], [2, 3, 4]]),
        "depth_range": torch.tensor([[425.0, 935.0], [500.0, 800.0]]),
        "scene": "scan7",
    }
    batch = MultiViewBatch.from_mapping(sample)
    refined = torch.rand(B, V, H, W)
    from_dict = viz.views_from_sample(sample, index=1, depth_refined=refined)
    from_batch = viz.views_from_sample(batch, index=1, depth_refined=refined)
    assert [v["view_id"] for v in from_batch] == [2, 3, 4] and from_batch[0]["scan"] == "scan7"
    assert from_batch[0]["depth_range"] == (500.0, 800.0)
    for a, b in zip(from_dict, from_batch):
        assert a.keys() == b.keys()
        for key in ("depth", "depth_init", "depth_refined", "intrinsics", "extrinsics"):
            np.testing.assert_array_equal(a[key], b[key])
    # a batch without ground truth: the views come from depth_init
    no_gt = MultiViewBatch(sample["depth_init"], sample["intrinsics"], sample["extrinsics"], scene="scan7")
    views = viz.views_from_sample(no_gt)
    assert len(views) == V and "depth" not in views[0] and [v["view_id"] for v in views] == [0, 1, 2]
    with pytest.raises(ConfigError, match="index"):
        viz.views_from_sample(batch, index=B)


def test_figure_to_png_and_agg_only():
    fig = viz.render_depth_panel({"gt": np.full((4, 5), 600.0)}, "gt")
    png = viz.figure_to_png(fig, dpi=40)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # shows as a picture in Jupyter even when pyplot's inline backend was never set up
    assert isinstance(fig, viz.NotebookFigure) and fig._repr_png_().startswith(b"\x89PNG")
