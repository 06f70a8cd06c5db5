"""The DTU readers and DeltaZ's camera geometry on real DTU fragments (``DELTAZ_DTU_SAMPLE``).

The key test matches features between real scan24 images and measures how far each match lies from
the epipolar line that DeltaZ's own geometry (``decompose_projection`` + ``deltaz.core.geometry``)
predicts. Skipped when ``DELTAZ_DTU_SAMPLE`` is not set (see ``tests/conftest.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltaz.io.dtu.cameras import raw_to_training_camera
from deltaz.io.dtu.formats import decompose_projection, read_pair_file, read_pfm, read_projection
from deltaz.io.dtu.splits import scan_list
from deltaz.core.geometry import backproject_depth, camera_to_world, project_points, sample_pixels, world_to_camera

CALIB = "kysucix_gipuma/data/dtu/calib"
SCAN24 = "wqrray_nerf_baseline/data/dtu_scan24"


def _projection(sample, view_1based: int, variant: str = "3_r5000") -> np.ndarray:
    return read_projection(sample / CALIB / f"rect_{view_1based:03d}_{variant}.png.P")


def test_all_projections_decompose_and_reproduce(dtu_sample):
    for view in range(1, 65):
        path = dtu_sample / CALIB / f"rect_{view:03d}_3_r5000.png.P"
        assert b"\r\n" in path.read_bytes()  # the CRLF variant
        P = read_projection(path)
        K, R, t = decompose_projection(P)
        assert K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1 and K[1, 0] == K[2, 0] == K[2, 1] == 0
        assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        P_hat = K @ np.hstack([R, t[:, None]])
        scale = (P_hat.ravel() @ P.ravel()) / (P_hat.ravel() @ P_hat.ravel())
        assert np.abs(scale * P_hat - P).max() / np.abs(P).max() < 1e-6, view
        # DTU's rectified 1600x1200 images: principal point near the centre, square-ish pixels
        assert 600 < K[0, 2] < 1000 and 450 < K[1, 2] < 750 and abs(K[0, 0] / K[1, 1] - 1) < 0.01
        for variant in ("3_r7000", "6_r5000"):
            np.testing.assert_allclose(_projection(dtu_sample, view, variant), P, rtol=1e-12, atol=1e-9)


def test_training_camera_of_view_1(dtu_sample):
    K, E = raw_to_training_camera(_projection(dtu_sample, 1))
    assert K[0, 0] == pytest.approx(361.54, abs=0.01)
    assert K[0, 2] == pytest.approx(82.90, abs=0.01)
    assert K[1, 1] == pytest.approx(360.40, abs=0.01)
    assert K[1, 2] == pytest.approx(66.38, abs=0.01)
    # MVSNet's cam file for view 0 has the same world-to-camera pose (rounded to 6 digits there)
    np.testing.assert_allclose(E[:3, 3], [-191.02, 3.28832, 22.5401], atol=1e-2)
    np.testing.assert_allclose(E[2, :3], [-0.241605, -0.030951, 0.969881], atol=1e-6)


def test_neus_cameras_equal_gipuma_projections(dtu_sample):
    cameras = np.load(dtu_sample / SCAN24 / "cameras_sphere.npz", allow_pickle=False)
    for view in (0, 1, 10, 48):
        P_neus = cameras[f"world_mat_{view}"][:3]
        P = _projection(dtu_sample, view + 1)
        scale = (P_neus.ravel() @ P.ravel()) / (P_neus.ravel() @ P_neus.ravel())
        assert np.abs(scale * P_neus - P).max() / np.abs(P).max() < 1e-6


def test_pair_files(dtu_sample):
    pairs = read_pair_file(dtu_sample / "GabrielScheibler_mvsnerf/configs/dtu_pairs.txt")
    assert list(pairs) == list(range(49))
    assert all(len(sources) == 10 for sources in pairs.values())
    assert pairs[0][:2] == [(10, 2346.41), (1, 2036.53)]
    assert all(all(a[1] >= b[1] for a, b in zip(s, s[1:])) for s in pairs.values())  # best first
    sparse = read_pair_file(dtu_sample / "xxlong0_SparseNeuS/data/dtu/dtu_pairs.txt")
    assert len(sparse) == 46 and not {37, 38, 39} & set(sparse)
    assert min(len(s) for s in sparse.values()) < 10
    assert sparse[0] == pairs[0]


def test_real_depth_map(dtu_sample):
    path = dtu_sample / "ChikaYan_mvs_gaussian_splatting/depth_map_0000.pfm"
    depth = read_pfm(path)
    assert depth.shape == (128, 160) and depth.dtype == np.float32
    valid = depth > 0
    assert 500 < depth[valid].min() and depth[valid].max() < 770
    assert 0.66 < valid.mean() < 0.70
    # right way up: the file stores the bottom row first ...
    data = path.read_bytes()
    header_end = data.index(b"\n", data.index(b"\n", data.index(b"\n") + 1) + 1) + 1
    first_stored_row = np.frombuffer(data, dtype="<f4", count=160, offset=header_end)
    np.testing.assert_array_equal(depth[-1], first_stored_row)
    assert not np.array_equal(depth[0], first_stored_row)
    # ... and the result looks like DTU: the object on its table fills the bottom of the image, the
    # unscanned backdrop is at the top (row 0 holds no depth at all).
    assert not valid[0].any()
    assert valid[:32].mean() < 0.4 < 0.8 < valid[-32:].mean()


def test_split_lists_match_mvsnet(dtu_sample):
    for split in ("train", "val", "test"):
        for repo in ("xy-guo_MVSNet_pytorch/lists/dtu", "alibaba_cascade-stereo/CasMVSNet/lists/dtu"):
            names = (dtu_sample / repo / f"{split}.txt").read_text().split()
            assert names == scan_list(split), (repo, split)


# ---------------------------------------------------------------------------------- epipolar geometry

SCALE = 0.5  # features are found on half-size images for speed; coordinates are mapped back
RAW_H, RAW_W = 1200, 1600


def _camera(sample, view: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K (3, 3) and world-to-camera E (3, 4) of 0-based DTU ``view`` from the gipuma P matrix."""
    K, R, t = decompose_projection(_projection(sample, view + 1))
    return torch.tensor(K), torch.tensor(np.hstack([R, t[:, None]]))


@pytest.fixture(scope="module")
def scan24_features(dtu_sample):
    cv2 = pytest.importorskip("cv2")
    cv2.setNumThreads(2)
    sift = cv2.SIFT_create(nfeatures=3000)
    features = {}
    for view in (0, 1, 10):
        image = cv2.imread(str(dtu_sample / SCAN24 / "images" / f"{view:06d}.png"), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (RAW_H, RAW_W)
        small = cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
        features[view] = sift.detectAndCompute(small, None)
    return features


def _matches(features, view_a: int, view_b: int) -> tuple[np.ndarray, np.ndarray]:
    """SIFT + ratio test + RANSAC(F) inliers, in full-resolution pixel coordinates (centre convention)."""
    import cv2

    keys_a, desc_a = features[view_a]
    keys_b, desc_b = features[view_b]
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_a, desc_b, k=2)
    good = [m for m, n in knn if m.distance < 0.75 * n.distance]
    # a half-size pixel centre u' covers full-size pixels 2u', 2u'+1: its centre is 2u' + 0.5
    offset = (1 / SCALE - 1) / 2
    pts_a = np.float64([keys_a[m.queryIdx].pt for m in good]) / SCALE + offset
    pts_b = np.float64([keys_b[m.trainIdx].pt for m in good]) / SCALE + offset
    # OpenCV's F only rejects wrong matches; the distances below use DeltaZ's own cameras
    _, inliers = cv2.findFundamentalMat(pts_a, pts_b, cv2.FM_RANSAC, 2.0, 0.999)
    inliers = inliers.ravel().astype(bool)
    return pts_a[inliers], pts_b[inliers]


def _epipolar_distances(pts_a, pts_b, K_a, E_a, K_b, E_b) -> np.ndarray:
    """Distance (px) of each ``pts_b`` from the epipolar line of ``pts_a``, by DeltaZ's geometry.

    Each pixel of view A is backprojected at 400 mm and 1000 mm (rays from ``backproject_depth`` of
    a unit depth map, read at the sub-pixel match with ``sample_pixels`` — exact, rays are affine in
    (u, v)); both points go to the world and into view B; the line through them is the epipolar line.
    """
    rays = backproject_depth(torch.ones(1, RAW_H, RAW_W, dtype=torch.float64), K_a[None])  # (1, H, W, 3)
    uv_a = torch.tensor(pts_a)[None, None]  # (1, 1, N, 2)
    rays_at = sample_pixels(rays.permute(0, 3, 1, 2), uv_a)[0, :, 0].T  # (N, 3), z == 1
    ends = []
    for depth_mm in (400.0, 1000.0):
        points_world = camera_to_world(depth_mm * rays_at, E_a)
        uv_b, z_b = project_points(world_to_camera(points_world, E_b), K_b)
        assert (z_b > 0).all()
        ends.append(uv_b.numpy())
    direction = ends[1] - ends[0]
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return np.abs(((pts_b - ends[0]) * normal).sum(axis=1))


@pytest.mark.parametrize("view_a, view_b", [(0, 1), (0, 10)])
def test_epipolar_error_on_real_scan24(dtu_sample, scan24_features, view_a, view_b):
    pts_a, pts_b = _matches(scan24_features, view_a, view_b)
    assert len(pts_a) >= 40, f"only {len(pts_a)} matches"
    distances = _epipolar_distances(pts_a, pts_b, *_camera(dtu_sample, view_a), *_camera(dtu_sample, view_b))
    median = float(np.median(distances))
    print(
        f"\nscan24 views ({view_a}, {view_b}): {len(pts_a)} matches, median epipolar distance "
        f"{median:.3f} px, 90th percentile {np.percentile(distances, 90):.3f} px (1600x1200 pixels)"
    )
    assert median < 2.0
    # the check is sensitive: the camera of another view (or a camera-to-world mix-up) is far off
    wrong_view = {1: 10, 10: 1}[view_b]
    wrong = _epipolar_distances(pts_a, pts_b, *_camera(dtu_sample, view_a), *_camera(dtu_sample, wrong_view))
    assert np.median(wrong) > 10 * max(median, 1.0)
