"""The synthetic DTU-like generator: rig, exact z-depth, multi-view consistency, files, determinism."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from deltaz.io.dtu.cameras import raw_to_training_camera
from deltaz.io.dtu.formats import read_cam_file, read_pair_file, read_pfm, read_projection
from deltaz.core.errors import ConfigError
from deltaz.core.geometry import backproject_depth, camera_to_world, project_points, reproject, sample_pixels
from deltaz.io.synthetic import (
    Scene,
    Solid,
    Texture,
    dataset_cameras,
    generate_dataset,
    make_rig,
    make_scan_scene,
    render_depth,
    render_rays,
    render_view,
    rig_from_calibration,
    select_pairs,
    shade_lights,
    view_scores,
)
from deltaz.io.synthetic.rig import DEPTH_MAX_MM, DEPTH_MIN_MM, RIG_RADIUS_MM, TARGET_HEIGHT_MM, dtu_intrinsics
from deltaz.io.synthetic.writer import cam_path, encode_png

H, W = 128, 160
TINY = dict(n_scans=1, n_views=5, n_lights=2, width=160, height=128, progress=False, workers=1)


def _texture() -> Texture:
    return Texture("checker", np.full(3, 0.8), np.full(3, 0.2), 10.0, np.array([1.0, 0, 0]), 0.0, 2.0, np.zeros(3))


def _one_solid_scene(shape: str, center, half_size, rotation=None) -> Scene:
    solid = Solid(shape, np.asarray(center, float), np.eye(3) if rotation is None else rotation,
                  np.asarray(half_size, float), _texture())
    return Scene([solid], np.zeros((4, 4, 4), np.float32))


def _rays(K: np.ndarray, uv: torch.Tensor) -> torch.Tensor:
    """Camera rays K⁻¹·[u, v, 1] (z = 1) through arbitrary pixel positions uv (..., 2)."""
    Kinv = torch.as_tensor(np.linalg.inv(K), dtype=torch.float64)
    homog = torch.cat([uv.double(), torch.ones_like(uv[..., :1]).double()], dim=-1)
    rays = homog @ Kinv.T
    return rays / rays[..., 2:3]


# ------------------------------------------------------------------------------------------ the rig


def test_rig_looks_at_the_target_from_dtu_distance():
    E = make_rig(49)
    K = dtu_intrinsics()
    assert E.shape == (49, 3, 4)
    R, t = E[:, :, :3], E[:, :, 3]
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)
    centers = -np.einsum("nji,nj->ni", R, t)
    target = np.array([0, 0, TARGET_HEIGHT_MM])
    assert np.allclose(np.linalg.norm(centers - target, axis=1), RIG_RADIUS_MM)
    assert (centers[:, 2] > TARGET_HEIGHT_MM + 200).all()  # all above the table, like DTU's arm
    # the target projects to the principal point in every view
    uv, z = project_points(torch.as_tensor(R @ target + t), torch.as_tensor(K).expand(49, 3, 3))
    assert torch.allclose(uv, torch.tensor([K[0, 2], K[1, 2]], dtype=uv.dtype).expand(49, 2), atol=1e-9)
    # serpentine rows: consecutive views are neighbours
    steps = np.degrees(np.arccos(np.clip(
        ((centers[1:] - target) * (centers[:-1] - target)).sum(1) / RIG_RADIUS_MM**2, -1, 1)))
    assert np.median(steps) < 15 and steps.max() < 35


def test_dtu_intrinsics_scale_with_the_image():
    K = dtu_intrinsics()
    assert np.allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], [361.54, 360.40, 82.90, 66.38])
    assert np.allclose(dtu_intrinsics(640, 512)[:2], 4 * K[:2])


# --------------------------------------------------------------------------------- exact z-depth


def test_depth_of_a_sphere_is_the_analytic_z_depth():
    K, E = dtu_intrinsics(), make_rig(5)[2]
    center, radius = np.array([10.0, -20.0, 60.0]), 90.0
    depth = render_depth(_one_solid_scene("ellipsoid", center, [radius] * 3), K, E, H, W)
    # independent closed form per pixel centre: |z·r − c_cam|² = ρ² with r = K⁻¹[u, v, 1]
    c = E[:, :3] @ center + E[:, 3]
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    r = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    a, b, cc = (r * r).sum(-1), (r * c).sum(-1), c @ c - radius**2
    disc = b * b - a * cc
    expected = np.where(disc >= 0, (b - np.sqrt(np.clip(disc, 0, None))) / a, 0.0)
    hit = disc > 1e-3 * b * b  # leave out grazing silhouette pixels
    assert hit.mean() > 0.2
    assert ((depth > 0) == (disc >= 0)).mean() > 0.999
    assert np.abs(depth[hit] - expected[hit]).max() < 1e-3
    # the z of the backprojected point is the depth, and the point lies on the sphere
    points = backproject_depth(torch.as_tensor(depth, dtype=torch.float64), torch.as_tensor(K))
    world = camera_to_world(points[torch.as_tensor(hit)], torch.as_tensor(E))
    distance = (world - torch.as_tensor(center)).norm(dim=-1)
    assert torch.allclose(distance, torch.tensor(radius, dtype=torch.float64), atol=1e-3)


def test_a_fronto_parallel_box_face_has_constant_depth():
    # camera at the origin looking down +z; a box whose near face is the plane z = 600
    E = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)
    scene = _one_solid_scene("box", [0.0, 0.0, 700.0], [500.0, 500.0, 100.0])
    depth = render_depth(scene, dtu_intrinsics(), E, H, W)
    assert np.all(depth == np.float32(600.0))


@pytest.mark.parametrize("shape", ["ellipsoid", "box", "cylinder", "capsule"])
def test_every_shape_renders_inside_dtu_range(shape):
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    scene = _one_solid_scene(shape, [0.0, 0.0, 50.0], [60.0, 40.0, 30.0], rotation)
    for E in make_rig(4):
        depth = render_depth(scene, dtu_intrinsics(), E, H, W)
        valid = depth[depth > 0]
        assert valid.size > 500
        assert valid.min() > 608 - 95 and valid.max() < 608 + 95  # bounding radius <= 90 mm


def test_random_scenes_stay_inside_dtu_depth_range_and_fill_the_frame():
    K, E = dataset_cameras(49)[:2]
    for scan in (1, 2, 3):
        scene = make_scan_scene(0, scan)
        for view_id in (0, 24, 48):
            depth = render_depth(scene, K[view_id], E[view_id], H, W)
            valid = depth[depth > 0]
            assert 0.3 < valid.size / depth.size <= 1.0
            assert valid.min() >= DEPTH_MIN_MM and valid.max() <= DEPTH_MAX_MM
            assert np.isfinite(depth).all()


# ------------------------------------------------------------------------ multi-view consistency


def _consistency(scene, K, E_ref, E_src, depth_ref, tol_mm=0.5):
    """(consistent share of co-visible points, occluded share, co-visible count, consistent share of all).

    Every valid pixel of the reference depth map is backprojected with the geometry helpers and
    projected into the source camera; the renderer then casts the source ray through that exact
    sub-pixel position. If the first surface on that ray is nearer than the point (by more than
    ``tol_mm``), the point is occluded in the source view; otherwise it is co-visible and the first hit
    must be the point itself. A wrong z-depth convention, ray scaling, pixel-centre offset or extrinsic
    direction makes co-visible points disagree; a depth that is too far makes points look hidden, which
    the share of *all* points that are consistent exposes.
    """
    d = torch.as_tensor(depth_ref, dtype=torch.float64)
    Kt = torch.as_tensor(K)
    uv, z, valid = reproject(d, Kt, torch.as_tensor(E_ref), Kt, torch.as_tensor(E_src))
    uv, z = uv[valid], z[valid]
    seen = render_rays(scene, E_src, _rays(K, uv))
    occluded = (seen > 0) & (seen < z - tol_mm)
    covisible = ~occluded
    consistent = covisible & ((seen - z).abs() <= tol_mm)
    n = max(int(covisible.sum()), 1)
    share_all = float(consistent.float().mean())
    return float(consistent.sum()) / n, float(occluded.float().mean()), int(covisible.sum()), share_all


def test_ground_truth_is_multi_view_consistent():
    K, E = dataset_cameras(49)[:2]
    scene = make_scan_scene(7, 1)
    views = [0, 3, 24, 40]
    depths = {v: render_depth(scene, K[v], E[v], H, W) for v in views}
    occlusion_seen = 0.0
    for ref in views:
        for src in views:
            if src == ref:
                continue
            consistent, occluded, n, share_all = _consistency(scene, K[ref], E[ref], E[src], depths[ref])
            assert n > 2000, (ref, src)
            assert consistent >= 0.99, (ref, src, consistent)
            assert share_all >= 0.99 - occluded
            occlusion_seen = max(occlusion_seen, occluded)
    assert occlusion_seen > 0.01  # the scenes do hold occlusions, so the test has something to exclude


def test_consistency_check_catches_a_wrong_camera():
    K, E = dataset_cameras(49)[:2]
    scene = make_scan_scene(7, 1)
    depth = render_depth(scene, K[0], E[0], H, W)
    good = _consistency(scene, K[0], E[0], E[1], depth)
    assert good[0] >= 0.99 and good[3] >= 0.9  # views 0 and 1 are neighbours: little occlusion
    angle = np.radians(0.5)  # half a degree of yaw in the reference camera
    yaw = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    E_wrong = np.concatenate([yaw @ E[0][:, :3], (yaw @ E[0][:, 3])[:, None]], axis=1)
    assert _consistency(scene, K[0], E_wrong, E[1], depth)[0] < 0.5
    euclidean = depth * np.sqrt(1 + ((np.arange(W) - K[0, 0, 2]) / K[0, 0, 0]) ** 2)[None, :]  # ray length, not z
    assert _consistency(scene, K[0], E[0], E[1], euclidean.astype(np.float32))[3] < 0.5


# ------------------------------------------------------------------------------- images, lights


def test_images_have_texture_edges_and_lights_differ():
    K, E = dataset_cameras(49)[:2]
    scene = make_scan_scene(0, 2)
    view = render_view(scene, K[10], E[10], H, W)
    assert np.allclose(view["depth"][view["mask"]], render_depth(scene, K[10], E[10], H, W)[view["mask"]], atol=0.1)
    images = shade_lights(view, range(7))
    gray = [im.astype(np.float32).mean(-1) for im in images]
    assert images[0].shape == (H, W, 3) and images[0].dtype == np.uint8
    assert all(np.abs(gray[i] - gray[j]).mean() > 2 for i in range(7) for j in range(i))
    assert gray[3].mean() == max(g.mean() for g in gray)  # light 3: all lamps on, like DTU
    # strong image edges where the depth is smooth: texture, not geometry
    depth = view["depth"]
    gx_img = np.abs(np.diff(gray[3], axis=1))
    gx_depth = np.abs(np.diff(depth, axis=1))
    both_valid = view["mask"][:, 1:] & view["mask"][:, :-1]
    texture_edges = (gx_img > 25) & (gx_depth < 1.0) & both_valid
    assert texture_edges.mean() > 0.01
    # a surface point has the same colour in two views (Lambertian, lights fixed in the scene)
    view2 = render_view(scene, K[11], E[11], H, W)
    img2 = shade_lights(view2, [3])[0].astype(np.float32)
    d = torch.as_tensor(depth, dtype=torch.float64)
    Kt, Et = torch.as_tensor(K), torch.as_tensor(E)
    uv, _, valid = reproject(d, Kt[10], Et[10], Kt[11], Et[11])
    warped = sample_pixels(torch.as_tensor(img2).permute(2, 0, 1)[None].double(), uv[None].double(), mode="nearest")[0]
    diff = (warped.permute(1, 2, 0).numpy() - images[3].astype(np.float32))[valid.numpy()]
    assert np.median(np.abs(diff)) < 12  # same colours up to sampling and occlusions


# ------------------------------------------------------------------------------------------- files


def test_png_encoder_round_trips():
    image = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(image)))), image)


def test_generate_dataset_writes_dtu_training_layout(tmp_path):
    out = generate_dataset(tmp_path / "synth", seed=3, **TINY)
    cams = sorted((out / "Cameras" / "train").iterdir())
    assert [p.name for p in cams] == [f"{v:08d}_cam.txt" for v in range(5)]
    depths = sorted((out / "Depths" / "scan1_train").iterdir())
    assert [p.name for p in depths] == [f"depth_map_{v:04d}.pfm" for v in range(5)]
    images = sorted(p.name for p in (out / "Rectified" / "scan1_train").iterdir())
    assert images == sorted(f"rect_{v + 1:03d}_{light}_r5000.png" for v in range(5) for light in range(2))
    assert not list(out.rglob("*.tmp"))
    assert json.loads((out / "synth.json").read_text())["seed"] == 3

    cam = read_cam_file(cams[0])
    assert np.allclose(cam.intrinsics, dtu_intrinsics())
    # the realistic scan's own cam files carry its measured depth range (192 planes at 1.06 x interval)
    valid = np.concatenate([read_pfm(p)[read_pfm(p) > 0] for p in depths])
    for path in (out / "Cameras" / "scan1_train").iterdir():
        scan_cam = read_cam_file(path)
        assert scan_cam.depth_num == 192
        assert scan_cam.depth_max == pytest.approx(scan_cam.depth_min + 191 * 1.06 * scan_cam.depth_interval, abs=0.02)
        assert scan_cam.depth_min <= valid.min() and scan_cam.depth_max >= valid.max()
        assert scan_cam.depth_max - scan_cam.depth_min < 1.1 * (valid.max() - valid.min()) + 2
        assert np.allclose(scan_cam.extrinsics, read_cam_file(cam_path(out, int(path.name[:8]))).extrinsics)
    assert (cam.depth_min, cam.depth_max) == (scan_cam.depth_min, scan_cam.depth_max)  # one scan: the union is it
    classic = generate_dataset(tmp_path / "classic", seed=3, style="classic", **TINY)
    cam = read_cam_file(cam_path(classic, 0))
    assert (cam.depth_min, cam.depth_interval, cam.depth_num) == (425.0, 2.5, 192)
    assert cam.depth_max == pytest.approx(931.15)
    assert not (classic / "Cameras" / "scan1_train").exists()
    image = np.asarray(Image.open(out / "Rectified" / "scan1_train" / "rect_001_0_r5000.png"))
    assert image.shape == (128, 160, 3) and image.dtype == np.uint8

    pairs = read_pair_file(out / "Cameras" / "pair.txt")
    assert sorted(pairs) == list(range(5))
    assert all(len(src) == 4 and [s for s, _ in src] != [] for src in pairs.values())
    assert all(scores == sorted(scores, reverse=True) for scores in ([s for _, s in src] for src in pairs.values()))

    # the files agree with each other: co-visible pixels land on the other view's stored depth
    K = np.stack([read_cam_file(p).intrinsics for p in cams])
    E = np.stack([read_cam_file(p).extrinsics for p in cams])
    depth = np.stack([read_pfm(p) for p in depths])
    assert depth.shape == (5, 128, 160) and depth.dtype == np.float32
    for ref, src in [(0, 1), (1, 0), (2, 4), (4, 3)]:
        d = torch.as_tensor(depth[ref])
        uv, z, valid = reproject(d, torch.as_tensor(K[ref]).float(), torch.as_tensor(E[ref]).float(),
                                 torch.as_tensor(K[src]).float(), torch.as_tensor(E[src]).float())
        src_depth = torch.as_tensor(depth[src])[None, None]
        near = sample_pixels(src_depth, uv[None], mode="bilinear")[0, 0]
        # bilinear sampling is exact enough where the 4x4 pixels around uv are valid and free of jumps
        # (neighbours differ by < 4 mm: slanted planes pass, depth discontinuities do not)
        padded = torch.nn.functional.pad(src_depth, (1, 1, 1, 1))[0, 0]
        big = torch.tensor(1e9)
        invalid = padded <= 0
        jx = torch.where(invalid[:, 1:] | invalid[:, :-1], big, (padded[:, 1:] - padded[:, :-1]).abs())
        jy = torch.where(invalid[1:] | invalid[:-1], big, (padded[1:] - padded[:-1]).abs())
        jump = torch.maximum(
            torch.nn.functional.pad(jx, (0, 1), value=1e9), torch.nn.functional.pad(jy, (0, 0, 0, 1), value=1e9)
        )
        worst = torch.nn.functional.max_pool2d(jump[None, None], (4, 4), 1)[0, 0]  # (H - 1, W - 1)
        u0 = uv[..., 0].floor().clamp(0, 158).long()
        v0 = uv[..., 1].floor().clamp(0, 126).long()
        smooth = valid & (worst[v0, u0] < 4.0)
        covisible = smooth & (z <= near + 2.0)  # not hidden behind what the source sees
        assert covisible.sum() > 1000  # realistic scenes: many depth edges (thin things, walls)
        assert ((z - near).abs() <= 0.5)[covisible].float().mean() >= 0.99


def test_same_seed_gives_byte_identical_output(tmp_path):
    a = generate_dataset(tmp_path / "a", seed=11, **TINY)
    b = generate_dataset(tmp_path / "b", seed=11, **{**TINY, "workers": 2})
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 5 + 5 + 1 + 5 + 10 + 1
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    c = generate_dataset(tmp_path / "c", seed=12, **TINY)
    first = "Depths/scan1_train/depth_map_0000.pfm"
    assert (c / first).read_bytes() != (a / first).read_bytes()


def test_rerun_renders_only_missing_views_and_refuses_other_settings(tmp_path):
    out = generate_dataset(tmp_path / "s", seed=5, **TINY)
    depth_file = out / "Depths/scan1_train/depth_map_0002.pfm"
    kept = out / "Depths/scan1_train/depth_map_0001.pfm"
    original, kept_mtime = depth_file.read_bytes(), kept.stat().st_mtime_ns
    (out / "Rectified/scan1_train/rect_003_1_r5000.png").unlink()
    generate_dataset(out, seed=5, **TINY)
    assert (out / "Rectified/scan1_train/rect_003_1_r5000.png").exists()
    assert depth_file.read_bytes() == original
    assert kept.stat().st_mtime_ns == kept_mtime  # complete views are not rewritten
    with pytest.raises(ConfigError, match="seed"):
        generate_dataset(out, seed=6, **TINY)
    generate_dataset(out, seed=6, overwrite=True, **TINY)
    assert depth_file.read_bytes() != original


def test_bad_settings_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="n_views"):
        generate_dataset(tmp_path / "x", seed=0, **{**TINY, "n_views": 1})
    with pytest.raises(ConfigError, match="n_lights"):
        generate_dataset(tmp_path / "x", seed=0, **{**TINY, "n_lights": 0})


def test_cli_synth(tmp_path, capsys):
    from deltaz.apps.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--scans", "2", "--views", "3", "--lights", "1",
                 "--width", "160", "--height", "128", "--quiet", "--workers", "1"]) == 0
    assert (out / "Depths/scan2_train/depth_map_0002.pfm").exists()
    assert (out / "Rectified/scan2_train/rect_003_0_r5000.png").exists()
    assert main(["synth", "--out", str(out), "--scans", "2", "--views", "1", "--quiet"]) == 2
    assert "n_views" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- pairs


def test_pairs_prefer_overlapping_neighbours():
    K, E = dataset_cameras(49)[:2]
    scene = make_scan_scene(0, 1)
    views = list(range(0, 49, 4))
    depths = np.stack([render_depth(scene, K[v], E[v], H, W) for v in views])
    scores = view_scores(depths, K[views], E[views])
    assert scores.shape == (len(views),) * 2 and np.all(np.diag(scores) == 0)
    assert scores.min() >= 0 and scores.max() <= 1
    pairs = select_pairs(scores, n_src=10)
    centers = -np.einsum("nji,nj->ni", E[views][:, :, :3], E[views][:, :, 3])
    for ref, sources in pairs.items():
        assert len(sources) == 10 and ref not in [s for s, _ in sources]
        nearest = np.argsort(np.linalg.norm(centers - centers[ref], axis=1))[1]
        assert sources[0][0] == nearest or sources[1][0] == nearest  # the closest camera is among the top 2


# -------------------------------------------------------------------------------- real calibration


@pytest.mark.real_data
def test_calibration_renders_from_real_dtu_cameras(dtu_sample, tmp_path):
    calib = dtu_sample / "kysucix_gipuma" / "data" / "dtu" / "calib"
    K, E, scene_to_world = rig_from_calibration(calib, 49)
    assert np.allclose([K[0, 0, 0], K[0, 1, 1], K[0, 0, 2], K[0, 1, 2]], [361.54, 360.40, 82.90, 66.38], atol=0.01)
    K1, E1 = raw_to_training_camera(read_projection(calib / "rect_001_3_r5000.png.P"))
    assert np.allclose(E[0], E1[:3]) and np.allclose(K[0], K1)
    # the target (50 mm above the table origin) projects near the principal point of every camera
    target = scene_to_world @ np.array([0, 0, TARGET_HEIGHT_MM, 1.0])
    cam = np.einsum("nij,j->ni", E[:, :, :3], target) + E[:, :, 3]
    uv = cam[:, :2] / cam[:, 2:] * K[:, [0, 1], [0, 1]] + K[:, :2, 2]
    assert np.abs(uv - K[:, :2, 2]).max() < 15
    assert np.allclose(cam[:, 2], RIG_RADIUS_MM, atol=5)

    out = generate_dataset(tmp_path / "calib", seed=0, calibration=calib, style="classic",
                           **{**TINY, "n_views": 3, "n_lights": 1})
    for v in range(3):
        cam_file = read_cam_file(out / "Cameras" / "train" / f"{v:08d}_cam.txt")
        assert np.allclose(cam_file.extrinsics[:3], E[v]) and np.allclose(cam_file.intrinsics, K[v])
        depth = read_pfm(out / "Depths" / "scan1_train" / f"depth_map_{v:04d}.pfm")
        valid = depth[depth > 0]
        assert valid.size > 0.3 * depth.size and valid.min() >= 425 and valid.max() <= 931.15
    # the realistic style renders from the real cameras too; its depths lie inside its own cam range
    real = generate_dataset(tmp_path / "calib_real", seed=0, calibration=calib, **{**TINY, "n_views": 3, "n_lights": 1})
    for v in range(3):
        depth = read_pfm(real / "Depths" / "scan1_train" / f"depth_map_{v:04d}.pfm")
        cam_file = read_cam_file(real / "Cameras" / "scan1_train" / f"{v:08d}_cam.txt")
        assert np.allclose(cam_file.extrinsics[:3], E[v])
        valid = depth[depth > 0]
        assert valid.size > 0.3 * depth.size
        assert cam_file.depth_min <= valid.min() and valid.max() <= cam_file.depth_max


# ------------------------------------------------------------------------------------- realistic style

from deltaz.io.synthetic.lighting import RenderOptions, render_images, shadow_mask  # noqa: E402
from deltaz.io.synthetic.photo import PHOTOS, photo_texels  # noqa: E402

BARE = RenderOptions(supersample=1, shadows=True, specular=False, camera=False)
DOWN = np.concatenate([np.diag([1.0, -1.0, -1.0]), [[0.0], [0.0], [600.0]]], axis=1)  # at z = 600, looking down


def _plain(value: float) -> Texture:
    return Texture("plain", np.full(3, value), np.full(3, value), 10.0, np.array([1.0, 0, 0]), 0.0, 2.0, np.zeros(3))


def _real_scene(solids, lamp=(0.0, 0.0, 1.0)) -> Scene:
    lamps = np.tile(np.asarray(lamp, float) / np.linalg.norm(lamp), (6, 1))
    return Scene(solids, np.zeros((4, 4, 4), np.float32), style="real", lamps=lamps, ambient=0.1)


def test_a_point_occluded_from_a_light_is_darker_than_a_lit_one():
    floor = Solid("box", np.array([0.0, 0, -5]), np.eye(3), np.array([400.0, 400, 5]), _plain(0.6))
    ball = Solid("ellipsoid", np.array([0.0, 0, 80]), np.eye(3), np.full(3, 30.0), _plain(0.6))
    scene = _real_scene([floor, ball], lamp=(1.0, 0.0, 1.0))  # lamp up and to +x: the shadow falls to -x
    K = dtu_intrinsics()
    image = render_images(scene, K, DOWN, H, W, [0], options=BARE)[0].astype(float).mean(-1)
    no_shadow = render_images(scene, K, DOWN, H, W, [0], options=BARE.__class__(supersample=1, shadows=False,
                                                                                 specular=False, camera=False))[0]

    def pixel(x, y):  # a floor point (x, y, 0) seen from the camera above
        cam = DOWN[:, :3] @ np.array([x, y, 0.0]) + DOWN[:, 3]
        return int(round(K[1, 1] * cam[1] / cam[2] + K[1, 2])), int(round(K[0, 0] * cam[0] / cam[2] + K[0, 2]))

    shaded, lit = pixel(-80.0, 0.0), pixel(-80.0, 90.0)  # the ball hides (-80, 0) from the lamp, not (-80, 90)
    assert image[shaded] < 0.6 * image[lit]
    assert abs(float(no_shadow[shaded].mean()) - float(no_shadow[lit].mean())) <= 1  # same albedo and cosine
    points = np.array([[-80.0, -80.0], [0.0, 90.0], [0.0, 0.0]], dtype=np.float32)
    lamp = np.array([1.0, 0, 1]) / np.sqrt(2)
    assert shadow_mask(scene, points, np.zeros(2, np.int64), lamp).tolist() == [True, False]
    assert not shadow_mask(scene, points, np.ones(2, np.int64), lamp).any()  # never shadowed by its own solid


def test_supersampling_gives_edge_pixels_intermediate_values():
    floor = Solid("box", np.array([0.0, 0, -5]), np.eye(3), np.array([400.0, 400, 5]), _plain(0.05))
    angle = np.radians(17.0)  # an edge that is not pixel-aligned
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    box = Solid("box", np.array([0.0, 0, 20]), rot, np.array([60.0, 60, 20]), _plain(0.9))
    scene = _real_scene([floor, box])
    K = dtu_intrinsics()
    levels = {}
    for factor in (1, 4):
        options = RenderOptions(supersample=factor, shadows=False, specular=False, camera=False)
        gray = render_images(scene, K, DOWN, H, W, [0], options=options)[0][..., 1]
        low, high = np.percentile(gray, 1), np.percentile(gray, 99)
        levels[factor] = ((gray > low + 10) & (gray < high - 10)).sum()
    assert levels[1] == 0  # without supersampling every pixel is either box or floor
    assert levels[4] > 100  # with 4x4 samples the edge pixels mix both
    # the depth map is never supersampled: still the exact z of the box top or the floor
    depth = render_depth(scene, K, DOWN, H, W)
    assert set(np.unique(depth)) <= {np.float32(560.0), np.float32(600.0)}


def test_photographic_textures_come_from_the_photos():
    assert {"brick", "grass", "gravel", "coffee", "astronaut"} <= set(PHOTOS)
    texels = photo_texels("camera")
    assert texels.shape == (512, 512, 3) and texels.dtype == np.float32 and 0 <= texels.min() < texels.max() <= 1
    # a fronto-parallel box face with one texel per pixel shows the photo itself
    K = dtu_intrinsics()
    texel_mm = 600.0 / K[0, 0]
    photo = Texture("photo", np.ones(3), np.ones(3), texel_mm, np.array([1.0, 0, 0]), 0.0, 2.0, np.zeros(3),
                    photo="camera", angle=0.0)
    box = Solid("box", np.array([0.0, 0, -50]), np.eye(3), np.array([300.0, 300, 50]), photo)
    albedo = render_view(_real_scene([box]), K, DOWN, H, W)["albedo"][..., 0]
    # pixel (u, v) sees x = (u - cx)·texel, y = -(v - cy)·texel on the top face (z faces map (x, y))
    v, u = np.mgrid[0:H, 0:W]
    cols = np.mod(np.floor((u - K[0, 2]) * 600 / K[0, 0] / texel_mm).astype(int), 512)
    rows = np.mod(np.floor(-(v - K[1, 2]) * 600 / K[1, 1] / texel_mm).astype(int), 512)
    expected = texels[rows, cols, 0]
    assert np.corrcoef(albedo.ravel(), expected.ravel())[0, 1] > 0.9
    # realistic scenes mix photos, plain (texture-less) and procedural textures
    kinds = [s.texture.kind for scan in range(1, 7) for s in make_scan_scene(0, scan, style="real").solids]
    assert {"photo", "plain"} <= set(kinds) and set(kinds) & {"checker", "stripes", "noise", "spots"}


def test_realistic_images_differ_from_classic_ones():
    K, E = dataset_cameras(49)[:2]
    classic = shade_lights(render_view(make_scan_scene(0, 2), K[24], E[24], H, W), [3])[0].astype(float)
    scene = make_scan_scene(0, 2, style="real")
    fast = RenderOptions(supersample=1, shadows=False)
    real = render_images(scene, K[24], E[24], H, W, [0], (0, 2, 24), fast)[0].astype(float)

    def flat_share(image):  # share of pixels whose 3x3 neighbourhood is nearly flat
        g = image.mean(-1)
        return float((np.abs(np.diff(g, axis=1))[:-1] + np.abs(np.diff(g, axis=0))[:, :-1] < 2).mean())

    # sensor noise: no perfectly flat regions left; photos: a spread of gradient magnitudes
    assert flat_share(real) < flat_share(classic)
    noise_free = render_images(scene, K[24], E[24], H, W, [0], options=RenderOptions(1, False, True, False))[0]
    assert np.abs(noise_free.astype(float) - real).mean() > 1
    # per-view camera effects: the same view under another key gets another exposure/noise
    other = render_images(scene, K[24], E[24], H, W, [0], (0, 2, 25), fast)[0]
    assert not np.array_equal(other, real.astype(np.uint8))


def test_realistic_scenes_vary_in_depth_range_and_hold_walls_and_thin_structures():
    K, E = dataset_cameras(49)[:2]
    ranges, thin, walls = [], 0, 0
    for scan in range(1, 9):
        scene = make_scan_scene(0, scan, style="real")
        thin += sum(s.half_size.min() <= 4.0 for s in scene.solids)
        walls += sum(s.shape == "box" and s.half_size[2] > 100 and s.half_size.min() <= 10 for s in scene.solids)
        depth = render_depth(scene, K[24], E[24], H, W)
        valid = depth[depth > 0]
        assert valid.size > 0.5 * depth.size and valid.min() > 150
        ranges.append((valid.min(), valid.max()))
    lows, highs = np.array(ranges).T
    assert thin >= 3 and walls >= 3
    assert lows.max() - lows.min() > 80 and highs.max() - highs.min() > 150  # not one table at 600 mm


def test_bad_render_options_are_one_config_error_line(tmp_path, capsys):
    from deltaz.apps.cli import main

    with pytest.raises(ConfigError, match="style"):
        generate_dataset(tmp_path / "x", seed=0, style="fancy", **TINY)
    with pytest.raises(ConfigError, match="supersample"):
        generate_dataset(tmp_path / "x", seed=0, supersample=0, **TINY)
    assert main(["synth", "--out", str(tmp_path / "y"), "--scans", "1", "--views", "2", "--supersample", "9",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "supersample" in err and "\n" not in err
