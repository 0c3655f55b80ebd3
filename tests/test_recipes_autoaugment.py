"""keras_zoo.recipes.autoaugment against torchvision.transforms.v2 (0.28): every operation's
pixels against torchvision's functional ops at the same magnitude, the magnitude bins against
RandAugment's and TrivialAugmentWide's own, the random wrappers' draws (uniform, reproducible,
the same inside tf.data's graph as eagerly) and their results against torchvision's operations
replayed in the drawn order."""

from __future__ import annotations

import functools
import importlib
import math

import numpy as np
import pytest
import tensorflow as tf

from keras_zoo.recipes import autoaugment as aa
from tests.conftest import TEST_EXTRA, require_module

BLENDS = ("Brightness", "Color", "Contrast", "Sharpness")  # float32 blends, truncated

# magnitudes beside the bins: negative ones, Python floats off the bins, ties of the nearest
# pixel (shear 0.2 and 0.04 put source columns on x.5), 90 degrees (rot90 in torchvision on a
# square image), int() toward zero for translations, both ends of every range
MAGNITUDES = {
    "Identity": [0.0],
    "ShearX": [0.09, -0.09, 0.2, -0.04, 0.99, -0.99, 0.5],
    "ShearY": [0.09, -0.09, 0.2, -0.04, 0.99, -0.99, 0.5],
    "TranslateX": [3.0, -3.7, 14.5, -20.0, 32.0, 0.9],
    "TranslateY": [3.0, -3.7, 14.5, -20.0, 32.0, 0.9],
    "Rotate": [9.0, -9.0, 30.0, -135.0, 90.0, -90.0, 45.0, 4.5],
    "Brightness": [0.27, -0.27, 0.99, -0.99, 0.1, -0.6],
    "Color": [0.27, -0.27, 0.99, -0.99, 0.1, -0.6],
    "Contrast": [0.27, -0.27, 0.99, -0.99, 0.1, -0.6],
    "Sharpness": [0.27, -0.27, 0.99, -0.99, 0.1, -0.6],
    "Posterize": [8.0, 7.0, 4.0, 2.0, 0.0],
    "Solarize": [1.0, 0.7, 0.5, 0.2666666805744171, 0.0],
    "AutoContrast": [0.0],
    "Equalize": [0.0],
}


@pytest.fixture(scope="module")
def torchvision():
    """(torch, torchvision.transforms.v2)."""
    require_module("torch", TEST_EXTRA)
    from keras_zoo.torch_reference import import_torch, import_torchvision

    import_torchvision()  # first: it makes torchvision importable on CPU builds of torch
    # torchvision's __init__ leaves transforms.v2 unimported
    return import_torch(), importlib.import_module("torchvision.transforms.v2")


def _smooth(rng, height, width, channels=3, low=0, high=255):
    """Natural-looking noise: a coarse random field resized up, with fine grain on top."""
    coarse = rng.normal(size=(1, height // 4 + 2, width // 4 + 2, channels))
    field = tf.image.resize(coarse, (height, width), "bicubic")[0].numpy()
    field = (field - field.min()) / (field.max() - field.min())
    grain = rng.normal(size=field.shape) * 6
    return np.clip(low + field * (high - low) + grain, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(32)
    return {
        "smooth 32x48": _smooth(rng, 32, 48),
        "smooth 40x40": _smooth(rng, 40, 40),
        "noise 33x47": rng.integers(0, 256, (33, 47, 3), dtype=np.uint8),
        "dull 32x48": _smooth(rng, 32, 48, low=60, high=180),  # for the contrast stretches
        "gray 24x20": _smooth(rng, 24, 20, channels=1),
    }


def _reference(torchvision, image, op, magnitude, fill=None):
    """torchvision's pixels: its functional ops called as RandAugment's
    _apply_image_or_video_transform calls them, on the CHW tensor of an HWC uint8 image."""
    torch, v2 = torchvision
    F = v2.functional
    nearest = v2.InterpolationMode.NEAREST
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()
    if op in ("ShearX", "ShearY"):
        degrees = math.degrees(math.atan(magnitude))
        shear = [degrees, 0.0] if op == "ShearX" else [0.0, degrees]
        out = F.affine(x, 0.0, [0, 0], 1.0, shear, nearest, fill, center=[0, 0])
    elif op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        out = F.affine(x, 0.0, shift, 1.0, [0.0, 0.0], nearest, fill)
    elif op == "Rotate":
        out = F.rotate(x, magnitude, nearest, fill=fill)
    elif op == "Brightness":
        out = F.adjust_brightness(x, 1.0 + magnitude)
    elif op == "Color":
        out = F.adjust_saturation(x, 1.0 + magnitude)
    elif op == "Contrast":
        out = F.adjust_contrast(x, 1.0 + magnitude)
    elif op == "Sharpness":
        out = F.adjust_sharpness(x, 1.0 + magnitude)
    elif op == "Posterize":
        out = F.posterize(x, int(magnitude))
    elif op == "Solarize":
        out = F.solarize(x, 255.0 * magnitude)
    elif op == "AutoContrast":
        out = F.autocontrast(x)
    elif op == "Equalize":
        out = F.equalize(x)
    else:
        out = x
    return out.permute(1, 2, 0).numpy()


@functools.cache
def _graph():
    """`apply_op` as a tf.function (graph mode), traced once for any RGB image size."""

    def each(image, op, magnitude):
        return tf.switch_case(
            op, [lambda op=op: aa.apply_op(image, op, magnitude) for op in aa.OPS]
        )

    signature = [
        tf.TensorSpec([None, None, 3], tf.uint8),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.float64),
    ]
    return tf.function(each, input_signature=signature, autograph=False)


def _ours(image, cases, fill=None):
    """Our `apply_op` on `image` for each (op, magnitude) of `cases`: in graph mode, or eagerly
    for a one-channel image or where a `fill` is given."""
    if fill is not None or image.shape[-1] == 1:
        return [aa.apply_op(image, op, m, fill=fill).numpy() for op, m in cases]
    each = _graph()
    return [each(image, aa.OPS.index(op), m).numpy() for op, m in cases]


def _differences(torchvision, image, cases, fill=None):
    """{op: (max |ours - torchvision| in 8-bit levels, worst share of pixels that differ)}."""
    found: dict[str, tuple[int, float]] = {}
    for (op, magnitude), ours in zip(cases, _ours(image, cases, fill)):
        theirs = _reference(torchvision, image, op, magnitude, fill)
        assert ours.shape == theirs.shape and ours.dtype == np.uint8, op
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        worst, share = found.get(op, (0, 0.0))
        found[op] = (max(worst, int(diff.max())), max(share, float((diff > 0).mean())))
    return found


def _check_differences(found, where):
    """Histogram ops, posterize and solarize are integer work: exact. The blends compute in
    float32 as torchvision does: within one level. Nearest-pixel geometry: exact but where a
    source position lands on a tie (x.5) and float32 rounding differs: a few pixels at most."""
    print(f"\n{where}: max difference per op (levels, share of pixels): {found}")
    for op, (worst, share) in found.items():
        if op in aa.GEOMETRIC:
            assert share <= 0.01, (where, op, worst, share)
        elif op in BLENDS:
            assert worst <= 1 and share <= 0.01, (where, op, worst, share)
        else:
            assert worst == 0, (where, op, worst)


def test_our_reference_is_torchvisions_own_mapping(torchvision, images):
    """The functional calls of `_reference` are those of torchvision's RandAugment (its
    private _apply_image_or_video_transform), for every op."""
    torch, v2 = torchvision
    image = images["smooth 32x48"]
    x = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    transform = v2.RandAugment()
    for op in aa.OPS:
        for magnitude in MAGNITUDES[op][:2]:
            own = transform._apply_image_or_video_transform(
                x, op, magnitude, interpolation=v2.InterpolationMode.NEAREST, fill={torch.Tensor: 7}
            )
            ref = _reference(torchvision, image, op, magnitude, fill=7)
            np.testing.assert_array_equal(own.permute(1, 2, 0).numpy(), ref, err_msg=op)


def test_every_op_matches_torchvision_at_the_same_magnitude(torchvision, images):
    cases = [(op, m) for op in aa.OPS for m in MAGNITUDES[op]]
    for name, image in images.items():
        _check_differences(_differences(torchvision, image, cases), name)
    # a fill of one value per channel where the geometry brings pixels in from outside
    geometric = [(op, m) for op in aa.GEOMETRIC for m in MAGNITUDES[op][:3]]
    found = _differences(torchvision, images["noise 33x47"], geometric, fill=[10, 128, 255])
    _check_differences(found, "fill (10, 128, 255)")


@pytest.mark.parametrize("policy", aa.POLICIES)
def test_every_bin_of_every_op_matches_torchvision(torchvision, images, policy):
    """Every bin, both signs, on a non-square image: the magnitudes the wrappers draw."""
    image = images["smooth 32x48"]
    cases = []
    for op, (bins, signed) in aa.augmentation_space(policy, 31, 32, 48).items():
        values = [0.0] if bins is None else [float(v) for v in bins]
        cases += [(op, s * v) for v in values for s in ((1, -1) if signed else (1,))]
    _check_differences(_differences(torchvision, image, cases), f"{policy}, all bins")


def test_eager_apply_op_equals_the_graph(images):
    image = images["noise 33x47"]
    cases = [(op, MAGNITUDES[op][0]) for op in aa.OPS]
    for (op, magnitude), graph in zip(cases, _ours(image, cases)):
        np.testing.assert_array_equal(aa.apply_op(image, op, magnitude).numpy(), graph, op)
    batch = np.stack([image, image[::-1]])
    out = aa.apply_op(batch, "Rotate", 30.0).numpy()
    np.testing.assert_array_equal(out[1], aa.apply_op(image[::-1], "Rotate", 30.0).numpy())


@pytest.mark.parametrize(
    ("policy", "name"),
    [("rand_augment", "RandAugment"), ("trivial_augment_wide", "TrivialAugmentWide")],
)
def test_magnitude_bins_are_torchvisions(torchvision, policy, name):
    """Values (bit for bit, float32; int32 bit counts for Posterize), signed flags and the
    order of the ops, for several bin counts and image sizes (RandAugment's translations
    scale with the image)."""
    space = getattr(torchvision[1], name)._AUGMENTATION_SPACE
    assert tuple(space) == aa.OPS
    for bins, height, width in [
        (31, 32, 48),
        (31, 224, 224),
        (10, 17, 301),
        (2, 5, 7),
        (50, 64, 33),
    ]:
        ours = aa.augmentation_space(policy, bins, height, width)
        assert tuple(ours) == aa.OPS
        for op, (magnitudes, signed) in space.items():
            expected = magnitudes(bins, height, width)
            got, our_signed = ours[op]
            assert our_signed == signed, (op, bins)
            if expected is None:
                assert got is None, op
                continue
            expected = expected.numpy()
            assert got.dtype == expected.dtype, (op, got.dtype, expected.dtype)
            np.testing.assert_array_equal(got, expected, err_msg=f"{op}, {bins} bins")


def _draws(policy, seeds, **kwargs):
    """draw_ops for each seed, in graph mode: (ops, bins, negate) arrays (seeds, num_ops)."""
    draws = tf.function(
        lambda seeds: tf.map_fn(
            lambda seed: aa.draw_ops(seed, policy, **kwargs),
            seeds,
            fn_output_signature=(tf.int32, tf.int32, tf.bool),
        )
    )
    return tuple(t.numpy() for t in draws(tf.constant(seeds, tf.int64)))


def _chi_square(counts):
    expected = counts.sum() / len(counts)
    return float(((counts - expected) ** 2 / expected).sum())


def test_draws_are_uniform_and_reproducible():
    seeds = np.stack([np.arange(3000), np.full(3000, 11)], 1)
    ops, bins, negate = _draws("trivial_augment_wide", seeds, num_magnitude_bins=31)
    # chi-square at 13 and 30 degrees of freedom: 39 and 64 are their 99.99% points
    assert _chi_square(np.bincount(ops.ravel(), minlength=14)) < 39
    assert _chi_square(np.bincount(bins.ravel(), minlength=31)) < 64
    assert abs(negate.mean() - 0.5) < 0.04
    ops2, bins2, negate2 = _draws("trivial_augment_wide", seeds, num_magnitude_bins=31)
    assert (ops2 == ops).all() and (bins2 == bins).all() and (negate2 == negate).all()
    ra_ops, ra_bins, ra_negate = _draws("rand_augment", seeds[:1500], num_ops=2, magnitude=9)
    assert ra_ops.shape == (1500, 2) and (ra_bins == 9).all()
    assert _chi_square(np.bincount(ra_ops.ravel(), minlength=14)) < 39
    assert (ra_ops[:, 0] != ra_ops[:, 1]).mean() > 0.85  # the two ops drawn independently
    assert abs(ra_negate.mean() - 0.5) < 0.04


def _replay(torchvision, image, seed, policy, **kwargs):
    """torchvision's operations on `image`, with our draws for `seed` and torchvision's
    magnitude bins: what our wrapper must give."""
    _, v2 = torchvision
    cls = v2.RandAugment if policy == "rand_augment" else v2.TrivialAugmentWide
    space = cls._AUGMENTATION_SPACE
    ops, bins, negate = (t.numpy() for t in aa.draw_ops(seed, policy, **kwargs))
    height, width = image.shape[:2]
    for op_index, bin_index, minus in zip(ops, bins, negate):
        op = aa.OPS[op_index]
        magnitudes, signed = space[op]
        values = magnitudes(kwargs.get("num_magnitude_bins", 31), height, width)
        magnitude = 0.0 if values is None else float(values[bin_index])
        image = _reference(torchvision, image, op, -magnitude if signed and minus else magnitude)
    return image


def test_the_wrappers_apply_torchvisions_ops_in_tf_data(torchvision, images):
    """Inside a tf.data map (graph mode), each image's seed gives the ops that torchvision's
    operations give when replayed with the same draws; eagerly, the same pixels."""
    image = images["smooth 32x48"]
    seeds = np.stack([np.arange(12), np.full(12, 3)], 1)
    for policy, augment, kwargs in [
        ("rand_augment", aa.rand_augment, {"num_ops": 2, "magnitude": 9}),
        ("trivial_augment_wide", aa.trivial_augment_wide, {}),
    ]:
        ds = tf.data.Dataset.from_tensor_slices(seeds).map(
            lambda s, augment=augment: augment(tf.constant(image), s), num_parallel_calls=2
        )
        outputs = list(ds.as_numpy_iterator())
        for seed, out in zip(seeds, outputs):
            np.testing.assert_array_equal(
                out, _replay(torchvision, image, seed, policy, **kwargs), f"{policy} {seed}"
            )
        np.testing.assert_array_equal(augment(image, seeds[5]).numpy(), outputs[5])
        assert len({out.tobytes() for out in outputs}) > 6  # the seeds differ, so do the images


def test_a_batch_draws_per_image(images):
    image = images["smooth 40x40"]
    batch = np.stack([image] * 4)
    out = aa.trivial_augment_wide(batch, seed=9).numpy()
    for i, seed in enumerate(aa.image_seeds(9, 4)):
        np.testing.assert_array_equal(out[i], aa.trivial_augment_wide(image, seed).numpy())
    np.testing.assert_array_equal(aa.trivial_augment_wide(batch, seed=9).numpy(), out)
    assert aa.rand_augment(batch, [4, 2], num_ops=0).numpy().tobytes() == batch.tobytes()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda x: aa.rand_augment(x, 0, num_ops=-1), "num_ops"),
        (lambda x: aa.rand_augment(x, 0, num_ops=1.5), "num_ops"),
        (lambda x: aa.rand_augment(x, 0, magnitude=31), "magnitude"),
        (lambda x: aa.rand_augment(x, 0, magnitude=9.0), "magnitude"),
        (lambda x: aa.rand_augment(x, 0, num_magnitude_bins=1), "num_magnitude_bins"),
        (lambda x: aa.trivial_augment_wide(x, 0, num_magnitude_bins=True), "num_magnitude_bins"),
        (lambda x: aa.trivial_augment_wide(x, [1, 2, 3]), "seed"),
        (lambda x: aa.trivial_augment_wide(x, 0.5), "seed"),
        (lambda x: aa.trivial_augment_wide(x, 0, fill=300), "fill"),
        (lambda x: aa.trivial_augment_wide(x, 0, fill=[1, 2]), "fill"),
        (lambda x: aa.trivial_augment_wide(x.astype(np.float32), 0), "images"),
        (lambda x: aa.trivial_augment_wide(x[..., 0], 0), "images"),
        (lambda x: aa.trivial_augment_wide(np.concatenate([x, x[..., :1]], -1), 0), "images"),
        (lambda x: aa.apply_op(x, "Invert", 0.0), "op_name"),
        (lambda x: aa.apply_op(x, "Posterize", 9), "magnitude"),
        (lambda x: aa.apply_op(x, "Solarize", 1.5), "magnitude"),
        (lambda x: aa.apply_op(x, "Brightness", -1.5), "magnitude"),
        (lambda x: aa.apply_op(x, "Rotate", "30"), "magnitude"),
        (lambda x: aa.draw_ops(0, "autoaugment"), "policy"),
        (lambda x: aa.draw_ops(0, "rand_augment", magnitude=-1), "magnitude"),
        (lambda x: aa.augmentation_space("rand_augment", 31, 0, 32), "height"),
    ],
)
def test_bad_arguments_name_the_argument(call, argument):
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=rf"^{argument}\b"):
        call(image)
