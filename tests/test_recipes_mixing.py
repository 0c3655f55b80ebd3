"""keras_zoo.recipes.mixing against its references, not against itself.

- Label smoothing is torch.nn.CrossEntropyLoss(label_smoothing=)'s and the soft-target loss
  timm's SoftTargetCrossEntropy, on random logits.
- Mixup and cutmix are timm.data.Mixup's: timm's own Mixup runs on torch tensors with its numpy
  randomness pinned (its module's `np` swapped for one whose np.random returns given values), and
  our deterministic core, given the same lambda and box centre, gives the same images and
  targets (float32, to 1e-6; they agree to the bit). timm's cutmix_bbox_and_lam gives the same
  boxes and corrected lambdas, clipped boxes included.
- The random draws follow timm's rules: lambda ~ Beta(alpha, alpha) (Kolmogorov-Smirnov over
  fixed seeds, so the verdict never changes between runs), the switch and mix probabilities,
  box centres uniform, prob=0 leaves batches as they were.
- Random erasing is torchvision's: erase_boxes equals torchvision.transforms.v2.functional.erase
  for given boxes and values, and the drawn boxes are distributed as RandomErasing.get_params's
  (two-sample KS against torchvision's own draws) and obey its area and aspect ranges.
- All of it runs inside tf.data.Dataset.map and tf.function; bad arguments raise ValueError
  naming the argument.
"""

from __future__ import annotations

import importlib
import re
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_zoo.recipes.mixing import (
    Mixup,
    RandomErasing,
    SmoothedCrossEntropy,
    SoftTargetCrossEntropy,
    augment_batches,
    box_lam,
    cutmix_box,
    erase_boxes,
    mix_batch,
    smoothed_cross_entropy,
    smoothed_targets,
)

H, W, C, N, CLASSES = 8, 10, 3, 6, 5  # a non-square image catches swapped sides
P_MIN = 1e-3  # the p-value below which a distribution check fails (fixed seeds: no flakes)


@pytest.fixture(scope="module")
def timm(torch):
    from keras_zoo.torch_reference import import_timm

    return import_timm()


@pytest.fixture(scope="module")
def timm_mixup(timm):
    return timm.data.mixup


@pytest.fixture(scope="module")
def torchvision(torch):
    from keras_zoo.torch_reference import import_torchvision

    return import_torchvision()


def _submodule(name):
    """A submodule of timm or torchvision, which the fixtures above have made importable."""
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.normal(0, 1, (N, H, W, C)).astype(np.float32)
    labels = rng.integers(0, CLASSES, N)
    return images, labels


class PinnedNumpy:
    """numpy, but np.random's rand, beta and randint return the values given, in order, and
    check that each is within what timm asks for."""

    def __init__(self, rand=(), beta=(), randint=()):
        self.queues = {"rand": list(rand), "beta": list(beta), "randint": list(randint)}
        self.random = types.SimpleNamespace(rand=self._rand, beta=self._beta, randint=self._int)

    def __getattr__(self, name):
        return getattr(np, name)

    def _next(self, kind):
        return self.queues[kind].pop(0)

    def _rand(self, *size):
        value = self._next("rand")
        assert np.shape(value) == size
        return value

    def _beta(self, a, b, size=None):
        value = self._next("beta")
        assert np.shape(value) == (() if size is None else (size,))
        return value

    def _int(self, low, high, size=None):
        value = self._next("randint")
        assert low <= value < high, (low, value, high)
        return value

    def used_up(self):
        return not any(self.queues.values())


def _timm_mix(torch, timm_mixup, monkeypatch, batch, pinned, **kwargs):
    """timm's Mixup(**kwargs) on the batch (NCHW torch tensors), its randomness `pinned`; the
    images back in NHWC."""
    images, labels = batch
    monkeypatch.setattr(timm_mixup, "np", pinned)
    mixer = timm_mixup.Mixup(num_classes=CLASSES, **kwargs)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    x, target = mixer(x, torch.from_numpy(labels))
    assert pinned.used_up()
    return x.numpy().transpose(0, 2, 3, 1), target.numpy()


def _assert_same(ours, theirs):
    ours_images, ours_targets = (np.asarray(t) for t in ours)
    theirs_images, theirs_targets = theirs
    np.testing.assert_allclose(ours_images, theirs_images, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours_targets, theirs_targets, rtol=0, atol=1e-6)


def test_label_smoothing_is_torchs_cross_entropy(torch):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (16, CLASSES))
    labels = rng.integers(0, CLASSES, 16)
    for eps in (0.0, 0.1, 0.35, 1.0):
        expected = torch.nn.CrossEntropyLoss(label_smoothing=eps)(
            torch.tensor(logits), torch.tensor(labels)
        ).item()
        assert abs(float(smoothed_cross_entropy(labels, logits, eps)) - expected) <= 1e-12
        as_float32 = logits.astype(np.float32)
        keras_loss = SmoothedCrossEntropy(eps)(labels, as_float32)
        assert abs(float(keras_loss) - expected) <= 1e-6 * max(1.0, abs(expected))
        # on and off values: 1 - eps + eps / classes and eps / classes
        targets = smoothed_targets(labels, CLASSES, eps, dtype="float64").numpy()
        assert np.allclose(targets.max(1), 1 - eps + eps / CLASSES, rtol=0, atol=1e-15)
        assert np.allclose(targets.sum(1), 1.0, rtol=0, atol=1e-12)


def test_soft_target_loss_is_timms(torch, timm):
    loss = _submodule("timm.loss").SoftTargetCrossEntropy()
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (16, CLASSES)).astype(np.float32)
    targets = rng.dirichlet(np.ones(CLASSES), 16).astype(np.float32)
    expected = loss(torch.from_numpy(logits), torch.from_numpy(targets)).item()
    assert abs(float(SoftTargetCrossEntropy()(targets, logits)) - expected) <= 1e-6
    # a Keras model compiled with it saves and loads it by name
    config = keras.losses.serialize(SmoothedCrossEntropy(0.2))
    assert keras.losses.deserialize(config).label_smoothing == 0.2


# (name, timm's Mixup arguments, its pinned draws (rand, beta, randint), lambda, centre)
BATCH_CASES = {
    "mixup": ({"mixup_alpha": 1.0}, ([0.0], [0.37], []), 0.37, None),
    "not-mixed": ({"mixup_alpha": 1.0, "prob": 0.5}, ([0.9], [], []), 1.0, None),
    "cutmix-inside": (
        {"mixup_alpha": 0.0, "cutmix_alpha": 1.0},
        ([0.0], [0.7], [4, 5]),
        0.7,
        (4, 5),
    ),
    # the box runs over the top and right edges: lambda is corrected to what is left
    "cutmix-clipped": (
        {"mixup_alpha": 0.0, "cutmix_alpha": 1.0},
        ([0.0], [0.45], [1, 9]),
        0.45,
        (1, 9),
    ),
    "switched-to-cutmix": (
        {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "switch_prob": 0.5},
        ([0.0, 0.3], [0.6], [7, 0]),
        0.6,
        (7, 0),
    ),
    "no-correction": (
        {"mixup_alpha": 0.0, "cutmix_alpha": 1.0, "correct_lam": False},
        ([0.0], [0.45], [0, 0]),
        0.45,
        (0, 0),
    ),
}


@pytest.mark.parametrize("case", BATCH_CASES.values(), ids=BATCH_CASES.keys())
def test_batch_mixup_and_cutmix_are_timms(case, batch, torch, timm_mixup, monkeypatch):
    kwargs, (rand, beta, randint), lam, centre = case
    theirs = _timm_mix(
        torch, timm_mixup, monkeypatch, batch, PinnedNumpy(rand, beta, randint), **kwargs
    )
    images, labels = batch
    box = None
    if centre is not None:
        box, lam = cutmix_box(H, W, lam, centre, correct_lam=kwargs.get("correct_lam", True))
    ours = mix_batch(images, labels, lam, num_classes=CLASSES, label_smoothing=0.1, box=box)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("mode", ["elem", "pair"])
def test_elem_and_pair_modes_are_timms(mode, batch, torch, timm_mixup, monkeypatch):
    slots = N if mode == "elem" else N // 2
    rng = np.random.default_rng(3)
    switch = rng.uniform(size=slots)
    switch[:2] = [0.1, 0.9]  # both kinds present
    cut_lam, mix_lam = rng.uniform(0.2, 0.9, slots), rng.uniform(0.2, 0.9, slots)
    mixed = rng.uniform(size=slots)
    mixed[-1] = 0.99  # one slot left as it is
    centres = rng.integers(0, [H, W], (slots, 2))
    cutmix = switch < 0.5
    applied = mixed < 0.8
    pinned_ints = [v for i in range(slots) if cutmix[i] and applied[i] for v in centres[i]]
    theirs = _timm_mix(
        torch,
        timm_mixup,
        monkeypatch,
        batch,
        PinnedNumpy([switch, mixed], [cut_lam, mix_lam], pinned_ints),
        mixup_alpha=0.5,
        cutmix_alpha=1.0,
        prob=0.8,
        mode=mode,
    )
    mixer = Mixup(0.5, 1.0, prob=0.8, mode=mode, num_classes=CLASSES)
    # timm draws the lambdas of these modes in float32
    lam = np.where(applied, np.where(cutmix, cut_lam, mix_lam).astype(np.float32), 1.0)
    box, _ = cutmix_box(H, W, lam, centres, correct_lam=False)
    params = mixer.params(lam, cutmix, box, N, H, W)
    _assert_same(mixer.apply(*batch, params), theirs)


def test_lambda_correction_is_timms_for_clipped_boxes(timm_mixup, monkeypatch):
    lams = [0.05, 0.3, 0.5, 0.81, 0.97]
    centres = [(0, 0), (H - 1, W - 1), (0, W - 1), (H - 1, 0), (3, 4), (1, 8)]
    cases = [(lam, c) for lam in lams for c in centres]
    for correct in (True, False):
        box, lam = cutmix_box(
            H, W, [lam for lam, _ in cases], [c for _, c in cases], correct_lam=correct
        )
        for k, (given, centre) in enumerate(cases):
            monkeypatch.setattr(timm_mixup, "np", PinnedNumpy(randint=centre))
            their_box, their_lam = timm_mixup.cutmix_bbox_and_lam(
                (N, C, H, W), given, correct_lam=correct
            )
            assert box.numpy()[k].tolist() == [int(v) for v in their_box], (given, centre)
            assert abs(lam.numpy()[k] - their_lam) <= 1e-12, (given, centre)
    clipped = cutmix_box(H, W, [lam for lam, _ in cases], [c for _, c in cases])[1].numpy()
    assert np.sum(np.abs(clipped - [lam for lam, _ in cases]) > 0.05) >= 10  # not a no-op
    # cutmix_minmax: timm's rand_bbox_minmax box, lambda always from its area
    monkeypatch.setattr(timm_mixup, "np", PinnedNumpy(randint=[3, 5, 2, 4]))
    (yl, yu, xl, xu), their_lam = timm_mixup.cutmix_bbox_and_lam(
        (N, C, H, W), 0.5, ratio_minmax=(0.2, 0.8), correct_lam=False
    )
    assert abs(float(box_lam(H, W, [yl, yu, xl, xu])) - their_lam) <= 1e-12


def _draws(mixer, count, batch_size=4):
    """`count` draws of `mixer` for batches of `batch_size`, seeds (i, 5), in a tf.data map."""
    ds = tf.data.Dataset.range(count).map(
        lambda i: mixer.draw(tf.stack([i, tf.constant(5, tf.int64)]), batch_size, H, W)
    )
    lam, cutmix, box = next(iter(ds.batch(count)))
    return lam.numpy(), cutmix.numpy(), box.numpy()


def _within(fraction, p, count, sigmas=5):
    return abs(fraction - p) <= sigmas * np.sqrt(p * (1 - p) / count)


def test_draws_follow_timms_rules():
    count = 1500
    # batch mode: one lambda per batch, Beta(alpha, alpha); every image the same
    lam, cutmix, _ = _draws(Mixup(0.4, 0.0, num_classes=CLASSES), count)
    assert (lam == lam[:, :1]).all() and not cutmix.any()
    assert stats.kstest(lam[:, 0], "beta", args=(0.4, 0.4)).pvalue > P_MIN
    # the mix and switch probabilities, per batch
    lam, cutmix, _ = _draws(Mixup(0.4, 1.0, prob=0.6, switch_prob=0.3, num_classes=5), count)
    mixed = lam[:, 0] != 1.0
    assert _within(mixed.mean(), 0.6, count)
    assert _within(cutmix[mixed, 0].mean(), 0.3, mixed.sum())
    # elem mode, one draw of many images: each kind's lambda from its own alpha
    mixer = Mixup(0.3, 2.0, switch_prob=0.3, mode="elem", correct_lam=False, num_classes=5)
    many = 4000
    lam, cutmix, box = (a[0] for a in _draws(mixer, 1, many))
    assert _within(cutmix.mean(), 0.3, many)
    assert stats.kstest(lam[cutmix], "beta", args=(2.0, 2.0)).pvalue > P_MIN
    assert stats.kstest(lam[~cutmix], "beta", args=(0.3, 0.3)).pvalue > P_MIN
    # cutmix boxes: sides int(side * sqrt(1 - lam)) where unclipped, centres uniform
    yl, yh, xl, xh = box[cutmix].T
    cut_h = (H * np.sqrt(1 - lam[cutmix])).astype(int)
    inside = (yl > 0) & (yh < H)
    assert (yh - yl)[inside].tolist() == cut_h[inside].tolist()
    cy = np.where(yl > 0, yl + cut_h // 2, yh - (cut_h + 1) // 2)
    counts = np.bincount(cy, minlength=H)
    assert len(counts) == H and stats.chisquare(counts).pvalue > P_MIN
    assert (xl >= 0).all() and (xh <= W).all() and (xl <= xh).all()


def test_cutmix_minmax_boxes_keep_to_their_range():
    _, _, box = _draws(Mixup(0.0, 0.0, cutmix_minmax=(0.25, 0.75), num_classes=5), 400)
    yl, yh, xl, xh = box[:, 0].T
    assert set(np.unique(yh - yl)) == set(range(int(H * 0.25), int(H * 0.75)))
    assert set(np.unique(xh - xl)) == set(range(int(W * 0.25), int(W * 0.75)))
    assert (yl >= 0).all() and (yh <= H).all() and (xl >= 0).all() and (xh <= W).all()


def test_a_seed_repeats_its_draws_and_prob_0_leaves_batches_unchanged(batch):
    images, labels = batch
    mixer = Mixup(0.8, 1.0, num_classes=CLASSES)
    first, again, other = (mixer(images, labels, s) for s in ([1, 2], [1, 2], [1, 3]))
    assert np.array_equal(first[0], again[0]) and not np.array_equal(first[0], other[0])
    still = Mixup(0.8, 1.0, prob=0.0, label_smoothing=0.1, num_classes=CLASSES)
    for seed in range(5):
        same, targets = still(images, labels, [seed, 0])
        assert np.array_equal(same, images)
        assert np.array_equal(targets, smoothed_targets(labels, CLASSES, 0.1))


# (top, left, height, width) per image, one of them empty
ERASE_BOXES = np.array([[1, 2, 3, 4], [0, 0, 7, 9], [5, 6, 0, 0]])
ERASE_VALUES = {"zero": 0.0, "number": -1.5, "per-channel": [0.5, -0.25, 2.0]}


@pytest.mark.parametrize("value", ERASE_VALUES.values(), ids=ERASE_VALUES.keys())
def test_erasing_is_torchvisions_erase(value, batch, torch, torchvision):
    erase = _submodule("torchvision.transforms.v2.functional").erase
    images = batch[0][: len(ERASE_BOXES)]
    ours = erase_boxes(images, ERASE_BOXES, value).numpy()
    v = torch.tensor(np.float32(value)).reshape(-1, 1, 1)
    for image, box, mine in zip(images, ERASE_BOXES, ours):
        theirs = erase(torch.from_numpy(image.transpose(2, 0, 1).copy()), *box, v)
        assert np.array_equal(mine, theirs.numpy().transpose(1, 2, 0))


def test_erasing_draws_are_torchvisions(torch, torchvision):
    scale, ratio, count, (h, w) = (0.02, 0.33), (0.3, 3.3), 2000, (16, 20)
    ours = RandomErasing(1.0, scale, ratio).draw([4, 2], count, h, w).numpy()
    torch.manual_seed(0)
    image = torch.zeros(3, h, w)
    get_params = torchvision.transforms.RandomErasing.get_params
    theirs = np.array([get_params(image, scale, ratio, [0.0])[:4] for _ in range(count)])
    theirs[theirs[:, 2] == h] = 0  # its "nothing fits" (the whole image, erased by itself)
    for k, what in enumerate(["top", "left", "height", "width"]):
        assert stats.ks_2samp(ours[:, k], theirs[:, k]).pvalue > P_MIN, what
    top, left, bh, bw = ours[ours[:, 2] > 0].T
    assert (top + bh <= h).all() and (left + bw <= w).all() and (bh < h).all() and (bw < w).all()
    # the rounded sides come from an area in scale and an aspect ratio in ratio
    assert ((bh - 0.5) * (bw - 0.5) <= scale[1] * h * w).all()
    assert ((bh + 0.5) * (bw + 0.5) >= scale[0] * h * w).all()
    assert ((bh - 0.5) / (bw + 0.5) <= ratio[1]).all() and (
        (bh + 0.5) / (bw - 0.5) >= ratio[0]
    ).all()
    some = RandomErasing(0.3).draw([4, 3], count, h, w).numpy()
    assert _within((some[:, 2] > 0).mean(), 0.3, count)


def test_everything_runs_in_a_tf_data_pipeline_and_a_tf_function(batch):
    images, labels = batch
    batches = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32))).batch(5)
    mixer = Mixup(0.8, 1.0, mode="elem", num_classes=CLASSES)
    erasing = RandomErasing(0.5, value="random")
    ds = augment_batches(batches, mixup=mixer, erasing=erasing, seed=7)
    assert ds.element_spec[1].shape.as_list() == [None, CLASSES]
    one, two = (list(ds.as_numpy_iterator()) for _ in range(2))
    again = list(augment_batches(batches, mixup=mixer, erasing=erasing, seed=7))
    assert [len(x) for x, _ in one] == [5, 1]  # odd sizes: the middle image mixes with itself
    assert all(np.allclose(t.sum(1), 1.0, atol=1e-6) for _, t in one)
    assert not np.array_equal(one[0][0], two[0][0])  # anew each epoch ...
    assert np.array_equal(one[0][0], again[0][0].numpy())  # ... and the same for the seed
    erased = RandomErasing(1.0)(images[0], [1, 1])  # one image, as a per-image map takes it
    assert erased.shape == images[0].shape

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, C], tf.float32),
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([], tf.float64),
            tf.TensorSpec([2], tf.int32),
        ]
    )
    def core(x, y, lam, centre):
        shape = tf.shape(x)
        box, corrected = cutmix_box(shape[1], shape[2], lam, centre)
        return mix_batch(x, y, corrected, num_classes=CLASSES, box=box)

    graph = core(images, labels, tf.constant(0.45, tf.float64), tf.constant([1, 9]))
    box, corrected = cutmix_box(H, W, 0.45, [1, 9])
    eager = mix_batch(images, labels, corrected, num_classes=CLASSES, box=box)
    assert all(np.array_equal(g, e) for g, e in zip(graph, eager))


BAD_ARGUMENTS = {
    "mixup_alpha": lambda: Mixup(-1.0, num_classes=5),
    "mixup_alpha, cutmix_alpha": lambda: Mixup(0.0, 0.0, num_classes=5),
    "cutmix_minmax": lambda: Mixup(cutmix_minmax=(0.8, 0.2), num_classes=5),
    "prob": lambda: Mixup(prob=1.5, num_classes=5),
    "switch_prob": lambda: Mixup(switch_prob=-0.1, num_classes=5),
    "mode": lambda: Mixup(mode="batches", num_classes=5),
    "label_smoothing": lambda: Mixup(label_smoothing=2.0, num_classes=5),
    "num_classes": lambda: Mixup(num_classes=0),
    "classes": lambda: smoothed_targets([0], 0),
    "smoothing": lambda: smoothed_targets([0], 3, -0.1),
    "probability": lambda: RandomErasing(probability=2),
    "scale": lambda: RandomErasing(scale=(0.5, 0.1)),
    "ratio": lambda: RandomErasing(ratio=(0.0, 3.0)),
    "value": lambda: RandomErasing(value="noise"),
    "value has": lambda: RandomErasing(value=(1.0, 2.0))(np.zeros((4, 4, 3)), [0, 0]),
    "images": lambda: Mixup(num_classes=5)(np.zeros((2, 4, 4, 3), np.uint8), [0, 1], [0, 0]),
}


@pytest.mark.parametrize("make", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_name_themselves(make, request):
    name = request.node.callspec.id
    with pytest.raises(ValueError, match=f"^{re.escape(name)}[: ]"):
        make()
