"""Published pretrained weights as data: where each set is, what layout its keys are in, what it
scores, and how it was evaluated.

A family module lists each id's weight sets next to the id (`register_model(..., weights=...)`);
the first one listed is what `weights="imagenet"` loads. `keras_zoo.list_weights(name)` lists
them; `build(name, weights="torchvision:IMAGENET1K_V2")` picks one by its key.

>>> ws = torchvision_weights("resnet50-11ad3fa6.pth", "IMAGENET1K_V2", 80.858, resize=232)
>>> ws.key, ws.preprocessing.resize_size, ws.sha256
('torchvision:IMAGENET1K_V2', 232, '11ad3fa6')
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SOURCES = ("torchvision", "timm", "megvii", "pfld_pytorch")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")

TORCHVISION_URL = "https://download.pytorch.org/models/"
TIMM_RELEASES_URL = "https://github.com/rwightman/pytorch-image-models/releases/download/"
HF_URL = "https://huggingface.co/timm/{tag}/resolve/main/model.safetensors"
MEGVII_URL = "https://1drv.ms/f/s!AgaP37NGYuEXhRfQxHRseR7eSxXo"


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a weight set was evaluated: the image's shorter side resized to `resize_size`
    (input size / crop_pct) with `interpolation`, the centre cropped to `input_size`, values
    scaled to [0, 1], normalised as (x - mean) / std, channels reordered to `channel_order`.

    megvii's weights take BGR values in [0, 255]: mean 0 and std 1/255.
    """

    input_size: tuple[int, int] = (224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}")

    @property
    def resize_size(self) -> int:
        """The shorter side before the crop: floor(height / crop_pct), as timm computes it
        (224 at 0.875 -> 256; torchvision's 232 resize is crop_pct 224 / 232)."""
        return resize_size(self.input_size[0], self.crop_pct)


def resize_size(size: int, crop_pct: float) -> int:
    """floor(size / crop_pct), robust to the rounding of crop_pct = 224 / 232."""
    return math.floor(size / crop_pct + 1e-6)


@dataclasses.dataclass(frozen=True)
class WeightSet:
    """One published set of pretrained weights for one model id.

    Attributes:
        source: who published it: "torchvision", "timm", "megvii" or "pfld_pytorch"
            (polarisZhao/PFLD-pytorch's repository).
        tag: the source's own name for it ("IMAGENET1K_V2", "resnet50.a1_in1k").
        url: where the checkpoint is published. With `direct=False` a page to fetch it from
            by hand (megvii's are in a shared folder).
        layout: the key layout of the checkpoint: "torchvision", "timm", "megvii" or
            "pfld_pytorch" (keras_zoo.port.key_maps converts it to the model's names).
        top1: the published ImageNet-1k top-1 accuracy (%) at `preprocessing`, or None.
        preprocessing: how the weights were evaluated.
        sha256: the published sha256, or the prefix of it in the file name; None if none is
            published.
        git_blob: for a checkpoint published in a git repository without a sha256, its git
            blob id (the sha1 of b"blob <size>\0" + the file's bytes), which the repository's
            tree records; None otherwise.
        config: the build keywords the weights fix, e.g. {"alpha": 1.0}.
        filename: the checkpoint's file name in the cache.
        direct: whether `url` is the file itself (False: a page to fetch it from by hand).
    """

    source: str
    tag: str
    url: str
    layout: str
    top1: float | None
    preprocessing: Preprocessing = Preprocessing()
    sha256: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    filename: str = ""
    direct: bool = True
    git_blob: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES or self.layout not in SOURCES:
            raise ValueError(
                f"source and layout must be in {SOURCES}: {self.source!r}, {self.layout!r}"
            )
        if not self.filename:
            object.__setattr__(self, "filename", self.url.rsplit("/", 1)[-1])

    @property
    def key(self) -> str:
        """What `build(..., weights=...)` takes to pick this set: "source:tag"."""
        return f"{self.source}:{self.tag}"

    @property
    def published_hash(self) -> tuple[str, str] | None:
        """(kind, value) of the hash a downloaded or cached file must have: ("sha256", the
        digest or its prefix) or ("git blob", the id); None where nothing is published."""
        if self.sha256:
            return "sha256", self.sha256
        if self.git_blob:
            return "git blob", self.git_blob
        return None


def _hash_prefix(filename: str) -> str | None:
    # torchvision's and timm's release files carry the first hex digits of their sha256
    match = re.search(r"-([0-9a-f]{8,})\.[a-z.]+$", filename)
    return match.group(1) if match else None


def torchvision_weights(
    filename: str,
    tag: str,
    top1: float,
    *,
    resize: int = 256,
    size: int = 224,
    interpolation: str = "bilinear",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    **config: Any,
) -> WeightSet:
    """A torchvision weight set (torchvision.models.<Id>_Weights.<tag>): the shorter side
    resized to `resize` (bilinear unless `interpolation` says otherwise), a `size` centre crop
    (224 unless the weights were trained at another size), ImageNet mean and std unless `mean`
    and `std` say otherwise (EfficientNet_V2_L's 0.5)."""
    return WeightSet(
        "torchvision",
        tag,
        TORCHVISION_URL + filename,
        "torchvision",
        top1,
        Preprocessing((size, size), size / resize, interpolation, _rgb(mean), _rgb(std)),
        sha256=_hash_prefix(filename),
        config=config,
    )


def _rgb(values: tuple[float, float, float]) -> tuple[float, float, float]:
    red, green, blue = values  # a list from a config reads as well
    return (red, green, blue)


def timm_weights(
    tag: str,
    top1: float | None,
    *,
    release: str | None = None,
    size: int = 224,
    crop_pct: float = 0.875,
    interpolation: str = "bicubic",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    **config: Any,
) -> WeightSet:
    """A timm weight set (`timm.create_model(tag, pretrained=True)`), from its GitHub release
    file when it has one (`release`: the path after .../releases/download/), else from its
    Hugging Face repository's model.safetensors. Preprocessing as in timm's pretrained cfg,
    at the size and crop its published top-1 was measured at (timm's results-imagenet.csv)."""
    url = TIMM_RELEASES_URL + release if release else HF_URL.format(tag=tag)
    filename = release.rsplit("/", 1)[1] if release else f"{tag}.safetensors"
    return WeightSet(
        "timm",
        tag,
        url,
        "timm",
        top1,
        Preprocessing((size, size), crop_pct, interpolation, _rgb(mean), _rgb(std)),
        sha256=_hash_prefix(filename),
        config=config,
        filename=filename,
    )


# megvii's evaluation: BGR values in [0, 255], the shorter side resized to 256 (OpenCV,
# bilinear), a 224 centre crop (ShuffleNet-Series, ShuffleNetV1/train.py)
MEGVII_PREPROCESSING = Preprocessing(
    crop_pct=224 / 256, mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255), channel_order="BGR"
)


def megvii_weights(groups: int, scale: float, top1: float) -> WeightSet:
    """megvii's official ShuffleNet V1 checkpoint (megvii-model/ShuffleNet-Series), published in
    a shared folder: fetched by hand into the cache under the name `filename`."""
    size = f"{scale:.1f}x"
    return WeightSet(
        "megvii",
        f"ShuffleNetV1-{size}-group{groups}",
        MEGVII_URL,
        "megvii",
        top1,
        MEGVII_PREPROCESSING,
        filename=f"shufflenet_v1_g{groups}_{size}-megvii.pth",
        direct=False,
    )
