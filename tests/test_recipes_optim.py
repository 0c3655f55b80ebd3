"""keras_zoo.recipes.optim against torch.optim, torch's schedulers and timm, not against itself.

- The update rules: three variables, 20 steps of `SGD` (momentum and Nesterov, or plain
  momentum; coupled decay) and of `AdamW` under a warm-up and cosine schedule, one variable left
  out of the decay and one at 0.3 of the rate, given the same gradients as torch.optim on the
  same parameter groups (lr_scale applied as timm's scheduler applies it): torch's weights to
  1e-12 in float64 and 1e-6 in float32.
- Step parity on resnet18 and mobilenet_v2 (keras_zoo.build against torchvision's module, both
  in float64 and train mode: batch statistics, running statistics updated), AdamW (decay 0.05,
  warm-up and cosine) on one, SGD (momentum 0.9, Nesterov, decay 1e-4 coupled, warm-up and
  steps) on the other, no decay on norms and biases (`no_decay_variables` against torch's two
  groups), cross-entropy, batches of 4 images of 32x32, 10 steps (`MODEL_STEPS`). The weights
  after every step are torch's to 1e-5 relative (measured: 4e-11 and 6e-11), the running means
  and variances after the last step too (1e-13): keras_zoo's batch norm keeps torch's unbiased
  running variance, where Keras' own layer's would be 19% and 25% away here. Each Keras step
  starts from torch's weights of the step before, as the free trajectories are chaotic here
  (`_run`); the optimizer states and running statistics are each framework's own throughout.
- float32 step parity is not asserted: from the same weights, each framework's float32
  gradient differs from the float64 one by 1e-4 (resnet18) to 4e-3 (mobilenet_v2) relative at
  this size, so the weights after a step differ by 3e-4 (SGD) to 1e-2 (AdamW), whatever the
  optimizer does. The float32 arithmetic is the update-rule test's, on equal gradients.
- The schedules equal torch's LinearLR + CosineAnnealingLR / StepLR under SequentialLR, stepped
  once per optimizer step, to 1e-12.
- `no_decay_variables` is timm's param_groups_weight_decay (ndim <= 1, and a ViT's
  no_weight_decay(): class token, position embedding) on torchvision's and timm's modules,
  mapped to Keras paths by the porter's names; `layer_decay_multipliers` is timm's
  param_groups_layer_decay on timm's ViT, its parameters renamed to torchvision's.
- Bad arguments raise ValueError naming the argument; optimizers and schedules serialize.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import re

import keras
import numpy as np
import pytest

from keras_zoo.recipes import optim
from tests.conftest import relative_error

STEPS, BATCH, SIZE, CLASSES = 20, 4, 32, 10
# the model runs: 20 steps of both take ~30 s here, over this file's share of the suite; 20
# steps of every model and optimizer in float64 measured 4e-13 to 1e-8
MODEL_STEPS = 10
SGD_SETTINGS = dict(momentum=0.9, nesterov=True, weight_decay=1e-4)
SGD_SCHEDULE = dict(base_lr=0.1, step_size=3, gamma=0.5, warmup_steps=3, warmup_start_factor=0.1)
ADAMW_SETTINGS = dict(weight_decay=0.05)
ADAMW_SCHEDULE = dict(
    base_lr=1e-3, total_steps=MODEL_STEPS, warmup_steps=3, warmup_start_factor=0.1
)


@pytest.fixture(scope="module")
def timm_optim(torch):
    """timm.optim (its parameter groups), imported after keras_zoo.torch_reference's
    import_timm has made torchvision importable."""
    from keras_zoo.torch_reference import import_timm

    import_timm()
    return importlib.import_module("timm.optim")


@contextlib.contextmanager
def floatx(dtype: str):
    """Keras builds in `dtype` inside the block (the floatx and the dtype policy, which Keras
    caches on first use), as tests/conftest.py's float64 fixture, for a module's fixture."""
    policy, before = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(before)
        keras.config.set_dtype_policy(policy)


@contextlib.contextmanager
def torch_threads(torch, count: int):
    # torch's OpenMP pool spins against TensorFlow's threads on a small machine: one thread
    # is several times faster for these small batches
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- update rules


def _torch_schedulers(torch, optimizer, kind: str, settings: dict):
    """torch's warm-up then cosine or step decay, as torchvision's train.py chains them."""
    lr = torch.optim.lr_scheduler
    warm = settings.get("warmup_steps", 0)
    if kind == "cosine":
        length = settings["total_steps"] - warm
        after = lr.CosineAnnealingLR(optimizer, T_max=length, eta_min=settings.get("min_lr", 0.0))
    else:
        after = lr.StepLR(optimizer, step_size=settings["step_size"], gamma=settings["gamma"])
    if not warm:
        return after
    start = settings.get("warmup_start_factor", optim.WARMUP_START_FACTOR)
    rise = lr.LinearLR(optimizer, start_factor=start, total_iters=warm)
    return lr.SequentialLR(optimizer, [rise, after], milestones=[warm])


# float64: the same arithmetic, to rounding; float32: each rounds its own way
RULE_TOLERANCE = {"float64": 1e-12, "float32": 1e-6}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["sgd", "sgd_plain", "adamw"])
def test_update_rules_are_torchs_with_groups_and_multipliers(torch, kind, dtype):
    # three variables: one decayed, one left out of the decay, one learning at 0.3 of the rate
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(3, 4)), rng.normal(size=(4,)), rng.normal(size=(2, 2))]
    values = [v.astype(dtype) for v in values]
    targets = [rng.normal(size=v.shape).astype(dtype) for v in values]
    settings = {
        "sgd": dict(momentum=0.9, nesterov=True, weight_decay=0.01),
        "sgd_plain": dict(momentum=0.5, nesterov=False, weight_decay=0.01),
        "adamw": dict(weight_decay=0.1),
    }[kind]
    schedule = dict(base_lr=0.05, total_steps=STEPS, warmup_steps=4, warmup_start_factor=0.2)
    variables = [keras.Variable(v, dtype=dtype, name=f"w{i}") for i, v in enumerate(values)]
    paths = [v.path for v in variables]
    make = optim.AdamW if kind == "adamw" else optim.SGD
    optimizer = make(
        optim.warmup_cosine(**schedule),
        **settings,
        no_decay=[paths[1]],
        lr_multipliers={paths[2]: 0.3},
    )
    params = [torch.tensor(v) for v in values]
    groups = [
        {"params": [params[0]]},
        {"params": [params[1]], "weight_decay": 0.0},
        {"params": [params[2]], "lr_scale": 0.3},
    ]
    make_torch = torch.optim.AdamW if kind == "adamw" else torch.optim.SGD
    reference = make_torch(groups, lr=schedule["base_lr"], **settings)
    # torch's schedulers on an optimizer of their own give the rate; timm's scheduler sets each
    # group's rate to it times the group's lr_scale
    clock = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=schedule["base_lr"])
    scheduler = _torch_schedulers(torch, clock, "cosine", schedule)
    for step in range(STEPS):
        for group in reference.param_groups:
            group["lr"] = clock.param_groups[0]["lr"] * group.get("lr_scale", 1.0)
        # the gradient of a loss whose curvature changes with the step (the momentum is then
        # no multiple of the gradient), given to both as the same numbers
        scale = 1 + np.sin(step)
        grads = [(2 * (v.numpy() - t) * scale).astype(dtype) for v, t in zip(variables, targets)]
        for param, grad in zip(params, grads):
            param.grad = torch.tensor(grad)
        reference.step()
        clock.step()
        scheduler.step()
        optimizer.apply(grads, variables)
    for variable, param in zip(variables, params):
        assert variable.dtype == dtype
        assert relative_error(variable.numpy(), param.numpy()) <= RULE_TOLERANCE[dtype], (
            variable.path
        )


# --------------------------------------------------------------------------- model parity


@dataclasses.dataclass(frozen=True)
class Case:
    model: str
    optimizer: str  # "sgd": SGD with warm-up and steps; "adamw": AdamW with warm-up and cosine


# each model and each optimizer once, in float64 (see the module docstring): a run costs 8 to
# 12 s on a 2-core machine
CASES = [Case("resnet18", "adamw"), Case("mobilenet_v2", "sgd")]
IDS = [f"{c.model}-{c.optimizer}" for c in CASES]
PARITY_TOLERANCE = 1e-5  # float64; measured: 4e-11 (resnet18) and 6e-11 (mobilenet_v2)


def _reference(torch, case: Case):
    """torchvision's module in float64 and train mode, with its own initialisation, batch-norm
    scales and shifts drawn (not 1 and 0, so that a decay on them would show), dropout off
    (random either way)."""
    from keras_zoo.torch_reference import torch_model

    torch.manual_seed(0)
    module = torch_model(case.model, num_classes=CLASSES)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.2)
            elif isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    return module.double().train()


def _torch_optimizer(torch, module, case: Case):
    """torch.optim on two parameter groups, as timm's param_groups_weight_decay makes them: no
    decay for parameters of one dimension or less."""
    decay = [p for p in module.parameters() if p.ndim > 1]
    rest = [p for p in module.parameters() if p.ndim <= 1]
    groups = [{"params": decay}, {"params": rest, "weight_decay": 0.0}]
    if case.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=SGD_SCHEDULE["base_lr"], **SGD_SETTINGS)
        return optimizer, _torch_schedulers(torch, optimizer, "step", SGD_SCHEDULE)
    optimizer = torch.optim.AdamW(groups, lr=ADAMW_SCHEDULE["base_lr"], **ADAMW_SETTINGS)
    return optimizer, _torch_schedulers(torch, optimizer, "cosine", ADAMW_SCHEDULE)


def _keras_optimizer(model, case: Case):
    no_decay = optim.no_decay_variables(model)
    if case.optimizer == "sgd":
        return optim.SGD(optim.warmup_step(**SGD_SCHEDULE), **SGD_SETTINGS, no_decay=no_decay)
    return optim.AdamW(optim.warmup_cosine(**ADAMW_SCHEDULE), **ADAMW_SETTINGS, no_decay=no_decay)


@dataclasses.dataclass
class Run:
    weight_error: float  # the largest over the steps and the trainable variables
    worst_weight: str
    mean_error: float  # of the moving means after the last step
    variance_error: float  # of the moving variances against torch's running_var
    moved: float  # the median relative change of the trainable variables over the run


def _keras_values(layers, state: dict) -> list:
    """[(layer, its weights from the torch state dict in Keras' layouts)]: the porter's
    transform, per layer (keras_zoo.port.tensors)."""
    from keras_zoo.port.mapping import torch_name
    from keras_zoo.port.tensors import keras_weights_from_torch, torch_keys

    return [
        (
            layer,
            keras_weights_from_torch(
                layer, {k: state[torch_name(layer.name, k)] for k in torch_keys(layer)}
            ),
        )
        for layer in layers
    ]


def _run(torch, case: Case) -> Run:
    """Both frameworks train in float64 on the same batches from the same weights; after every
    step the Keras weights are compared with torch's and then set to them. The trajectories
    are chaotic on these small problems (batch norm over 4 samples at 1x1 in the last stage):
    torch against itself, its weights moved by 1e-13, differs by 1e-3 to 1 after 20 steps. So
    each Keras step starts from torch's weights of the step before, while the optimizer state
    (momentum buffers, Adam's moments, the step count) and the running statistics stay each
    framework's own for all 20 steps."""
    from keras_zoo.port.mapping import weighted_layers
    from tests.parity import ported
    from tests.torch_models import state_dict_numpy

    module = _reference(torch, case)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(MODEL_STEPS, BATCH, SIZE, SIZE, 3))
    labels = rng.integers(0, CLASSES, (MODEL_STEPS, BATCH))
    start = state_dict_numpy(module)
    start = {k: v.copy() for k, v in start.items()}
    reference, scheduler = _torch_optimizer(torch, module, case)
    with floatx("float64"):
        extra = {"dropout": 0.0} if case.model.startswith("mobilenet") else {}
        model = ported(case.model, module, (SIZE, SIZE, 3), classes=CLASSES, **extra)
        model.compile(
            optimizer=_keras_optimizer(model, case),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        # built before the training function, which is then traced once, not twice
        model.optimizer.build(model.trainable_variables)
    layers = weighted_layers(model)
    trained = {id(w) for w in model.trainable_weights}
    worst, where = 0.0, ""
    for step in range(MODEL_STEPS):
        model.train_on_batch(images[step], labels[step])
        reference.zero_grad()
        logits = module(torch.from_numpy(images[step].transpose(0, 3, 1, 2)))
        torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[step])).backward()
        reference.step()
        scheduler.step()
        for layer, values in _keras_values(layers, state_dict_numpy(module)):
            for w, v in zip(layer.weights, values):
                if id(w) in trained:
                    error = relative_error(w.numpy(), v)
                    if error > worst:
                        worst, where = error, f"{w.path} after step {step}"
                    w.assign(v)  # the next step starts from torch's weights
    errors = {"moving_mean": 0.0, "moving_variance": 0.0}
    moves = []
    final = _keras_values(layers, state_dict_numpy(module))
    for (layer, values), (_, initial) in zip(final, _keras_values(layers, start)):
        for w, v, v0 in zip(layer.weights, values, initial):
            if id(w) in trained:
                moves.append(relative_error(v, v0))
                continue
            kind = w.path.rpartition("/")[2]
            errors[kind] = max(errors[kind], relative_error(w.numpy(), v))
    return Run(
        worst,
        where,
        errors["moving_mean"],
        errors["moving_variance"],
        float(np.median(moves)),
    )


@pytest.fixture(scope="module")
def runs(torch):
    done: dict[Case, Run] = {}

    def run(case: Case) -> Run:
        if case not in done:
            with torch_threads(torch, 1):
                done[case] = _run(torch, case)
        return done[case]

    return run


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_steps_give_torchs_weights_and_running_statistics(runs, case):
    run = runs(case)
    assert run.moved > 100 * PARITY_TOLERANCE  # the tolerance is far below what a step moves
    assert run.weight_error <= PARITY_TOLERANCE, run.worst_weight
    assert run.mean_error <= PARITY_TOLERANCE
    assert run.variance_error <= PARITY_TOLERANCE


# ------------------------------------------------------------------------------ schedules

SCHEDULES = [
    ("cosine", dict(base_lr=0.1, total_steps=300, warmup_steps=20, min_lr=1e-5)),
    ("cosine", dict(base_lr=0.5, total_steps=100)),
    ("step", dict(base_lr=0.1, step_size=30, gamma=0.1, warmup_steps=5, warmup_start_factor=0.25)),
    ("step", dict(base_lr=1e-3, step_size=7, gamma=0.5)),
]


@pytest.mark.parametrize("kind, settings", SCHEDULES)
def test_schedules_are_torchs_schedulers_stepped_once_per_step(torch, kind, settings):
    steps = settings.get("total_steps", 200)
    clock = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=settings["base_lr"])
    scheduler = _torch_schedulers(torch, clock, kind, settings)
    expected = []
    for _ in range(steps):  # the rate optimizer step k uses
        expected.append(clock.param_groups[0]["lr"])
        clock.step()
        scheduler.step()
    make = optim.warmup_cosine if kind == "cosine" else optim.warmup_step
    got = np.asarray(make(**settings)(np.arange(steps)))
    assert np.abs(got - np.asarray(expected)).max() <= 1e-12 * settings["base_lr"]


# ------------------------------------------------------------------ parameter groups, names

# timm's ViT parameter names -> torchvision's, which keras_zoo's layer names are
TIMM_TO_TORCHVISION = (
    (r"^cls_token$", "class_token"),
    (r"^pos_embed$", "encoder.pos_embedding"),
    (r"^patch_embed\.proj\.", "conv_proj."),
    (r"^blocks\.(\d+)\.norm(\d)\.", r"encoder.layers.encoder_layer_\1.ln_\2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.encoder_layer_\1.self_attention.in_proj_"),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.encoder_layer_\1.self_attention.out_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"encoder.layers.encoder_layer_\1.mlp.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"encoder.layers.encoder_layer_\1.mlp.3."),
    (r"^norm\.", "encoder.ln."),
    (r"^head\.", "heads.head."),
)
VIT = dict(patch_size=16, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16)


def _torchvision_name(timm_name: str) -> str:
    for pattern, replacement in TIMM_TO_TORCHVISION:
        name, found = re.subn(pattern, replacement, timm_name)
        if found:
            return name
    raise KeyError(timm_name)


def _torch_names(model) -> dict[str, str]:
    """{Keras variable path: the torch parameter it is ported from}."""
    from keras_zoo.port.mapping import torch_name, weighted_layers
    from keras_zoo.port.tensors import torch_keys

    names = {}
    for layer in weighted_layers(model):
        keys = torch_keys(layer)
        if isinstance(layer, keras.layers.MultiHeadAttention):
            # query, key and value come out of the packed in_proj tensors (port/tensors.py)
            keys = ("in_proj_weight", "in_proj_bias") * 3 + ("out_proj.weight", "out_proj.bias")
        for w, key in zip(layer.weights, keys):
            names[w.path] = torch_name(layer.name, key)
    return names


def _small_vits(torch):
    """keras_zoo's ViT, timm's and torchvision's, of the same small shape."""
    from keras_zoo.models.vit import vision_transformer
    from keras_zoo.torch_reference import import_timm, import_torchvision

    model = vision_transformer(**VIT, input_shape=(SIZE, SIZE, 3), classes=CLASSES)
    timm_vit = import_timm().models.vision_transformer.VisionTransformer(
        img_size=SIZE,
        patch_size=VIT["patch_size"],
        embed_dim=VIT["hidden_dim"],
        depth=VIT["num_layers"],
        num_heads=VIT["num_heads"],
        mlp_ratio=VIT["mlp_dim"] / VIT["hidden_dim"],
        num_classes=CLASSES,
    )
    torchvision_vit = import_torchvision().models.vision_transformer.VisionTransformer(
        image_size=SIZE, **VIT, num_classes=CLASSES
    )
    return model, timm_vit, torchvision_vit


def _timm_no_decay(timm_optim, module, no_weight_decay=()) -> set[str]:
    """The names of `module`'s parameters in timm's group without weight decay."""
    groups = timm_optim.param_groups_weight_decay(
        module, weight_decay=1e-4, no_weight_decay_list=no_weight_decay
    )
    left = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    return {name for name, p in module.named_parameters() if id(p) in left}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_no_decay_variables_are_timms_choice_on_cnns(torch, timm_optim, name):
    import keras_zoo
    from keras_zoo.torch_reference import torch_model

    model = keras_zoo.build(name, input_shape=(SIZE, SIZE, 3), classes=CLASSES)
    with torch.device("meta"):
        module = torch_model(name, num_classes=CLASSES)
    left = _timm_no_decay(timm_optim, module)
    names = _torch_names(model)
    expected = [v.path for v in model.trainable_variables if names[v.path] in left]
    got = optim.no_decay_variables(model)
    assert got == expected
    assert len({names[p] for p in got}) == len(left)  # every parameter timm leaves out


def test_no_decay_variables_of_a_vit_are_timms_choice(torch, timm_optim):
    model, timm_vit, torchvision_vit = _small_vits(torch)
    left = {
        _torchvision_name(n)
        for n in _timm_no_decay(timm_optim, timm_vit, timm_vit.no_weight_decay())
    }
    assert "class_token" in left and "encoder.pos_embedding" in left
    names = _torch_names(model)
    assert set(names.values()) == {n for n, _ in torchvision_vit.named_parameters()}
    expected = [v.path for v in model.trainable_variables if names[v.path] in left]
    assert optim.no_decay_variables(model) == expected


def test_layer_decay_multipliers_are_timms_lr_scales(torch, timm_optim):
    model, timm_vit, torchvision_vit = _small_vits(torch)
    groups = timm_optim.param_groups_layer_decay(
        timm_vit,
        weight_decay=0.05,
        no_weight_decay_list=timm_vit.no_weight_decay(),
        layer_decay=0.75,
    )
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    timm_scales = {_torchvision_name(n): scale[id(p)] for n, p in timm_vit.named_parameters()}
    shapes = {n: tuple(p.shape) for n, p in torchvision_vit.named_parameters()}
    assert {_torchvision_name(n): tuple(p.shape) for n, p in timm_vit.named_parameters()} == shapes
    names = _torch_names(model)
    got = optim.layer_decay_multipliers(model, 0.75)
    assert got == {path: timm_scales[names[path]] for path in names}
    assert len(set(got.values())) == VIT["num_layers"] + 2  # stem, blocks, head


# -------------------------------------------------------------- dtypes, checks, serialization


def test_float16_gradients_update_float32_variables_as_torch(torch):
    # mixed precision: float32 variables, float16 gradients cast up
    rng = np.random.default_rng(0)
    value = rng.normal(size=(5, 3)).astype("float32")
    variable = keras.Variable(value, dtype="float32")
    optimizer = optim.AdamW(1e-2, weight_decay=0.1)
    param = torch.tensor(value)
    reference = torch.optim.AdamW([param], lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        grad = rng.normal(size=value.shape).astype("float16")
        param.grad = torch.tensor(grad.astype("float32"))
        reference.step()
        optimizer.apply([keras.ops.convert_to_tensor(grad)], [variable])
    assert optimizer.exp_avgs[0].dtype == "float32"
    assert relative_error(variable.numpy(), param.numpy()) <= 1e-6


BAD_ARGUMENTS = [
    (optim.SGD, dict(learning_rate=-0.1), "learning_rate"),
    (optim.SGD, dict(momentum=1.0), "momentum"),
    (optim.SGD, dict(nesterov=1), "nesterov"),
    (optim.SGD, dict(momentum=0.0), "nesterov"),
    (optim.SGD, dict(weight_decay=-1e-4), "weight_decay"),
    (optim.SGD, dict(no_decay="bn1/gamma"), "no_decay"),
    (optim.SGD, dict(no_decay=[3]), "no_decay"),
    (optim.AdamW, dict(lr_multipliers={"fc/kernel": -1.0}), "lr_multipliers"),
    (optim.AdamW, dict(lr_multipliers=[0.5]), "lr_multipliers"),
    (optim.AdamW, dict(beta_1=1.0), "beta_1"),
    (optim.AdamW, dict(beta_2=-0.1), "beta_2"),
    (optim.AdamW, dict(epsilon=0.0), "epsilon"),
    (optim.warmup_cosine, dict(base_lr=0.0, total_steps=10), "base_lr"),
    (optim.warmup_cosine, dict(base_lr=0.1, total_steps=10, warmup_steps=10), "total_steps"),
    (optim.warmup_cosine, dict(base_lr=0.1, total_steps=10, warmup_steps=2.5), "warmup_steps"),
    (optim.warmup_cosine, dict(base_lr=0.1, total_steps=9, warmup_start_factor=0), "warmup_start"),
    (optim.warmup_cosine, dict(base_lr=0.1, total_steps=10, min_lr=0.2), "min_lr"),
    (optim.warmup_step, dict(base_lr=0.1, step_size=0), "step_size"),
    (optim.warmup_step, dict(base_lr=0.1, step_size=3, gamma=0.0), "gamma"),
    (optim.layer_decay_multipliers, dict(model=None, decay=1.5), "decay"),
]


@pytest.mark.parametrize(
    "make, kwargs, arg", BAD_ARGUMENTS, ids=[f"{m.__name__}-{a}" for m, _, a in BAD_ARGUMENTS]
)
def test_bad_arguments_raise_value_errors_naming_them(make, kwargs, arg):
    with pytest.raises(ValueError, match=rf"^{arg}"):
        make(**kwargs)


def test_paths_the_optimizer_does_not_train_and_models_without_blocks_are_refused():
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
    with pytest.raises(ValueError, match=r"^no_decay: \['fc/bais'\] name no variable"):
        optim.SGD(0.1, no_decay=["fc/bais"]).build(dense.trainable_variables)
    with pytest.raises(ValueError, match=r"^lr_multipliers: \['fc'\] name no variable"):
        optim.AdamW(1e-3, lr_multipliers={"fc": 0.5}).build(dense.trainable_variables)
    with pytest.raises(ValueError, match=r"^model: .* has no encoder blocks"):
        optim.layer_decay_multipliers(dense, 0.75)
    with pytest.raises(ValueError, match=r"^exclude_from_weight_decay: give .* as no_decay"):
        optim.SGD(0.1).exclude_from_weight_decay(var_names=["bias"])


def test_optimizers_and_schedules_survive_serialization():
    optimizers = [
        optim.SGD(
            optim.warmup_cosine(0.1, 100, 10, 0.1, 1e-4),
            weight_decay=1e-4,
            no_decay=["fc/bias"],
            lr_multipliers={"fc/kernel": 0.5},
        ),
        optim.AdamW(optim.warmup_step(1e-3, 5, 0.5, 2), beta_2=0.99, epsilon=1e-6),
    ]
    for optimizer in optimizers:
        config = json.loads(json.dumps(keras.optimizers.serialize(optimizer)))
        again = keras.optimizers.deserialize(config)
        assert type(again) is type(optimizer)
        assert again.get_config() == optimizer.get_config()
    steps = np.arange(120)
    for schedule in (optim.warmup_cosine(0.1, 100, 10, 0.1, 1e-4), optim.warmup_step(1e-3, 5)):
        config = json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
        again = keras.optimizers.schedules.deserialize(config)
        assert type(again) is type(schedule)
        assert np.array_equal(again(steps), schedule(steps))
