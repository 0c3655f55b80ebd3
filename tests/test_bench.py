"""The benchmark tool keeps working: a tiny run of every table (the full run is a command,
`python scripts/bench.py`, not a test)."""

import io

import numpy as np
import pytest

from keras_zoo import bench, cli


def test_a_tiny_benchmark_fills_every_table():
    out = io.StringIO()
    results = bench.run_all(size=32, batch_sizes=(1, 2), rounds=2, seconds=0.01,
                            train_batch=2, cases=["mobilenet_v3_small", "mobilenet_v2"],
                            out=out)
    text = out.getvalue()
    assert results["gemm_gflops"] > 1
    rows = results["inference"]
    assert [(r["model"], r["batch"]) for r in rows] == [
        ("mobilenet_v2", 1), ("mobilenet_v2", 2), ("mobilenet_v3_small", 1),
        ("mobilenet_v3_small", 2)]
    for row in rows:
        peer = row["keras.applications"]
        assert 0 < peer[0] <= peer[1] <= peer[2]
        for variant in bench.VARIANTS:
            ips, ratio = row[variant], row[f"{variant} ratio keras.applications"]
            assert 0 < ips[0] <= ips[1] <= ips[2]
            assert 0 < ratio[0] <= ratio[1] <= ratio[2]
            assert f"{variant} ratio torch" in row  # the test extra has torch and the references
            assert row[f"{variant} gflops"] == pytest.approx(2 * row["gmacs"] * ips[1])
    assert [r["model"] for r in results["training"]] == ["mobilenet_v2"]
    assert len(results["build"]) == 2
    low, median, high = results["port"]
    assert 0 < low <= median <= high
    memory = results["memory"]
    assert all(r["keras_zoo"] > 100 and r["keras.applications"] > 100 for r in memory)
    for heading in ("inference, 32x32", "training steps/s", "build seconds", "porting resnet50",
                    "peak memory", "float32 GEMM peak"):
        assert heading in text


def test_the_runners_compute_the_models_outputs():
    import keras_zoo

    case = bench.CASES[0]
    model = bench.zoo_model(case, 32)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    for contender in (model, keras_zoo.fold_batchnorm(model)):
        np.testing.assert_allclose(bench.keras_runner(contender)(x), model.predict_on_batch(x),
                                   rtol=1e-5, atol=1e-5)


def test_bench_rejects_unknown_cases(capsys):
    assert cli.main(["bench", "--cases", "vgg16", "--no-memory"]) == 2
    assert "cases: none of ['vgg16']" in capsys.readouterr().err
