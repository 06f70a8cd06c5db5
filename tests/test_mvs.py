"""deltaz.ops.mvs: plane sweep accuracy on an exactly rendered textured plane, chunk invariance, the geometric
filter, the scan cache (write / reuse / recompute / atomic), CPU vs CUDA, and errors for bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from deltaz.core import geometry as g
from deltaz.ops import mvs
from deltaz.core.errors import ConfigError, DataError
from tests._tiny_scans import make_scan

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 64, 80
DEPTH_MIN, DEPTH_MAX, PLANES = 480.0, 720.0, 24
SPACING = (DEPTH_MAX - DEPTH_MIN) / (PLANES - 1)


def look_at(centre, target) -> torch.Tensor:
    """World-to-camera (3, 4) for a camera at ``centre`` looking at ``target``, image +y down."""
    centre, target = torch.as_tensor(centre, dtype=torch.float64), torch.as_tensor(target, dtype=torch.float64)
    z = torch.nn.functional.normalize(target - centre, dim=0)
    x = torch.nn.functional.normalize(torch.linalg.cross(torch.tensor([0.0, -1.0, 0.0], dtype=z.dtype), z), dim=0)
    R = torch.stack([x, torch.linalg.cross(z, x), z])
    return torch.cat([R, (-R @ centre)[:, None]], dim=1)


class PlaneScene:
    """A slanted plane ``n·X = h`` (world, mm) with a band-limited random texture (sum of sinusoids with
    wavelengths 12–48 mm, 3–12 px at 600 mm), rendered exactly at pixel centres in ``V`` cameras
    ~100 mm apart looking at it."""

    def __init__(self, n_views: int = 4, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.normal = torch.nn.functional.normalize(torch.tensor([0.25, -0.15, -1.0], dtype=torch.float64), dim=0)
        self.offset = float(self.normal @ torch.tensor([0.0, 0.0, 600.0], dtype=torch.float64))
        self.K = torch.tensor([[150.0, 0.0, (W - 1) / 2 + 0.7], [0.0, 148.0, (H - 1) / 2 - 0.4], [0, 0, 1]],
                              dtype=torch.float64)
        centres = [(0.0, 0.0, 0.0), (100.0, 0.0, 10.0), (-60.0, 80.0, 0.0), (-40.0, -90.0, -10.0)][:n_views]
        self.E = torch.stack([look_at(c, (0.0, 0.0, 600.0)) for c in centres])
        n_waves = 40
        angle = 2 * math.pi * torch.rand(n_waves, generator=gen, dtype=torch.float64)
        wavelength = 12.0 + 36.0 * torch.rand(n_waves, generator=gen, dtype=torch.float64)
        self.freq = torch.stack([torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)], 1) / wavelength[:, None]
        self.phase = 2 * math.pi * torch.rand(n_waves, generator=gen, dtype=torch.float64)

    def depth(self, v: int) -> torch.Tensor:
        """Exact z-depth (mm) of the plane in view ``v``: ``(H, W)`` float64."""
        rays, _ = g.get_ray_dirs_mask(self.K, H, W)
        R = self.E[v, :, :3]
        direction = rays @ R  # world direction of each ray (Rᵀ r), z-depth parameterised
        centre = g.camera_center(self.E[v])
        return (self.offset - self.normal @ centre) / (direction @ self.normal)

    def image(self, v: int) -> torch.Tensor:
        """``(3, H, W)`` float32 in [0, 1]: the texture at the plane point behind each pixel centre."""
        points = g.camera_to_world(g.backproject_depth(self.depth(v), self.K), self.E[v])
        value = torch.sin(2 * math.pi * points @ self.freq.T + self.phase).sum(-1) / math.sqrt(2 * len(self.phase))
        gray = (0.5 + 0.2 * value).clamp(0, 1)
        return torch.stack([gray, 0.9 * gray + 0.05, 0.8 * gray + 0.1]).float()

    def sweep(self, ref: int, **kw) -> mvs.SweepResult:
        srcs = [s for s in range(len(self.E)) if s != ref]
        return mvs.plane_sweep(self.image(ref), self.K.float(), self.E[ref].float(),
                               torch.stack([self.image(s) for s in srcs]), self.K.float().expand(len(srcs), 3, 3),
                               self.E[srcs].float(), DEPTH_MIN, DEPTH_MAX, PLANES, **kw)


@pytest.fixture(scope="module")
def scene():
    return PlaneScene()


@pytest.fixture(scope="module")
def sweeps(scene):
    return [scene.sweep(v) for v in range(len(scene.E))]


def test_sweep_recovers_a_slanted_plane_to_a_tenth_of_the_plane_spacing(scene, sweeps):
    result = sweeps[0]
    gt = scene.depth(0).float()
    assert result.depth.shape == (H, W) and result.depth.dtype == torch.float32
    assert result.confidence.shape == (H, W) and 0 <= result.confidence.min() and result.confidence.max() <= 1
    assert float(gt.min()) > DEPTH_MIN and float(gt.max()) < DEPTH_MAX
    valid = result.depth > 0
    assert valid.float().mean() > 0.8, "most of a well-textured plane is matched"
    error = (result.depth - gt).abs()[valid]
    assert float(error.median()) <= 0.1 * SPACING, f"median error {float(error.median()):.3f} mm"
    # interior pixels (all sources see them) are good everywhere, not only at the median
    assert float(error.quantile(0.9)) <= 0.5 * SPACING


def test_depths_agree_across_views(scene, sweeps):
    depths = torch.stack([r.depth for r in sweeps])
    K = scene.K.float().expand(len(sweeps), 3, 3)
    E = scene.E.float()
    srcs = [[s for s in range(len(sweeps)) if s != r] for r in range(len(sweeps))]
    masks = mvs.geometric_filter(depths, K, E, srcs, min_consistent=2, pixel_tol=1.0, rel_depth_tol=0.005)
    kept = masks.sum() / (depths > 0).sum()
    assert kept > 0.8, f"only {float(kept):.2f} of the swept pixels are multi-view consistent"
    for v, result in enumerate(sweeps):
        error = (result.depth - scene.depth(v).float()).abs()[masks[v]]
        assert float(error.median()) <= 0.1 * SPACING


def test_result_does_not_depend_on_the_chunk_size(scene):
    whole = scene.sweep(0, return_cost=True, chunk_planes=PLANES)
    for chunk in (1, 5):
        part = scene.sweep(0, return_cost=True, chunk_planes=chunk)
        torch.testing.assert_close(part.cost, whole.cost)
        torch.testing.assert_close(part.depth, whole.depth)
        torch.testing.assert_close(part.confidence, whole.confidence)
    assert whole.cost.shape == (PLANES, H, W)
    torch.testing.assert_close(whole.plane_depths, mvs.plane_depths(DEPTH_MIN, DEPTH_MAX, PLANES))
    assert float(whole.plane_depths[1] - whole.plane_depths[0]) == pytest.approx(SPACING, rel=1e-5)


def test_inverse_spacing_and_low_confidence_on_a_textureless_image(scene):
    inverse = mvs.plane_depths(DEPTH_MIN, DEPTH_MAX, PLANES, spacing="inverse")
    assert float(inverse[0]) == pytest.approx(DEPTH_MIN) and float(inverse[-1]) == pytest.approx(DEPTH_MAX)
    assert torch.allclose(1 / inverse[1:] - 1 / inverse[:-1], (1 / inverse[1] - 1 / inverse[0]).expand(PLANES - 1))
    result = scene.sweep(0, spacing="inverse")
    error = (result.depth - scene.depth(0).float()).abs()[result.depth > 0]
    assert float(error.median()) <= 0.15 * SPACING
    flat = torch.full((3, H, W), 0.5)
    blank = mvs.plane_sweep(flat, scene.K.float(), scene.E[0].float(), flat.expand(2, 3, H, W),
                            scene.K.float().expand(2, 3, 3), scene.E[1:3].float(), DEPTH_MIN, DEPTH_MAX, PLANES)
    assert (blank.depth == 0).all() and float(blank.confidence.max()) < 0.3


def test_geometric_filter_removes_an_injected_inconsistent_patch(scene):
    depths = torch.stack([scene.depth(v) for v in range(4)]).float()
    K, E = scene.K.float().expand(4, 3, 3), scene.E.float()
    srcs = [[s for s in range(4) if s != r] for r in range(4)]
    clean = mvs.geometric_filter(depths, K, E, srcs)
    interior = torch.zeros(H, W, dtype=torch.bool)
    interior[8:-8, 8:-8] = True
    assert clean[:, interior].float().mean() > 0.98
    depths[0, 20:30, 30:45] += 25.0
    depths[0, 0:4, 0:4] = 0
    masks = mvs.geometric_filter(depths, K, E, srcs)
    assert not masks[0, 20:30, 30:45].any() and not masks[0, 0:4, 0:4].any()
    untouched = interior.clone()
    untouched[18:32, 28:47] = False
    assert masks[0, untouched].float().mean() > 0.98
    assert torch.equal(masks[1:], clean[1:]) or (masks[1:] != clean[1:]).float().mean() < 0.02
    none = mvs.geometric_filter(depths, K, E, [[1], [0], [0], [0]], min_consistent=2)
    assert not none.any(), "a view with fewer sources than min_consistent keeps nothing"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_cuda_agrees_with_cpu(scene):
    cpu = scene.sweep(0, return_cost=True)
    srcs = [1, 2, 3]
    cuda = mvs.plane_sweep(scene.image(0).cuda(), scene.K.float().cuda(), scene.E[0].float().cuda(),
                           torch.stack([scene.image(s) for s in srcs]).cuda(), scene.K.float().expand(3, 3, 3).cuda(),
                           scene.E[srcs].float().cuda(), DEPTH_MIN, DEPTH_MAX, PLANES, return_cost=True)
    assert cuda.depth.device.type == "cuda"
    # summation orders differ (cumulative sums, grid_sample): close, not bit-equal
    torch.testing.assert_close(cuda.cost.cpu(), cpu.cost, atol=1e-3, rtol=1e-3)
    both = (cuda.depth.cpu() > 0) & (cpu.depth > 0)
    assert both.float().mean() > 0.95 * (cpu.depth > 0).float().mean()
    assert float((cuda.depth.cpu() - cpu.depth).abs()[both].median()) < 1e-2
    masks = mvs.geometric_filter(torch.stack([scene.depth(v) for v in range(4)]).float().cuda(),
                                 scene.K.float().expand(4, 3, 3).cuda(), scene.E.float().cuda(),
                                 [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    assert masks.device.type == "cuda" and masks.float().mean() > 0.8


# ------------------------------------------------------------------------------------------ scan cache


@pytest.fixture
def tiny_scan(tmp_path):
    return make_scan(tmp_path, "scan1", n_views=4, H=32, W=40, images=True)


def test_sweep_scan_writes_reuses_and_recomputes(tiny_scan, monkeypatch):
    out = mvs.sweep_scan(tiny_scan, num_src=2, num_planes=8, progress=False)
    assert out == tiny_scan / "planesweep"
    settings = json.loads((out / "settings.json").read_text())
    assert settings["num_src"] == 2 and settings["num_planes"] == 8 and settings["views"] == [0, 1, 2, 3]
    low, high = settings["depth_range_mm"]
    assert low < 425.0 and high > 935.0, "the meta.json range is widened"
    for v in range(4):
        depth, confidence = mvs.load_sweep(tiny_scan, v)
        assert depth.shape == confidence.shape == (32, 40)
        assert depth.dtype == confidence.dtype == np.float32 and (depth >= 0).all()
        assert ((confidence >= 0) & (confidence <= 1)).all()
        raw, _ = mvs.load_sweep(tiny_scan, v, filtered=False)  # before the filter: it only removes depth
        assert ((depth == raw) | (depth == 0)).all()
    first = (out / "settings.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("plane_sweep must not run again for the same options")

    monkeypatch.setattr("deltaz.ops.mvs.scan.plane_sweep", fail)
    assert mvs.sweep_scan(tiny_scan, num_src=2, num_planes=8, progress=False, chunk_planes=3) == out
    assert (out / "settings.json").stat().st_mtime_ns == first
    monkeypatch.undo()
    mvs.sweep_scan(tiny_scan, num_src=2, num_planes=8, window=5, views=[0, 1, 2], progress=False)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["window"] == 5 and settings["views"] == [0, 1, 2]
    assert not (out / "depth" / "003.npy").exists()
    assert not [p.name for p in tiny_scan.iterdir() if p.name.startswith(".")], "no temporary folder left"


def test_sweep_scan_leaves_nothing_half_written(tiny_scan, monkeypatch):
    real = mvs.scan.plane_sweep
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("deltaz.ops.mvs.scan.plane_sweep", flaky)
    with pytest.raises(KeyboardInterrupt):
        mvs.sweep_scan(tiny_scan, num_src=2, num_planes=8, progress=False)
    assert not (tiny_scan / "planesweep").exists()
    assert not [p.name for p in tiny_scan.iterdir() if p.name.startswith(".")]
    with pytest.raises(DataError, match="planesweep/depth/000.npy"):
        mvs.load_sweep(tiny_scan, 0)


def test_load_sweep_names_a_malformed_file(tiny_scan):
    mvs.sweep_scan(tiny_scan, num_src=2, num_planes=8, progress=False)
    path = tiny_scan / "planesweep" / "confidence" / "001.npy"
    np.save(path, np.zeros((3, 32, 40), np.float32))
    with pytest.raises(DataError, match=r"confidence/001\.npy.*shape"):
        mvs.load_sweep(tiny_scan, 1)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"confidence/001\.npy"):
        mvs.load_sweep(tiny_scan, 1)
    with pytest.raises(DataError, match=r"depth/009\.npy"):
        mvs.load_sweep(tiny_scan, 9)


# ------------------------------------------------------------------------------------------ bad inputs


def _args(scene, **change):
    args = dict(ref_image=scene.image(0), K_ref=scene.K.float(), E_ref=scene.E[0].float(),
                src_images=torch.stack([scene.image(1), scene.image(2)]), K_src=scene.K.float().expand(2, 3, 3),
                E_src=scene.E[1:3].float(), depth_min_mm=DEPTH_MIN, depth_max_mm=DEPTH_MAX, num_planes=4)
    args.update(change)
    return args


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(depth_min_mm=700.0, depth_max_mm=500.0), ConfigError, "depth_min_mm, depth_max_mm"),
        (dict(depth_min_mm=0.0), ConfigError, "depth_min_mm"),
        (dict(num_planes=1), ConfigError, "num_planes"),
        (dict(window=4), ConfigError, "window"),
        (dict(spacing="log"), ConfigError, "spacing"),
        (dict(min_sources=3), ConfigError, "min_sources"),
        (dict(chunk_planes=0), ConfigError, "chunk_planes"),
        (dict(ref_image=torch.rand(H, W)), DataError, "ref_image"),
        (dict(ref_image=torch.rand(2, H, W)), DataError, "channels"),
        (dict(src_images=torch.rand(3, H, W)), DataError, "src_images"),
        (dict(K_src=torch.eye(3).expand(3, 3, 3)), DataError, "K_src"),
        (dict(E_src=torch.zeros(2, 3, 3)), DataError, "E_src"),
        (dict(E_ref=torch.zeros(4)), DataError, "E_ref"),
    ],
)
def test_bad_inputs_raise_one_clear_error(scene, change, error, match):
    with pytest.raises(error, match=match):
        mvs.plane_sweep(**_args(scene, **change))


def test_nan_images_and_bad_filter_inputs_raise(scene, tiny_scan):
    image = scene.image(1).clone()
    image[0, 3, 3] = float("nan")
    with pytest.raises(DataError, match="src_images: expected finite"):
        mvs.plane_sweep(**_args(scene, src_images=torch.stack([image, image])))
    depths, K, E = torch.ones(2, 8, 8) * 600, torch.eye(3).expand(2, 3, 3), torch.eye(3, 4).expand(2, 3, 4)
    with pytest.raises(DataError, match=r"src_lists\[0\]"):
        mvs.geometric_filter(depths, K, E, [[0], [0]])
    with pytest.raises(DataError, match="intrinsics, extrinsics"):
        mvs.geometric_filter(depths, K[:1], E, [[1], [0]])
    with pytest.raises(ConfigError, match="min_consistent"):
        mvs.geometric_filter(depths, K, E, [[1], [0]], min_consistent=0)
    with pytest.raises(ConfigError, match="unknown option.*windw"):
        mvs.sweep_scan(tiny_scan, windw=5)
    with pytest.raises(ConfigError, match="views"):
        mvs.sweep_scan(tiny_scan, views=[7], progress=False)
