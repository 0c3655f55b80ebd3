"""The benchmark tool keeps working: a tiny run of every table (the full run is a command,
`python scripts/bench.py`, not a test), and the runtimes table checks its contenders'
outputs."""

import io

import numpy as np
import pytest

from keras_zoo import bench, cli
from keras_zoo.deploy import outputs_vary


def _ordered(triple):
    return 0 < triple[0] <= triple[1] <= triple[2]


def test_a_tiny_benchmark_fills_every_table():
    """mobilenet_v2 at 32x32, and pfld_0_25, which runs at 112x112, its only size, against
    PFLD-pytorch's module (keras_zoo.torch_reference) and without a keras.applications peer;
    its runtimes are checked below (`test_pfld_s_runtimes_...`): its exports would take this
    test a quarter longer."""
    out = io.StringIO()
    results = bench.run_all(
        size=32,
        batch_sizes=(1, 2),
        rounds=1,
        seconds=0.01,
        train_batch=2,
        cases=["mobilenet_v2", "pfld_0_25"],
        runtimes_cases=["mobilenet_v2"],
        out=out,
    )
    text = out.getvalue()
    assert "torch column: yes" in text  # the package's own references (keras_zoo.torch_reference)
    assert results["gemm_gflops"] > 1
    rows = results["inference"]
    labels = [(m, b) for m in ("mobilenet_v2", "pfld_0_25") for b in (1, 2)]
    assert [(r["model"], r["batch"]) for r in rows] == labels
    assert [r["size"] for r in rows] == [32, 32, 112, 112]
    for row in rows:
        pfld = row["model"] == "pfld_0_25"
        assert ("keras.applications" in row) != pfld
        for peer in ("keras.applications", "torch")[pfld:]:  # the test extra has torch
            assert _ordered(row[peer])
        for variant in bench.VARIANTS:
            assert _ordered(row[variant])
            if not pfld:
                assert _ordered(row[f"{variant} ratio keras.applications"])
            assert _ordered(row[f"{variant} ratio torch"])
            assert row[f"{variant} gflops"] == pytest.approx(2 * row["gmacs"] * row[variant][1])
    assert rows[2]["no peer"] == {"keras.applications": bench.cases.PFLD_WHY}
    # under each of pfld_0_25's inference rows and on its memory line
    assert text.count("pfld_0_25: 112x112, the only input size it takes (the run's is 32x32)") == 3
    # the runtimes table, told its cases (see test_the_runtimes_table_follows_cases), with
    # int8 for mobilenet_v2
    runtimes = results["runtimes"]
    assert [(r["model"], r["batch"], r["size"]) for r in runtimes] == [
        ("mobilenet_v2", 1, 32),
        ("mobilenet_v2", 2, 32),
    ]
    for row in runtimes:
        assert set(row["precision"]) == {c.name for c in bench.CONTENDERS}
        assert row["left out"] == {}
        for name, precision in row["precision"].items():
            assert _ordered(row[name])
            assert precision == bench.CONTENDER[name].precision
            # every float32 runtime checked against its side's eager model (outputs that
            # vary from image to image: the run raises otherwise)
            assert precision == "int8" or row["max error"][name] < 1e-4
        assert row["best keras_zoo"] in bench.BEST_OF["keras_zoo"]
        assert row["best torch"] in bench.BEST_OF["torch"]
        for key in (
            "best ratio",
            "as built ratio",
            "keras_zoo litert int8 ratio",
            "keras_zoo onnx int8 ratio",
            "keras_zoo openvino int8 ratio",
        ):
            assert _ordered(row[key])
    training = results["training"]
    assert [r["model"] for r in training] == ["mobilenet_v2"]
    for key in ("keras_zoo", "keras_zoo xla", "keras.applications", "torch"):
        assert _ordered(training[0][key])  # images/s of each contender
    for a, b in (
        ("keras_zoo", "keras.applications"),
        ("keras_zoo", "torch"),
        ("keras_zoo xla", "torch"),
    ):
        assert training[0][f"{a} ratio {b}"][1] == pytest.approx(
            training[0][a][1] / training[0][b][1], rel=1e-9
        )  # one round: the ratio of the medians
    assert _ordered(results["build"][0]["ratio"]) and "ratio" not in results["build"][1]
    assert _ordered(results["build"][1]["keras_zoo"])
    low, median, high = results["port"]
    assert 0 < low <= median <= high
    memory = results["memory"]
    assert [r["model"] for r in memory] == ["mobilenet_v2", "pfld_0_25"]
    assert all(r["keras_zoo"] > 100 for r in memory) and memory[0]["keras.applications"] > 100
    assert "keras.applications" not in memory[1]
    for heading in (
        "inference, 32x32",
        "runtimes, 32x32",
        "training images/s",
        "build seconds",
        "porting resnet50",
        "peak memory",
        "float32 GEMM peak",
        "keras_zoo openvino int8",
        "(the best of each side)",
    ):
        assert heading in text


def test_a_case_without_a_keras_applications_peer_runs_alone_and_says_why():
    case = bench.choose_cases(["shufflenet_v2_x1_0"])
    out = io.StringIO()
    inference = bench.bench_inference(
        case, size=32, batch_sizes=(1,), rounds=1, seconds=0.01, out=out
    )
    build = bench.bench_build(case, size=32, rounds=1, out=out)
    assert _ordered(inference[0]["folded"]) and "keras.applications" not in inference[0]
    assert _ordered(build[0]["keras_zoo"]) and "ratio" not in build[0]
    why = "keras.applications has no ShuffleNet"
    assert inference[0]["no peer"] == build[0]["no peer"] == {"keras.applications": why}
    text = out.getvalue()
    assert f"keras.applications: none ({why})" in text  # under the inference table's lines
    # the peer's cell reads "none", not a number, in both tables: "shufflenet_v2_x1_0 1
    # keras_zoo 12.3 (12.3..12.3) none - ..." and "shufflenet_v2_x1_0 0.12 (0.12..0.12) none -"
    inference_line, build_line = [s for s in text.splitlines() if s.startswith(case[0].label)]
    assert inference_line.split()[5:7] == ["none", "-"]
    assert build_line.split()[3:5] == ["none", "-"] and build_line.endswith(f"({why})")


def test_every_case_has_a_keras_applications_peer_or_a_reason():
    vit = bench.choose_cases(["vit_b_16"])[0]
    assert vit.keras_app is None and "Vision Transformer" in vit.no_keras_app
    assert "vit_b_16" in bench.RUNTIME_CASES
    for case in bench.CASES:
        assert (case.keras_app is None) != (case.no_keras_app is None)
    with pytest.raises(ValueError, match="no_keras_app"):
        bench.Case("m", "resnet18", {}, None, {})
    with pytest.raises(ValueError, match="no_keras_app"):
        bench.Case("m", "resnet50", {}, "ResNet50", {}, no_keras_app="why")


def test_the_runtimes_table_follows_cases():
    chosen = bench.choose_runtime_cases(None, None)  # in CASES' order
    assert sorted(c.label for c in chosen) == sorted(bench.RUNTIME_CASES)
    assert [c.label for c in bench.choose_runtime_cases(["pfld", "resnet50"], None)] == [
        "resnet50",
        "pfld",
    ]
    assert [c.label for c in bench.choose_runtime_cases(["pfld"], ["pfld_0_25"])] == ["pfld_0_25"]


def test_pfld_s_runtimes_run_at_112_against_pfld_pytorch_s_module(tmp_path):
    """The runtimes table's models of pfld_0_25 in a run at another size: keras_zoo's at
    112x112, the torch reference PFLD-pytorch's PFLDInference at width 0.25 returning the
    landmarks, the same function (its weights ported); torch's ONNX export in ONNX Runtime and
    OpenVINO pass the table's output check. (keras_zoo's exports of it are the tiny run's
    code on mobilenet_v2, and `keras_zoo.export` checks each.)"""
    import torch

    from keras_zoo.port import convert_state_dict, load_state_dict
    from keras_zoo.torch_reference import torch_model

    case = bench.choose_cases(["pfld_0_25"])[0]
    assert bench.case_size(case, 32) == 112 and bench.size_note(case, 112) is None
    model, module = bench.runtime_models(case, 32, torch_model)
    assert model.input_shape == (None, 112, 112, 3) and model.output_shape == (None, 196)
    assert type(module).__name__ == "PFLDLandmarks" and module.conv1.out_channels == 16
    with pytest.raises(ValueError, match="num_classes: pfld's landmark head"):
        torch_model("pfld", num_classes=1000)
    with pytest.raises(ValueError, match="pfld_0_25 has no width multiplier"):
        torch_model("pfld_0_25", alpha=0.5)
    x = np.random.default_rng(0).uniform(0, 1, (2, 112, 112, 3)).astype("float32")
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    load_state_dict(model, convert_state_dict(state, "pfld_pytorch"))
    theirs = bench.torch_runtimes(module, str(tmp_path), 112)
    errors = bench.check_outputs(theirs, "torch eager", x)
    assert set(errors) == {"torch eager", "torch onnx", "torch openvino"}
    with torch.no_grad():
        want = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(bench.keras_runner(model)(x) - want).max() <= 2e-5 * np.abs(want).max()


def test_torch_weights_left_at_zero_are_filled():
    """torchvision starts a ViT's head at zero: every image would give the same logits, and
    the runtimes table's output check would be void."""
    import torch

    from keras_zoo.torch_reference import torch_model

    module = torch_model("vit_b_32", num_classes=10, image_size=64).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype("float32"))
    with torch.no_grad():
        assert not module(x).any()
        biases = {n: p.clone() for n, p in module.named_parameters() if p.ndim == 1}
        assert bench.fill_zero_parameters(module) == ["class_token", "heads.head.weight"]
        assert module.heads.head.weight.std() == pytest.approx(0.02, rel=0.2)
        assert bench.fill_zero_parameters(module) == []
        assert all(torch.equal(p, biases[n]) for n, p in module.named_parameters() if p.ndim == 1)
        logits = module(x).numpy()
    assert outputs_vary(logits, 1e-3)


def test_the_output_check_judges_float32_runtimes_only():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4)).astype("float32")
    runners = {
        "keras_zoo as built": lambda b: b * 2,
        "keras_zoo folded": lambda b: b * 2,
        "keras_zoo litert int8": lambda b: b * 3,
    }
    errors = bench.check_outputs(runners, "keras_zoo as built", x)
    assert errors["keras_zoo folded"] == 0 and errors["keras_zoo litert int8"] > 0.1
    runners["keras_zoo onnx"] = lambda b: b * 2 + 1e-3
    with pytest.raises(RuntimeError, match="keras_zoo onnx"):
        bench.check_outputs(runners, "keras_zoo as built", x)
    with pytest.raises(RuntimeError, match="the same outputs for every image"):
        bench.check_outputs({"torch eager": lambda b: np.ones_like(b)}, "torch eager", x)


def test_a_failed_export_is_left_out_of_the_row():
    runtimes = bench.Runtimes({}, {}, {"keras_zoo onnx": "onnx export of 'm' failed: ..."})
    ips = {
        "keras_zoo as built": [1.0, 1.0],
        "keras_zoo folded": [2.0, 3.0],
        "torch eager": [1.0, 2.0],
    }
    row = bench.runtimes_row("m", 1, ips, runtimes)
    assert row["left out"] == {"keras_zoo onnx": "onnx export of 'm' failed: ..."}
    assert "keras_zoo onnx" not in row
    assert (row["best keras_zoo"], row["best torch"]) == ("keras_zoo folded", "torch eager")
    assert row["best ratio"] == (1.5, 1.75, 2.0)
    assert row["as built ratio"] == (0.5, 0.75, 1.0)
    out = io.StringIO()
    bench.print_runtimes_row(row, out)
    assert "keras_zoo onnx           left out: onnx export" in out.getvalue()


def test_the_runners_compute_the_models_outputs():
    import keras_zoo

    case = bench.CASES[0]
    model = bench.zoo_model(case, 32)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    for contender in (model, keras_zoo.fold_batchnorm(model)):
        np.testing.assert_allclose(
            bench.keras_runner(contender)(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cases", "vgg16"], "cases: none of ['vgg16']"),
        (["--runtimes-cases", "vgg16"], "runtimes_cases: none of ['vgg16']"),
        (
            ["--runtimes-cases", "resnet50", "--int8-cases", "mobilenet_v2"],
            "int8_cases: ['mobilenet_v2'] not among the runtimes table's cases ['resnet50']",
        ),
    ],
)
def test_bench_rejects_unknown_cases(capsys, argv, message):
    assert cli.main(["bench", *argv, "--no-memory"]) == 2
    assert message in capsys.readouterr().err


def test_the_recipe_ablation_rows_are_recipes_and_the_report_is_their_statistics():
    from keras_zoo.bench import recipes
    from keras_zoo.recipes.recipe import recipe

    labels = [label for label, _, _ in recipes.ABLATION]
    assert len(set(labels)) == len(labels) and labels[0].startswith("default")
    for _, name, overrides in recipes.ABLATION:  # each a valid recipe, the overrides in it
        made = recipe(name, **overrides)
        assert all(getattr(made, k) == v for k, v in overrides.items())
    # the weight average's accuracy where the run kept one, the last epoch's either way
    assert recipes.final_accuracy({"val_accuracy": [0.5, 0.9, 0.8]}) == 0.8
    assert (
        recipes.final_accuracy({"val_accuracy": [0.5, 0.9], "ema_val_accuracy": [0.1, 0.7]}) == 0.7
    )
    out = io.StringIO()
    rows = [
        recipes.Outcome("a", [0.90, 0.92, 0.94], [10, 20, 30]),
        recipes.Outcome("b", [0.95], [5]),
    ]
    recipes.report(rows, out=out)
    a, b = out.getvalue().splitlines()[2:]
    assert a == "| a | 0.9200 ± 0.0200 | +0.00 | 0.900 0.920 0.940 | 20 |"
    assert b == "| b | 0.9500 ± 0.0000 | +3.00 | 0.950 | 5 |"
