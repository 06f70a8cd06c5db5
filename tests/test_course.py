"""deltaz.course: the cached course dataset, samples, short training runs and loss pull maps."""

from __future__ import annotations

import json

import pytest
import torch

import deltaz.io.synthetic
from deltaz import course
from deltaz.data import collate_same_scene
from deltaz.io.dtu.layout import list_scans, list_views, read_meta
from deltaz.ops.losses import LossWeights, losses_for_batch

TINY = course.CourseSize(n_scans=1, n_views=4)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A tiny synthetic course dataset in a private DELTAZ_DATA (rendered once for the module)."""
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DELTAZ_DATA", str(data))
        mp.delenv("DELTAZ_DTU_ROOT", raising=False)
        root = course.course_data(True, size=TINY, progress=False)
    return data, root


@pytest.fixture
def in_data(tiny_data, monkeypatch):
    data, root = tiny_data
    monkeypatch.setenv("DELTAZ_DATA", str(data))
    monkeypatch.delenv("DELTAZ_DTU_ROOT", raising=False)
    return data, root


def test_smoke_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("DELTAZ_SMOKE", "1")
    assert course.smoke_mode()
    monkeypatch.setenv("DELTAZ_SMOKE", "0")
    assert not course.smoke_mode()
    monkeypatch.delenv("DELTAZ_SMOKE")
    assert not course.smoke_mode()


def test_course_dirs_separate_smoke_and_full(tmp_path, monkeypatch):
    monkeypatch.setenv("DELTAZ_DATA", str(tmp_path))
    monkeypatch.delenv("DELTAZ_DTU_ROOT", raising=False)
    raw_s, scans_s = course.course_dirs(True)
    raw_f, scans_f = course.course_dirs(False)
    assert raw_s.parent == scans_s.parent == tmp_path / "course" / "smoke"
    assert raw_f.parent == scans_f.parent == tmp_path / "course" / "full"


def test_course_data_is_complete(in_data):
    data, root = in_data
    raw, scans = course.course_dirs(True)
    assert root == scans
    assert list_scans(root) == ["scan1"]
    assert list_views(root / "scan1") == list(range(TINY.n_views))
    assert read_meta(root / "scan1")["has_images"]
    assert (raw / "Cameras" / "pair.txt").is_file() and (raw / "Depths" / "scan1_train").is_dir()
    marker = json.loads((root.parent / "course.json").read_text())
    assert marker["n_views"] == TINY.n_views and marker["source"] == "synthetic"
    assert not [p for p in root.parent.parent.iterdir() if p.name.startswith(".tmp")]  # no temp left


def test_second_call_reuses_the_data(in_data, monkeypatch):
    data, root = in_data
    stamp = (root / "scan1" / "meta.json").stat().st_mtime_ns

    def must_not_render(*args, **kwargs):
        raise AssertionError("course_data rendered again although the data is complete")

    monkeypatch.setattr(deltaz.io.synthetic, "generate_dataset", must_not_render)
    assert course.course_data(True, size=TINY, progress=False) == root
    assert (root / "scan1" / "meta.json").stat().st_mtime_ns == stamp


def test_incomplete_or_different_data_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("DELTAZ_DATA", str(tmp_path))
    monkeypatch.delenv("DELTAZ_DTU_ROOT", raising=False)
    calls = []
    real = deltaz.io.synthetic.generate_dataset

    def counting(*args, **kwargs):
        calls.append(kwargs["n_views"])
        return real(*args, **kwargs)

    monkeypatch.setattr(deltaz.io.synthetic, "generate_dataset", counting)
    _, scans = course.course_dirs(True)
    (scans / "scan1").mkdir(parents=True)  # an interrupted run: a folder without course.json
    size = course.CourseSize(n_scans=1, n_views=2)
    root = course.course_data(True, size=size, progress=False)
    assert calls == [2] and list_views(root / "scan1") == [0, 1]
    course.course_data(True, size=size, progress=False)
    assert calls == [2]  # complete: reused
    course.course_data(True, size=course.CourseSize(n_scans=1, n_views=3), progress=False)
    assert calls == [2, 3]  # other settings: rebuilt
    assert list_views(root / "scan1") == [0, 1, 2]


def _real_dtu_stand_in(tmp_path, scans):
    """The synthetic dtu_training, without its synth.json, copied once per name in ``scans`` (its scan1 renamed):
    a stand-in for real DTU holding those scans."""
    import shutil

    synth_raw, _ = course.course_dirs(True)
    raw = tmp_path / "real_dtu_training"
    shutil.copytree(synth_raw, raw, ignore=shutil.ignore_patterns("synth.json", "scan1*"))
    for name in scans:
        for kind in ("Depths", "Rectified"):
            if (synth_raw / kind / "scan1_train").is_dir():
                shutil.copytree(synth_raw / kind / "scan1_train", raw / kind / f"{name}_train")
    return raw


def test_real_dtu_root_is_parsed_not_rendered(in_data, tmp_path, monkeypatch):
    raw = _real_dtu_stand_in(tmp_path, ["scan2"])  # scan2: the first of MVSNet's training list
    monkeypatch.setenv("DELTAZ_DTU_ROOT", str(raw))
    monkeypatch.setenv("DELTAZ_DATA", str(tmp_path))
    monkeypatch.setattr(deltaz.io.synthetic, "generate_dataset", lambda *a, **k: pytest.fail("rendered"))
    assert course.course_dirs(True)[0] == raw
    root = course.course_data(True, size=TINY, progress=False)
    assert root == tmp_path / "course" / "dtu-smoke" / "scans"
    assert list_scans(root) == ["scan2"] and read_meta(root / "scan2")["source"] == "dtu"


def test_real_dtu_scans_are_picked_by_mvsnets_split():
    from deltaz.io.dtu.splits import scan_list

    available = [f"scan{n}" for n in range(1, 129)]  # all of DTU, in number order
    picked = course.course_scan_names(available, 3)
    assert picked == scan_list("train")[:2] + scan_list("val")[:1] == ["scan2", "scan6", "scan3"]
    assert not set(picked) & set(scan_list("test"))  # scan1, the lowest number, is a test scan: never picked
    assert course.course_scan_names(available, 1) == ["scan2"]  # one scan: a training scan
    assert course.course_scan_names(["scan1", "scan4", "scan9"], 3) == []  # only test scans: none
    assert course.course_scan_names(["scan1", "scan7", "scan8"], 3) == ["scan7", "scan8"]  # no validation scan there


def test_real_dtu_course_data_skips_test_scans(in_data, tmp_path, monkeypatch):
    raw = _real_dtu_stand_in(tmp_path, ["scan1", "scan3", "scan2"])  # a test, a validation and a training scan
    monkeypatch.setenv("DELTAZ_DTU_ROOT", str(raw))
    monkeypatch.setenv("DELTAZ_DATA", str(tmp_path))
    root = course.course_data(False, size=course.CourseSize(n_scans=2, n_views=TINY.n_views), progress=False)
    assert list_scans(root) == ["scan2", "scan3"]  # the training scan and the validation scan, not scan1


def test_accelerator_options_on_this_machine():
    options = course.accelerator_options()
    if torch.cuda.is_available():
        assert options == {"device": "cuda", "amp": True, "num_workers": 2}
    else:
        assert options == {"device": "cpu", "amp": False, "num_workers": 0}
    assert course.accelerator_options("cpu") == {"device": "cpu", "amp": False, "num_workers": 0}


def test_sample_view_is_the_reference_and_its_sources(in_data):
    _, root = in_data
    sample = course.sample_view(root, view_id=1, num_views=3)
    assert sample["view_ids"][0].item() == 1 and len(set(sample["view_ids"].tolist())) == 3
    assert sample["depth"].shape == sample["depth_init"].shape == (3, 128, 160)
    assert sample["image"].shape == (3, 3, 128, 160)
    assert (sample["depth_init"] != sample["depth"]).any()  # a simulated initial depth
    again = course.sample_view(root, view_id=1, num_views=3)
    assert torch.equal(sample["depth_init"], again["depth_init"])  # fixed corruption


def test_train_briefly_is_deterministic_and_learns(in_data):
    _, root = in_data
    batch = collate_same_scene([course.sample_view(root, num_views=2)])
    weights = LossWeights()
    _, first = course.train_briefly(batch, weights, steps=3, seed=1, base_channel=4, depth=2)
    _, second = course.train_briefly(batch, weights, steps=3, seed=1, base_channel=4, depth=2)
    assert len(first) == 3 and first == second
    assert first[0]["magnitude"] == 0.0  # the untrained model is the identity (zero-initialised head)
    assert first[-1]["total"] != first[0]["total"]
    _, auto = course.train_briefly(batch, weights, steps=3, seed=1, base_channel=4, depth=2, device="auto")
    if not torch.cuda.is_available():
        assert auto == first  # "auto" on a machine without CUDA is the same CPU run


def test_pull_maps_are_exact_and_add_up(in_data):
    _, root = in_data
    batch = collate_same_scene([course.sample_view(root, num_views=2)])
    d = batch["depth_init"][:, 0].clone()
    maps = course.loss_pull_maps(batch, d)
    assert set(maps) == {"depth", "improvement", "magnitude", "smoothness", "multiview"}
    H, W = d.shape[-2:]
    valid = batch["mask"][:, 0]
    expected = -torch.sign(d - batch["depth"][:, 0]) * valid * (H * W / valid.sum())
    torch.testing.assert_close(maps["depth"], expected)
    # weighted pulls add up to the pull of the weighted total
    weights = LossWeights()
    x = d.clone().requires_grad_(True)
    total, _ = losses_for_batch(batch, {"depth_refined": x, "delta_z": x - batch["depth_init"][:, 0]}, weights)
    (grad,) = torch.autograd.grad(total, x)
    summed = sum(getattr(weights, name) * m for name, m in maps.items())
    torch.testing.assert_close(summed, -grad * H * W, rtol=1e-4, atol=1e-4)


def test_batch_loss_maps_average_to_the_losses(in_data):
    _, root = in_data
    batch = collate_same_scene([course.sample_view(root, num_views=2)])
    d = batch["depth_init"][:, 0] + 0.5
    maps = course.batch_loss_maps(batch, d)
    assert all(m.shape == d.shape for m in maps.values())
    valid = batch["mask"][:, 0]
    _, terms = losses_for_batch(batch, {"depth_refined": d, "delta_z": d - batch["depth_init"][:, 0]})
    torch.testing.assert_close(maps["depth"][valid].mean(), terms["depth"])
    has_input = batch["depth_init"][:, 0] > 0  # the magnitude term counts pixels with an input depth
    torch.testing.assert_close(maps["magnitude"][has_input].mean(), terms["magnitude"])


def test_source_of_shows_the_package_code():
    shown = course.source_of(course.smoke_mode)
    assert shown.data.startswith("```python\ndef smoke_mode() -> bool:") and shown.data.endswith("```")


# ------------------------------------------------------------------------------------------ load_or_train
@pytest.fixture(scope="module")
def tiny_scans(tmp_path_factory):
    """Three 32×40 scans of four views (tests/_tiny_scans.py): enough for a train/validation split."""
    from _tiny_scans import make_dataset

    return make_dataset(tmp_path_factory.mktemp("scans") / "data", n_scans=3, n_views=4)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors on a shared CPU: one thread is the fastest
    yield
    torch.set_num_threads(before)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_or_train_trains_once_then_loads(tiny_scans, tmp_path, monkeypatch, one_thread, capsys):
    from deltaz.engine import train as train_module
    from deltaz.engine.checkpoint import load_checkpoint
    from deltaz.model import DeltaZUnet

    run = tmp_path / "run"
    model, path = course.load_or_train(tmp_path / "no-such-run", tiny_scans, smoke=True, train_dir=run, device="cpu")
    assert path.is_file() and run in path.parents and not model.training and isinstance(model, DeltaZUnet)
    assert model.base_channel == course.LOAD_OR_TRAIN_SMOKE.base_channel
    state = load_checkpoint(path)
    assert state["step"] == course.LOAD_OR_TRAIN_SMOKE.max_steps
    assert state["config"]["extra"]["smoke"] is True and state["config"]["val_split"] > 0  # 3 scans: one for val
    assert state["config"]["split"] == "auto"  # MVSNet's lists on real DTU, a seeded random split otherwise
    assert state["config"]["device"] == "cpu" and state["config"]["num_workers"] == 0 and not state["config"]["amp"]
    assert "training" in capsys.readouterr().out

    monkeypatch.setattr(train_module, "train", lambda *a, **k: pytest.fail("trained although a checkpoint exists"))
    again, again_path = course.load_or_train([tmp_path / "no-such-run"], tiny_scans, smoke=True, train_dir=run)
    assert again_path == path and _same_weights(model, again)
    # a run folder given as a candidate (checkpoints/ inside) is found the same way
    third, third_path = course.load_or_train(run, tiny_scans, smoke=True, train_dir=tmp_path / "unused")
    assert third_path == path and _same_weights(model, third)


def test_load_or_train_skips_unusable_checkpoints(tiny_scans, tmp_path, one_thread, capsys):
    import shutil

    from deltaz.engine.checkpoint import load_checkpoint

    first = tmp_path / "first"
    _, path = course.load_or_train([], tiny_scans, smoke=True, train_dir=first, device="cpu")
    capsys.readouterr()
    # other model settings than asked for: skipped, a new model is trained
    model, other = course.load_or_train(first, tiny_scans, smoke=True, train_dir=tmp_path / "b", base_channel=4)
    assert other != path and model.base_channel == 4
    assert "skipped" in capsys.readouterr().out
    # a smoke-mode checkpoint is not a full-mode model
    _, full = course.load_or_train(first, tiny_scans, smoke=False, train_dir=tmp_path / "c", max_minutes=None,
                                   max_steps=2, base_channel=4, unet_depth=2, use_images=False)
    assert full != path and load_checkpoint(full)["config"]["extra"]["smoke"] is False
    assert "trained in smoke mode" in capsys.readouterr().out
    # a checkpoint whose training data is gone cannot recover its validation scans: skipped
    moved = tmp_path / "moved"
    shutil.copytree(tiny_scans, moved)
    _, on_moved = course.load_or_train([], moved, smoke=True, train_dir=tmp_path / "d", base_channel=4)
    shutil.rmtree(moved)
    _, fresh = course.load_or_train(on_moved, tiny_scans, smoke=True, train_dir=tmp_path / "e", base_channel=4)
    assert fresh != on_moved and "holds no scans" in capsys.readouterr().out
    # not a checkpoint at all: skipped with the reason
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    _, loaded = course.load_or_train([bogus, first], tiny_scans, smoke=True, train_dir=tmp_path / "f")
    assert loaded == path and "unreadable" in capsys.readouterr().out
