"""Landmark measures and losses against values worked out by hand on small faces (errors as
3-4-5 triangles, angle differences of pi/2 and pi, Simpson's weights 1, 4, 2, 4, 1 written
out), PFLD's loss against PFLD-pytorch's formula in torch, and the losses under tf.function,
in a one-step fit and through keras.saving's serialization."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

from keras_zoo.tasks.landmarks.measures import (
    EYE_CORNERS,
    L2Loss,
    WingLoss,
    as_points,
    auc,
    ced,
    ced_figure,
    failure_rate,
    nme,
    pfld_loss,
)

# A face of three points: A (0, 0) and B (8, 0) its "eye corners", 8 apart; C (4, 6), so that
# the bounding box is 8 x 6 with diagonal 10. Errors: A (3, 4) -> 5, B none, C (-6, -8) -> 10,
# mean (5 + 0 + 10) / 3 = 5; NME 5 / 8 by the eyes, 5 / 10 by the box.
FACE = np.array([[0.0, 0.0], [8.0, 0.0], [4.0, 6.0]])
OFFSETS = np.array([[3.0, 4.0], [0.0, 0.0], [-6.0, -8.0]])


def test_nme_eyes_and_box_on_known_geometry():
    # the second face is the first scaled by 2: the NME does not change with scale
    target = np.stack([FACE, 2 * FACE])
    predicted = np.stack([FACE + OFFSETS, 2 * (FACE + OFFSETS)])
    eyes = nme(predicted, target, eye_corners=(0, 1))
    np.testing.assert_allclose(eyes, [5 / 8, 5 / 8], rtol=1e-15)
    np.testing.assert_allclose(nme(predicted, target, normalise="box"), [0.5, 0.5], rtol=1e-15)
    # flattened (N, 2K), x0, y0, x1, y1, ... reads the same
    flat = nme(predicted.reshape(2, 6), target.reshape(2, 6), eye_corners=(0, 1))
    np.testing.assert_array_equal(flat, eyes)
    assert eyes.shape == (2,) and eyes.dtype == np.float64


@pytest.mark.parametrize("k", sorted(EYE_CORNERS))
def test_nme_default_eye_corners(k):
    # every point off by (3, 4): error 5; the outer eye corners (10, 20) and (40, 60), 50 apart
    target = np.zeros((1, k, 2))
    left, right = EYE_CORNERS[k]
    target[0, left], target[0, right] = (10, 20), (40, 60)
    np.testing.assert_allclose(nme(target + [3.0, 4.0], target), [5 / 50], rtol=1e-15)
    assert EYE_CORNERS == {98: (60, 72), 68: (36, 45)}


def test_nme_rejects_bad_input():
    with pytest.raises(ValueError, match="predicted has 98 points per face but target 68"):
        nme(np.zeros((2, 196)), np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match="predicted has 3 faces but target 2"):
        nme(np.zeros((3, 68, 2)), np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match="^normalise: .*not 5"):
        nme(np.zeros((1, 5, 2)), np.ones((1, 5, 2)))
    with pytest.raises(ValueError, match="^normalise: expected one of"):
        nme(FACE[None], FACE[None], normalise="pupils")
    with pytest.raises(ValueError, match="^eye_corners: expected two point indices below 3"):
        nme(FACE[None], FACE[None], eye_corners=(0, 3))
    with pytest.raises(ValueError, match="^target: face 0 has a zero bounding box"):
        nme(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), normalise="box")
    with pytest.raises(ValueError, match="^predicted: expected points"):
        nme(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="^points: expected points"):
        as_points(np.zeros((2, 3, 3)))


def test_failure_rate_boundary():
    # an error equal to the threshold is no failure (PFLD-pytorch counts errors <= x)
    errors = [0.05, 0.1, 0.1000001, 0.3]
    assert failure_rate(errors) == 2 / 4
    assert failure_rate(errors, threshold=0.3) == 0.0
    # PFLD-pytorch's failure rate: 1 - the distribution's last value
    assert 1 - ced(errors)[1][-1] == 2 / 4
    with pytest.raises(ValueError, match="^errors: expected at least one"):
        failure_rate([])
    with pytest.raises(ValueError, match="^errors: NaN at index 1"):
        failure_rate([0.1, np.nan])


def test_ced_grid():
    x, fraction = ced([0.02, 0.05, 0.2])
    # np.arange(0, 0.1 + 1e-4, 1e-4): 1001 points, the last exactly the threshold
    assert len(x) == 1001 and x[0] == 0 and x[-1] == 0.1
    assert fraction[199] == 0 and fraction[200] == 1 / 3  # x = 0.0199 and 0.02
    assert fraction[499] == 1 / 3 and fraction[500] == 2 / 3 and fraction[-1] == 2 / 3
    # floating point adds a point past 0.05 on its grid, as in PFLD-pytorch
    x, _ = ced([0.0], threshold=0.05)
    assert len(x) == 502 and x[-1] > 0.05
    with pytest.raises(ValueError, match="^threshold, step"):
        ced([0.0], threshold=0.1, step=0.2)


def test_auc_hand_computed():
    assert auc(np.zeros(7)) == 1.0
    assert auc([0.2, 0.5]) == 0.0
    # errors all threshold / 2: the exact area is a half; Simpson's panel [0.0498, 0.05] samples
    # 0, 0, 1 and adds (step / 3) * 1 where the step function has 0, so the AUC is
    # 0.5 + step / (3 * threshold), within one panel's worst error 2 * step / 3 / threshold
    threshold, step = 0.1, 1e-4
    value = auc(np.full(5, threshold / 2), threshold, step)
    assert abs(value - 0.5) <= 2 * step / 3 / threshold
    assert value == pytest.approx(0.5 + step / (3 * threshold), rel=1e-12)
    # binary grid 0, 1/8, 1/4, 3/8, 1/2 and errors 0.2, 0.4: the distribution 0, 0, 1/2, 1/2, 1;
    # Simpson h/3 (f0 + 4 f1 + 2 f2 + 4 f3 + f4) = (1/8)/3 (0 + 0 + 1 + 2 + 1) = 1/6, over 1/2
    assert auc([0.2, 0.4], threshold=0.5, step=0.125) == pytest.approx(1 / 3, rel=1e-15)
    # the trapezoid rule would give (1/8)(0/2 + 0 + 1/2 + 1/2 + 1/2) / (1/2) = 0.375
    assert auc([0.2, 0.4], threshold=0.5, step=0.125) != pytest.approx(0.375)


def test_ced_figure(tmp_path):
    rng = np.random.default_rng(0)
    curves = {"good": rng.gamma(4.0, 0.01, 500), "worse": rng.gamma(4.0, 0.016, 500)}
    figure = ced_figure(curves, title="WFLW test")
    (ax,) = figure.axes
    assert ax.get_xlim() == (0, 0.1) and ax.get_ylim() == (0, 1)
    assert ax.get_xlabel() == "NME" and ax.get_ylabel() == "fraction of faces"
    assert ax.get_title() == "WFLW test" and len(ax.get_lines()) == 2
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    for label, (name, errors) in zip(labels, curves.items()):
        assert label == (f"{name}: AUC {auc(errors):.4f}, FR {failure_rate(errors):.2%}"), label
    figure.savefig(tmp_path / "ced.png")
    assert (tmp_path / "ced.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="^curves"):
        ced_figure({})


# L2: face 0 off by (0.3, 0.4) at its first point -> 0.09 + 0.16 = 0.25; face 1 off by 0.1 and
# 0.2 -> 0.01 + 0.04 = 0.05; their mean 0.15
L2_TRUE = np.zeros((2, 4), "float32")
L2_PRED = np.array([[0.3, 0.4, 0.0, 0.0], [0.1, 0.0, 0.0, 0.2]], "float32")

# wing, w = 10, eps = 2, C = 10 - 10 ln 6: pixel errors 2 -> 10 ln 2; 0 -> 0;
# 10 (= w, the linear side) -> 10 - C = 10 ln 6; 20 -> 20 - C = 10 + 10 ln 6
WING_ERRORS = np.array([[2.0, 0.0, 10.0, 20.0], [0.0, 0.0, 0.0, 0.0]])
WING_VALUE = (10 * math.log(2) + 10 * math.log(6) + 10 + 10 * math.log(6) + 0) / 2


def test_l2_loss_hand_computed():
    assert float(L2Loss()(L2_TRUE, L2_PRED)) == pytest.approx(0.15, rel=1e-6)
    assert float(L2Loss()(L2_PRED, L2_PRED)) == 0.0


def test_wing_loss_hand_computed():
    assert float(WingLoss()(np.zeros((2, 4)), WING_ERRORS)) == pytest.approx(WING_VALUE, 1e-6)
    # coordinates in [0, 1] of a 100-pixel crop: scale 100 gives the same pixel errors
    scaled = WingLoss(scale=100.0)(np.zeros((2, 4)), WING_ERRORS / 100)
    assert float(scaled) == pytest.approx(WING_VALUE, rel=1e-6)
    assert float(WingLoss()(WING_ERRORS, WING_ERRORS)) == 0.0
    with pytest.raises(ValueError, match="^curvature: expected a positive number"):
        WingLoss(curvature=0.0)


def test_wing_loss_continuous_at_width():
    loss = WingLoss(dtype="float64")
    below, above = (float(loss(np.zeros((1, 1)), np.full((1, 1), x))) for x in (10 - 1e-9, 10))
    at = 10 * math.log(6)  # w ln(1 + w / eps), = w - C from the linear side
    assert below == pytest.approx(at, rel=1e-9) and above == pytest.approx(at, rel=1e-12)
    # the other side of w: the slope is 1 there
    assert float(loss(np.zeros((1, 1)), np.full((1, 1), 10 + 1e-9))) == pytest.approx(at, 1e-9)


# PFLD: face 0 has expression; face 1 expression and occlusion; face 2 only the pose flag,
# which the loss drops, so it adds 0 however wrong its points. Expression is in 2 of 3 faces
# (weight 3/2), occlusion in 1 (weight 3), illumination, make-up and blur in none (weight the
# batch size, times flags that are all 0). weight_attribute: 1.5, 4.5, 0.
ATTRIBUTES = np.array([[1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]], "int32")
LANDMARKS_TRUE = np.zeros((3, 4), "float32")
# l2: 0.25, 0.05, 1.0
LANDMARKS_PRED = np.array([[0.3, 0.4, 0, 0], [0.1, 0, 0, 0.2], [0.5, 0.5, 0.5, 0.5]], "float32")
ANGLES_TRUE = np.full((3, 3), 10.0, "float32")
# differences taken as radians: face 0 (pi/2, 0, 0) -> 1 - cos = 1; face 1 (pi, pi/2, 0) -> 2 + 1
ANGLE_DIFFERENCES = np.array([[math.pi / 2, 0, 0], [math.pi, math.pi / 2, 0], [1, 2, 3]])
# mean(1 * 1.5 * 0.25, 3 * 4.5 * 0.05, 0) = (0.375 + 0.675) / 3
PFLD_VALUE = (0.375 + 0.675 + 0.0) / 3


def test_pfld_loss_hand_computed():
    angles_pred = ANGLES_TRUE + ANGLE_DIFFERENCES.astype("float32")
    args = LANDMARKS_TRUE, LANDMARKS_PRED, ANGLES_TRUE, angles_pred, ATTRIBUTES
    assert float(pfld_loss(*args)) == pytest.approx(PFLD_VALUE, rel=1e-5)
    # the batch-size weight multiplies only zero flags
    assert float(pfld_loss(*args, batch_size=1000)) == pytest.approx(PFLD_VALUE, rel=1e-5)
    # the paper's reading: the same differences in degrees (90, 180) converted to radians
    degrees = ANGLES_TRUE + np.degrees(ANGLE_DIFFERENCES).astype("float32")
    radians = pfld_loss(
        LANDMARKS_TRUE, LANDMARKS_PRED, ANGLES_TRUE, degrees, ATTRIBUTES, radians=True
    )
    assert float(radians) == pytest.approx(PFLD_VALUE, rel=1e-5)
    # a face with none of the five flags adds nothing: alone in a batch, the loss is 0
    alone = pfld_loss(
        LANDMARKS_TRUE[2:], LANDMARKS_PRED[2:], ANGLES_TRUE[2:], angles_pred[2:], ATTRIBUTES[2:]
    )
    assert float(alone) == 0.0
    assert (
        float(pfld_loss(LANDMARKS_PRED, LANDMARKS_PRED, ANGLES_TRUE, angles_pred, ATTRIBUTES)) == 0
    )
    with pytest.raises(ValueError, match="^attributes: expected WFLW's"):
        pfld_loss(LANDMARKS_TRUE, LANDMARKS_PRED, ANGLES_TRUE, angles_pred, ATTRIBUTES[:, 1:])


def torch_pfld_loss(landmarks_true, landmarks_pred, angles_true, angles_pred, attributes, n):
    """PFLD-pytorch's PFLDLoss, written out from its description: angles differences into cos
    as they are, attribute columns 1..5 weighted 1 / batch mean or the batch size."""
    weight_angle = torch.sum(1 - torch.cos(angles_pred - angles_true), dim=1)
    flags = attributes[:, 1:6].to(landmarks_true.dtype)
    ratio = torch.mean(flags, dim=0)
    weight = torch.tensor([1.0 / r if r > 0 else n for r in ratio.tolist()], dtype=flags.dtype)
    weight_attribute = torch.sum(flags * weight, dim=1)
    l2 = torch.sum((landmarks_true - landmarks_pred) ** 2, dim=1)
    return torch.mean(weight_angle * weight_attribute * l2)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_pfld_loss_matches_torch(dtype, rtol):
    rng = np.random.default_rng(1)
    n = 8
    landmarks_true = rng.random((n, 196)).astype(dtype)
    landmarks_pred = (landmarks_true + rng.normal(0, 0.05, (n, 196))).astype(dtype)
    angles_true = rng.uniform(-40, 40, (n, 3)).astype(dtype)
    angles_pred = (angles_true + rng.normal(0, 5, (n, 3))).astype(dtype)
    attributes = rng.integers(0, 2, (n, 6)).astype("int32")
    attributes[:, 3] = 0  # a column with no flags in the batch
    ours = pfld_loss(landmarks_true, landmarks_pred, angles_true, angles_pred, attributes)
    theirs = torch_pfld_loss(
        *(torch.from_numpy(a) for a in (landmarks_true, landmarks_pred, angles_true, angles_pred)),
        torch.from_numpy(attributes),
        n,
    )
    assert keras.backend.standardize_dtype(ours.dtype) == dtype
    np.testing.assert_allclose(float(ours), theirs.item(), rtol=rtol)


def test_losses_in_a_graph():
    spec = tf.TensorSpec((None, 4), tf.float32)

    @tf.function(input_signature=[spec, spec])
    def l2_and_wing(y_true, y_pred):
        return L2Loss()(y_true, y_pred), WingLoss(scale=100.0)(y_true, y_pred)

    l2, wing = l2_and_wing(L2_TRUE, L2_PRED)
    assert float(l2) == pytest.approx(0.15, rel=1e-6)
    wing_value = l2_and_wing(np.zeros((2, 4), "float32"), (WING_ERRORS / 100).astype("float32"))
    assert float(wing_value[1]) == pytest.approx(WING_VALUE, rel=1e-6)

    angles = tf.TensorSpec((None, 3), tf.float32)
    flags = tf.TensorSpec((None, 6), tf.int32)

    @tf.function(input_signature=[spec, spec, angles, angles, flags])
    def pfld_and_gradient(landmarks_true, landmarks_pred, angles_true, angles_pred, attributes):
        with tf.GradientTape() as tape:
            tape.watch(landmarks_pred)
            loss = pfld_loss(landmarks_true, landmarks_pred, angles_true, angles_pred, attributes)
        return loss, tape.gradient(loss, landmarks_pred)

    angles_pred = ANGLES_TRUE + ANGLE_DIFFERENCES.astype("float32")
    loss, gradient = pfld_and_gradient(
        LANDMARKS_TRUE, LANDMARKS_PRED, ANGLES_TRUE, angles_pred, ATTRIBUTES
    )
    assert float(loss) == pytest.approx(PFLD_VALUE, rel=1e-5)
    # columns without flags leave no 1 / 0 in the gradient; face 2's is 0
    assert np.isfinite(gradient.numpy()).all() and not gradient.numpy()[2].any()


@pytest.mark.parametrize("loss", [L2Loss(), WingLoss(scale=112.0)], ids=["l2", "wing"])
def test_losses_fit_and_serialize(loss):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=loss)
    rng = np.random.default_rng(0)
    history = model.fit(rng.random((16, 8)), rng.random((16, 4)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"] == f"keras_zoo>{type(loss).__name__}"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    assert float(restored(L2_TRUE, L2_PRED)) == float(loss(L2_TRUE, L2_PRED))
