"""head_pose against OpenCV: the angles PFLD-pytorch's calculate_pitch_yaw_roll computes, its
cv2 calls (solvePnP, Rodrigues, decomposeProjectionMatrix) written out here and run on the
same 14 tracked points, float32 as PFLD's data preparation stores them.

Faces: PFLD's 3D model turned by random pitch, yaw and roll within +-60 degrees, seen by a
pinhole camera 40 to 80 model units away (a head at arm's length), framed in a 112-pixel crop
and moved by 1.5 pixels of annotation noise; WFLW's 98 points and dlib's 68 (the points that
are not tracked are random), in pixels of the crop and normalised to [0, 1] of it as PFLD's
SetPreparation.py passes them.

Tolerance: 1e-3 degrees per angle (angles compared modulo 360). In pixels the largest
difference seen is a few float32 ulps of the angle (about 4e-6 degrees). Normalised landmarks are
a face one pixel wide to PFLD's 256-pixel camera and the problem is ill-conditioned: OpenCV's
own angles then move by up to a degree when one input coordinate moves by one float32 ulp, and
where ours differ from OpenCV's by more than 1e-3 degrees (a face in a few hundred), the test
requires the difference to stay within that movement of OpenCV's own. Most angles agree to the
last float32 bit in both cases.

OpenCV 4.x is the reference (PFLD-pytorch pins 4.1.1; checked with 4.10 and 4.14): OpenCV 5's
solvePnP iterates differently and its angles for normalised landmarks differ from 4.x's by
degrees."""

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from keras_zoo.tasks.landmarks import pose
from keras_zoo.tasks.landmarks.pose import MODEL_POINTS, TRACKED_POINTS, head_pose

# PFLD-pytorch's numbers (pfld/utils.py, data/SetPreparation.py) written out again, so that a
# typo in the module's copy fails here instead of agreeing with itself.
PFLD_MODEL = [
    [6.825897, 6.760612, 4.402142],
    [1.330353, 7.122144, 6.903745],
    [-1.330353, 7.122144, 6.903745],
    [-6.825897, 6.760612, 4.402142],
    [5.311432, 5.485328, 3.987654],
    [1.789930, 5.393625, 4.413414],
    [-1.789930, 5.393625, 4.413414],
    [-5.311432, 5.485328, 3.987654],
    [-2.005628, 1.409845, 6.165652],
    [-2.005628, 1.409845, 6.165652],
    [2.774015, -2.080775, 5.048531],
    [-2.774015, -2.080775, 5.048531],
    [0.000000, -3.116408, 6.097667],
    [0.000000, -7.415691, 4.070434],
]
PFLD_TRACKED = {
    98: [33, 38, 50, 46, 60, 64, 68, 72, 55, 59, 76, 82, 85, 16],
    68: [17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8],
}
MIRROR = [3, 2, 1, 0, 7, 6, 5, 4, 9, 8, 11, 10, 12, 13]  # the 14 points, left and right swapped
CROP = 112
TOLERANCE_DEG = 1e-3
FACES_PER_CASE = 250
OPENCV_MAJOR = int(cv2.__version__.split(".")[0])


def opencv_pose(tracked: np.ndarray, camera: float = 256.0) -> np.ndarray:
    """PFLD-pytorch's calculate_pitch_yaw_roll of 14 points, with cv2; float32 (pitch, yaw,
    roll) as its data preparation stores them."""
    c_x = camera / 2
    f_x = c_x / np.tan(60 / 2 * np.pi / 180)
    matrix = np.float32([[f_x, 0.0, c_x], [0.0, f_x, c_x], [0.0, 0.0, 1.0]])
    image_points = np.asarray(tracked, dtype=np.float32).reshape(-1, 2)
    _, rvec, tvec = cv2.solvePnP(
        np.float32(PFLD_MODEL), image_points, matrix, np.zeros(5, np.float32)
    )
    rmat, _ = cv2.Rodrigues(rvec)
    euler = cv2.decomposeProjectionMatrix(cv2.hconcat((rmat, tvec)))[6]
    return np.asarray(euler[:, 0], dtype=np.float32)


def angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest per-face difference of (..., 3) angles in degrees, modulo 360 (-180 and 180 are
    one angle)."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) % 360.0
    return np.minimum(d, 360.0 - d).max(axis=-1)


def opencv_spread(tracked: np.ndarray, rng: np.random.Generator, tries: int = 4) -> float:
    """How far OpenCV's own angles move when one coordinate of one point moves by one float32
    ulp: the largest change over `tries` such nudges (the conditioning of the face)."""
    points = np.asarray(tracked, dtype=np.float32)
    reference = opencv_pose(points)
    spread = 0.0
    for t in range(tries):
        nudged = points.copy()
        i, axis = rng.integers(len(points)), t % 2
        nudged[i, axis] = np.nextafter(nudged[i, axis], np.float32(np.inf if t < 2 else -np.inf))
        spread = max(spread, float(angle_gap(opencv_pose(nudged), reference)))
    return spread


def synthetic_faces(
    rng: np.random.Generator,
    n: int,
    k: int,
    angles: np.ndarray | None = None,
    noise: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """(n, k, 2) landmarks in pixels of a CROP-pixel crop, the 14 tracked ones from PFLD's
    model turned by `angles` (n, 3) (pitch, yaw, roll about the model's x, y, z; random within
    +-60 degrees by default) and seen in perspective; and the angles."""
    if angles is None:
        angles = rng.uniform(-60, 60, (n, 3))
    turn = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    model = np.asarray(PFLD_MODEL) @ np.swapaxes(turn, 1, 2)
    # The camera faces the model's front (+z); the model's x and y point to the image's left
    # and top (PFLD's point 33, the outer end of the eyebrow on the image's left, is at +x).
    depth = rng.uniform(40, 80, (n, 1)) - model[..., 2]
    xy = -model[..., :2] / depth[..., None]
    low, high = xy.min(axis=1, keepdims=True), xy.max(axis=1, keepdims=True)
    scale = rng.uniform(0.55, 0.8, (n, 1, 1)) * CROP / (high - low).max(axis=-1, keepdims=True)
    shift = rng.uniform(-6, 6, (n, 1, 2))
    xy = (xy - (low + high) / 2) * scale + CROP / 2 + shift + rng.normal(0, noise, xy.shape)
    points = rng.uniform(0, CROP, (n, k, 2))
    points[:, PFLD_TRACKED[k]] = xy
    return points, angles


def require_opencv_4() -> None:
    assert OPENCV_MAJOR == 4, (
        f"OpenCV {cv2.__version__}: the reference is OpenCV 4.x (PFLD-pytorch pins 4.1.1); "
        "OpenCV 5's solvePnP iterates differently, install opencv-python-headless<5"
    )


def test_constants_are_pfld_pytorchs():
    assert MODEL_POINTS.dtype == np.float32 and MODEL_POINTS.shape == (14, 3)
    np.testing.assert_array_equal(MODEL_POINTS, np.float32(PFLD_MODEL))
    assert {k: list(v) for k, v in TRACKED_POINTS.items()} == PFLD_TRACKED
    with pytest.raises(ValueError):
        MODEL_POINTS[0, 0] = 0.0  # read-only: a shared constant


def assert_matches_opencv(k: int, normalised: bool, faces: int) -> float:
    """Checks head_pose against cv2 on `faces` synthetic faces of `k` points; returns the
    largest difference in degrees."""
    rng = np.random.default_rng(k + normalised)
    points, _ = synthetic_faces(rng, faces, k)
    if normalised:
        points /= CROP
    tracked = points[:, PFLD_TRACKED[k]]
    expected = np.stack([opencv_pose(face) for face in tracked])

    got = head_pose(points)
    assert got.dtype == np.float32 and got.shape == (faces, 3)
    gap = angle_gap(got, expected)
    over = np.flatnonzero(gap > TOLERANCE_DEG)
    if not normalised:
        assert not over.size, f"max |head_pose - cv2| = {gap.max():.3g} deg"
    # Ill-conditioned faces: within OpenCV's own movement under one-ulp nudges, and few.
    assert over.size <= faces // 20, f"{over.size} faces beyond {TOLERANCE_DEG} deg"
    for i in over:
        spread = opencv_spread(tracked[i], rng)
        assert gap[i] <= spread, f"face {i}: |head_pose - cv2| = {gap[i]:.3g} deg > {spread:.3g}"
    assert np.median(gap) == 0.0  # most agree to the last float32 bit
    return float(gap.max())


@pytest.mark.parametrize("normalised", [False, True], ids=["pixels", "normalised"])
@pytest.mark.parametrize("k", [98, 68])
def test_matches_opencv(k, normalised):
    require_opencv_4()
    assert_matches_opencv(k, normalised, FACES_PER_CASE)


@pytest.mark.parametrize(
    "mistake",
    ["pitch<->roll", "pitch<->yaw", "-yaw", "-roll", "converged"],
)
def test_planted_mistakes_fail_parity(mistake, monkeypatch):
    """The parity check catches a swapped pair or a flipped sign in the angles, and a solver
    run to convergence instead of OpenCV's 20 iterations."""
    require_opencv_4()
    euler = pose._rq_euler_angles
    wrong = {
        "pitch<->roll": lambda rot: euler(rot)[:, [2, 1, 0]],
        "pitch<->yaw": lambda rot: euler(rot)[:, [1, 0, 2]],
        "-yaw": lambda rot: euler(rot) * [1, -1, 1],
        "-roll": lambda rot: euler(rot) * [1, 1, -1],
    }
    if mistake == "converged":
        monkeypatch.setattr(pose, "_MAX_ITER", 200)
    else:
        monkeypatch.setattr(pose, "_rq_euler_angles", wrong[mistake])
    with pytest.raises(AssertionError):
        assert_matches_opencv(98, normalised=True, faces=20)


def test_camera_size_is_pfld_cameras():
    require_opencv_4()
    rng = np.random.default_rng(7)
    points, _ = synthetic_faces(rng, 20, 98)
    for camera in (112.0, 512.0):
        expected = np.stack([opencv_pose(face, camera) for face in points[:, PFLD_TRACKED[98]]])
        assert angle_gap(head_pose(points, camera=camera), expected).max() <= TOLERANCE_DEG


def test_layouts_and_batches_agree():
    rng = np.random.default_rng(3)
    points, _ = synthetic_faces(rng, 6, 68)
    batch = head_pose(points)
    np.testing.assert_array_equal(head_pose(points.reshape(6, -1)), batch)
    for i in range(6):
        one = head_pose(points[i])
        assert one.shape == (3,) and one.dtype == np.float32
        np.testing.assert_array_equal(head_pose(points[i].reshape(-1)), one)
        np.testing.assert_allclose(one, batch[i], rtol=0, atol=1e-4)
    assert head_pose(np.zeros((0, 98, 2))).shape == (0, 3)
    assert head_pose(points[0].tolist()).shape == (3,)  # nested lists as numpy reads them


def test_angles_follow_the_head():
    """The angles track the turn that made the face, each its own axis; and a mirrored face
    turns the other way: its yaw and roll change sign, its pitch stays. PFLD's model is nearly
    symmetric and its camera off-centre for the crop, so these hold for most faces, not all."""
    rng = np.random.default_rng(5)
    points, turns = synthetic_faces(rng, 300, 98, noise=1.0)
    got = head_pose(points).astype(np.float64)
    corr = np.corrcoef(got.T, turns.T)[:3, 3:]  # rows: pitch, yaw, roll; columns: the turns
    assert np.all(np.diag(corr) > 0.7), corr  # seen: 0.90, 0.95, 0.82
    assert np.all(np.abs(corr[~np.eye(3, dtype=bool)]) < 0.5), corr  # seen: up to 0.37

    n = 200
    sides = rng.choice([-1.0, 1.0], n)
    turns = np.stack(
        [rng.uniform(-20, 20, n), sides * rng.uniform(15, 45, n), rng.uniform(-20, 20, n)], -1
    )
    points, _ = synthetic_faces(rng, n, 98, angles=turns, noise=1.0)
    got = head_pose(points).astype(np.float64)
    assert np.mean(np.sign(got[:, 1]) == sides) > 0.95  # seen: 0.995
    # Mirrored about the camera's axis (x = 128, where PFLD's camera is symmetric), left and
    # right points swapped so that each keeps its meaning.
    mirrored = points.copy()
    tracked = PFLD_TRACKED[98]
    mirrored[:, tracked] = points[:, tracked][:, MIRROR]
    mirrored[:, tracked, 0] = 256.0 - mirrored[:, tracked, 0]
    flip = head_pose(mirrored).astype(np.float64)
    assert np.mean(np.sign(flip[:, 1]) == -sides) > 0.8  # seen: 0.89
    assert np.corrcoef(got[:, 0], flip[:, 0])[0, 1] > 0.7  # pitch kept (seen: 0.98)
    assert np.corrcoef(got[:, 1], flip[:, 1])[0, 1] < -0.7  # yaw turned (seen: -0.98)
    assert np.corrcoef(got[:, 2], flip[:, 2])[0, 1] < -0.7  # roll turned (seen: -0.83)


@pytest.mark.parametrize(
    "shape",
    [(14, 2), (98, 3), (97, 2), (5,), (2, 14), (3, 98, 2, 1), (2, 50, 2), (4, 100)],
)
def test_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"^points: expected .*K in \[68, 98\]"):
        head_pose(np.zeros(shape))


def test_rejects_bad_values():
    good = synthetic_faces(np.random.default_rng(0), 1, 98)[0][0]
    bad = good.copy()
    bad[PFLD_TRACKED[98][3], 0] = np.nan
    with pytest.raises(ValueError, match="^points: .*finite"):
        head_pose(bad)
    with pytest.raises(ValueError, match="^points: expected real numbers"):
        head_pose(np.full((98, 2), "a"))
    for camera in (0.0, -256.0, float("inf")):
        with pytest.raises(ValueError, match="^camera: "):
            head_pose(good, camera=camera)
    line = good.copy()
    line[:, 1] = 2 * line[:, 0] + 1
    for flat in (np.zeros((98, 2)), line):
        with pytest.raises(ValueError, match="^points: .*face 0 lie on a line or coincide"):
            head_pose(flat)
