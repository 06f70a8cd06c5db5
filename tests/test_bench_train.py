"""benchmarks/bench_train.py runs for every model it names (figures are printed, never asserted)."""

import json

import pytest

from _benchmarks import load_benchmark


@pytest.mark.parametrize("model", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_bench_train_times_each_model(model, capsys):
    bench = load_benchmark("bench_train")
    assert bench.main(["--model", model, "--base-channel", "4", "--unet-depth", "2", "--height", "32", "--width", "48",
                       "--steps", "1", "--warmup", "0", "--infer-runs", "1", "--threads", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["train_ms"]["step"] > 0 and set(figures["inference_ms"]) == {"160x128", "640x512"}
