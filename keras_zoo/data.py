"""Images in: image files and class-per-folder trees, prepared as a model id's weights expect.

A data folder holds one sub-folder per class (flower_photos/daisy/*.jpg, .../tulips/*.jpg); class
indices follow the sorted folder names, as keras.utils.image_dataset_from_directory numbers them.
A data folder that comes split holds train/ beside val/, validation/ or test/ (the first of these
present, in that order, is the validation data; `VALIDATION_FOLDERS`), each a class-per-folder
tree of the same classes: `scan_dataset` reads either kind.
Images are decoded here and prepared by `keras_zoo.preprocessing`'s layers, the package's one
image path (resize, crop and normalisation of the weight set in use).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from keras_zoo.weight_sets import Preprocessing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TRAINING_FOLDER = "train"  # the training images of a data folder that comes split
VALIDATION_FOLDERS = ("val", "validation", "test")  # beside it: the first one present is used
_DECODABLE = {"JPEG", "PNG", "BMP", "GIF", "MPO"}  # what tf.io.decode_image reads


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image file at `path` as RGB uint8 (height, width, 3), decoded as `make_dataset`
    decodes it; ValueError naming the file if it is missing or not a readable image.
    `keras_zoo.preprocessing(name, weights)(image[None])` prepares it for a model."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"image {path!r}: no such file")
    name = f"image {path!r}"
    _check_header(path, name)
    return _decoded(path, name).numpy()


def verify_images(paths: Sequence[str | os.PathLike], names: Sequence[str] | None = None) -> None:
    """Checks that every file is an image the input pipeline reads: its header names a format
    that `tf.io.decode_image` reads, and the pipeline's own decoder decodes it in full (a
    truncated JPEG or a 1-bit BMP passes a header check but not this), several files at a
    time. ValueError whose first line names the first file that fails (by `names[i]`, its
    path by default) and why; a second line lists any others."""
    files: list[str] = [os.fspath(p) for p in paths]
    shown: list[str] = files if names is None else list(names)
    for path, name in zip(files, shown):
        _check_header(path, name)
    failed = _undecodable(files)
    if failed:
        first = failed[0]
        message = f"{shown[first]} is not a readable image: {_decode_failure(files[first])}"
        if len(failed) > 1:
            message += f"\nalso unreadable ({len(failed) - 1}): " + _some(
                [shown[i] for i in failed[1:]]
            )
        raise ValueError(message)


def _decode(path):
    import tensorflow as tf

    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The images of a class-per-folder tree: files[i] is of class class_names[labels[i]]
    (image classification's `keras_zoo.tasks.TaskData`: its targets are the labels, the names
    of the outputs the class names). A data folder that comes split has `subsets`, the names of
    its training and validation folders (("train", "val")), and the first `training_images`
    files are those of its training folder."""

    root: str
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    labels: np.ndarray
    subsets: tuple[str, str] | None = None
    training_images: int = 0

    @property
    def targets(self) -> np.ndarray:
        """The labels."""
        return self.labels

    @property
    def names(self) -> tuple[str, ...]:
        """The class names."""
        return self.class_names

    def split(self, validation_split: float | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and validation images: those of its training and validation
        folders where the data comes split (`subsets`; validation_split and seed do not apply),
        else each class's images shuffled with `seed` and the first round(n * validation_split)
        (at least one) held out."""
        if self.subsets is not None:
            return np.arange(self.training_images), np.arange(self.training_images, len(self.files))
        if validation_split is None:
            raise ValueError(f"data {self.root!r} does not come split: give a validation_split")
        rng = np.random.default_rng(seed)
        train: list[int] = []
        val: list[int] = []
        for c in range(len(self.class_names)):
            members = np.flatnonzero(self.labels == c)
            rng.shuffle(members)
            n_val = min(len(members) - 1, max(1, round(len(members) * validation_split)))
            val.extend(members[:n_val])
            train.extend(members[n_val:])
        return np.sort(np.array(train, int)), np.sort(np.array(val, int))

    def one_per_class(self, indices: np.ndarray, count: int, seed: int) -> np.ndarray:
        """One of `indices` of each class, drawn with `seed`, in class order: of the first
        `count` classes that `indices` holds."""
        rng = np.random.default_rng(seed)
        chosen: list[int] = []
        for c in range(len(self.class_names)):
            members = indices[self.labels[indices] == c]
            if len(members) and len(chosen) < count:
                chosen.append(int(rng.choice(members)))
        return np.array(chosen, int)


def looks_gray(files: Sequence[str], count: int = 16, seed: int = 0) -> bool:
    """Whether `count` of the image `files` (drawn with `seed`) all have equal R, G and B: a
    grayscale dataset, whatever its files' colour mode."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(files), min(count, len(files)), replace=False)
    for i in picked:
        pixels = read_image(files[i])
        if not (
            np.array_equal(pixels[..., 0], pixels[..., 1])
            and np.array_equal(pixels[..., 1], pixels[..., 2])
        ):
            return False
    return True


def scan_folder(
    root: str | os.PathLike, *, argument: str = "data", verify: bool = True
) -> ImageFolder:
    """Reads a class-per-folder tree, checking every file: a file whose suffix is not an image
    suffix is left out with a warning naming it; a file with an image suffix that is not a
    readable image is an error naming it (with verify=True, every file is decoded in full as
    the input pipeline decodes it: `verify_images`).
    ValueError for a missing folder, fewer than two class folders or a class without images."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"{argument} {root!r}: no such folder")
    classes = sorted(
        d
        for d in os.listdir(root)
        if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    if not classes:
        raise ValueError(
            f"{argument} {root!r} has no class sub-folders: expected one folder of "
            "images per class, e.g. flower_photos/daisy/*.jpg"
        )
    if len(classes) < 2:
        raise ValueError(
            f"{argument} {root!r} has one class sub-folder ({classes[0]!r}): a "
            "classifier needs at least two"
        )
    files, labels, skipped, empty = [], [], [], []
    for index, name in enumerate(classes):
        found, others = _walk_images(os.path.join(root, name))
        if not found:
            empty.append(os.path.join(root, name))
        files.extend(found)
        labels.extend([index] * len(found))
        skipped.extend(others)
    _warn_left_out(argument, skipped)
    if empty:
        raise ValueError(
            f"{argument}: class folder {empty[0]!r} has no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    if verify:
        verify_images(files)
    return ImageFolder(root, tuple(classes), tuple(files), np.array(labels, np.int32))


def image_files(paths: Sequence[str | os.PathLike], *, argument: str = "images") -> list[str]:
    """The image files that `paths` name, in order: a file as it is, a folder as the images in
    it and its sub-folders (by suffix, in sorted order; hidden files left out), a file there
    whose suffix is not an image's left out with a warning naming it, as `scan_folder` does.
    ValueError for a path that does not exist or a folder without images. Nothing is decoded
    (`verify_images` does that)."""
    files: list[str] = []
    skipped: list[str] = []
    for path in [os.fspath(p) for p in paths]:
        if os.path.isdir(path):
            found, others = _walk_images(path)
            if not found:
                raise ValueError(
                    f"image folder {path!r} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            files.extend(found)
            skipped.extend(others)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"image {path!r}: no such file or folder")
    _warn_left_out(argument, skipped)
    return files


def _walk_images(folder: str) -> tuple[list[str], list[str]]:
    """The image files (by suffix) under `folder`, and its other files, each in sorted order
    of the walk (hidden files and folders left out)."""
    found: list[str] = []
    skipped: list[str] = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(names):
            if file.startswith("."):
                continue
            path = os.path.join(parent, file)
            (found if file.lower().endswith(IMAGE_SUFFIXES) else skipped).append(path)
    return found, skipped


def _warn_left_out(argument: str, skipped: Sequence[str]) -> None:
    """The warning that names the files left out for not being images."""
    if skipped:
        warnings.warn(
            f"{argument}: left out {len(skipped)} file(s) that are not images "
            f"(suffix not in {', '.join(IMAGE_SUFFIXES)}): {_some(skipped)}",
            stacklevel=3,
        )


def split_layout(root: str | os.PathLike, argument: str = "data") -> tuple[str, str] | None:
    """The names of the training and validation folders of a data folder that comes split:
    train/ beside val/, validation/ or test/ (the first of these present, in that order;
    folder names in any case). None for any other folder (a class-per-folder tree, whose
    classes may be called "train" or "test" beside others). ValueError where every
    sub-folder is named as a split but they make no pair (train/ alone, val/ and test/
    without train/), rather than taking the splits for classes. For example, a folder of
    train/, test/ and val/ gives ("train", "val"); one of Train/ and Test/ ("Train", "Test").
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        return None
    folders = {
        d.lower(): d
        for d in sorted(os.listdir(root))
        if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    }
    validation = next((folders[n] for n in VALIDATION_FOLDERS if n in folders), None)
    if TRAINING_FOLDER in folders and validation is not None:
        return folders[TRAINING_FOLDER], validation
    if not folders or not set(folders) <= {TRAINING_FOLDER, *VALIDATION_FOLDERS}:
        return None
    found = ", ".join(f"{d}/" for d in folders.values())
    missing = "train/" if TRAINING_FOLDER not in folders else "val/, validation/ or test/"
    message = (
        f"{argument} {root!r} holds the split folder(s) {found} but no {missing}: data that "
        "comes split holds train/ beside val/, validation/ or test/, each with one folder of "
        "images per class"
    )
    if TRAINING_FOLDER in folders:
        training = os.path.join(root, folders[TRAINING_FOLDER])
        message += f"; or give {argument} {training!r} to hold validation images out of it"
    raise ValueError(message)


def scan_dataset(
    root: str | os.PathLike, *, argument: str = "data", verify: bool = True
) -> ImageFolder:
    """A data folder as `scan_folder` reads a class-per-folder tree, or one that comes split
    (`split_layout`: train/ beside val/, validation/ or test/), its training folder's images
    first, whose class folders must be the same in both; ValueError naming those that differ.
    The `ImageFolder`'s `split` then gives its folders' images."""
    root = os.fspath(root)
    subsets = split_layout(root, argument)
    if subsets is None:
        return scan_folder(root, argument=argument, verify=verify)
    training, validation = (
        scan_folder(os.path.join(root, name), argument=argument, verify=False) for name in subsets
    )
    if training.class_names != validation.class_names:
        differ = [
            f"only in {name}/: {', '.join(sorted(set(ours) - set(theirs)))}"
            for name, ours, theirs in (
                (subsets[0], training.class_names, validation.class_names),
                (subsets[1], validation.class_names, training.class_names),
            )
            if set(ours) - set(theirs)
        ]
        raise ValueError(
            f"{argument} {root!r}: the class folders of {subsets[0]}/ and {subsets[1]}/ "
            f"differ ({'; '.join(differ)}); both need the same classes"
        )
    files = training.files + validation.files
    if verify:
        verify_images(files)
    return ImageFolder(
        root,
        training.class_names,
        files,
        np.concatenate([training.labels, validation.labels]),
        subsets,
        len(training.files),
    )


def _decoded(path: str, name: str):
    """`path` decoded eagerly; ValueError naming it as `name` where the decoder fails."""
    import tensorflow as tf

    try:
        return _decode(path)
    except tf.errors.OpError as err:
        raise ValueError(f"{name} is not a readable image: {_decode_failure(path, err)}") from None


def _undecodable(paths: list[str]) -> list[int]:
    """The indices of the files that `_decode` fails on, decoded in parallel."""
    import tensorflow as tf

    if not paths:
        return []
    ds = (
        tf.data.Dataset.from_tensor_slices(paths)
        .enumerate()
        # the shape depends on the decoded pixels, so every file is decoded in full
        .map(lambda i, path: (i, tf.shape(_decode(path))), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .map(lambda i, _: i)
        .batch(4096)
    )
    decoded = set()
    for batch in ds.as_numpy_iterator():
        decoded.update(batch.tolist())
    return [i for i in range(len(paths)) if i not in decoded]


_MODES = {
    "1": "1-bit",
    "L": "8-bit gray",
    "LA": "gray and alpha",
    "P": "palette",
    "I;16": "16-bit gray",
    "I": "32-bit gray",
    "F": "float",
}


def _decode_failure(path: str, err=None) -> str:
    """Why `_decode` fails (failed with `err`) on `path`, in words: PIL's reason where PIL
    cannot decode all of it either (a truncated file), else what the file is that TensorFlow's
    decoder does not read (a 1-bit BMP), with the decoder's message."""
    import tensorflow as tf
    from PIL import Image

    from keras_zoo.checks import op_error_text

    try:
        with Image.open(path) as image:
            image.load()
            kind = f"{_MODES.get(image.mode, image.mode)} {image.format}"
    except Exception as pil_err:  # PIL raises several types for a damaged file
        return str(pil_err)
    if err is None:
        try:
            _decode(path)
            return "the input pipeline failed to decode it"  # e.g. replaced since
        except tf.errors.OpError as failure:
            err = failure
    return (
        f"TensorFlow's decoder does not read this {kind} ({op_error_text(err)}); save it as "
        "PNG or JPEG"
    )


def _check_header(path: str, name: str) -> None:
    """ValueError naming the file as `name` unless PIL reads it as a format that
    `tf.io.decode_image` reads (which also refuses a decompression bomb's pixel count)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            kind = image.format
            image.verify()
    except Exception as err:  # PIL raises several types for a damaged file
        raise ValueError(f"{name} is not a readable image: {err}") from None
    if kind not in _DECODABLE:
        raise ValueError(f"{name} is a {kind} image; readable formats are JPEG, PNG, BMP, GIF")


def _some(items: Sequence[str], count: int = 5) -> str:
    """The first `count` of `items`, and how many more."""
    more = f" and {len(items) - count} more" if len(items) > count else ""
    return ", ".join(items[:count]) + more


def make_dataset(
    files: Sequence[str] | np.ndarray,
    labels: ArrayLike,
    *,
    image_size: int,
    preprocessing: Preprocessing,
    batch_size: int,
    training: bool = False,
    augment: tuple[str, ...] = (),
    seed: int = 0,
    auto_augment: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """A tf.data pipeline of (prepared images, labels) batches, prefetched. `labels` are one
    target per image: class indices (as int32), or another task's targets as they are.

    Every image is decoded as RGB and prepared as `preprocessing` says (the model's:
    `keras_zoo.describe(model).preprocessing`), at image_size: the shorter side resized with
    its interpolation and crop_pct, the image_size x image_size centre cut out, normalised.
    Training with "crop" in augment cuts image_size x image_size out of the resized image at
    random instead, and "flip" in augment flips images horizontally at random; both draw from
    `seed`, anew each epoch. In training, `auto_augment` (a (uint8 image, seed) -> uint8 image
    function: `keras_zoo.recipes.autoaugment`'s) changes each image after them, before the
    normalisation, as torchvision's recipe orders them.
    """
    import tensorflow as tf

    from keras_zoo.checks import check_positive_int
    from keras_zoo.preprocess import normalize_layer, resize_layer

    resize = resize_layer(preprocessing, check_positive_int(image_size, "image_size"))
    normalize = normalize_layer(preprocessing)
    random_crop = training and "crop" in augment
    flip = training and "flip" in augment

    def load(path, label, draw=None):
        image = _decode(path)
        if random_crop:
            image = tf.image.stateless_random_crop(
                resize.resize(image), (image_size, image_size, 3), seed=tf.stack([draw, 0])
            )
        else:
            image = resize(image)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=tf.stack([draw, 1]))
        if auto_augment is not None and draw is not None:
            pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
            image = tf.cast(auto_augment(pixels, tf.stack([draw, 2])), tf.float32)
        return normalize(image), label

    def load_drawn(item, draw):
        return load(*item, draw)

    targets = np.asarray(labels)
    if targets.dtype.kind in "iu":  # class indices; other targets keep their own type
        targets = targets.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((list(files), targets))
    if training:  # the seed of each image's crop and flip
        ds = shuffled_with_draws(ds, len(files), seed).map(
            load_drawn, num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return prefetched(ds.batch(batch_size))


def shuffled_with_draws(ds: Any, count: int, seed: int) -> Any:
    """The `count` elements of the tf.data pipeline `ds` shuffled with `seed`, anew each
    epoch, each paired with one random int64 per epoch: the seed of its random changes (the
    stateless ops of tf.image)."""
    import tensorflow as tf

    ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(ds, draws)


def prefetched(batches: Any) -> Any:
    """A pipeline of batches as training takes it: sharded by data under a multi-worker
    strategy, prefetched."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)
