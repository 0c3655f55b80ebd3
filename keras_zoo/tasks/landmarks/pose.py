"""Head pose (pitch, yaw, roll) from facial landmarks, as PFLD computes it for its auxiliary net.

PFLD trains an auxiliary branch to regress the head's Euler angles. Its reference data
preparation (PFLD-pytorch, ``calculate_pitch_yaw_roll``) derives those targets from 14 of the
landmarks with OpenCV: ``solvePnP`` (``SOLVEPNP_ITERATIVE``, no distortion) of a fixed 14-point
3D face model against the 14 image points, with a pinhole camera of focal length
``(camera / 2) / tan(30 deg)`` and principal point ``(camera / 2, camera / 2)``, ``camera = 256``;
then ``Rodrigues`` and ``decomposeProjectionMatrix`` of ``[R | t]``, whose Euler angles are the
targets. :func:`head_pose` computes the same numbers with numpy alone.

It retraces OpenCV 4.x's steps rather than solving PnP to convergence, because the numbers PFLD
trains on are not a least-squares minimum. Its data preparation passes landmarks normalised to
[0, 1] of the crop: to the 256-pixel camera that is a face one pixel wide, 128 pixels off the
optical axis, and OpenCV's Levenberg-Marquardt stops after 20 iterations far from the minimum
(the converged pose differs by tens of degrees). The steps, as OpenCV 4.x
``findExtrinsicCameraParams2`` takes them:

1. inputs rounded to float32 (PFLD's arrays), then worked in float64;
2. image points normalised, ``(u - c) * (1 / f)``;
3. a DLT start: the 12-vector minimising ``|L p|`` (the 3x4 matrix ``[R' | t']`` up to scale),
   its sign chosen so that ``det R' > 0``, ``R'`` projected onto the rotations by SVD and ``t'``
   rescaled by ``|R|_F / |R'|_F``;
4. OpenCV's ``CvLevMarq`` on the rotation vector and translation, reprojection error in
   pixels: damping ``10**-3`` to start, times 10 on a rejected step (retried from the same
   point while the exponent stays <= 16), divided by 10 after each accepted one (down to
   ``10**-16``), the damped normal equations ``(JtJ with its diagonal * (1 + lambda)) d = Jt e``
   solved by SVD, and a stop after 20 accepted steps or when a step changes the parameters
   by less than ``FLT_EPSILON`` relative to them;
5. the Euler angles of ``RQDecomp3x3`` (Givens rotations about x, y then z, OpenCV's sign fix
   for the diagonal, angles ``acos`` signed by the rotations' off-diagonal terms), in degrees.

OpenCV 5 replaced ``CvLevMarq``; its angles for normalised landmarks differ from 4.x's by
degrees, and PFLD-pytorch pins OpenCV 4.1.1, so 4.x is the reference here. Where the problem is
ill-conditioned (normalised landmarks), OpenCV's own result moves by up to about a degree when one
input coordinate changes by one float32 ulp; agreement with it can only be as tight as that.
"""

from __future__ import annotations

import numpy as np

# Landmark indices of the 14 points, in MODEL_POINTS' order, for each annotation scheme:
# WFLW's 98 points (what PFLD-pytorch's data preparation uses) and dlib/300-W's 68.
TRACKED_POINTS: dict[int, tuple[int, ...]] = {
    98: (33, 38, 50, 46, 60, 64, 68, 72, 55, 59, 76, 82, 85, 16),
    68: (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8),
}

# PFLD-pytorch's 3D face model, float32 as it has it: x toward the image's left (its "left"
# is the viewer's: WFLW's point 33 is the outer end of the eyebrow on the image's left), y up,
# z toward the viewer. The two nose points coincide there; kept so, since the targets were
# computed with it.
MODEL_POINTS = np.array(
    [
        [6.825897, 6.760612, 4.402142],  # eyebrow on the image's left, outer end
        [1.330353, 7.122144, 6.903745],  # eyebrow on the image's left, inner end
        [-1.330353, 7.122144, 6.903745],  # eyebrow on the image's right, inner end
        [-6.825897, 6.760612, 4.402142],  # eyebrow on the image's right, outer end
        [5.311432, 5.485328, 3.987654],  # eye on the image's left, outer corner
        [1.789930, 5.393625, 4.413414],  # eye on the image's left, inner corner
        [-1.789930, 5.393625, 4.413414],  # eye on the image's right, inner corner
        [-5.311432, 5.485328, 3.987654],  # eye on the image's right, outer corner
        [-2.005628, 1.409845, 6.165652],  # nostril on the image's left
        [-2.005628, 1.409845, 6.165652],  # nostril on the image's right (sic: same point)
        [2.774015, -2.080775, 5.048531],  # mouth corner on the image's left
        [-2.774015, -2.080775, 5.048531],  # mouth corner on the image's right
        [0.000000, -3.116408, 6.097667],  # lower lip
        [0.000000, -7.415691, 4.070434],  # chin
    ],
    dtype=np.float32,
)
MODEL_POINTS.setflags(write=False)

_MODEL = MODEL_POINTS.astype(np.float64)
_EYE = np.eye(3)
_DBL_EPS = float(np.finfo(np.float64).eps)
_FLT_EPS = float(np.finfo(np.float32).eps)
_HALF_FOV_DEG = 30.0  # PFLD's camera: 60 degrees across
_MAX_ITER = 20  # findExtrinsicCameraParams2's LM iterations
_LAMBDA_LG10_START, _LAMBDA_LG10_MIN, _LAMBDA_LG10_MAX = -3, -16, 16
_MIN_SPREAD = 1e-6  # the tracked points' thinnest extent, relative to their widest
_SMALL_SINE = 1e-5  # Rodrigues: below it, the angle is taken as 0 or pi
# [e_k]x flattened, row k: [v]x = (v @ _SKEW_BASIS) reshaped to 3x3.
_SKEW_BASIS = np.array(
    [[0, 0, 0, 0, 0, -1, 0, 1, 0], [0, 0, 1, 0, 0, 0, -1, 0, 0], [0, -1, 0, 1, 0, 0, 0, 0, 0]],
    dtype=np.float64,
)


def head_pose(points: np.ndarray, *, camera: float = 256.0) -> np.ndarray:
    """Return the (pitch, yaw, roll) in degrees that PFLD-pytorch computes from landmarks.

    ``points``: (K, 2) or (N, K, 2) landmark coordinates, or the same flattened to (2K,) or
    (N, 2K) (x, y interleaved), with K a key of :data:`TRACKED_POINTS` (98 for WFLW, 68 for
    dlib/300-W). Any scale is accepted, as PFLD's function accepts it: its data preparation
    passes coordinates in [0, 1] of the crop. ``camera``: the virtual camera's image size in
    pixels (PFLD's ``cam_w = cam_h = 256``).

    Returns float32 angles, shape (3,) for one face or (N, 3), equal to
    ``calculate_pitch_yaw_roll`` of the 14 tracked points run with OpenCV 4.x.
    """
    faces, single = _faces(points)
    focal, centre = _camera(camera)
    # PFLD casts the landmarks to float32 before OpenCV converts them to float64.
    pixels = faces.astype(np.float32).astype(np.float64)
    params = _levenberg_marquardt(_dlt((pixels - centre) * (1.0 / focal)), pixels, focal, centre)
    angles = _rq_euler_angles(_rotation_matrix(params[:, :3])).astype(np.float32)
    return angles[0] if single else angles


def _faces(points: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return the 14 tracked points of each face, (N, 14, 2) float64, and whether one face came."""
    arr = np.asarray(points)
    shape = arr.shape
    expected = (
        f"(K, 2), (N, K, 2), (2K,) or (N, 2K) with K in {sorted(TRACKED_POINTS)}, got shape {shape}"
    )
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"points: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1 and shape[0] // 2 in TRACKED_POINTS and shape[0] % 2 == 0:
        faces, single = arr.reshape(1, -1, 2), True
    elif arr.ndim == 2 and shape[1] == 2 and shape[0] in TRACKED_POINTS:
        faces, single = arr[None], True
    elif arr.ndim == 2 and shape[1] % 2 == 0 and shape[1] // 2 in TRACKED_POINTS:
        faces, single = arr.reshape(shape[0], -1, 2), False
    elif arr.ndim == 3 and shape[2] == 2 and shape[1] in TRACKED_POINTS:
        faces, single = arr, False
    else:
        raise ValueError(f"points: expected {expected}")
    faces = faces[:, list(TRACKED_POINTS[faces.shape[1]])].astype(np.float64)
    if not np.all(np.isfinite(faces)):
        raise ValueError("points: the tracked landmarks must be finite")
    # Points on a line leave the pose undetermined (OpenCV returns an arbitrary one): refuse.
    spread = np.linalg.svd(faces - faces.mean(axis=1, keepdims=True), compute_uv=False)
    flat = np.flatnonzero(spread[:, -1] <= _MIN_SPREAD * spread[:, 0])
    if flat.size:
        raise ValueError(
            f"points: the tracked landmarks of face {int(flat[0])} lie on a line or coincide; "
            "the pose is undefined"
        )
    return faces, single


def _camera(camera: float) -> tuple[float, float]:
    """Return PFLD's focal length and principal point, rounded to float32 as its matrix is."""
    if not (isinstance(camera, (int, float, np.integer, np.floating)) and np.isfinite(camera)):
        raise ValueError(f"camera: expected a finite positive image size, got {camera!r}")
    if camera <= 0:
        raise ValueError(f"camera: expected a finite positive image size, got {camera!r}")
    centre = float(camera) / 2
    focal = centre / np.tan(_HALF_FOV_DEG * np.pi / 180)
    return float(np.float32(focal)), float(np.float32(centre))


def _dlt(normalised: np.ndarray) -> np.ndarray:
    """Return the linear start (rotation vector, translation) per face, (N, 6)."""
    n, k = normalised.shape[:2]
    rows = np.zeros((n, k, 2, 12))
    rows[:, :, 0, 0:3] = _MODEL
    rows[:, :, 0, 3] = 1.0
    rows[:, :, 1, 4:7] = _MODEL
    rows[:, :, 1, 7] = 1.0
    rows[:, :, 0, 8:11] = -normalised[..., 0:1] * _MODEL
    rows[:, :, 0, 11] = -normalised[..., 0]
    rows[:, :, 1, 8:11] = -normalised[..., 1:2] * _MODEL
    rows[:, :, 1, 11] = -normalised[..., 1]
    system = rows.reshape(n, 2 * k, 12)
    # OpenCV takes the last right singular vector of L^T L, not of L; so does this, since the
    # rounding of that product is part of the start the iterations amplify.
    _, _, vt = np.linalg.svd(np.einsum("nki,nkj->nij", system, system))
    pose = vt[:, -1].reshape(n, 3, 4)
    pose = pose * np.where(np.linalg.det(pose[:, :, :3]) < 0, -1.0, 1.0)[:, None, None]
    scale = np.linalg.norm(pose[:, :, :3], axis=(1, 2))
    if np.any(scale <= _DBL_EPS):
        raise ValueError("points: the tracked landmarks are degenerate; the pose is undefined")
    u, _, v = np.linalg.svd(pose[:, :, :3])
    rotation = u @ v
    translation = pose[:, :, 3] * (np.linalg.norm(rotation, axis=(1, 2)) / scale)[:, None]
    return np.concatenate([_rotation_vector(rotation), translation], axis=1)


def _norm(v: np.ndarray) -> np.ndarray:
    """Return the L2 norms over the last axis (cheaper than np.linalg.norm on tiny arrays)."""
    return np.sqrt(np.sum(v * v, axis=-1))


def _skew(v: np.ndarray) -> np.ndarray:
    """Return the cross-product matrices [v]x, (..., 3, 3)."""
    # One product with the generators instead of stacking nine entries: this runs per iterate.
    return (v @ _SKEW_BASIS).reshape(*v.shape[:-1], 3, 3)


def _rotation_matrix(rvec: np.ndarray) -> np.ndarray:
    """Return OpenCV's Rodrigues rotation matrices of rotation vectors, (N, 3, 3)."""
    theta = _norm(rvec)
    tiny = theta < _DBL_EPS
    axis = rvec / np.where(tiny, 1.0, theta)[:, None]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    rot = cos * _EYE + (1 - cos) * axis[:, :, None] * axis[:, None, :] + sin * _skew(axis)
    return np.where(tiny[:, None, None], _EYE, rot)


def _rotation_vector(rot: np.ndarray) -> np.ndarray:
    """Return OpenCV's Rodrigues rotation vectors of rotation matrices, (N, 3).

    Off the singular angles the vector comes from the antisymmetric part; near 0 it is 0 and
    near pi OpenCV rebuilds it from the diagonal with its own sign choices, kept here since
    the iterations start from it.
    """
    r = np.stack(
        [rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0], rot[:, 1, 0] - rot[:, 0, 1]],
        axis=-1,
    )
    sine = np.sqrt(np.sum(r * r, axis=-1) * 0.25)
    cosine = np.clip((np.trace(rot, axis1=1, axis2=2) - 1) * 0.5, -1.0, 1.0)
    theta = np.arccos(cosine)
    small = sine < _SMALL_SINE
    general = r * (theta / (2 * np.where(small, 1.0, sine)))[:, None]

    diag = np.sqrt(np.maximum((np.diagonal(rot, axis1=1, axis2=2) + 1) * 0.5, 0.0))
    ax = diag[:, 0]
    ay = diag[:, 1] * np.where(rot[:, 0, 1] < 0, -1.0, 1.0)
    az = diag[:, 2] * np.where(rot[:, 0, 2] < 0, -1.0, 1.0)
    flip = (np.abs(ax) < np.abs(ay)) & (np.abs(ax) < np.abs(az))
    flip &= (rot[:, 1, 2] > 0) != (ay * az > 0)
    near_pi = np.stack([ax, ay, np.where(flip, -az, az)], axis=-1)
    length = np.linalg.norm(near_pi, axis=-1)
    near_pi = near_pi * (theta / np.where(length > 0, length, 1.0))[:, None]

    out = np.where((small & (cosine <= 0))[:, None], near_pi, general)
    return np.where((small & (cosine > 0))[:, None], 0.0, out)


_MODEL_SKEW = _skew(_MODEL)


def _residuals(
    params: np.ndarray, pixels: np.ndarray, focal: float, centre: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return reprojection errors (N, 2K) in pixels and their Jacobian (N, 2K, 6)."""
    rvec, tvec = params[:, :3], params[:, 3:]
    rot = _rotation_matrix(rvec)
    cam = np.einsum("nij,kj->nki", rot, _MODEL) + tvec[:, None, :]
    inv_z = 1.0 / cam[..., 2]
    err = cam[..., :2] * inv_z[..., None] * focal + centre - pixels

    # d(R m)/dr = -R [m]x (r r^T + (R^T - I)[r]x) / |r|^2  (Gallego & Yezzi), and -[m]x at r = 0.
    theta2 = np.sum(rvec * rvec, axis=-1)
    tiny = theta2 < _DBL_EPS**2
    skew_r = _skew(rvec)
    factor = rvec[:, :, None] * rvec[:, None, :] + np.swapaxes(rot, 1, 2) @ skew_r - skew_r
    factor /= np.where(tiny, 1.0, theta2)[:, None, None]
    factor = np.where(tiny[:, None, None], _EYE, factor)
    d_cam_d_r = -((rot[:, None] @ _MODEL_SKEW) @ factor[:, None])

    n, k = cam.shape[:2]
    d_pix_d_cam = np.zeros((n, k, 2, 3))
    d_pix_d_cam[..., 0, 0] = d_pix_d_cam[..., 1, 1] = focal * inv_z
    d_pix_d_cam[..., :, 2] = -focal * cam[..., :2] * (inv_z * inv_z)[..., None]
    jac = np.concatenate([d_pix_d_cam @ d_cam_d_r, d_pix_d_cam], axis=-1)
    return err.reshape(n, 2 * k), jac.reshape(n, 2 * k, 6)


def _solve_svd(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve lhs x = rhs per face as cv::solve(DECOMP_SVD) does, ignoring tiny singular values."""
    u, w, vt = np.linalg.svd(lhs)
    threshold = w.sum(axis=-1, keepdims=True) * (2 * _DBL_EPS)
    inv_w = np.where(np.abs(w) <= threshold, 0.0, 1.0 / np.where(w == 0, 1.0, w))
    coef = inv_w * (np.swapaxes(u, 1, 2) @ rhs[:, :, None])[:, :, 0]
    return (np.swapaxes(vt, 1, 2) @ coef[:, :, None])[:, :, 0]


def _levenberg_marquardt(
    params: np.ndarray, pixels: np.ndarray, focal: float, centre: float
) -> np.ndarray:
    """Refine (N, 6) poses with OpenCV 4.x CvLevMarq's schedule; every face runs its own."""
    n = len(params)
    err, jac = _residuals(params, pixels, focal, centre)
    prev_norm = _norm(err)
    jtj = np.einsum("nki,nkj->nij", jac, jac)
    jte = np.einsum("nki,nk->ni", jac, err)
    prev = params.copy()
    out = params.copy()
    lam = np.full(n, _LAMBDA_LG10_START)
    iters = np.zeros(n, dtype=int)
    active = np.arange(n)
    diag = np.arange(6)
    while active.size:
        damped = jtj[active].copy()
        # exp(k ln 10), not 10**k: the damping is formed as OpenCV forms it.
        damped[:, diag, diag] *= 1.0 + np.exp(lam[active] * np.log(10.0))[:, None]
        trial = prev[active] - _solve_svd(damped, jte[active])
        err, jac = _residuals(trial, pixels[active], focal, centre)
        norm = _norm(err)
        worse = norm > prev_norm[active]
        retry = worse & (lam[active] < _LAMBDA_LG10_MAX)
        lam[active[retry]] += 1

        # Accepted steps (a worse one too once the damping is at its cap, as OpenCV does).
        done = ~retry
        idx = active[done]
        lam[idx] = np.maximum(lam[idx] + worse[done] - 1, _LAMBDA_LG10_MIN)
        iters[idx] += 1
        step = trial[done]
        change = _norm(step - prev[idx]) / (_norm(prev[idx]) + _DBL_EPS)
        stop = (iters[idx] >= _MAX_ITER) | (change < _FLT_EPS)
        out[idx[stop]] = step[stop]

        go = ~stop
        cont = idx[go]
        prev[cont] = step[go]
        prev_norm[cont] = norm[done][go]
        jac_go, err_go = jac[done][go], err[done][go]
        jtj[cont] = np.einsum("nki,nkj->nij", jac_go, jac_go)
        jte[cont] = np.einsum("nki,nk->ni", jac_go, err_go)
        active = np.concatenate([active[retry], cont])
    return out


def _rq_euler_angles(rot: np.ndarray) -> np.ndarray:
    """Return the Euler angles (degrees) that OpenCV's RQDecomp3x3 reports, (N, 3)."""
    n = len(rot)

    def givens(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # OpenCV zeroes an entry already below DBL_EPSILON with the identity rotation.
        keep = np.abs(num) > _DBL_EPS
        s, c = np.where(keep, num, 0.0), np.where(keep, den, 1.0)
        z = 1.0 / np.sqrt(c * c + s * s)
        return s * z, c * z

    s, c = givens(rot[:, 2, 1], rot[:, 2, 2])
    qx = np.zeros((n, 3, 3))
    qx[:, 0, 0] = 1.0
    qx[:, 1, 1], qx[:, 1, 2], qx[:, 2, 1], qx[:, 2, 2] = c, s, -s, c
    r = rot @ qx
    r[:, 2, 1] = 0.0

    s, c = givens(-r[:, 2, 0], r[:, 2, 2])
    qy = np.zeros((n, 3, 3))
    qy[:, 1, 1] = 1.0
    qy[:, 0, 0], qy[:, 0, 2], qy[:, 2, 0], qy[:, 2, 2] = c, -s, s, c
    m = r @ qy
    m[:, 2, 0] = 0.0

    s, c = givens(m[:, 1, 0], m[:, 1, 1])
    qz = np.zeros((n, 3, 3))
    qz[:, 2, 2] = 1.0
    qz[:, 0, 0], qz[:, 0, 1], qz[:, 1, 0], qz[:, 1, 1] = c, s, -s, c
    r = m @ qz

    # OpenCV makes the first two diagonal entries of the triangular factor positive by a
    # further half turn, moved into the Givens rotations (and so into the angles).
    neg00, neg11 = r[:, 0, 0] < 0, r[:, 1, 1] < 0
    about_z = neg00 & neg11
    qz[about_z, :2, :2] *= -1.0
    about_y = neg00 & ~neg11
    qz[about_y] = np.swapaxes(qz[about_y], 1, 2)
    for i, j in ((0, 0), (0, 2), (2, 0), (2, 2)):
        qy[about_y, i, j] *= -1.0
    about_x = ~neg00 & neg11
    qz[about_x] = np.swapaxes(qz[about_x], 1, 2)
    qy[about_x] = np.swapaxes(qy[about_x], 1, 2)
    for i, j in ((1, 1), (1, 2), (2, 1), (2, 2)):
        qx[about_x, i, j] *= -1.0

    def signed_acos(cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        return np.arccos(np.clip(cos, -1.0, 1.0)) * np.where(sin >= 0, 1.0, -1.0)

    return np.degrees(
        np.stack(
            [
                signed_acos(qx[:, 1, 1], qx[:, 1, 2]),
                signed_acos(qy[:, 0, 0], qy[:, 2, 0]),
                signed_acos(qz[:, 0, 0], qz[:, 0, 1]),
            ],
            axis=-1,
        )
    )
