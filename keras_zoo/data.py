"""Images in: image files and class-per-folder trees, normalised as a model id's weights expect.

A data folder holds one sub-folder per class (flower_photos/daisy/*.jpg, .../tulips/*.jpg); class
indices follow the sorted folder names, as keras.utils.image_dataset_from_directory numbers them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np

from keras_zoo.registry import ModelInfo

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_DECODABLE = {"JPEG", "PNG", "BMP", "GIF", "MPO"}  # what tf.io.decode_image reads


def load_image(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """The image file at `path` as RGB float32 (height, width, 3) in [0, 1], resized to `size`
    (height, width) bilinearly; ValueError naming the file if it is missing or not an image."""
    import keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"image {path!r}: no such file")
    try:
        image = keras.utils.load_img(path, color_mode="rgb", target_size=tuple(size),
                                     interpolation="bilinear")
    except Exception as err:  # PIL raises several types for a file that is not an image
        raise ValueError(f"image {path!r} is not a readable image: {err}") from None
    return np.asarray(image, np.float32) / 255.0


def normalize(images, info: ModelInfo):
    """RGB images in [0, 1] normalised as `info`'s weights expect: (x - mean) / std, then
    reordered to BGR for weights trained on BGR images. Takes numpy arrays or tensors.

    >>> import keras_zoo
    >>> x = normalize(np.full((1, 2, 2, 3), 0.5), keras_zoo.model_info("resnet50"))
    >>> [round(float(v), 3) for v in x[0, 0, 0]]
    [0.066, 0.196, 0.418]
    """
    if isinstance(images, (np.ndarray, list, tuple, float, int)):
        images = np.asarray(images, np.float32)
    x = (images - np.float32(info.mean)) / np.float32(info.std)
    return x[..., ::-1] if info.channel_order == "BGR" else x


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The images of a class-per-folder tree: files[i] is of class class_names[labels[i]]."""

    root: str
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    labels: np.ndarray

    def split(self, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and validation images: each class's images shuffled with
        `seed` and the first round(n * validation_split) (at least one) held out."""
        rng = np.random.default_rng(seed)
        train, val = [], []
        for c in range(len(self.class_names)):
            members = np.flatnonzero(self.labels == c)
            rng.shuffle(members)
            n_val = min(len(members) - 1, max(1, round(len(members) * validation_split)))
            val.extend(members[:n_val])
            train.extend(members[n_val:])
        return np.sort(np.array(train, int)), np.sort(np.array(val, int))


def scan_folder(root: str | os.PathLike, *, argument: str = "data",
                verify: bool = True) -> ImageFolder:
    """Reads a class-per-folder tree, checking every file: a file whose suffix is not an image
    suffix is left out with a warning naming it; a file with an image suffix that is not a
    readable image is an error naming it (with verify=True, each file is opened and checked).
    ValueError for a missing folder, fewer than two class folders or a class without images."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"{argument} {root!r}: no such folder")
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        raise ValueError(f"{argument} {root!r} has no class sub-folders: expected one folder of "
                         "images per class, e.g. flower_photos/daisy/*.jpg")
    if len(classes) < 2:
        raise ValueError(f"{argument} {root!r} has one class sub-folder ({classes[0]!r}): a "
                         "classifier needs at least two")
    files, labels, skipped, empty = [], [], [], []
    for index, name in enumerate(classes):
        found = []
        for folder, dirs, names in os.walk(os.path.join(root, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(names):
                path = os.path.join(folder, file)
                if file.startswith("."):
                    continue
                if not file.lower().endswith(IMAGE_SUFFIXES):
                    skipped.append(path)
                    continue
                found.append(path)
        if not found:
            empty.append(os.path.join(root, name))
        files.extend(found)
        labels.extend([index] * len(found))
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5
                                          else "")
        warnings.warn(f"{argument}: left out {len(skipped)} file(s) that are not images "
                      f"(suffix not in {', '.join(IMAGE_SUFFIXES)}): {shown}", stacklevel=2)
    if empty:
        raise ValueError(f"{argument}: class folder {empty[0]!r} has no images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    if verify:
        for path in files:
            _verify_image(path)
    return ImageFolder(root, tuple(classes), tuple(files), np.array(labels, np.int32))


def _verify_image(path: str) -> None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            kind = image.format
            image.verify()
    except Exception as err:  # PIL raises several types for a damaged file
        raise ValueError(f"{path} is not a readable image: {err}") from None
    if kind not in _DECODABLE:
        raise ValueError(f"{path} is a {kind} image; readable formats are JPEG, PNG, BMP, GIF")


def resize_size(image_size: int, crop_pct: float) -> int:
    """The size images are resized to before the central (or random) crop of image_size."""
    return math.ceil(image_size / crop_pct)


def make_dataset(files, labels, *, image_size: int, info: ModelInfo, batch_size: int,
                 training: bool = False, augment: tuple[str, ...] = (), seed: int = 0,
                 crop_pct: float | None = None):
    """A tf.data pipeline of (normalised images, labels) batches, prefetched.

    Every image is decoded as RGB, resized to resize_size(image_size, crop_pct) and cropped to
    image_size: at the centre, or (training with "crop" in augment) at random; "flip" in augment
    adds random horizontal flips when training. crop_pct defaults to the id's metadata.
    """
    import keras
    import tensorflow as tf

    crop_pct = info.crop_pct if crop_pct is None else crop_pct
    big = resize_size(image_size, crop_pct)

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, (big, big), method="bilinear", antialias=True)
        return image / 255.0, label

    ds = tf.data.Dataset.from_tensor_slices((list(files), np.asarray(labels, np.int32)))
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    random_crop = training and "crop" in augment
    crop = (keras.layers.RandomCrop(image_size, image_size, seed=seed) if random_crop
            else keras.layers.CenterCrop(image_size, image_size))
    flip = keras.layers.RandomFlip("horizontal", seed=seed) if training and "flip" in augment \
        else None

    def transform(images, labels_):
        images = crop(images, training=random_crop)
        if flip is not None:
            images = flip(images, training=True)
        return normalize(images, info), labels_

    ds = ds.batch(batch_size).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
