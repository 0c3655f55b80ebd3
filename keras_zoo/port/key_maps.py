"""Checkpoint key conventions (layouts), told apart by their keys and renamed into keras_zoo's
by tables.

keras_zoo's layer names are torchvision's module paths (megvii's for ShuffleNet V1, timm's for
MobileNet V1, PFLD-pytorch's for PFLD), so checkpoints in those layouts load as they are.
PFLD-pytorch's train.py saves the backbone's and the auxiliary net's state_dicts side by side
({"pfld_backbone": ..., "auxiliarynet": ...}): the backbone's keys become the top level, and
bn8, which its forward pass never uses, is dropped. timm's MobileNet V2 and V3
(its EfficientNet-style builder) hold the same tensors under other names:

| timm                                        | keras_zoo (torchvision)                       |
|---------------------------------------------|-----------------------------------------------|
| conv_stem, bn1                              | features.0.0, features.0.1                    |
| blocks.S.B, the n-th block (from 1)         | features.n, its steps numbered as below       |
| conv_head, bn2 (V2)                         | features.N.0, features.N.1 (after the blocks) |
| conv_head (V3: a biased 1x1 conv after pooling) | classifier.0, a Linear: (O, I, 1, 1) -> (O, I) |
| classifier                                  | classifier.1 (V2), classifier.3 (V3)          |

Inside a block, timm names the submodules of each step (conv_pw + bn1, conv_dw + bn2,
se.conv_reduce + se.conv_expand, conv_pwl + bn3) where torchvision numbers the steps present:
V2's InvertedResidual.conv holds its projection's conv and batch norm as two items of the
sequence (conv.2, conv.3), V3's InvertedResidual.block wraps every step (block.3.0, block.3.1),
and a squeeze-and-excitation step, where there is one, shifts the numbers after it.

timm's ConvNeXt keeps torchvision's tensors, its layer scale as (C,) where torchvision's is
(C, 1, 1), in stages of its own:

| timm                                        | keras_zoo (torchvision)                       |
|---------------------------------------------|-----------------------------------------------|
| stem.0, stem.1                              | features.0.0, features.0.1                    |
| stages.S.downsample.0 / .1 (S > 0)          | features.2S.0 / .1                            |
| stages.S.blocks.B.conv_dw, norm             | features.(2S+1).B.block.0, block.2            |
| stages.S.blocks.B.mlp.fc1, mlp.fc2          | features.(2S+1).B.block.3, block.5            |
| stages.S.blocks.B.gamma (C,)                | features.(2S+1).B.layer_scale (C, 1, 1)       |
| head.norm, head.fc                          | classifier.0, classifier.2                    |

All of that is data below: `TIMM_BLOCKS` (timm's block kinds as ordered steps), `Numbering`
(torchvision's conventions) and one tuple of `Map`s per layout in `LAYOUTS`; the functions only
apply them.

>>> import numpy as np
>>> state = {"conv_stem.weight": np.zeros((16, 3, 3, 3)), "bn1.weight": np.ones(16),
...          "blocks.0.0.conv.weight": np.zeros((96, 16, 1, 1)),
...          "blocks.0.0.bn1.weight": np.ones(96),
...          "conv_head.weight": np.zeros((1280, 96, 1, 1))}
>>> detect_layout(state)
'timm'
>>> converted = convert_state_dict(state, "timm")
>>> {k: v.shape for k, v in converted.items()}  # doctest: +NORMALIZE_WHITESPACE
{'features.0.0.weight': (16, 3, 3, 3), 'features.0.1.weight': (16,),
 'features.1.0.weight': (96, 16, 1, 1), 'features.1.1.weight': (96,),
 'classifier.0.weight': (1280, 96)}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from keras_zoo import checks

__all__ = [
    "LAYOUTS",
    "TIMM_BLOCKS",
    "Map",
    "Numbering",
    "Step",
    "convert_state_dict",
    "detect_layout",
]


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a timm block: its kind ("conv_bn_act", "conv_bn": no activation, "se") and
    the timm submodules it holds, in order. An optional step may be absent from a block."""

    kind: str
    members: tuple[str, ...]
    optional: bool = False


_SE = Step("se", ("se.conv_reduce", "se.conv_expand"), optional=True)

# timm's EfficientNet-builder blocks (timm.models._efficientnet_blocks), steps in the order
# they compute. A block's kind is read from the submodules it has.
TIMM_BLOCKS: dict[str, tuple[Step, ...]] = {
    # DepthwiseSeparableConv: depthwise, [squeeze-excitation], pointwise without activation
    "ds": (Step("conv_bn_act", ("conv_dw", "bn1")), _SE, Step("conv_bn", ("conv_pw", "bn2"))),
    # InvertedResidual: expansion, depthwise, [squeeze-excitation], linear projection
    "ir": (
        Step("conv_bn_act", ("conv_pw", "bn1")),
        Step("conv_bn_act", ("conv_dw", "bn2")),
        _SE,
        Step("conv_bn", ("conv_pwl", "bn3")),
    ),
    # ConvBnAct: MobileNetV3's last 1x1 convolution
    "cn": (Step("conv_bn_act", ("conv", "bn1")),),
}


@dataclasses.dataclass(frozen=True)
class Numbering:
    """How torchvision names a block's steps: `attr` is the block's nn.Sequential ("" when the
    block is the sequence), and `members` gives, per step kind, the names of the step's members
    inside the step's own module, or None where the members are items of the sequence
    themselves (each taking a number)."""

    attr: str
    members: Mapping[str, tuple[str, ...] | None]


_CONV_BN = ("0", "1")  # Conv2dNormActivation: .0 the convolution, .1 the batch norm
_FC = ("fc1", "fc2")  # torchvision's SqueezeExcitation
# MobileNetV2's InvertedResidual.conv: the projection's conv and batch norm are sequence items
TORCHVISION_V2 = Numbering("conv", {"conv_bn_act": _CONV_BN, "conv_bn": None, "se": _FC})
# MobileNetV3's InvertedResidual.block: every step a module of its own, the projection too
TORCHVISION_V3 = Numbering("block", {"conv_bn_act": _CONV_BN, "conv_bn": _CONV_BN, "se": _FC})
# a Conv2dNormActivation that is a block by itself
TORCHVISION_CONV = Numbering("", {"conv_bn_act": None})


@dataclasses.dataclass(frozen=True)
class Map:
    """One architecture's names within a layout.

    modules: each top-level module of the checkpoint -> its keras_zoo path; everything under it
        moves along. "{end}" is the number after the last block.
    required: the top-level modules the checkpoint must have. A checkpoint fits the map when
        its top-level modules include `required` and are all in `modules`.
    blocks: per timm block kind, torchvision's numbering of its steps; block n (from 1, in
        order of (S, B)) goes to modules["blocks"] with "{n}" filled in, or with "{stage}"
        (S + 1) and "{block}" (B) where torchvision nests blocks in stages (EfficientNet);
        "{end}" then counts stages, not blocks. None: "blocks" is renamed like any other
        module.
    conv_as_linear: top-level modules whose 1x1 convolution becomes a Linear.
    unused: modules (keras_zoo's paths) that the source's forward pass never reads, whose
        tensors are dropped on purpose (PFLD-pytorch's bn8).
    block_members: submodules that some block must hold for the map to fit (timm's
        EfficientNet and MobileNet V2 share their top-level modules; only the EfficientNet
        has squeeze-and-excitation).
    paths: renames below the top level, (source path, keras_zoo path) pairs, for top-level
        modules whose parts go to different places (timm's ConvNeXt: stages.S.blocks.B.mlp.fc1
        -> features.(2S+1).B.block.3). "{B}" stands for any number and carries over; the
        longest path that starts a key renames it, and a key under a top-level module that
        has paths must start with one of them (its entry in `modules` only lets it fit).
    channel_scales: parameters (the last part of a keras_zoo key) of one value per channel
        that torchvision keeps as (C, 1, 1) and the source as (C,) (ConvNeXt's layer_scale,
        timm's gamma): a (C,) tensor gets the two axes.

    A module renamed to "" is a wrapper whose contents are the model's top level
    (PFLD-pytorch's train.py saves the backbone's state_dict under "pfld_backbone").
    """

    name: str
    modules: Mapping[str, str]
    required: frozenset[str]
    blocks: Mapping[str, Numbering] | None = None
    conv_as_linear: frozenset[str] = frozenset()
    unused: frozenset[str] = frozenset()
    block_members: frozenset[str] = frozenset()
    paths: tuple[tuple[str, str], ...] = ()
    channel_scales: frozenset[str] = frozenset()


def _same_names(name: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Map:
    return Map(name, {m: m for m in required + optional}, frozenset(required))


RESNET = _same_names("resnet", ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4"), ("fc",))
TORCHVISION_MOBILENET = _same_names("mobilenet_v2/v3", ("features",), ("classifier",))
SHUFFLENET_V2 = _same_names(
    "shufflenet_v2", ("conv1", "stage2", "stage3", "stage4", "conv5"), ("fc",)
)
MEGVII_SHUFFLENET_V1 = _same_names("shufflenet_v1", ("first_conv", "features"), ("classifier",))
TIMM_MOBILENET_V1 = _same_names("mobilenetv1", ("conv_stem", "bn1", "blocks"), ("classifier",))
TIMM_MOBILENET_V2 = Map(
    "mobilenetv2",
    {
        "conv_stem": "features.0.0",
        "bn1": "features.0.1",
        "blocks": "features.{n}",
        "conv_head": "features.{end}.0",
        "bn2": "features.{end}.1",
        "classifier": "classifier.1",
    },
    frozenset({"conv_stem", "bn1", "blocks", "conv_head", "bn2"}),
    blocks={"ds": TORCHVISION_V2, "ir": TORCHVISION_V2},
)
# timm's EfficientNet: its MobileNet V2's top-level names, its blocks in torchvision's stages
TIMM_EFFICIENTNET = dataclasses.replace(
    TIMM_MOBILENET_V2,
    name="efficientnet",
    modules={**TIMM_MOBILENET_V2.modules, "blocks": "features.{stage}.{block}"},
    blocks={"ds": TORCHVISION_V3, "ir": TORCHVISION_V3},
    block_members=frozenset({"se.conv_reduce"}),
)
TIMM_MOBILENET_V3 = Map(
    "mobilenetv3",
    {
        "conv_stem": "features.0.0",
        "bn1": "features.0.1",
        "blocks": "features.{n}",
        "conv_head": "classifier.0",
        "classifier": "classifier.3",
    },
    frozenset({"conv_stem", "bn1", "blocks", "conv_head"}),
    blocks={"ds": TORCHVISION_V3, "ir": TORCHVISION_V3, "cn": TORCHVISION_CONV},
    conv_as_linear=frozenset({"conv_head"}),
)


def _convnext_paths(stages: int = 4) -> tuple[tuple[str, str], ...]:
    """timm's ConvNeXt paths -> torchvision's: stage S's blocks are features.(2S+1), the
    downsampling before it (S > 0) features.2S; the head's norm and Linear classifier.0 and .2
    (torchvision's .1 is a Flatten)."""
    block = {
        "conv_dw": "block.0",
        "norm": "block.2",
        "mlp.fc1": "block.3",
        "mlp.fc2": "block.5",
        "gamma": "layer_scale",
    }
    paths = [("head.norm", "classifier.0"), ("head.fc", "classifier.2")]
    for s in range(stages):
        if s:
            paths.append((f"stages.{s}.downsample", f"features.{2 * s}"))
        paths += [
            (f"stages.{s}.blocks.{{B}}.{member}", f"features.{2 * s + 1}.{{B}}.{path}")
            for member, path in block.items()
        ]
    return tuple(paths)


TIMM_CONVNEXT = Map(
    "convnext",
    {"stem": "features.0", "stages": "features", "head": "classifier"},
    frozenset({"stem", "stages"}),
    paths=_convnext_paths(),
    channel_scales=frozenset({"layer_scale"}),
)

# PFLD-pytorch (polarisZhao/PFLD-pytorch, models/pfld.py): PFLDInference's module names are
# keras_zoo's. bn8 is in its state_dict but not in its forward pass (conv8 -> ReLU): dropped.
_PFLD_BACKBONE = (
    "conv1",
    "bn1",
    "conv2",
    "bn2",
    "conv3_1",
    "block3_2",
    "block3_3",
    "block3_4",
    "block3_5",
    "conv4_1",
    "conv5_1",
    "block5_2",
    "block5_3",
    "block5_4",
    "block5_5",
    "block5_6",
    "conv6_1",
    "conv7",
    "conv8",
)
_PFLD_UNUSED = frozenset({"bn8"})
PFLD = dataclasses.replace(_same_names("pfld", _PFLD_BACKBONE, ("bn8", "fc")), unused=_PFLD_UNUSED)


def _pfld_training(backbone: str) -> Map:
    # train.py's checkpoint, {"epoch", backbone: PFLDInference's state_dict, "auxiliarynet":
    # AuxiliaryNet's}, read as one state_dict (keras_zoo.port.reader): the backbone's keys are
    # the model's top level, the auxiliary net's keep their prefix (keras_zoo's names for it)
    return Map(
        f"pfld training checkpoint ({backbone}, auxiliarynet)",
        {backbone: "", "auxiliarynet": "auxiliarynet"},
        frozenset({backbone}),
        unused=_PFLD_UNUSED,
    )


# other versions of PFLD-pytorch (camera.py at 260de81) and many forks name it "plfd_backbone"
PFLD_TRAINING = (_pfld_training("pfld_backbone"), _pfld_training("plfd_backbone"))

# Each source layout's maps. detect_layout tries the layouts in this order: timm's ResNets
# share torchvision's names, so they are "torchvision".
LAYOUTS: dict[str, tuple[Map, ...]] = {
    "torchvision": (RESNET, TORCHVISION_MOBILENET, SHUFFLENET_V2),
    "timm": (
        TIMM_EFFICIENTNET,
        TIMM_MOBILENET_V2,
        TIMM_MOBILENET_V3,
        TIMM_MOBILENET_V1,
        RESNET,
        TIMM_CONVNEXT,
    ),
    "megvii": (MEGVII_SHUFFLENET_V1,),
    "pfld_pytorch": (*PFLD_TRAINING, PFLD),
}


def _top_modules(keys: Iterable[str]) -> set[str]:
    return {key.partition(".")[0] for key in keys}


def _block_member_names(keys: Iterable[str]) -> set[str]:
    """The submodules of timm's blocks: "se.conv_reduce" for blocks.S.B.se.conv_reduce.weight."""
    return {".".join(k.split(".")[3:-1]) for k in keys if k.startswith("blocks.")}


def _fits(map_: Map, keys: list[str]) -> bool:
    top = _top_modules(keys)
    return map_.required <= top <= set(map_.modules) and map_.block_members <= _block_member_names(
        keys
    )


def detect_layout(keys: Iterable[str]) -> str | None:
    """The layout of a state_dict ("torchvision", "timm", "megvii", "pfld_pytorch") from its
    keys; None if no layout's map fits them.

    >>> detect_layout(["conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
    ...                "layer2.0.conv1.weight", "layer3.0.conv1.weight", "layer4.0.conv1.weight"])
    'torchvision'
    >>> detect_layout(["encoder.weight"]) is None
    True
    """
    keys = list(keys)
    return next((name for name, maps in LAYOUTS.items() if any(_fits(m, keys) for m in maps)), None)


def _fitting_map(layout: str, keys: list[str]) -> Map:
    top = _top_modules(keys)
    maps = LAYOUTS[layout]
    for map_ in maps:
        if _fits(map_, keys):
            return map_
    # name the first key that the closest map (one whose required modules are all there) lacks
    closest = next((m for m in maps if m.required <= top), None)
    known = set(closest.modules) if closest else set().union(*(m.modules for m in maps))
    stray = next((k for k in keys if k.partition(".")[0] not in known), None)
    what = (
        f"cannot place {stray!r}"
        if stray
        else "a checkpoint with top-level modules " + (", ".join(sorted(top)) or "(none)")
    )
    options = "; ".join(
        f"{m.name}: {', '.join(sorted(m.required))}"
        + (
            f" (and maybe {', '.join(sorted(set(m.modules) - m.required))})"
            if set(m.modules) - m.required
            else ""
        )
        for m in maps
    )
    raise ValueError(
        f"{what}: no {layout} map fits. The maps and the top-level modules each needs: {options}"
    )


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _block_kind(members: set[str]) -> str | None:
    """The timm block kind with exactly these submodules (optional steps whole or absent)."""
    for kind, steps in TIMM_BLOCKS.items():
        if members <= {m for s in steps for m in s.members} and all(
            set(s.members) <= members or (s.optional and not set(s.members) & members)
            for s in steps
        ):
            return kind
    return None


def _step_paths(steps: tuple[Step, ...], members: set[str], numbering: Numbering) -> dict:
    """timm submodule -> its path inside torchvision's block, numbering the steps present."""
    paths, index = {}, 0
    for step in steps:
        if not set(step.members) & members:
            continue
        names = numbering.members[step.kind]
        if names is None:
            for member in step.members:
                paths[member] = _join(numbering.attr, str(index))
                index += 1
        else:
            for member, name in zip(step.members, names):
                paths[member] = _join(numbering.attr, str(index), name)
            index += 1
    return paths


def _block_renames(map_: Map, keys: list[str]) -> dict[tuple[int, int, str], str]:
    """Each timm block submodule, (S, B, "conv_pw") for blocks.S.B.conv_pw, -> its keras_zoo
    module path."""
    blocks: dict[tuple[int, int], dict[str, str]] = {}  # (S, B) -> {member: its first key}
    for key in keys:
        parts = key.split(".")
        if parts[0] != "blocks":
            continue
        if len(parts) < 5 or not (parts[1].isdigit() and parts[2].isdigit()):
            raise ValueError(f"cannot place {key!r}: {map_.name} blocks are blocks.S.B.<module>")
        blocks.setdefault((int(parts[1]), int(parts[2])), {}).setdefault(".".join(parts[3:-1]), key)
    numberings = map_.blocks or {}
    renames: dict[tuple[int, int, str], str] = {}
    for n, (s, b) in enumerate(sorted(blocks), start=1):
        members = blocks[s, b]
        kind = _block_kind(set(members))
        if kind is None or kind not in numberings:
            kinds = {k: [m for step in TIMM_BLOCKS[k] for m in step.members] for k in numberings}
            known = {m for ms in kinds.values() for m in ms}
            stray = next(
                (k for m, k in members.items() if m not in known), next(iter(members.values()))
            )
            raise ValueError(
                f"cannot place {stray!r}: block {s}.{b} (submodules {', '.join(members)}) is "
                f"none of {map_.name}'s block kinds: "
                + "; ".join(f"{k} ({', '.join(ms)})" for k, ms in kinds.items())
            )
        block = (
            map_.modules["blocks"]
            .replace("{n}", str(n))
            .replace("{stage}", str(s + 1))
            .replace("{block}", str(b))
        )
        paths = _step_paths(TIMM_BLOCKS[kind], set(members), numberings[kind])
        renames.update(((s, b, member), _join(block, path)) for member, path in paths.items())
    return renames


def _path_target(map_: Map, key: str) -> str:
    """`key` renamed by the longest of `map_.paths` that starts it; ValueError naming the key
    when none does."""
    parts = key.split(".")
    best: tuple[int, str] | None = None
    for source, target in map_.paths:
        pattern = source.split(".")
        head = parts[: len(pattern)]
        if len(head) < len(pattern) or (best is not None and len(pattern) <= best[0]):
            continue
        if all(p == h or (p == "{B}" and h.isdigit()) for p, h in zip(pattern, head)):
            number = next((h for p, h in zip(pattern, head) if p == "{B}"), "")
            best = (len(pattern), _join(target.replace("{B}", number), *parts[len(pattern) :]))
    if best is None:
        starts = sorted({s for s, _ in map_.paths if s.partition(".")[0] == parts[0]})
        raise ValueError(
            f"cannot place {key!r}: {map_.name}'s {parts[0]} keys start with one of "
            + ", ".join(starts)
        )
    return best[1]


def _conv_as_linear(key: str, value: np.ndarray) -> np.ndarray:
    if key.rpartition(".")[2] != "weight":
        return value
    if value.ndim != 4 or value.shape[2:] != (1, 1):
        raise ValueError(f"{key!r} should be a 1x1 convolution's weight, got shape {value.shape}")
    return value.reshape(value.shape[:2])


def convert_state_dict(
    state_dict: Mapping[str, Any], layout: str | None = None
) -> dict[str, np.ndarray]:
    """`state_dict` in keras_zoo's (torchvision's) names and layouts, as numpy arrays.

    layout: "torchvision", "timm", "megvii" or "pfld_pytorch" (see `LAYOUTS`); None reads it
    from the keys with `detect_layout`. Layouts that already are keras_zoo's only become numpy
    (less the modules their source never uses: PFLD-pytorch's bn8); timm's MobileNet V2 and V3,
    EfficientNet and ConvNeXt and PFLD-pytorch's training checkpoints are renamed. The input
    is left as it is (arrays may share memory with it).
    Raises ValueError for an unknown layout, or naming the first key the layout's maps cannot
    place.
    """
    keys = list(state_dict)
    if layout is None:
        layout = detect_layout(keys)
        if layout is None:
            shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "") or "none"
            raise ValueError(
                f"the checkpoint's keys ({shown}) fit none of the known layouts: "
                f"{', '.join(LAYOUTS)}"
            )
    checks.check_choice(layout, "layout", tuple(LAYOUTS))
    map_ = _fitting_map(layout, keys)
    renames = _block_renames(map_, keys) if map_.blocks is not None else {}
    # "{end}" follows the last block, or the last stage where blocks are nested in stages
    depth = 2 if "{stage}" in map_.modules.get("blocks", "") else 3
    positions = {tuple(k.split(".")[1:depth]) for k in keys if k.startswith("blocks.")}
    end = str(len(positions) + 1)
    by_paths = {source.partition(".")[0] for source, _ in map_.paths}
    out: dict[str, np.ndarray] = {}
    for key in keys:
        top = key.partition(".")[0]
        if renames and top == "blocks":
            _, s, b, *member, param = key.split(".")
            target = _join(renames[int(s), int(b), ".".join(member)], param)
        elif top in by_paths:
            target = _path_target(map_, key)
        else:
            target = _join(map_.modules[top].replace("{end}", end), key[len(top) + 1 :])
        if target.rpartition(".")[0] in map_.unused:
            continue
        value = np.asarray(state_dict[key])
        if top in map_.conv_as_linear:
            value = _conv_as_linear(key, value)
        if target.rpartition(".")[2] in map_.channel_scales and value.ndim == 1:
            value = value.reshape(-1, 1, 1)
        if target in out:
            raise ValueError(f"{key!r} and another key both become {target!r}")
        out[target] = value
    return out
