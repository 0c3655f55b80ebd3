"""Synthetic faces with known points, for the landmark task's tests: a left-right symmetric
68-point face in the iBUG layout (jaw, brows, nose, eyes, mouth), drawn as a disc with its
features as dark dots, turned, scaled and moved at random on a noisy background, saved as PNGs
with iBUG .pts files beside them (and as a WFLW-style annotation file where asked)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw


def _arc(centre, radii, start, stop, count):
    angles = np.linspace(np.deg2rad(start), np.deg2rad(stop), count)
    return np.stack(
        [centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)], 1
    )


def template68() -> np.ndarray:
    """(68, 2) points of a symmetric face in [-1, 1], x to the right, y down, iBUG order."""
    jaw = _arc((0, 0.05), (0.85, 0.9), 180, 0, 17)  # 0..16 from the image's left, below
    brow_l = np.stack([np.linspace(-0.7, -0.15, 5), [-0.42, -0.5, -0.53, -0.5, -0.45]], 1)
    brow_r = brow_l[::-1] * [-1, 1]
    bridge = np.stack([np.zeros(4), np.linspace(-0.35, 0.1, 4)], 1)
    nostrils = np.stack([np.linspace(-0.2, 0.2, 5), [0.2, 0.24, 0.26, 0.24, 0.2]], 1)
    eye_l = _arc((-0.4, -0.25), (0.17, 0.08), 180, 540, 7)[:6]  # 36..41 clockwise from outer
    eye_r = (eye_l * [-1, 1])[[3, 2, 1, 0, 5, 4]]
    mouth_outer = _arc((0, 0.5), (0.38, 0.16), 180, 540, 13)[:12]
    mouth_inner = _arc((0, 0.5), (0.25, 0.06), 180, 540, 9)[:8]
    points = np.concatenate(
        [jaw, brow_l, brow_r, bridge, nostrils, eye_l, eye_r, mouth_outer, mouth_inner]
    )
    assert points.shape == (68, 2)
    return points.astype(np.float32)


def render(points: np.ndarray, size: int, centre, radius: float, rng) -> np.ndarray:
    """An RGB uint8 size x size picture: noise, a face disc, its points as dark dots."""
    back = rng.integers(60, 200, (size // 8, size // 8, 3)).astype(np.uint8)
    picture = Image.fromarray(back).resize((size, size), Image.BILINEAR)
    pen = ImageDraw.Draw(picture)
    cx, cy = centre
    pen.ellipse(
        (cx - radius, cy - 1.15 * radius, cx + radius, cy + 1.1 * radius), fill=(225, 180, 150)
    )
    dot = max(1.5, radius / 30)
    for x, y in points:
        pen.ellipse((x - dot, y - dot, x + dot, y + dot), fill=(40, 20, 30))
    return np.asarray(picture)


def write_pts(path: str, points: np.ndarray) -> None:
    lines = ["version: 1", f"n_points: {len(points)}", "{"]
    lines += [f"{x:.3f} {y:.3f}" for x, y in points]
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def face(rng, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A random face picture and its 68 points in its pixels."""
    angle = np.deg2rad(rng.uniform(-15, 15))
    radius = rng.uniform(0.25, 0.35) * size
    centre = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = template68() @ turn.T * radius + centre
    return render(points, size, centre, radius, rng), points.astype(np.float32)


def make_pts_folder(root: str, count: int, seed: int = 0, size: int = 160) -> str:
    """`count` faces as root/face_i.png with root/face_i.pts; returns root."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for i in range(count):
        picture, points = face(rng, size)
        Image.fromarray(picture).save(os.path.join(root, f"face_{i:03d}.png"))
        write_pts(os.path.join(root, f"face_{i:03d}.pts"), points)
    return root


def template98() -> np.ndarray:
    """(98, 2) points: the 68 of `template68` and 30 between neighbours of them (WFLW's count,
    not its layout: the tests need 98 distinct points, non-collinear tracked ones)."""
    base = template68()
    between = (base[:30] + base[1:31]) / 2
    return np.concatenate([base, between]).astype(np.float32)


def make_wflw(root: str, count: int, seed: int = 0, size: int = 160) -> str:
    """`count` faces of 98 points as a WFLW annotation file root/list.txt (196 coordinates, the
    box, 6 attribute flags, the image path) over root/WFLW_images/; returns the file's path."""
    rng = np.random.default_rng(seed)
    images = os.path.join(root, "WFLW_images")
    os.makedirs(images, exist_ok=True)
    lines = []
    for i in range(count):
        angle = np.deg2rad(rng.uniform(-15, 15))
        radius = rng.uniform(0.25, 0.35) * size
        centre = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = template98() @ turn.T * radius + centre
        Image.fromarray(render(points, size, centre, radius, rng)).save(
            os.path.join(images, f"face_{i:03d}.png")
        )
        box = [*np.floor(points.min(0)).astype(int), *np.ceil(points.max(0)).astype(int)]
        flags = rng.integers(0, 2, 6)
        fields = [f"{v:.3f}" for v in points.ravel()] + [str(v) for v in box]
        fields += [str(v) for v in flags] + [f"face_{i:03d}.png"]
        lines.append(" ".join(fields))
    path = os.path.join(root, "list.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
