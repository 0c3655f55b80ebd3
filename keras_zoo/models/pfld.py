"""PFLD, the practical facial landmark detector (Guo et al., 2019, arXiv 1902.10859), as
PFLD-pytorch (polarisZhao/PFLD-pytorch, models/pfld.py) defines it: its trained checkpoint is
the one people use, and its module, not the paper, says what that checkpoint computes.

The backbone is PFLD-pytorch's `PFLDInference` with its module names as layer names (conv1,
bn1, conv2, bn2, conv3_1, block3_2 .. block3_5, conv4_1, conv5_1, block5_2 .. block5_6,
conv6_1, conv7, conv8, fc; an inverted residual's layers numbered as its flat nn.Sequential,
block3_2.conv.0 .. .7), so its state_dict loads by name. Where it differs from the paper:

- conv2 is a full 3x3 convolution (the paper's is depthwise);
- the residual of each inverted residual block is set per block (conv5_1 keeps 128 channels
  at stride 1 and has none);
- conv8 is a biased 7x7 convolution followed by ReLU, without a batch norm: the checkpoint's
  bn8 is never used in its forward pass, and its tensors are dropped when a checkpoint is read
  (keras_zoo.port.key_maps, `Map.unused`);
- its two pools, AvgPool2d(14) and AvgPool2d(7), are global at 112x112, the only input size:
  the model takes 112x112 crops only (conv8's 7x7 window needs conv7's 7x7 map as well).

The output is the landmarks, (N, 2 * num_landmarks) coordinates in [0, 1] of the crop (x, y
per point). `auxiliary=True` adds PFLD-pytorch's `AuxiliaryNet` (layers auxiliarynet.conv1.0
.. auxiliarynet.fc2) on block3_5's 28x28 map, which predicts the head pose (yaw, pitch, roll)
for training: the model's outputs are then {"landmarks": (N, 2K), "angles": (N, 3)}. Its conv4
is a 7x7 convolution padded by 1 (7x7 -> 3x3), then a 3x3 max pool, fc1 and fc2 with no
activation between them.

`alpha` scales every channel count of the backbone, the paper's 0.25X (`pfld_0_25`) included;
the auxiliary net keeps its own widths (its input is block3_5's). `features_only=True` returns
the three stage outputs (strides 4, 8, 16: block3_5, conv6_1, conv7).

Inputs are prepared as PFLD-pytorch's test.py and camera.py do: a square face crop resized to
112x112, channels in OpenCV's BGR order, values divided by 255, no mean or std.

Keras and the blocks are imported by the functions that build: the table registers the ids
without TensorFlow.

>>> import keras_zoo
>>> keras_zoo.build("pfld", num_landmarks=68).output.shape
(None, 136)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from keras_zoo import checks
from keras_zoo.builder import build_model
from keras_zoo.registry import register_model
from keras_zoo.weight_sets import Preprocessing, WeightSet

if TYPE_CHECKING:
    import keras

TITLE = "PFLD"  # the family as the command line's description names it
INPUT_SIZE = (112, 112)
NUM_LANDMARKS = (68, 98, 106)  # 300W, WFLW, the 106-point JD set
AUXILIARY = "auxiliarynet"  # the auxiliary net's layers are named under this module path
# PFLD-pytorch's images: OpenCV's BGR, divided by 255 (transforms.ToTensor), no mean or std;
# a square crop of the face resized to 112x112 with OpenCV's bilinear resize
PFLD_PREPROCESSING = Preprocessing(
    input_size=INPUT_SIZE,
    crop_pct=1.0,
    interpolation="bilinear",
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    channel_order="BGR",
)

# PFLD-pytorch's trained checkpoint (98 WFLW points), in its repository at the commit that added
# it; no sha256 is published, so a download is checked against the git blob id its tree records
PFLD_PYTORCH_COMMIT = "b00750c37deaf5d133933d080d4b7a6421826812"
WFLW_CHECKPOINT = WeightSet(
    source="pfld_pytorch",
    tag="WFLW",
    url=(
        f"https://github.com/polarisZhao/PFLD-pytorch/raw/{PFLD_PYTORCH_COMMIT}/"
        "checkpoint/snapshot/checkpoint.pth.tar"
    ),
    layout="pfld_pytorch",
    top1=None,  # a landmark detector: no ImageNet accuracy
    preprocessing=PFLD_PREPROCESSING,
    # no config: its 98 points come from its head (fc's 196 outputs), and a fine-tuning run
    # on other points replaces the head
    filename=f"pfld_pytorch-{PFLD_PYTORCH_COMMIT[:7]}-checkpoint.pth.tar",
    git_blob="6c790656cfc3543837ea02928879a97fa22a97ff",
)


@dataclasses.dataclass(frozen=True)
class Block:
    """One of PFLDInference's inverted residual blocks, at width 1.0."""

    name: str  # its module name
    channels: int  # output channels
    stride: int
    expansion: int
    residual: bool  # PFLD-pytorch's use_res_connect


BLOCKS = (
    Block("conv3_1", 64, 2, 2, False),
    Block("block3_2", 64, 1, 2, True),
    Block("block3_3", 64, 1, 2, True),
    Block("block3_4", 64, 1, 2, True),
    Block("block3_5", 64, 1, 2, True),
    Block("conv4_1", 128, 2, 2, False),
    Block("conv5_1", 128, 1, 4, False),
    Block("block5_2", 128, 1, 4, True),
    Block("block5_3", 128, 1, 4, True),
    Block("block5_4", 128, 1, 4, True),
    Block("block5_5", 128, 1, 4, True),
    Block("block5_6", 128, 1, 4, True),
    Block("conv6_1", 16, 1, 2, False),
)
STEM = 64  # conv1's and conv2's channels
CONV7 = 32  # conv7: 3x3 stride 2 + batch norm + ReLU, 14x14 -> 7x7
CONV8 = 128  # conv8: 7x7 valid, biased, + ReLU, 7x7 -> 1x1


@dataclasses.dataclass(frozen=True)
class AuxConv:
    """One of AuxiliaryNet's conv + batch norm + ReLU units (its conv_bn)."""

    name: str
    channels: int
    kernel: int
    stride: int
    padding: int  # PFLD-pytorch's conv_bn pads 1 whatever the kernel


AUX_CONVS = (
    AuxConv("conv1", 128, 3, 2, 1),
    AuxConv("conv2", 128, 3, 1, 1),
    AuxConv("conv3", 32, 3, 2, 1),
    AuxConv("conv4", 128, 7, 1, 1),
)
AUX_FC1 = 32
ANGLES = 3  # yaw, pitch, roll


def _input_shape(kwargs: dict[str, Any]) -> Any:
    """The (height, width, channels) the model will be built at, as build_model resolves it."""
    if kwargs.get("input_tensor") is not None:
        return tuple(kwargs["input_tensor"].shape[1:])
    if kwargs.get("input_shape") is not None:
        return kwargs["input_shape"]
    return (*kwargs.get("default_input_size", INPUT_SIZE), 3)


def pfld(
    *,
    alpha: float = 1.0,
    num_landmarks: int | None = None,
    auxiliary: bool = False,
    name: str = "pfld",
    include_top: bool = True,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: Any = None,
    features_only: bool = False,
    **kwargs: Any,
) -> keras.Model:
    """PFLD (see the module's docstring) at width `alpha` for `num_landmarks` points (98 for
    WFLW, 68 for 300W, or 106), with the auxiliary head-pose net when `auxiliary`.

    `classes` is the landmark head's outputs, 2 * num_landmarks: without num_landmarks it
    sets it (weights whose head has 136 outputs build the 68-point model, as a classifier's
    weights set its classes), and neither given is 98 points. Without the top
    (include_top=False) the output is the 176 multi-scale features (at alpha 1.0) that fc
    takes; pooling and classifier_activation do not apply.
    """
    alpha = checks.check_positive_number(alpha, "alpha", usual="0.25, 1.0")
    half = classes // 2 if isinstance(classes, int) and classes % 2 == 0 else None
    if num_landmarks is None:
        num_landmarks = half if half in NUM_LANDMARKS else 98
    num_landmarks = checks.check_choice(num_landmarks, "num_landmarks", NUM_LANDMARKS)
    checks.check_bool(auxiliary, "auxiliary")
    checks.check_bool(include_top, "include_top")
    checks.check_bool(features_only, "features_only")
    outputs = 2 * num_landmarks
    if classes is not None and classes != outputs:
        hint = f"; for {classes} outputs pass num_landmarks={half}" if half in NUM_LANDMARKS else ""
        raise ValueError(
            f"classes={classes!r} does not fit num_landmarks={num_landmarks}: {name}'s landmark "
            f"head (fc) has 2 x num_landmarks = {outputs} outputs{hint}"
        )
    if pooling is not None:
        raise ValueError(
            f"pooling={pooling!r}: {name} pools with its multi-scale fusion (its output "
            "without the top); pooling does not apply"
        )
    if classifier_activation is not None:
        raise ValueError(
            f"classifier_activation={classifier_activation!r}: {name}'s landmarks are "
            "coordinates, not class scores; classifier_activation does not apply"
        )
    if auxiliary and (not include_top or features_only):
        raise ValueError(
            "auxiliary=True adds the head-pose net beside the landmark head: it needs "
            "include_top=True and features_only=False"
        )
    checks.check_fixed_input_size(
        _input_shape(kwargs),
        INPUT_SIZE,
        name=name,
        why="its pools are fixed 14x14 and 7x7 windows and conv8 a 7x7 convolution, "
        "global only at 112x112",
        arg="input_tensor shape" if kwargs.get("input_tensor") is not None else "input_shape",
    )

    from keras import layers

    from keras_zoo.blocks import batch_norm, conv2d, conv_bn_act, inverted_res_block
    from keras_zoo.features import stage_output

    def width(channels: int) -> int:
        return max(1, int(channels * alpha))

    maps: dict[int, Any] = {}  # the stage outputs by stride: the auxiliary net takes the first

    def features(x):
        for i in (1, 2):  # conv1 (stride 2) and conv2, each + batch norm + ReLU
            x = conv2d(x, width(STEM), 3, 2 if i == 1 else 1, name=f"conv{i}")
            x = batch_norm(x, name=f"bn{i}", fused=True)
            x = layers.ReLU(name=f"relu{i}")(x)
        stride = 2
        for block in BLOCKS:
            if block.stride > 1 and stride >= 4:  # before a downsampling block (block3_5's)
                x = maps[stride] = stage_output(x, stride)
            x = inverted_res_block(
                x,
                x.shape[-1] * block.expansion,
                width(block.channels),
                block.stride,
                activation_kind="relu",
                name=block.name,
                seq="conv",
                residual=block.residual,
                flat=True,
            )
            stride *= block.stride
        x1 = stage_output(x, stride)  # conv6_1's 14x14 map
        x = conv_bn_act(x, width(CONV7), 3, 2, name="conv7", activation_kind="relu")
        x2 = stage_output(x, 2 * stride)  # conv7's 7x7 map
        x3 = conv2d(x2, width(CONV8), 7, padding=0, use_bias=True, name="conv8")
        x3 = layers.ReLU(name="relu8")(x3)  # bn8 is not applied: PFLD-pytorch's forward skips it
        x1 = layers.GlobalAveragePooling2D(name="avg_pool1")(x1)  # AvgPool2d(14) at 112x112
        x2 = layers.GlobalAveragePooling2D(name="avg_pool2")(x2)  # AvgPool2d(7) at 112x112
        x3 = layers.Flatten(name="conv8.flatten")(x3)
        return layers.Concatenate(name="multi_scale")([x1, x2, x3])

    def head(x, classes):
        landmarks = layers.Dense(classes, name="fc")(x)
        if not auxiliary:
            return landmarks
        return {"landmarks": landmarks, "angles": _auxiliary_net(maps[4])}

    # the multi-scale fusion is PFLD's pooling: the top takes the body's output as it is
    return build_model(
        features,
        head,
        name=name,
        include_top=include_top,
        classes=outputs,
        classifier_activation=None,
        features_only=features_only,
        pools={"multi_scale": lambda x: x},
        **kwargs,
    )


def _auxiliary_net(x):
    """PFLD-pytorch's AuxiliaryNet on block3_5's map: the head pose (N, 3)."""
    from keras import layers

    from keras_zoo.blocks import conv_bn_act

    for conv in AUX_CONVS:
        x = conv_bn_act(
            x,
            conv.channels,
            conv.kernel,
            conv.stride,
            name=f"{AUXILIARY}.{conv.name}",
            activation_kind="relu",
            padding=conv.padding,
        )
    # MaxPool2d(3): 3x3 -> 1x1, stride 3; no padding
    x = layers.MaxPooling2D(3, name=f"{AUXILIARY}.max_pool1")(x)
    x = layers.Flatten(name=f"{AUXILIARY}.flatten")(x)
    x = layers.Dense(AUX_FC1, name=f"{AUXILIARY}.fc1")(x)
    return layers.Dense(ANGLES, name=f"{AUXILIARY}.fc2")(x)


# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PFLDVariant:
    """One PFLD id: its width, parameter count (landmarks only, 98 points, without bn8, which
    holds no function) and GMACs at 112x112."""

    name: str
    alpha: float
    params: int
    gmacs: float


# as counted here (trainable weights, keras_zoo.count_macs at 112x112); tests/test_pfld.py
# checks pfld's count against PFLD-pytorch's module less bn8's 256
VARIANTS: tuple[PFLDVariant, ...] = (
    PFLDVariant("pfld", 1.0, 1_264_548, 0.3866),
    PFLDVariant("pfld_0_25", 0.25, 96_540, 0.02717),
)

for _variant in VARIANTS:
    register_model(
        _variant.name,
        "pfld",
        pfld,
        # pfld's width is a keyword (alpha, 1.0 by default), pfld_0_25's is fixed
        config={} if _variant.alpha == 1.0 else {"alpha": _variant.alpha},
        params=_variant.params,
        gmacs=_variant.gmacs,
        classifier=("fc",),
        parts={AUXILIARY: {"auxiliary": True}},
        head_keywords=("num_landmarks",),
        preprocessing=PFLD_PREPROCESSING,
        weights=(WFLW_CHECKPOINT,) if _variant.alpha == 1.0 else (),
        task="landmarks",
    )
